"""Shared test set-up: the ``root`` marker and a berthd started per test session."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (real runtime, overlay, cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
