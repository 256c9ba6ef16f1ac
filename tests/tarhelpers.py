"""Tar archives built member by member, for tests of everything that reads tars (layer
unpacking, ``cp`` in both directions, image archives).

Two ways to describe members:

* entries: ``(TarInfo, data or None)`` pairs from :func:`file`, :func:`directory`,
  :func:`symlink`, :func:`hardlink` and :func:`node`, which take any ``TarInfo``
  attribute as a keyword (``mode=0o640, uid=7, mtime=...``); names are kept verbatim,
  hostile ones included;
* specs: ``(name, tar type, data for a file / link target for a link)`` triples, the
  short form for :func:`spec_tar`.

Every member gets mode 0755 (directories) or 0644 and the time :data:`MTIME` unless
told otherwise. Archives are uncompressed PAX tars.
"""

from __future__ import annotations

import io
import tarfile

#: A member's time unless a test gives another (2001-09-09, far from "now").
MTIME = 1_000_000_000

Entry = tuple[tarfile.TarInfo, bytes | None]
Spec = tuple[str, bytes, str | bytes]


def tar_info(name: str, kind: bytes, **attrs: object) -> tarfile.TarInfo:
    """A member header of type ``kind`` with the defaults above, then ``attrs``."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def file(name: str, data: bytes = b"", **attrs: object) -> Entry:
    info = tar_info(name, tarfile.REGTYPE, **attrs)
    info.size = len(data)
    return info, data


def directory(name: str, **attrs: object) -> Entry:
    return tar_info(name, tarfile.DIRTYPE, **attrs), None


def symlink(name: str, target: str, **attrs: object) -> Entry:
    return tar_info(name, tarfile.SYMTYPE, linkname=target, **attrs), None


def hardlink(name: str, target: str, **attrs: object) -> Entry:
    return tar_info(name, tarfile.LNKTYPE, linkname=target, **attrs), None


def node(name: str, kind: bytes, major: int = 0, minor: int = 0, **attrs: object) -> Entry:
    """A device (``CHRTYPE``, ``BLKTYPE``) or a FIFO."""
    return tar_info(name, kind, devmajor=major, devminor=minor, **attrs), None


def make_tar(*entries: Entry) -> bytes:
    """An uncompressed tar of exactly these members, in this order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def spec_entry(name: str, kind: bytes, extra: str | bytes = b"", *, mode: int = 0o644) -> Entry:
    """One spec as an entry; ``mode`` applies to every member but directories."""
    if kind == tarfile.REGTYPE:
        assert isinstance(extra, bytes), f"{name}: a file's data is bytes"
        return file(name, extra, mode=mode)
    if kind == tarfile.DIRTYPE:
        return directory(name)
    linkname = extra if isinstance(extra, str) else ""
    return tar_info(name, kind, linkname=linkname, mode=mode), None


def spec_tar(*specs: Spec, mode: int = 0o644) -> bytes:
    """:func:`make_tar` of ``(name, tar type, data or link target)`` triples."""
    return make_tar(*(spec_entry(name, kind, extra, mode=mode) for name, kind, extra in specs))


def tar_names(data: bytes) -> list[str]:
    """Member names in archive order, directories with a trailing ``/``."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]
