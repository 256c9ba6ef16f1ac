"""Tests for the host-facing helpers of supervisor.runtime.oci that need no runtime:
crun's messages in runc's words, the hybrid-cgroup check, the capability bounding set and
the sealed copy of the runtime binary."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.runtime import oci
from supervisor.runtime.oci import (
    ExecNotFound,
    ExecNotPermitted,
    PinnedBinary,
    bounding_capabilities,
    hybrid_cgroups,
    runc_wording,
)


@pytest.mark.parametrize(
    ("crun", "runc"),
    [
        (
            "executable file `nope` not found in $PATH: No such file or directory",
            'exec: "nope": executable file not found in $PATH',
        ),
        (
            "executable file `/bin/nope` not found in $PATH: No such file or directory",
            'exec: "/bin/nope": stat /bin/nope: no such file or directory',
        ),
        ("open executable: Permission denied", "exec: permission denied"),
        ("open executable: Operation not permitted", "exec: permission denied"),
        ("capset: Operation not permitted", "capset: Operation not permitted"),
    ],
    ids=["not-in-path", "missing-path", "not-executable", "directory", "other"],
)
def test_crun_messages_in_runc_words(crun: str, runc: str) -> None:
    assert runc_wording(crun) == runc


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("OCI runtime create failed: executable file `x` not found in $PATH", ExecNotFound),
        ("OCI runtime exec failed: open executable: Permission denied", ExecNotPermitted),
        ('exec: "x": executable file not found in $PATH', ExecNotFound),
    ],
)
def test_classify_crun_and_runc_alike(message: str, kind: type[Exception]) -> None:
    assert isinstance(oci._classify(message), kind)


@given(st.text())
def test_runc_wording_never_fails_and_leaves_plain_text(text: str) -> None:
    worded = runc_wording(text)
    if "executable" not in text:
        assert worded == text


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_hybrid_cgroups_from_mountinfo(tmp_path: Path) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    assert hybrid_cgroups(path)
    path.write_text(MOUNTINFO.replace("/sys/fs/cgroup/unified", "/sys/fs/cgroup/other"))
    assert not hybrid_cgroups(path)
    path.write_text("30 1 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw\n")
    assert not hybrid_cgroups(path)  # pure v2
    assert not hybrid_cgroups(tmp_path / "missing")


def test_bounding_set_without_sys_resource(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tberthd\nCapBnd:\t000001fffeffffff\n")
    caps = bounding_capabilities(status)
    assert caps is not None
    assert "CAP_SYS_ADMIN" in caps and "CAP_SYS_RESOURCE" not in caps
    status.write_text("Name:\tberthd\n")
    assert bounding_capabilities(status) is None


def _seals(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    finally:
        os.close(fd)


def test_pinned_binary_is_a_sealed_copy_that_follows_upgrades(tmp_path: Path) -> None:
    binary = tmp_path / "runtime"
    binary.write_bytes(b"#!/bin/sh\necho one\n")
    binary.chmod(0o755)
    pinned = PinnedBinary(str(binary), tmp_path / "bin" / "runtime")
    path = pinned.path()
    assert path == str(tmp_path / "bin" / "runtime")
    assert Path(path).read_bytes() == b"#!/bin/sh\necho one\n"
    assert _seals(path) & fcntl.F_SEAL_WRITE
    with pytest.raises(OSError):
        Path(path).write_bytes(b"tampered")
    # A package upgrade replaces the file: the next call runs the new one.
    staged = tmp_path / "runtime.new"
    staged.write_bytes(b"#!/bin/sh\necho two\n")
    staged.replace(binary)
    assert Path(pinned.path()).read_bytes() == b"#!/bin/sh\necho two\n"


def test_pinned_binary_falls_back_to_the_path(tmp_path: Path) -> None:
    pinned = PinnedBinary(str(tmp_path / "gone"), tmp_path / "bin" / "gone")
    assert pinned.path() == str(tmp_path / "gone")
