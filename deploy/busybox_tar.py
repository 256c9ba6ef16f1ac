"""Build a reproducible busybox rootfs tarball in memory (the base image for tests/quickstart).

Docker Hub is out of reach on the machines berth is tested on, so the ``busybox:latest``
image is made locally from Debian's ``busybox-static``: the static binary, one symlink per
applet (``busybox --list-full``), a minimal ``/etc`` and the usual empty directories.

Nothing is written to disk except the tar itself: every member is a ``tarfile.TarInfo``
built here, never a file copied from a staging rootfs, so a mistake cannot touch the host's
``/etc``. Owners are root, the mtime is fixed and members are sorted, so the same busybox
binary always gives byte-identical tars (and so the same image id after ``docker import``).

Standard library only: this runs before any virtualenv exists (``deploy/mkbusybox``).
"""

from __future__ import annotations

import io
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["MTIME", "BusyboxError", "find_busybox", "write_busybox_tar"]

MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z: fixed so the tar (and the image id) is stable
CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))

DIRECTORIES = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "root": 0o700,
    "home": 0o755,
    "dev": 0o755,
    "proc": 0o755,
    "sys": 0o755,
    "run": 0o755,
    "var": 0o755,
    "var/log": 0o755,
    "tmp": 0o1777,
}

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """\
root:x:0:
daemon:x:1:
www-data:x:33:
nogroup:x:65534:
"""

FILES = {
    "etc/passwd": (PASSWD.encode(), 0o644),
    "etc/group": (GROUP.encode(), 0o644),
    "etc/hostname": (b"", 0o644),
}

_PT_INTERP = 3


class BusyboxError(RuntimeError):
    """The busybox binary is missing, not static, or cannot list its applets."""


def find_busybox() -> Path:
    """Return the first busybox found at /bin/busybox or /usr/bin/busybox."""
    for candidate in CANDIDATES:
        if candidate.is_file():
            return candidate
    raise BusyboxError("no busybox found: apt-get install busybox-static")


def _is_static_elf(binary: bytes) -> bool:
    """True for a 64-bit little-endian ELF with no PT_INTERP (no dynamic loader needed)."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2 or binary[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", binary, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", binary, 0x36)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", binary, phoff + i * phentsize)
        if p_type == _PT_INTERP:
            return False
    return True


def _applets(busybox: Path) -> list[str]:
    try:
        out = subprocess.run(
            [str(busybox), "--list-full"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BusyboxError(f"{busybox} --list-full failed: {exc}") from exc
    return [line.strip().strip("/") for line in out.splitlines() if line.strip()]


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def write_busybox_tar(out: BinaryIO, *, busybox: Path = Path("/bin/busybox")) -> None:
    """Write a busybox rootfs tar (for ``docker import``) to ``out``.

    Args:
        out: where the tar goes; only written to (a pipe is fine).
        busybox: the statically linked busybox binary (Debian's ``busybox-static``).

    Raises:
        BusyboxError: the binary is missing, dynamically linked, or fails to list applets.
    """
    try:
        binary = busybox.read_bytes()
    except OSError as exc:
        raise BusyboxError(
            f"cannot read {busybox}: {exc} (apt-get install busybox-static)"
        ) from exc
    if not _is_static_elf(binary):
        raise BusyboxError(
            f"{busybox} is not a statically linked 64-bit ELF: a container has no libc to "
            "load it with (apt-get install busybox-static)"
        )

    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    for name, mode in DIRECTORIES.items():
        members[name] = (_info(name, tarfile.DIRTYPE, mode), None)
    for name, (content, mode) in FILES.items():
        members[name] = (_info(name, tarfile.REGTYPE, mode), content)
    members["bin/busybox"] = (_info("bin/busybox", tarfile.REGTYPE, 0o755), binary)
    for applet in _applets(busybox):
        parent = applet.rpartition("/")[0]
        # Skip a link that would replace something already there (bin/busybox itself) or
        # whose parent is not one of our directories (a stray path in a future busybox).
        if applet in members or (parent and parent not in DIRECTORIES) or ".." in applet:
            continue
        link = _info(applet, tarfile.SYMTYPE, 0o777)
        link.linkname = "/bin/busybox"
        members[applet] = (link, None)

    # Sorted names put every directory before its children.
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info, data = members[name]
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
