"""Zombies an OCI runtime leaves behind with berthd, the child subreaper.

When ``crun exec`` fails (command not found, capset refused...), the process it forked
into the container's pid namespace dies before berthd ever learns its pid, and crun has
already exited: the dead process is re-parented to berthd and stays a zombie. A zombie
inside a container's pid namespace is worse than a leak: when the container's init
dies, the kernel waits for every process of the namespace to be reaped, so ``stop`` and
``rm -f`` would hang for ever.

berthd never reaps with ``waitpid(-1)`` (trio reaps its own children by pid, and the
supervisors reap containers through pidfds). Instead :func:`reap_orphans` looks at
berthd's children and reaps, by pid, only zombies that nobody else will: dead processes
in a container's pid namespace that are neither its init nor a tracked exec, and dead
runtime processes in berthd's own namespace that no runtime call is waiting for (their
pids are tracked too: runtime/spawn.py). It does nothing while an exec launch or a
``list`` command is under way: a fresh zombie may be an exec whose pid berthd has not
read yet, or trio's to reap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable
from pathlib import Path

import attrs
import structlog

log = structlog.get_logger()


@attrs.frozen
class ChildStatus:
    """What /proc/PID/status says about one child."""

    pid: int
    name: str
    state: str
    nspids: tuple[int, ...]

    @property
    def zombie(self) -> bool:
        return self.state == "Z"

    @property
    def in_child_namespace(self) -> bool:
        return len(self.nspids) > 1


def parse_status(pid: int, text: str) -> ChildStatus:
    """Parse the fields berthd needs from a /proc/PID/status text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    nspids = tuple(int(p) for p in fields.get("NSpid", "").split() if p.isdecimal())
    return ChildStatus(
        pid=pid,
        name=fields.get("Name", ""),
        state=fields.get("State", "?")[:1],
        nspids=nspids or (pid,),
    )


def orphans(
    children: Iterable[ChildStatus],
    *,
    tracked: Container[int],
    runtime_names: Container[str],
    runtime_busy: bool,
) -> list[int]:
    """The pids among ``children`` that berthd should reap itself (pure)."""
    if runtime_busy:
        return []
    found = []
    for child in children:
        if not child.zombie or child.pid in tracked:
            continue
        if child.in_child_namespace:
            if child.nspids[-1] != 1:  # a container's init is its supervisor's to reap
                found.append(child.pid)
        elif child.name in runtime_names:
            found.append(child.pid)
    return found


def children_of_self(proc: Path = Path("/proc")) -> list[int]:
    """Every child of this process: each thread's ``children`` list, or where the
    kernel lacks those (CONFIG_PROC_CHILDREN) every process whose parent is this one."""
    pids: set[int] = set()
    try:
        tasks = list((proc / "self" / "task").iterdir())
    except OSError:
        tasks = []
    listed = False
    for task in tasks:
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
            listed = True
        except (OSError, ValueError):
            continue
    if not listed:
        pids = set(_children_by_parent(proc, os.getpid()))
    return sorted(pids)


def _children_by_parent(proc: Path, parent: int) -> list[int]:
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdecimal():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


def read_child(pid: int) -> ChildStatus | None:
    try:
        return parse_status(pid, Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def reap_orphans(
    *,
    tracked: Container[int],
    runtime_names: Container[str],
    runtime_busy: bool,
    list_children: Callable[[], list[int]] = children_of_self,
) -> list[int]:
    """Reap the orphaned zombies (see the module docstring); returns their pids."""
    statuses = [s for s in map(read_child, list_children()) if s is not None]
    reaped = []
    for pid in orphans(
        statuses, tracked=tracked, runtime_names=runtime_names, runtime_busy=runtime_busy
    ):
        try:
            result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            continue
        if result is not None:
            reaped.append(pid)
    if reaped:
        log.info("runtime.orphans_reaped", pids=reaped)
    return reaped
