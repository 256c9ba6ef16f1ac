"""Reading a container's overlay directories for ``diff`` and ``system df``.

The I/O edge of :mod:`supervisor.containers.changes`: :func:`scan_upper` lists the upper
dir, :class:`Lowers` looks paths up in the image's layers the way overlayfs merges them,
:func:`tree_size` adds up a tree's bytes (Docker's ``SizeRw`` and volume sizes).

Like :mod:`supervisor.images.diff`, the upper-dir walk never follows a symlink: each
directory is opened ``O_NOFOLLOW`` relative to its parent's fd, because a running
container can swap a directory for a link to ``/`` while we walk. The lower layers are
image content berth unpacked (nothing there escapes: ``images/unpack.py``), and a lookup
goes down one component at a time, only into entries it has seen to be real
directories, so it never passes through a symlink either.

Blocking: run these in a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from supervisor.containers.changes import (
    Change,
    LowerEntry,
    Node,
    UpperEntry,
    compute_changes,
)
from supervisor.images.unpack import OPAQUE_XATTR

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _opaque(target: int | str) -> bool:
    try:
        if isinstance(target, int):
            value = os.getxattr(target, OPAQUE_XATTR)
        else:
            value = os.getxattr(target, OPAQUE_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            return False
        raise
    return value == b"y"


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result, int]]:
    """``(path inside, lstat, fd of the directory or -1)`` for every entry below
    ``root``, parents first. An entry removed while we walk is skipped. Each yielded
    directory fd is valid only until the next item."""
    try:
        top = os.open(root, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return  # no upper dir yet (never started), or not a directory
        raise
    stack: list[tuple[int, str, list[str]]] = [(top, "", os.listdir(top))]
    try:
        while stack:
            fd, prefix, names = stack[-1]
            if not names:
                os.close(stack.pop()[0])
                continue
            name = names.pop()
            path = f"{prefix}/{name}"
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                yield path, st, -1
                continue
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    continue  # removed or swapped for a link since listed
                raise
            try:
                children = os.listdir(child)
            except OSError:
                os.close(child)
                raise
            stack.append((child, path, children))
            yield path, st, child
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def scan_upper(upper: Path) -> list[UpperEntry]:
    """Every entry of an overlay upper dir (empty if it does not exist)."""
    out: list[UpperEntry] = []
    for path, st, fd in _walk(upper):
        mode = st.st_mode
        if fd >= 0:
            node, opaque = Node.DIR, _opaque(fd)
        elif stat.S_ISCHR(mode) and st.st_rdev == 0:
            node, opaque = Node.WHITEOUT, False
        else:
            node, opaque = Node.OTHER, False
        out.append(UpperEntry(path, node, opaque, stat.S_IMODE(mode), st.st_uid, st.st_gid))
    return out


class Lowers:
    """The image's layers (top first), looked up as overlayfs merges them: the topmost
    layer with an entry decides; a whiteout hides the layers below; a directory merges
    with directories below it until one is opaque or a non-directory."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self._layers = list(layers)

    def _resolve(self, path: str) -> tuple[os.stat_result, list[Path]] | None:
        """The entry at ``path`` and, for a directory, the layers it merges from."""
        parts = [p for p in path.split("/") if p]
        candidates = self._layers
        found: os.stat_result | None = None
        rel = ""
        for i, part in enumerate(parts):
            rel = f"{rel}/{part}"
            found = None
            merged: list[Path] = []
            for layer in candidates:
                target = f"{layer}{rel}"
                try:
                    st = os.lstat(target)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    break  # whited out from here down
                if not stat.S_ISDIR(st.st_mode):
                    if found is None:
                        found = st
                    break
                if found is None:
                    found = st
                merged.append(layer)
                if _opaque(target):
                    break
            if found is None:
                return None
            if not stat.S_ISDIR(found.st_mode):
                return (found, []) if i == len(parts) - 1 else None
            candidates = merged
        if found is None:
            return None  # the root itself: not asked for
        return found, candidates

    def lookup(self, path: str) -> LowerEntry | None:
        resolved = self._resolve(path)
        if resolved is None:
            return None
        st, _ = resolved
        return LowerEntry(stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def children(self, path: str) -> list[str]:
        """The names in the merged directory at ``path``."""
        resolved = self._resolve(path)
        if resolved is None or not stat.S_ISDIR(resolved[0].st_mode):
            return []
        names: set[str] = set()
        for layer in resolved[1]:
            try:
                names.update(os.listdir(f"{layer}{path}"))
            except OSError:
                continue
        return sorted(n for n in names if self.lookup(f"{path.rstrip('/')}/{n}") is not None)


def container_changes(upper: Path, layers: Sequence[Path]) -> list[Change]:
    """``GET /containers/{id}/changes`` for the upper dir over ``layers`` (top first)."""
    lowers = Lowers(layers)
    return compute_changes(scan_upper(upper), lower=lowers.lookup, lower_children=lowers.children)


def tree_size(root: Path) -> int:
    """Bytes below ``root`` as Docker counts them (moby ``directory.Size``): the sizes of
    everything but directories, each hard-linked inode once; 0 if ``root`` is missing."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for _, st, fd in _walk(root):
        if fd >= 0 or st.st_size == 0:
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1:
            if key in seen:
                continue
            seen.add(key)
        total += st.st_size
    return total
