"""A container's overlay upper directory → an OCI layer tar (``commit``, ``push``), and the
hashing and gzip helpers that turn a layer tar into a registry blob.

Theory of operation
-------------------
This is :mod:`supervisor.images.unpack` run backwards (ARCHITECTURE.md §4). The upper
directory of an overlay mount holds exactly what a container changed; written out as a tar
with OCI whiteouts, it is the layer that ``docker commit`` appends to the image:

* The walk is **deterministic**: each directory's entries in byte order of their names,
  depth first, a directory's entry before its contents (Go's ``filepath.Walk`` order, as
  moby's ``archive.TarWithOptions`` writes); no root entry; integer-second mtimes, no atime
  or ctime; numeric owners with empty user/group names. The same tree gives the same bytes,
  hence the same DiffID, whatever the locale, the current time or the order of readdir.
* The walk **never follows a symlink**: every directory is opened with ``O_DIRECTORY |
  O_NOFOLLOW`` relative to its parent's fd, every file with ``O_NOFOLLOW | O_NONBLOCK`` and
  checked to be the regular file that was listed. A running container can swap a directory
  for a symlink to ``/`` while we walk; that must not put the host's files in the image.
* Overlay whiteouts become OCI whiteouts (moby's ``overlayWhiteoutConverter``): a 0/0
  character device ``x`` → an empty regular file ``.wh.x`` with mode 0; a directory with
  ``trusted.overlay.opaque=y`` → its entry followed by an empty ``dir/.wh..wh..opq``.
* Metadata kept: owner, mode including setuid/setgid/sticky, mtime, symlink targets as
  stored, device numbers, fifos, and xattrs as ``SCHILY.xattr.*`` PAX records (raw bytes),
  except ``trusted.overlay.*`` (overlayfs bookkeeping; only the whiteout conversion speaks
  for it) and ``security.selinux`` (a label of this host, not of the image; Docker and
  containerd do not archive it either). Sockets are skipped, as Docker does.
* Hardlinks: a non-directory with ``st_nlink > 1`` is written in full the first time its
  ``(st_dev, st_ino)`` is met and as a tar hardlink to that name afterwards. Whiteouts are
  exempt: since Linux 5.8 overlayfs makes them as links to one shared 0/0 inode.
* An upper entry carrying ``trusted.overlay.metacopy`` (its data lives in a lower layer)
  or ``trusted.overlay.redirect`` (a renamed directory) cannot be expressed as a plain diff
  of the upper dir: it is refused. berth mounts overlay with ``metacopy=off,redirect_dir=off``.

The tar is written by hand (``TarInfo.tobuf`` for each header, then the data and its
padding, then two zero blocks with no padding to a 10 KiB record, as Go's ``archive/tar``
does) so that every byte passes through one :class:`DigestWriter`: the DiffID and size come
out of the same pass that writes the layer.

This module does I/O; run it in a worker thread (``trio.to_thread.run_sync``). It changes
no process-wide state.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
import zlib
from typing import TYPE_CHECKING, BinaryIO, Final

import attrs

from supervisor.errors import BerthError, InvalidArgument
from supervisor.images.unpack import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DigestWriter",
    "LayerStats",
    "compress_gzip",
    "tee_digest",
    "write_layer",
]

_CHUNK: Final = 1 << 20
_BLOCK: Final = tarfile.BLOCKSIZE
_XATTR_PAX_PREFIX: Final = "SCHILY.xattr."
_OVERLAY_XATTR_PREFIX: Final = "trusted.overlay."
_SKIPPED_XATTRS: Final = frozenset({"security.selinux"})
_UNDIFFABLE_XATTRS: Final = ("trusted.overlay.metacopy", "trusted.overlay.redirect")
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@attrs.frozen
class LayerStats:
    """What :func:`write_layer` wrote.

    Attributes:
        files: tar members written (files, directories, links, devices, whiteouts and
            opaque markers).
        size: bytes of tar written, trailer included.
        diff_id: ``sha256:<hex>`` of those bytes (the image config's ``rootfs.diff_ids``).
    """

    files: int
    size: int
    diff_id: str


class DigestWriter:
    """A write-only stream that hashes (sha256) and counts what passes through it.

    Args:
        inner: where to forward the bytes; None to only hash and count.

    Resource handling:
        Never closes ``inner``.
    """

    def __init__(self, inner: BinaryIO | None = None) -> None:
        self._inner = inner
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Forward all of ``data`` (looping over short writes); return its length."""
        view = memoryview(data).cast("B")
        size = len(view)
        self._sha.update(view)
        if self._inner is not None:
            while view:  # a raw (unbuffered) file may write short
                view = view[self._inner.write(view) :]
        self.size += size
        return size

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of everything written so far."""
        return "sha256:" + self._sha.hexdigest()


def tee_digest(src: BinaryIO, dst: BinaryIO | None) -> tuple[str, int]:
    """Copy ``src`` to its end into ``dst`` (None: only read), hashing on the way.

    Returns:
        ``("sha256:<hex>", size)`` of the bytes copied.

    Resource handling:
        Neither stream is closed.
    """
    sink = DigestWriter(dst)
    while chunk := src.read(_CHUNK):
        sink.write(chunk)
    return sink.digest, sink.size


def compress_gzip(src: BinaryIO, dst: BinaryIO, *, level: int = 1) -> tuple[str, int]:
    """Gzip ``src`` (read to its end) into ``dst``; return the digest and size of the output.

    Level 1 by default: pushing must not be CPU-bound on the compressor, and registries
    store whatever they are given (the digest is of the compressed bytes). The gzip header
    carries no name and mtime 0, so the same input and level give the same blob.

    Args:
        src: the uncompressed layer tar.
        dst: where the ``application/vnd.oci.image.layer.v1.tar+gzip`` blob goes.
        level: zlib level, 0-9.

    Returns:
        ``("sha256:<hex>", size)`` of the compressed bytes.

    Resource handling:
        Neither stream is closed.

    Errors:
        InvalidArgument: ``level`` out of range.
    """
    if not 0 <= level <= 9:
        raise InvalidArgument(f"gzip level must be 0-9, not {level}")
    comp = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    sink = DigestWriter(dst)
    while chunk := src.read(_CHUNK):
        if out := comp.compress(chunk):
            sink.write(out)
    sink.write(comp.flush())
    return sink.digest, sink.size


# --------------------------------------------------------------------------------------
# The layer writer.
# --------------------------------------------------------------------------------------


def write_layer(upper: Path, out: BinaryIO) -> LayerStats:
    """Write the tree below ``upper`` to ``out`` as an OCI layer tar with OCI whiteouts.

    Args:
        upper: an overlay upper directory (not a symlink); the container should be stopped
            or paused, or the layer is whatever the walk happened to see.
        out: where the uncompressed tar goes.

    Returns:
        Member count, size and DiffID of what was written.

    Resource handling:
        ``out`` is not closed. On error it holds a partial tar: the caller discards it.

    Errors:
        InvalidArgument: ``upper`` is a symlink or not a directory.
        BerthError: reading the tree failed, a file changed size while being archived, or
        an entry uses overlay metacopy/redirect (not expressible as a diff).
    """
    try:
        st = os.lstat(upper)
    except OSError as exc:
        raise InvalidArgument(f"layer source {upper}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise InvalidArgument(f"layer source {upper} is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"layer source {upper} is not a directory")
    try:
        root = os.open(upper, _DIR_FLAGS)
    except OSError as exc:
        raise InvalidArgument(f"layer source {upper}: {exc.strerror}") from exc
    writer = _LayerWriter(DigestWriter(out))
    try:
        writer.walk(root)
    except OSError as exc:
        raise BerthError(f"writing layer from {upper}: {writer.current!r}: {exc}") from exc
    finally:
        os.close(root)
    return writer.finish()


@attrs.define
class _Frame:
    """One directory being walked: its fd, its member-name prefix, its remaining names."""

    fd: int
    prefix: str
    names: list[str]
    index: int = 0


def _sorted_names(fd: int) -> list[str]:
    return sorted(os.listdir(fd), key=os.fsencode)


class _LayerWriter:
    def __init__(self, sink: DigestWriter) -> None:
        self._sink = sink
        self._links: dict[tuple[int, int], str] = {}
        self._buf = bytearray(_CHUNK)
        self.files = 0
        self.current = ""  # the member being written, for error messages

    def walk(self, root: int) -> None:
        """Write every entry below ``root`` (an fd this does not close), depth first.

        An explicit stack rather than recursion: an upper dir can nest deeper than Python's
        recursion limit. Each level holds one fd.
        """
        stack = [_Frame(os.dup(root), "", _sorted_names(root))]
        try:
            while stack:
                frame = stack[-1]
                if frame.index == len(frame.names):
                    os.close(stack.pop().fd)
                    continue
                name = frame.names[frame.index]
                frame.index += 1
                child = self._entry(frame.fd, name, frame.prefix + name)
                if child is not None:
                    stack.append(child)
        finally:
            for frame in stack:
                os.close(frame.fd)

    def finish(self) -> LayerStats:
        self._sink.write(bytes(2 * _BLOCK))
        return LayerStats(files=self.files, size=self._sink.size, diff_id=self._sink.digest)

    # -- one entry ------------------------------------------------------------------------

    def _entry(self, parent: int, name: str, path: str) -> _Frame | None:
        """Write the entry ``name`` of directory ``parent``; a directory to descend into
        comes back as a frame (its fd is then owned by the caller's stack)."""
        self.current = path
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None  # removed since listed (a running container): as Docker, skip it
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            return self._directory(parent, name, path)
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            self._whiteout(st, path)
            return None
        if stat.S_ISSOCK(mode) or not (
            stat.S_ISREG(mode)
            or stat.S_ISLNK(mode)
            or stat.S_ISCHR(mode)
            or stat.S_ISBLK(mode)
            or stat.S_ISFIFO(mode)
        ):
            return None
        if st.st_nlink > 1:
            first = self._links.get((st.st_dev, st.st_ino))
            if first is not None:
                info = _info(path, tarfile.LNKTYPE, st)
                info.linkname = first
                self._header(info)
                return None
        if stat.S_ISREG(mode):
            written = self._regular(parent, name, path, st)
        else:
            written = self._special(parent, name, path, st)
        if written and st.st_nlink > 1:
            self._links[(st.st_dev, st.st_ino)] = path
        return None

    def _directory(self, parent: int, name: str, path: str) -> _Frame | None:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a non-directory
                raise BerthError(f"{path!r} changed while being archived") from None
            raise
        try:
            st = os.fstat(fd)
            xattrs = _xattrs(fd, path)
            opaque = xattrs.pop(OPAQUE_XATTR, None) == b"y"
            info = _info(path, tarfile.DIRTYPE, st)
            _set_xattrs(info, xattrs)
            self._header(info)
            if opaque:
                marker = _info(f"{path}/{WHITEOUT_OPAQUE}", tarfile.REGTYPE, st)
                marker.mode = stat.S_IMODE(st.st_mode) & 0o777
                self._header(marker)
            names = _sorted_names(fd)
        except BaseException:
            os.close(fd)
            raise
        return _Frame(fd, path + "/", names)

    def _whiteout(self, st: os.stat_result, path: str) -> None:
        head, _, base = path.rpartition("/")
        info = _info(
            f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base,
            tarfile.REGTYPE,
            st,
        )
        info.mode = 0
        self._header(info)

    def _regular(self, parent: int, name: str, path: str, st: os.stat_result) -> bool:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BerthError(f"{path!r} changed while being archived") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise BerthError(f"{path!r} changed while being archived")
            info = _info(path, tarfile.REGTYPE, st)
            info.size = st.st_size
            _set_xattrs(info, _xattrs(fd, path))
            self._header(info)
            self._copy(fd, st.st_size, path)
        finally:
            os.close(fd)
        return True

    def _copy(self, fd: int, size: int, path: str) -> None:
        buf = self._buf
        view = memoryview(buf)
        left = size
        while left:
            n = os.readv(fd, [view[: min(left, len(buf))]])
            if n == 0:
                raise BerthError(f"{path!r} shrank while being archived")
            self._sink.write(view[:n])
            left -= n
        if os.read(fd, 1):
            raise BerthError(f"{path!r} grew while being archived")
        if pad := -size % _BLOCK:
            self._sink.write(bytes(pad))

    def _special(self, parent: int, name: str, path: str, st: os.stat_result) -> bool:
        # No fd for these: opening a device runs its driver, a fifo blocks, and O_PATH fds
        # take no xattr calls. /proc/self/fd/N/name with follow_symlinks=False reaches the
        # entry itself through the parent we hold open.
        proc = f"/proc/self/fd/{parent}/{name}"
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            try:
                target = os.readlink(name, dir_fd=parent)
            except FileNotFoundError:
                return False
            info = _info(path, tarfile.SYMTYPE, st)
            info.linkname = target
        else:
            kind = (
                tarfile.FIFOTYPE
                if stat.S_ISFIFO(mode)
                else tarfile.CHRTYPE
                if stat.S_ISCHR(mode)
                else tarfile.BLKTYPE
            )
            info = _info(path, kind, st)
            if kind != tarfile.FIFOTYPE:
                info.devmajor = os.major(st.st_rdev)
                info.devminor = os.minor(st.st_rdev)
        try:
            _set_xattrs(info, _xattrs(proc, path))
        except FileNotFoundError:
            return False
        self._header(info)
        return True

    def _header(self, info: tarfile.TarInfo) -> None:
        self._sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.files += 1


def _info(path: str, kind: bytes, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = st.st_uid
    info.gid = st.st_gid
    info.uname = info.gname = ""
    info.mtime = st.st_mtime_ns // 1_000_000_000
    return info


def _xattrs(target: int | str, path: str) -> dict[str, bytes]:
    """The xattrs to archive, by name; ``target`` is an fd or a path not to follow."""
    try:
        if isinstance(target, int):
            names = os.listxattr(target)
        else:
            names = os.listxattr(target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENOTSUP:
            return {}
        raise
    out: dict[str, bytes] = {}
    for name in sorted(names):
        if name in _UNDIFFABLE_XATTRS:
            raise BerthError(
                f"{path!r} carries {name}: overlay metacopy/redirect_dir upper dirs cannot"
                " be archived as a layer (mount with metacopy=off,redirect_dir=off)"
            )
        if name in _SKIPPED_XATTRS or (
            name.startswith(_OVERLAY_XATTR_PREFIX) and name != OPAQUE_XATTR
        ):
            continue
        try:
            if isinstance(target, int):
                out[name] = os.getxattr(target, name)
            else:
                out[name] = os.getxattr(target, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENODATA:  # removed since listed
                raise
    return out


def _set_xattrs(info: tarfile.TarInfo, xattrs: dict[str, bytes]) -> None:
    # The opaque marker is the caller's business; never archive it as an xattr.
    xattrs.pop(OPAQUE_XATTR, None)
    # tarfile writes PAX values as UTF-8, switching the whole header to hdrcharset=BINARY
    # and the raw bytes when a value is not valid UTF-8: surrogateescape round-trips them.
    info.pax_headers = {
        _XATTR_PAX_PREFIX + name: value.decode("utf-8", "surrogateescape")
        for name, value in sorted(xattrs.items())
    }
