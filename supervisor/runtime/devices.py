"""The host's device nodes, for ``--privileged`` containers (moby ``HostDevices``) and
``--device`` (moby ``DeviceFromPath``).

A privileged container gets every character and block device of the host's ``/dev``
made in its own ``/dev`` (the runtime creates them; ``linux.devices`` in the spec), and
the devices cgroup allows them all. Pseudo-terminals, shared memory and message queues
are the container's own, so ``/dev/pts``, ``/dev/shm`` and ``/dev/mqueue`` are skipped,
as moby skips them; so is ``/dev/console``, which the runtime sets up itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import attrs

from supervisor.errors import InvalidArgument
from supervisor.runtime.spec import Device

_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


Rule = tuple[str, int, int, str]  # a devices cgroup rule: type, major, minor, access


def requested_devices(
    requests: Sequence[tuple[str, str, str]],
) -> tuple[tuple[Device, ...], tuple[Rule, ...]]:
    """``--device host:container:permissions`` entries as device nodes and cgroup rules;
    a directory on the host brings every device below it.

    Raises:
        InvalidArgument: a host path that is missing or holds no device (Docker's words).
    """
    devices: list[Device] = []
    for host, inside, _ in requests:
        path = Path(os.path.realpath(host))
        if path.is_dir():
            for d in host_devices(path):
                rel = Path(d.path).relative_to("/dev")
                devices.append(attrs.evolve(d, path=str(Path(inside) / rel)))
            continue
        try:
            st = path.stat()
        except OSError as exc:
            raise InvalidArgument(
                f'error gathering device information while adding custom device "{host}": '
                f"{exc.strerror.lower() if exc.strerror else exc}"
            ) from None
        device = _device(path, st, inside)
        if device is None:
            raise InvalidArgument(
                f'error gathering device information while adding custom device "{host}": '
                "not a device node"
            )
        devices.append(device)
    perms = {inside: access for _, inside, access in requests}
    rules = tuple((d.type, d.major, d.minor, _access_for(d.path, perms)) for d in devices)
    return tuple(devices), rules


def _access_for(path: str, perms: dict[str, str]) -> str:
    best = max((p for p in perms if path == p or path.startswith(p.rstrip("/") + "/")), key=len)
    return perms[best]


def _device(path: Path, st: os.stat_result, inside: str) -> Device | None:
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return Device(
        path=inside,
        type=kind,
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


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
            device = _device(path, st, str(Path("/dev") / path.relative_to(root)))
            if device is not None:
                found.append(device)
    return tuple(sorted(found, key=lambda d: d.path))
