"""The host's device nodes, for ``--privileged`` containers (moby ``HostDevices``).

A privileged container gets every character and block device of the host's ``/dev``
made in its own ``/dev`` (the runtime creates them; ``linux.devices`` in the spec), and
the devices cgroup allows them all. Pseudo-terminals, shared memory and message queues
are the container's own, so ``/dev/pts``, ``/dev/shm`` and ``/dev/mqueue`` are skipped,
as moby skips them; so is ``/dev/console``, which the runtime sets up itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from supervisor.runtime.spec import Device

_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def host_devices(root: Path = Path("/dev")) -> tuple[Device, ...]:
    """Every device node below ``root`` (symlinks not followed), sorted by path."""
    found: list[Device] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            path = Path(dirpath) / name
            if path == root / "console":
                continue
            try:
                st = path.lstat()
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            found.append(
                Device(
                    path=str(Path("/dev") / path.relative_to(root)),
                    type=kind,
                    major=os.major(st.st_rdev),
                    minor=os.minor(st.st_rdev),
                    file_mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                )
            )
    return tuple(sorted(found, key=lambda d: d.path))
