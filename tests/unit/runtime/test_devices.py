"""runtime/devices.py against real nodes: /dev/null, and a directory holding it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.errors import InvalidArgument
from supervisor.runtime.devices import host_devices, requested_devices


def test_a_device_is_made_where_asked_with_its_numbers() -> None:
    devices, rules = requested_devices([("/dev/null", "/dev/mine", "rw")])
    st = os.stat("/dev/null")
    (d,) = devices
    assert (d.path, d.type, d.major, d.minor) == (
        "/dev/mine",
        "c",
        os.major(st.st_rdev),
        os.minor(st.st_rdev),
    )
    assert rules == (("c", d.major, d.minor, "rw"),)


def test_missing_and_non_device_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        requested_devices([(str(tmp_path / "nope"), "/dev/nope", "rwm")])
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidArgument, match="not a device node"):
        requested_devices([(str(tmp_path / "file"), "/dev/file", "rwm")])


def test_host_devices_skips_the_containers_own() -> None:
    paths = {d.path for d in host_devices()}
    assert "/dev/null" in paths
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/", "/dev/mqueue/")) for p in paths)
    assert "/dev/console" not in paths
