"""Container root filesystems: overlay mounts and safe reads inside a root.

Resource handling: :func:`mount_overlay` leaves a mount that :func:`unmount` removes;
the container manager pairs them (and the daemon's shutdown and crash recovery sweep
the exec root for leftovers).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Sequence
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2


def mount_overlay(lowers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of ``lowers`` (top layer FIRST) with ``upper``/``work`` on ``target``."""
    if not lowers:
        raise ValueError("an overlay needs at least one lower layer")
    options = f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work}"
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Lazily unmount ``target``; a target that is not mounted is fine."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def mounts_under(prefix: Path) -> list[Path]:
    """Mount points at or below ``prefix`` (deepest first), from /proc/self/mountinfo."""
    found: list[Path] = []
    text = Path("/proc/self/mountinfo").read_text()
    for line in text.splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(prefix) or point.startswith(str(prefix) + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def read_in_root(root: Path, path: str, *, limit: int = 1 << 20) -> bytes | None:
    """Read ``path`` as the container would see it at ``root``, never leaving ``root``.

    Symlinks are resolved inside the root (an absolute target restarts at ``root``, ``..``
    stops at it), like ``openat2(RESOLVE_IN_ROOT)``. Returns None when there is no such
    regular file.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            return None
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        del st
        resolved.append(part)
    full = root.joinpath(*resolved)
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)
