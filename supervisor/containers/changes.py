"""``diff``: a container's filesystem changes from its overlay upper dir. Pure.

Theory of operation
-------------------
Everything a container changed is in its overlay upper directory; the image's layers
below it are untouched. :mod:`supervisor.containers.overlay` walks the upper dir into
:class:`UpperEntry` values and answers what the lower layers hold at a path (with
overlay's own merge rules); :func:`compute_changes` decides, as ``GET
/containers/{id}/changes`` reports them (Docker's ``Kind``: 0 modified, 1 added, 2
deleted):

* a whiteout (a 0/0 character device) is a deleted path;
* a file, link or device is *added* when the lower layers have nothing at its path and
  *modified* otherwise;
* a directory the lower layers do not have as a directory is added; one they do have is
  reported modified when it is opaque (``trusted.overlay.opaque=y``: deleted and made
  again — the lower children it hides are reported deleted), when its owner or mode
  changed, or when anything below it is reported (the parents of a change are changed:
  Docker's output lists ``C /etc`` above ``A /etc/new``). A directory copied up only for
  the way down to another entry, with nothing reported below it, is not a change.
* Docker keeps the mount points it makes for every container (``/proc``, ``/sys``,
  ``/dev``, ``/etc/hosts``...) in an init layer under the container's own, so they never
  show in ``docker diff``. berth has no init layer — the runtime makes those mount
  points in the upper dir — so :data:`INIT_FILES` are skipped and :data:`INIT_DIRS`
  count as present, unchanged directories of the lower layers.

The result is sorted by path components (a directory before its contents), the order of
Docker's walk.

Imports: standard library and attrs only.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

import attrs


class Kind(enum.IntEnum):
    """Docker's ``ChangeType``."""

    MODIFIED = 0
    ADDED = 1
    DELETED = 2


class Node(enum.Enum):
    DIR = "dir"
    OTHER = "other"  # a file, symlink, device, fifo or socket
    WHITEOUT = "whiteout"


@attrs.frozen
class UpperEntry:
    path: str  # absolute inside the container: "/etc/passwd"
    node: Node
    opaque: bool = False
    mode: int = 0  # permission bits (stat.S_IMODE)
    uid: int = 0
    gid: int = 0


@attrs.frozen
class LowerEntry:
    is_dir: bool
    mode: int = 0
    uid: int = 0
    gid: int = 0


@attrs.frozen
class Change:
    path: str
    kind: Kind

    def to_api(self) -> dict[str, Any]:
        return {"Path": self.path, "Kind": int(self.kind)}


# Docker's init layer (moby daemon/initlayer): mount points every container gets.
INIT_FILES = frozenset(
    {"/.dockerenv", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/mtab", "/dev/console"}
)
INIT_DIRS = frozenset({"/dev", "/dev/pts", "/dev/shm", "/proc", "/sys", "/etc"})

LowerLookup = Callable[[str], LowerEntry | None]
LowerChildren = Callable[[str], Iterable[str]]


def _parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _child(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def sort_key(path: str) -> tuple[bytes, ...]:
    """Walk order: component by component, each in byte order."""
    return tuple(part.encode("utf-8", "surrogateescape") for part in path.split("/"))


def compute_changes(
    entries: Iterable[UpperEntry], *, lower: LowerLookup, lower_children: LowerChildren
) -> list[Change]:
    """The changes of an upper dir.

    Args:
        entries: every entry below the upper dir (any order).
        lower: what the image's layers hold at a path (merged as overlay merges
            them), None for nothing.
        lower_children: the names in the image's (merged) directory at a path.
    """
    upper = {e.path: e for e in entries if e.path not in INIT_FILES}
    found: dict[str, Kind] = {}
    for e in upper.values():
        if e.node is Node.WHITEOUT:
            found[e.path] = Kind.DELETED
            continue
        below = LowerEntry(True, e.mode, e.uid, e.gid) if e.path in INIT_DIRS else lower(e.path)
        if e.node is Node.OTHER:
            found[e.path] = Kind.ADDED if below is None else Kind.MODIFIED
            continue
        if below is None or not below.is_dir:
            found[e.path] = Kind.ADDED
            continue
        if e.opaque:
            found[e.path] = Kind.MODIFIED
            for name in lower_children(e.path):
                hidden = _child(e.path, name)
                if hidden not in upper:
                    found[hidden] = Kind.DELETED
        elif (e.mode, e.uid, e.gid) != (below.mode, below.uid, below.gid):
            found[e.path] = Kind.MODIFIED
    for path in list(found):
        parent = _parent(path)
        while parent != "/" and parent not in found:
            found[parent] = Kind.MODIFIED
            parent = _parent(parent)
    return [Change(p, found[p]) for p in sorted(found, key=sort_key)]
