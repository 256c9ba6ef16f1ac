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


def pytest_configure(config: pytest.Config) -> None:
    """As root, move the whole test session into a network namespace of its own.

    Everything the tests start afterwards (berthd, the registry, the docker CLI, curl)
    inherits it: berthd's bridges, veths, iptables rules and published ports never touch
    the host's interfaces, and loopback still joins the tests to their daemons and
    registries. Only the network namespace changes; mounts stay the host's.
    """
    if os.geteuid() != 0 or os.environ.get("BERTH_TEST_HOST_NETWORK") == "1":
        return
    import ctypes
    import subprocess

    name = f"berth-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns into the test network namespace")
    finally:
        os.close(fd)
        # The namespace lives on while this process is in it; no name is left behind.
        subprocess.run(["ip", "netns", "del", name], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


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
