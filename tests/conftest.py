"""Shared test set-up: the ``root`` marker and a berthd started per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

# A loaded 2-core CI machine makes per-example timings meaningless: no deadlines, and no
# "too slow" health check (timings are the benchmarks' business, not the tests').
settings.register_profile("berth", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("berth")

if TYPE_CHECKING:
    from tests.registry import RunningRegistry


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (real runtime, overlay, cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def _registry(auth: tuple[str, str] | None) -> Iterator[RunningRegistry]:
    from tests.registry import RegistryUnavailable, running_registry

    try:
        with running_registry(auth=auth) as reg:
            yield reg
    except RegistryUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a registry is needed under CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """A real distribution registry on 127.0.0.1 (no auth) for the session: its address."""
    for reg in _registry(None):
        yield reg.address


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[tuple[str, str, str]]:
    """A registry behind htpasswd Basic auth: (address, user, password)."""
    for reg in _registry(("berth", "s3cret")):
        yield reg.address, "berth", "s3cret"
