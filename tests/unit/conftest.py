"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite store in ``tmp_path``, closed afterwards."""
    d = Database.open(tmp_path / "berth.db")
    yield d
    d.close()
