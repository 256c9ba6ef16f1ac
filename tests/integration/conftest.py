from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.daemon import Client, Daemon, running_daemon


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    """One berthd for the session, with busybox imported."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with running_daemon("berth-it-") as d:
        yield d


@pytest.fixture
def api(daemon: Daemon) -> Client:
    return daemon.client


@pytest.fixture
def fresh_daemon() -> Iterator[Daemon]:
    """A berthd of the test's own (for restart and crash tests)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with running_daemon("berth-own-") as d:
        yield d
