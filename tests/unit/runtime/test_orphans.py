"""Tests for supervisor.runtime.orphans: which dead children berthd reaps itself."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from supervisor.runtime.orphans import (
    ChildStatus,
    children_of_self,
    orphans,
    parse_status,
    reap_orphans,
)

STATUS = """\
Name:\tcrun
Umask:\t0022
State:\tZ (zombie)
Tgid:\t6626
Pid:\t6626
PPid:\t6533
NSpid:\t6626\t5
"""


def test_parse_status() -> None:
    assert parse_status(6626, STATUS) == ChildStatus(6626, "crun", "Z", (6626, 5))
    alive = parse_status(7, "Name:\tsleep\nState:\tS (sleeping)\n")
    assert alive == ChildStatus(7, "sleep", "S", (7,))
    assert not alive.zombie and not alive.in_child_namespace


def child(pid: int, name: str = "crun", state: str = "Z", inner: int | None = None) -> ChildStatus:
    return ChildStatus(pid, name, state, (pid,) if inner is None else (pid, inner))


@pytest.mark.parametrize(
    ("status", "reaped"),
    [
        (child(10, inner=5), True),  # a failed exec's process in the container
        (child(10, name="sh", inner=5), True),
        (child(10, inner=1), False),  # a container's init: its supervisor reaps it
        (child(10, state="S", inner=5), False),  # alive
        (child(10), True),  # a dead runtime process in berthd's namespace
        (child(10, name="iptables"), False),  # someone else's child (trio reaps it)
    ],
    ids=["exec-leftover", "any-name", "init", "alive", "runtime", "other"],
)
def test_which_children_are_orphans(status: ChildStatus, reaped: bool) -> None:
    found = orphans([status], tracked=set(), runtime_names={"crun"}, runtime_busy=False)
    assert found == ([10] if reaped else [])


def test_tracked_and_busy_are_never_reaped() -> None:
    leftovers = [child(10, inner=5), child(11)]
    assert orphans(leftovers, tracked={10, 11}, runtime_names={"crun"}, runtime_busy=False) == []
    assert orphans(leftovers, tracked=set(), runtime_names={"crun"}, runtime_busy=True) == []


def test_reap_orphans_reaps_a_real_zombie_by_pid() -> None:
    proc = subprocess.Popen(["true"])
    while not os.path.exists(f"/proc/{proc.pid}/status") or "Z" not in _state(proc.pid):
        time.sleep(0.01)
    reaped = reap_orphans(
        tracked=set(),
        runtime_names={"true"},
        runtime_busy=False,
        list_children=lambda: [proc.pid],
    )
    assert reaped == [proc.pid]
    assert not os.path.exists(f"/proc/{proc.pid}")
    proc.returncode = 0  # reaped above; keep Popen from waiting on it


def test_children_of_self_with_and_without_children_lists(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "5"])
    try:
        assert proc.pid in children_of_self()
        # A kernel without CONFIG_PROC_CHILDREN: the parent pid in each /proc/PID/stat.
        fake = tmp_path / "proc"
        (fake / "self" / "task" / "1").mkdir(parents=True)
        for pid, stat in ((10, f"10 (a b) c) S {os.getpid()} 1"), (11, "11 (x) S 1 1")):
            (fake / str(pid)).mkdir()
            (fake / str(pid) / "stat").write_text(stat)
        assert children_of_self(fake) == [10]
    finally:
        proc.kill()
        proc.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line for line in f if line.startswith("State:"))
