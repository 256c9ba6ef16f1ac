"""cgroup paths, OOM notification and counters, for cgroup v1 and v2.

berth puts every container at ``berth/<id>`` under each controller (v1) or under the
unified hierarchy (v2); the OCI runtime creates and removes the directories, berth only
reads counters and registers for OOM notifications.

OOM (ARCHITECTURE.md §3): the notification is a hint — v1's eventfd also fires when the
cgroup is removed — so the ``oom_kill`` counter read after the exit decides
``OOMKilled``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import attrs

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "berth"


@attrs.frozen
class CgroupLayout:
    v2: bool
    root: Path = CGROUP_ROOT

    @classmethod
    def probe(cls, root: Path = CGROUP_ROOT) -> CgroupLayout:
        return cls(v2=(root / "cgroup.controllers").exists(), root=root)

    def runtime_path(self, cid: str) -> str:
        """The ``linux.cgroupsPath`` to give the runtime (cgroupfs driver)."""
        return f"/{PARENT}/{cid}"

    def dir(self, controller: str, cid: str) -> Path:
        if self.v2:
            return self.root / PARENT / cid
        return self.root / controller / PARENT / cid

    @property
    def swap_accounting(self) -> bool:
        if self.v2:
            return True
        return (self.root / "memory" / "memory.memsw.limit_in_bytes").exists()

    def oom_kills(self, cid: str) -> int:
        """The cgroup's ``oom_kill`` counter (0 when unreadable)."""
        d = self.dir("memory", cid)
        name = "memory.events" if self.v2 else "memory.oom_control"
        try:
            text = (d / name).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def register_oom_eventfd(self, cid: str) -> int | None:
        """v1: an eventfd that becomes readable on OOM (or removal). None on v2/failure.

        Resource handling: the caller owns and closes the returned fd.
        """
        if self.v2:
            return None
        d = self.dir("memory", cid)
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            ofd = os.open(d / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with open(d / "cgroup.event_control", "w") as ctl:
                    ctl.write(f"{efd} {ofd}")
            finally:
                os.close(ofd)
        except OSError:
            os.close(efd)
            return None
        return efd

    def remove(self, cid: str) -> None:
        """Remove the container's cgroup directories the runtime left behind, if any."""
        controllers = [""] if self.v2 else [p.name for p in self.root.iterdir() if p.is_dir()]
        for c in controllers:
            d = self.dir(c, cid) if not self.v2 else self.root / PARENT / cid
            with contextlib.suppress(OSError):
                d.rmdir()

    def remove_parent(self) -> None:
        """Remove the (empty) ``berth`` parents at daemon shutdown."""
        parents = (
            [self.root / PARENT]
            if self.v2
            else [p / PARENT for p in self.root.iterdir() if p.is_dir()]
        )
        for d in parents:
            with contextlib.suppress(OSError):
                d.rmdir()

    # -- counters for stats and top (readers only: the parsing is in containers/stats.py) --

    def stats_files(self, cid: str) -> dict[str, str] | None:
        """The text of the counter files ``stats`` reads, by file name; files a
        controller does not have are left out. None when the container's cgroup is gone
        (it exited meanwhile).

        Plain ``os`` calls on string paths: ``pathlib`` costs more than the reads here,
        and ``stats`` for many containers does this once a second each.
        """
        wanted = _STATS_FILES_V2 if self.v2 else _STATS_FILES_V1
        out: dict[str, str] = {}
        dirs: dict[str, str] = {}
        for controller, name in wanted:
            base = dirs.get(controller)
            if base is None:
                base = dirs[controller] = str(self.dir(controller, cid))
            text = read_small(f"{base}/{name}")
            if text is not None:
                out[name] = text
        usage = "memory.current" if self.v2 else "memory.usage_in_bytes"
        return out if usage in out else None

    def pids(self, cid: str) -> list[int]:
        """Every process in the container's cgroup (and any cgroups below it)."""
        controller = (
            ""
            if self.v2
            else next(
                (c for c in ("pids", "memory", "cpu", "freezer") if self.dir(c, cid).is_dir()), ""
            )
        )
        if not self.v2 and not controller:
            return []
        found: set[int] = set()
        stack = [self.dir(controller, cid)]
        while stack:
            d = stack.pop()
            try:
                text = (d / "cgroup.procs").read_text()
                stack.extend(p for p in d.iterdir() if p.is_dir())
            except OSError:
                continue  # removed while we walked: its processes are gone too
            found.update(int(line) for line in text.split() if line.isdigit())
        return sorted(found)


def read_small(path: str) -> str | None:
    """A small procfs/cgroupfs file's text; None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


_STATS_FILES_V1 = (
    ("cpuacct", "cpuacct.usage"),
    ("cpuacct", "cpuacct.stat"),
    ("cpuacct", "cpuacct.usage_percpu"),
    ("cpu", "cpu.stat"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.max_usage_in_bytes"),
    ("memory", "memory.failcnt"),
    ("memory", "memory.stat"),
    ("pids", "pids.current"),
    ("pids", "pids.max"),
    ("blkio", "blkio.throttle.io_service_bytes"),
    ("blkio", "blkio.throttle.io_serviced"),
)
_STATS_FILES_V2 = tuple(
    ("", name)
    for name in (
        "cpu.stat",
        "memory.current",
        "memory.max",
        "memory.stat",
        "pids.current",
        "pids.max",
        "io.stat",
    )
)
