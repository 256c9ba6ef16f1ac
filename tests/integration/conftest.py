from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Client, Daemon


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    """One berthd for the session, with busybox imported."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = Path(tempfile.mkdtemp(prefix="berth-it-"))
    d = Daemon(root)
    d.start()
    d.import_busybox()
    yield d
    d.cleanup()


@pytest.fixture
def api(daemon: Daemon) -> Client:
    return daemon.client


@pytest.fixture
def fresh_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A berthd of the test's own (for restart and crash tests)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = Path(tempfile.mkdtemp(prefix="berth-own-"))
    d = Daemon(root)
    d.start()
    d.import_busybox()
    yield d
    d.cleanup()


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """A real distribution registry on 127.0.0.1 (no auth), for the session."""
    from tests.registry import RegistryUnavailable, running_registry

    try:
        with running_registry() as reg:
            yield reg.address
    except RegistryUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"registry needed under CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[tuple[str, str, str]]:
    """A registry behind htpasswd Basic auth: (address, user, password)."""
    from tests.registry import RegistryUnavailable, running_registry

    try:
        with running_registry(auth=("berth", "s3cret")) as reg:
            yield reg.address, "berth", "s3cret"
    except RegistryUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"registry needed under CI: {exc}")
        pytest.skip(str(exc))
