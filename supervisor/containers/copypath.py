"""``docker cp``'s rules as data: container paths, the stat header, mounts, upload names.

Theory of operation
-------------------
``GET/HEAD/PUT /containers/{id}/archive`` name a path inside a container. This module
decides everything about such a path that needs no file system; :mod:`.copy` does the
I/O. The rules are Docker's (moby ``container.ResolvePath``/``StatPath``,
``archive.PreserveTrailingDotOrSeparator``, ``archive.Unpack``):

* A request path is made absolute and cleaned *lexically* before anything is looked up
  (``/a/link/../b`` is ``/a/b``, ``..`` stops at ``/``), keeping a trailing ``/`` or
  ``/.``: those ask for the last element to be resolved too (a symlink to a directory
  then means the directory). Without them, the last element is taken as it is: a
  symlink is reported (and archived) as a symlink.
* The stat header and the archive's top entry are named after the request
  (``filepath.Base``): ``/src`` and ``/src/`` give ``src``, ``/src/.`` gives ``.``
  (entries ``./a``: the directory's content) and ``/`` gives ``/`` (entries ``/bin``...).
* Modes are Go ``os.FileMode`` bits (directory ``1<<31``, symlink ``1<<27``...), times
  RFC 3339 with nanoseconds, as Go's ``time.Time`` marshals them.
* A mount covers a path when its destination is the path or one of its parents; the
  longest destination wins (the innermost mount).
* Upload member names are cleaned and joined to the destination as Docker does: a
  leading ``/`` is dropped (``/x`` lands in ``DEST/x``), ``..`` may climb only as far as
  the destination; a relative symlink target may not climb above it either, and
  hardlink targets name something inside it. What is refused raises InvalidArgument
  with Docker's wording.

Pure: standard library, ``attrs`` and :mod:`supervisor.errors` only.
"""

from __future__ import annotations

import base64
import json
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from supervisor.errors import InvalidArgument, NotFound

__all__ = [
    "STAT_HEADER",
    "ContainerPath",
    "Mount",
    "NoSuchPath",
    "PathStat",
    "check_upload_symlink",
    "covering_mount",
    "format_go_time",
    "go_file_mode",
    "join_lexically",
    "mounts_from_api",
    "parse_container_path",
    "show_path",
    "stat_header",
    "upload_hardlink_parts",
    "upload_member_parts",
    "writable_error",
]

STAT_HEADER: Final = "X-Docker-Container-Path-Stat"

# Go's os.FileMode type bits (io/fs): what Docker's stat header carries in "mode".
GO_MODE_DIR: Final = 1 << 31
GO_MODE_SYMLINK: Final = 1 << 27
GO_MODE_DEVICE: Final = 1 << 26
GO_MODE_NAMED_PIPE: Final = 1 << 25
GO_MODE_SOCKET: Final = 1 << 24
GO_MODE_SETUID: Final = 1 << 23
GO_MODE_SETGID: Final = 1 << 22
GO_MODE_CHAR_DEVICE: Final = 1 << 21
GO_MODE_STICKY: Final = 1 << 20

_GO_TYPES: Final = {
    stat.S_IFDIR: GO_MODE_DIR,
    stat.S_IFLNK: GO_MODE_SYMLINK,
    stat.S_IFBLK: GO_MODE_DEVICE,
    stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
    stat.S_IFIFO: GO_MODE_NAMED_PIPE,
    stat.S_IFSOCK: GO_MODE_SOCKET,
}


class NoSuchPath(NotFound):
    """Docker's ``containerFileNotFound``."""

    def __init__(self, path: str, container: str) -> None:
        super().__init__(f"Could not find the file {path} in container {container}")


# --------------------------------------------------------------------------------------
# Request paths
# --------------------------------------------------------------------------------------


@attrs.frozen
class ContainerPath:
    """A request path, cleaned.

    Attributes:
        parts: the absolute path's components, lexically cleaned (none is empty, ``.``
            or ``..``); ``()`` is the root.
        follow_last: the path ended in ``/`` or ``/.`` (or is the root): its last
            element is resolved like the others and must be a directory.
        name: the stat header's ``name`` and the archive's top entry: ``/`` for the
            root, ``.`` for ``.../.``, else the last component.
    """

    parts: tuple[str, ...]
    follow_last: bool
    name: str


def join_lexically(base: Sequence[str], more: Iterable[str]) -> list[str]:
    """``base`` + ``more`` with ``.`` dropped and ``..`` removing a component (never
    above the root), like Go's ``filepath.Join`` on absolute paths."""
    out = list(base)
    for comp in more:
        if comp in ("", "."):
            continue
        if comp == "..":
            if out:
                out.pop()
            continue
        out.append(comp)
    return out


def parse_container_path(path: str) -> ContainerPath:
    """Clean a request's ``path`` parameter (any string; relative means from ``/``).

    Raises:
        InvalidArgument: the path contains a NUL byte.
    """
    if "\x00" in path:
        raise InvalidArgument(f"invalid path {path!r}")
    parts = tuple(join_lexically((), path.split("/")))
    dot = path == "." or path.endswith("/.")
    slash = path.endswith("/")
    if dot:
        name = "."
    elif not parts:
        name = "/"
    else:
        name = parts[-1]
    return ContainerPath(parts, follow_last=dot or slash or not parts, name=name)


def show_path(parts: Sequence[str]) -> str:
    """The absolute path ``parts`` name, for messages."""
    return "/" + "/".join(parts)


# --------------------------------------------------------------------------------------
# Stat header
# --------------------------------------------------------------------------------------


def go_file_mode(st_mode: int) -> int:
    """A ``stat`` mode as Go's ``os.FileMode`` (permission bits plus type and special
    bits); a regular file is just its permissions."""
    mode = st_mode & 0o777
    mode |= _GO_TYPES.get(stat.S_IFMT(st_mode), 0)
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def format_go_time(ns: int) -> str:
    """``ns`` since the epoch as Go marshals a UTC ``time.Time`` (RFC 3339, nanoseconds
    with trailing zeros dropped): ``2024-01-01T00:00:00Z``, ``...:05.5Z``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


@attrs.frozen
class PathStat:
    """Docker's ``ContainerPathStat``.

    Attributes:
        name: see :attr:`ContainerPath.name`.
        size: ``st_size`` of the entry itself (a symlink's is its target's length).
        mode: Go ``os.FileMode`` bits (:func:`go_file_mode`).
        mtime_ns: modification time.
        link_target: for a symlink, the absolute container path it resolves to (inside
            the container, resolved fully); else empty.
    """

    name: str
    size: int
    mode: int
    mtime_ns: int
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & GO_MODE_DIR)


def stat_header(s: PathStat) -> str:
    """The ``X-Docker-Container-Path-Stat`` value: base64 of the JSON object."""
    doc = {
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": format_go_time(s.mtime_ns),
        "linkTarget": s.link_target,
    }
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(raw.encode("utf-8", "surrogateescape")).decode("ascii")


# --------------------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------------------


@attrs.frozen
class Mount:
    """A host path a container sees at ``destination`` (a volume, a bind, /etc/hosts).

    Attributes:
        destination: the container path's components.
        source: the host path (a directory or a file).
        read_only: mounted read-only.
    """

    destination: tuple[str, ...]
    source: str
    read_only: bool = False


def mounts_from_api(items: Iterable[Mapping[str, object]]) -> list[Mount]:
    """Mounts from inspect's ``Mounts`` (``Source``, ``Destination``, ``RW``).

    A tmpfs has no host side to read (Docker's ``cp`` does not see its content either),
    so entries without a ``Source`` are left out, as are destinations that clean to
    ``/``.
    """
    out: list[Mount] = []
    for item in items:
        source, dest = item.get("Source"), item.get("Destination")
        if item.get("Type") == "tmpfs" or not isinstance(source, str) or not source:
            continue
        if not isinstance(dest, str):
            continue
        parts = tuple(join_lexically((), dest.split("/")))
        if parts:
            out.append(Mount(parts, source, read_only=item.get("RW") is False))
    return out


def covering_mount(parts: Sequence[str], mounts: Iterable[Mount]) -> Mount | None:
    """The innermost mount whose destination is ``parts`` or one of its parents."""
    best: Mount | None = None
    for m in mounts:
        n = len(m.destination)
        if tuple(parts[:n]) == m.destination and (best is None or n > len(best.destination)):
            best = m
    return best


def writable_error(
    parts: Sequence[str], mounts: Iterable[Mount], *, readonly_rootfs: bool
) -> str | None:
    """Why Docker refuses to extract into ``parts`` (its messages), or None.

    Docker checks the destination only: inside a read-only mount, or on a read-only
    root file system outside every mount.
    """
    mount = covering_mount(parts, mounts)
    if mount is not None:
        return "mounted volume is marked read-only" if mount.read_only else None
    return "container rootfs is marked read-only" if readonly_rootfs else None


# --------------------------------------------------------------------------------------
# Upload member names
# --------------------------------------------------------------------------------------


def _clean_relative(name: str) -> list[str]:
    """Go's ``filepath.Clean`` of ``name`` as components; leading ``..`` of a relative
    name are kept (they climb out of wherever it is joined), an absolute name's are
    dropped (the root has no parent)."""
    out: list[str] = []
    absolute = name.startswith("/")
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == ".." and (not out or out[-1] == ".."):
            if not absolute:
                out.append("..")
            continue
        if comp == "..":
            out.pop()
            continue
        out.append(comp)
    return out


def _below(dest: Sequence[str], name: str) -> tuple[str, ...] | None:
    """Components of ``name`` joined to ``dest``, relative to ``dest``; None if outside."""
    if "\x00" in name:
        return None
    joined = join_lexically(dest, _clean_relative(name))
    if tuple(joined[: len(dest)]) != tuple(dest):
        return None
    return tuple(joined[len(dest) :])


def upload_member_parts(name: str, dest: Sequence[str]) -> tuple[str, ...]:
    """Where an uploaded member lands, relative to the extraction directory ``dest``.

    ``()`` is ``dest`` itself (a ``./`` entry, which Docker skips).

    Raises:
        InvalidArgument: the member climbs out of ``dest`` (Docker: ``"../x" is outside
            of "/tmp"``) or its name holds a NUL byte.
    """
    parts = _below(dest, name)
    if parts is None:
        raise InvalidArgument(f'"{name}" is outside of "{show_path(dest)}"')
    return parts


def upload_hardlink_parts(
    parts: Sequence[str], linkname: str, dest: Sequence[str]
) -> tuple[str, ...]:
    """A hardlink member's target, relative to ``dest`` (targets are relative to the
    extraction directory, not to the link).

    Raises:
        InvalidArgument: the target is outside ``dest`` or is ``dest`` itself.
    """
    target = _below(dest, linkname)
    if not target:
        raise InvalidArgument(f'invalid hardlink "{show_path((*dest, *parts))}" -> "{linkname}"')
    return target


def check_upload_symlink(parts: Sequence[str], linkname: str, dest: Sequence[str]) -> None:
    """Refuse a relative symlink target that climbs above ``dest`` (Docker's
    ``breakoutError``); absolute targets are left alone: they are resolved inside the
    container when followed.

    Raises:
        InvalidArgument: ``invalid symlink "/tmp/a" -> "../../x"``.
    """
    if "\x00" in linkname:
        raise InvalidArgument(f'invalid symlink "{show_path((*dest, *parts))}" -> {linkname!r}')
    if linkname.startswith("/"):
        return
    # Judged by where the target ends up, as Docker's check (``../tmp/x`` from ``/tmp``
    # is fine); cleaning never climbs above ``/``, so nothing escapes a root destination.
    joined = join_lexically((*dest, *parts[:-1]), _clean_relative(linkname))
    if tuple(joined[: len(dest)]) != tuple(dest):
        raise InvalidArgument(f'invalid symlink "{show_path((*dest, *parts))}" -> "{linkname}"')
