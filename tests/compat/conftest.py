from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.daemon import Daemon, running_daemon


@pytest.fixture(scope="session")
def compat_daemon() -> Iterator[Daemon]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with running_daemon("berth-compat-") as d:
        yield d


@pytest.fixture(scope="session")
def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the docker CLI is required under CI but none is on PATH")
        pytest.skip("no docker CLI on PATH: docker CLI compatibility not tested")
    return path
