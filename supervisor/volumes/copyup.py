"""Copy-up: fill an empty volume with what the image has at the mount's destination.

Docker copies the image's files into a volume the first time it is mounted empty
(moby ``CopyImagePathContent``), so ``-v data:/var/lib/app`` starts with the image's
``/var/lib/app``. Both sides are hostile ground, so every step works on file
descriptors:

- the source is resolved inside the container's root (symlinks, absolute ones
  included, are followed *within* it, as the runtime does for the mount itself; ``..``
  stops at the root), each component opened with ``O_NOFOLLOW`` relative to its parent;
  nothing read can come from outside the root;
- the target is the volume's ``_data`` directory, opened once; everything is created
  relative to it (``O_CREAT|O_EXCL|O_NOFOLLOW``, ``mkdir`` then ``open`` with
  ``O_NOFOLLOW|O_DIRECTORY``), so a symlink planted by a container sharing the volume
  is never followed: writes stay below the directory berth owns;
- symlinks are copied as links, never followed; regular files, directories, fifos and
  device nodes are copied with owner, mode, times and (best effort) xattrs; sockets are
  skipped; hard links become separate files.

Blocking: call through a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40


class CopyUpError(Exception):
    """The copy could not be done safely or completely."""


def open_dir_in_root(root: Path, path: str) -> int | None:
    """An fd of directory ``path`` as seen with ``root`` as ``/``; None when there is no
    such directory. Symlinks resolve inside ``root`` (like ``RESOLVE_IN_ROOT``)."""
    root_fd = os.open(root, _DIR_FLAGS)
    stack = [root_fd]
    parts = [p for p in path.split("/") if p and p != "."]
    hops = 0
    try:
        while parts:
            part = parts.pop(0)
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise CopyUpError(f"too many levels of symbolic links in {path}")
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            if not stat.S_ISDIR(st.st_mode):
                return None
            stack.append(os.open(part, _DIR_FLAGS, dir_fd=stack[-1]))
        return os.dup(stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def copy_up(root: Path, path: str, volume_data: Path) -> bool:
    """Copy ``path`` of the container root ``root`` into ``volume_data`` if that is empty.

    Returns:
        True if something was copied (the volume was empty and the image has a
        directory there); False otherwise.

    Raises:
        CopyUpError / OSError: the copy failed; what was copied so far stays.
    """
    with _fd(os.open(volume_data, _DIR_FLAGS)) as dst:
        if os.listdir(dst):
            return False  # Docker copies into empty volumes only
        src_fd = open_dir_in_root(root, path)
        if src_fd is None:
            return False
        with _fd(src_fd) as src:
            _copy_dir(src, dst, depth=0)
            _copy_meta(dst, os.fstat(src), src)
    return True


def _copy_dir(src: int, dst: int, *, depth: int) -> None:
    if depth > 256:
        raise CopyUpError("directory tree too deep")
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            with (
                _fd(os.open(name, _DIR_FLAGS, dir_fd=src)) as s,
                _fd(os.open(name, _DIR_FLAGS, dir_fd=dst)) as d,
            ):
                _copy_dir(s, d, depth=depth + 1)
                _copy_meta(d, st, s)
        elif stat.S_ISREG(mode):
            with (
                _fd(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)) as s,
                _fd(
                    os.open(
                        name,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                        0o600,
                        dir_fd=dst,
                    )
                ) as d,
            ):
                _copy_bytes(s, d, st.st_size)
                _copy_meta(d, st, s)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            # mknod's mode is the final one (less the umask); no chmod by name: it
            # would follow a symlink swapped in meanwhile.
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        # sockets: nothing to copy (Docker's copy skips them too)


def _copy_bytes(src: int, dst: int, size: int) -> None:
    remaining = size
    while remaining > 0:
        try:
            n = os.copy_file_range(src, dst, min(remaining, 1 << 30))
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = os.sendfile(dst, src, None, min(remaining, 1 << 30))
        if n == 0:
            break  # the file shrank meanwhile
        remaining -= n


def _copy_meta(dst: int, st: os.stat_result, src: int) -> None:
    """Owner, then mode (chown clears set-id bits), xattrs, then times."""
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):
        for key in os.listxattr(src):
            if key.startswith(("trusted.overlay.", "security.selinux")):
                continue
            with contextlib.suppress(OSError):
                os.setxattr(dst, key, os.getxattr(src, key))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def tree_size(path: Path) -> int:
    """Bytes of the regular files below ``path`` (Docker's ``directory.Size``), never
    following symlinks; 0 when it is gone."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total
