"""Safe extraction of OCI image layers into an empty directory (a security boundary).

Theory of operation
-------------------
A layer is a tar stream from an untrusted source (a registry, ``docker load``, ``import``).
Extracting it must never create, change or remove anything outside the destination
directory, whatever the stream contains. Docker relies on a chroot for that
(``chrootarchive``); berth relies on file-descriptor-relative system calls instead:

* Member names are normalised by a pure function (:func:`normalise_member_name`): ``./a``
  becomes ``("a",)``; absolute names and any ``..`` component are refused. The result is a
  tuple of components that cannot name anything above the destination.
* Every parent directory is reached from a directory fd of the destination, one component at
  a time, with ``O_DIRECTORY | O_NOFOLLOW``. A symlink met on the way is an error ("escapes
  through a symlink"), even one that would resolve inside the layer: symlinks are stored as
  data, never followed. Missing parents are created (0755, root), as Docker does.
* The last component is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (regular files),
  ``mkdirat``, ``symlinkat``, ``mknodat`` or ``linkat`` without ``AT_SYMLINK_FOLLOW``, all
  relative to the parent's fd. An existing entry is removed first (later members override
  earlier ones) unless both are directories. Metadata is applied through the fd where there
  is one, otherwise with ``follow_symlinks=False``.
* Hardlink targets go through the same normalisation and no-follow walk, so they can only
  name a file already extracted into the destination.
* OCI whiteouts become overlayfs whiteouts (:func:`classify_whiteout` decides, I/O acts):
  ``dir/.wh.name`` -> a 0/0 character device ``dir/name``; ``dir/.wh..wh..opq`` ->
  ``trusted.overlay.opaque=y`` on ``dir``. Other ``.wh..wh.`` names are aufs metadata and
  are skipped. ``trusted.overlay.*`` xattrs carried by the tar itself are dropped: only this
  conversion may set them (a forged ``redirect``/``metacopy`` would steer overlayfs).
* Directory mtimes are applied at the end, deepest first, because creating children changes
  them.

``docker cp`` uploads reuse the same extractor through :func:`extract_tar` with
:class:`ExtractOptions`: no whiteout conversion (``.wh.`` names are ordinary files there),
Docker's ``noOverwriteDirNonDir``, and an ``open_dir`` hook that replaces the no-follow walk
of parent directories (the caller resolves them inside a container root, across mounts).

The pure helpers at the top of this module import nothing but the standard library and
:mod:`supervisor.errors`; the I/O below them is what a worker thread runs
(``trio.to_thread.run_sync``): it never changes process-wide state (no ``chdir``, no
``umask``), so several layers can be unpacked at once.
"""

from __future__ import annotations

import bz2
import enum
import errno
import gzip
import importlib
import io
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from typing import TYPE_CHECKING, BinaryIO, Final, Protocol

import attrs

from supervisor.errors import BerthError, InvalidArgument

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Iterator

    from _typeshed import WriteableBuffer

__all__ = [
    "ExtractOptions",
    "UnpackStats",
    "Whiteout",
    "WhiteoutKind",
    "classify_whiteout",
    "extract_tar",
    "normalise_member_name",
    "open_layer_stream",
    "unpack_layer",
]

WHITEOUT_PREFIX: Final = ".wh."
WHITEOUT_META_PREFIX: Final = ".wh..wh."
WHITEOUT_OPAQUE: Final = ".wh..wh..opq"
OPAQUE_XATTR: Final = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX: Final = "SCHILY.xattr."
_OVERLAY_XATTR_PREFIX: Final = "trusted.overlay."

_CHUNK: Final = 1 << 20
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC: Final = b"BZh"
_XZ_MAGIC: Final = b"\xfd7zXZ\x00"
_MAX_ID: Final = 2**32 - 2  # (uid_t)-1 means "leave unchanged" to chown: not an owner
_MAX_TIME_NS: Final = 2**63 - 1


# --------------------------------------------------------------------------------------
# Pure part: names and whiteouts.
# --------------------------------------------------------------------------------------


def normalise_member_name(name: str) -> tuple[str, ...]:
    """Turn a tar member name into path components that stay inside the layer root.

    ``./a/b``, ``a//b/`` and ``a/./b`` all become ``("a", "b")``; ``.`` and ``./`` become
    ``()`` (the root itself).

    Args:
        name: the member name (or hardlink target) as stored in the tar.

    Returns:
        The components, none of which is empty, ``.``, ``..`` or contains ``/`` or NUL.

    Raises:
        InvalidArgument: the name is empty, absolute, contains a NUL byte or a ``..``
            component.
    """
    if not name or "\x00" in name or name.startswith("/"):
        raise InvalidArgument(f"invalid tar member path: {name!r}")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidArgument(f"invalid tar member path: {name!r}")
    return parts


class WhiteoutKind(enum.StrEnum):
    FILE = "file"  # dir/.wh.name: hide name from the lower layers
    OPAQUE = "opaque"  # dir/.wh..wh..opq: hide everything below dir in the lower layers
    META = "meta"  # other .wh..wh.* names: aufs bookkeeping, skipped


@attrs.frozen
class Whiteout:
    """What an OCI whiteout member asks for.

    Attributes:
        kind: which whiteout this is.
        parent: components of the directory the whiteout lives in (``()`` for the root).
        name: for FILE, the hidden entry's name (a valid single component); else ``""``.
    """

    kind: WhiteoutKind
    parent: tuple[str, ...]
    name: str = ""


def classify_whiteout(parts: tuple[str, ...]) -> Whiteout | None:
    """Say whether normalised member components name an OCI whiteout, and which.

    Args:
        parts: the output of :func:`normalise_member_name`.

    Returns:
        None for an ordinary member, otherwise the whiteout.

    Raises:
        InvalidArgument: ``.wh.`` followed by nothing, ``.`` or ``..`` (hiding ``..`` would
            mean removing the parent directory).
    """
    if not parts or not parts[-1].startswith(WHITEOUT_PREFIX):
        return None
    base, parent = parts[-1], parts[:-1]
    if base == WHITEOUT_OPAQUE:
        return Whiteout(WhiteoutKind.OPAQUE, parent)
    if base.startswith(WHITEOUT_META_PREFIX):
        return Whiteout(WhiteoutKind.META, parent)
    hidden = base[len(WHITEOUT_PREFIX) :]
    if hidden in ("", ".", ".."):
        raise InvalidArgument(f"invalid whiteout: {'/'.join(parts)!r}")
    return Whiteout(WhiteoutKind.FILE, parent, hidden)


@attrs.frozen
class UnpackStats:
    """Figures about one extracted layer.

    Attributes:
        files: tar members applied (every type: files, directories, links, devices,
            whiteouts; aufs metadata and the root entry are not counted).
        bytes: size of the uncompressed tar stream, read to its end (what a DiffID hashes).
        content_bytes: Docker's layer ``Size``: the regular files' sizes (a hardlinked
            file once) plus each symlink's target length, as moby's ``directory.Size``
            sums the lstat sizes.
    """

    files: int
    bytes: int
    content_bytes: int


# --------------------------------------------------------------------------------------
# I/O part: stream readers.
# --------------------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _SourceRaw(io.RawIOBase):
    """Raw reader over a caller's stream, replaying already-sniffed bytes and counting."""

    def __init__(
        self,
        src: _Readable,
        *,
        prefix: bytes = b"",
        errors: tuple[type[BaseException], ...] = (),
        what: str = "",
    ) -> None:
        super().__init__()
        self._src = src
        self._prefix = prefix
        self._errors = errors
        self._what = what
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as raw, raw.cast("B") as view:
            if self._prefix:
                data, self._prefix = self._prefix[: len(view)], self._prefix[len(view) :]
            else:
                data = self._read(len(view))
            view[: len(data)] = data
        self.count += len(data)
        return len(data)

    def _read(self, size: int) -> bytes:
        if not self._errors:
            return self._src.read(size)
        try:
            return self._src.read(size)
        except self._errors as exc:
            raise InvalidArgument(f"corrupt {self._what} layer: {exc}") from exc


def _read_head(src: _Readable, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (pipes, sockets)."""
    head = b""
    while len(head) < size:
        chunk = src.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def open_layer_stream(fileobj: BinaryIO) -> BinaryIO:
    """Return a reader of the tar stream inside a possibly compressed layer.

    The compression is sniffed from the magic bytes, not trusted from a media type:
    gzip (``1f 8b``), zstd (``28 b5 2f fd``; needs the optional ``zstandard`` module),
    bzip2 (``BZh``) and xz (``fd 37 7a 58 5a 00``), as Docker's ``DecompressStream``;
    anything else is passed through as a plain tar.

    Args:
        fileobj: the layer as stored (a blob file or a download stream); it need not be
            seekable.

    Returns:
        A buffered reader of the uncompressed bytes.

    Resource handling:
        Closing the returned reader does not close ``fileobj``; the caller owns it.

    Errors:
        InvalidArgument: zstd without ``zstandard`` installed. Reading the returned stream
        raises InvalidArgument for corrupt or truncated compressed data.
    """
    head = _read_head(fileobj, len(_XZ_MAGIC))
    source = io.BufferedReader(_SourceRaw(fileobj, prefix=head), _CHUNK)
    if head.startswith(_BZIP2_MAGIC):
        bz = bz2.BZ2File(source, mode="rb")
        raw = _SourceRaw(bz, errors=(OSError, EOFError, ValueError), what="bzip2")
        return io.BufferedReader(raw, _CHUNK)
    if head.startswith(_XZ_MAGIC):
        xz = lzma.LZMAFile(source, mode="rb")  # noqa: SIM115 - owned by the returned reader
        raw = _SourceRaw(xz, errors=(lzma.LZMAError, EOFError), what="xz")
        return io.BufferedReader(raw, _CHUNK)
    if head.startswith(_GZIP_MAGIC):
        gz = gzip.GzipFile(fileobj=source, mode="rb")
        raw = _SourceRaw(gz, errors=(gzip.BadGzipFile, EOFError, zlib.error), what="gzip")
        return io.BufferedReader(raw, _CHUNK)
    if head.startswith(_ZSTD_MAGIC):
        try:
            zstd = importlib.import_module("zstandard")
        except ImportError:
            raise InvalidArgument(
                "zstd layers need the 'zstandard' Python module, which is not installed"
            ) from None
        reader: _Readable = zstd.ZstdDecompressor().stream_reader(
            source, read_across_frames=True, closefd=False
        )
        zstd_error: type[BaseException] = zstd.ZstdError
        raw = _SourceRaw(reader, errors=(zstd_error, EOFError), what="zstd")
        return io.BufferedReader(raw, _CHUNK)
    return source


# --------------------------------------------------------------------------------------
# I/O part: extraction.
# --------------------------------------------------------------------------------------

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@attrs.frozen
class ExtractOptions:
    """How :func:`extract_tar` applies a tar; the defaults are layer unpacking's.

    Attributes:
        whiteouts: convert OCI whiteouts to overlay whiteouts (layers) or extract
            ``.wh.`` names as ordinary files (``docker cp``).
        no_overwrite_dir_non_dir: refuse to replace a directory with a non-directory or
            the reverse (Docker's ``noOverwriteDirNonDir``) instead of removing the old one.
        open_dir: ``open_dir(parts, create)`` returns a new fd of the directory at
            ``parts`` below the root (``parts`` is never empty), creating missing ones
            when ``create``; it raises FileNotFoundError when one is missing and not
            ``create``, InvalidArgument when one is not a directory. Without it, parents
            are walked from the root fd without following any symlink.
        prepare: called with each member before it is applied; it may rewrite the
            member's name, link name and owner, return False to skip the member, or
            raise InvalidArgument to refuse it.
        display_root: how messages name the root (``/tmp`` for a ``docker cp`` into
            the container's ``/tmp``).
    """

    whiteouts: bool = True
    no_overwrite_dir_non_dir: bool = False
    open_dir: Callable[[tuple[str, ...], bool], int] | None = None
    prepare: Callable[[tarfile.TarInfo], bool] | None = None
    display_root: str = ""


def extract_tar(fileobj: BinaryIO, root_fd: int, options: ExtractOptions) -> UnpackStats:
    """Apply an uncompressed tar stream below the directory ``root_fd`` (which may hold
    files already: later members replace what is there, directories merge).

    Args:
        fileobj: the tar stream, read to its end.
        root_fd: a directory fd; not closed.
        options: see :class:`ExtractOptions`.

    Returns:
        Counts of what was extracted.

    Errors:
        As :func:`unpack_layer`, plus InvalidArgument from ``options`` (a refused member,
        a directory/non-directory conflict).
    """
    return _extract(fileobj, root_fd, options)


def unpack_layer(fileobj: BinaryIO, dest: pathlib.Path) -> UnpackStats:
    """Extract an uncompressed tar layer into ``dest``, converting OCI whiteouts.

    Args:
        fileobj: the tar stream (see :func:`open_layer_stream`); read to its end, so a
            caller hashing the underlying bytes sees all of them.
        dest: an existing, empty directory (not a symlink).

    Returns:
        Counts of what was extracted.

    Resource handling:
        ``fileobj`` is not closed. On error, ``dest`` is left partly populated: the caller
        removes it (it was empty, so ``shutil.rmtree`` of it is safe).

    Errors:
        InvalidArgument: ``dest`` is not an empty directory; the tar is malformed or
        hostile (escaping path, symlink in a parent, bad hardlink, unsupported type).
        BerthError: the filesystem refused an operation (disk full, xattr refused...).
    """
    root_fd = _open_empty_dest(dest)
    try:
        return _extract(fileobj, root_fd, ExtractOptions())
    finally:
        os.close(root_fd)


def _extract(fileobj: BinaryIO, root_fd: int, options: ExtractOptions) -> UnpackStats:
    source = _SourceRaw(fileobj)
    reader = io.BufferedReader(source, _CHUNK)
    extractor = _Extractor(root_fd, options)
    try:
        with _open_tar(reader) as tar:
            for member in _members(tar):
                if options.prepare is not None and not options.prepare(member):
                    continue
                extractor.apply(tar, member)
        try:
            extractor.finish()
        except OSError as exc:
            raise BerthError(f"unpacking: setting directory times: {exc}") from exc
        while reader.read(_CHUNK):  # trailing zero blocks: count (and hash) all of it
            pass
    finally:
        extractor.close()
    return UnpackStats(
        files=extractor.files, bytes=source.count, content_bytes=extractor.content_bytes
    )


def _open_empty_dest(dest: pathlib.Path) -> int:
    try:
        fd = os.open(dest, _DIR_FLAGS)
    except OSError as exc:
        raise InvalidArgument(f"unpack destination {dest} is not a directory: {exc}") from exc
    if os.listdir(fd):
        os.close(fd)
        raise InvalidArgument(f"unpack destination {dest} is not empty")
    return fd


class _StreamTar(tarfile.TarFile):
    members: list[tarfile.TarInfo]  # set by TarFile.__init__; typeshed leaves it out


def _open_tar(reader: BinaryIO) -> _StreamTar:
    try:
        return _StreamTar.open(fileobj=reader, mode="r|", errors="surrogateescape")
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid tar layer: {exc}") from exc


def _members(tar: _StreamTar) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise InvalidArgument(f"invalid tar layer: {exc}") from exc
        if member is None:
            return
        # Stream mode still appends every TarInfo to tar.members; a layer with a million
        # files would keep them all. Nothing here needs random access, so drop them.
        tar.members.clear()
        yield member


def _ns(seconds: float, what: str, name: str) -> int:
    ns = int(seconds * 1_000_000_000)
    if not -_MAX_TIME_NS <= ns <= _MAX_TIME_NS:
        raise InvalidArgument(f"invalid tar member {name!r}: {what} out of range")
    return ns


def _pax_float(member: tarfile.TarInfo, key: str) -> float | None:
    value = member.pax_headers.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidArgument(f"invalid tar member {member.name!r}: bad {key}") from None


@attrs.frozen
class _Meta:
    """Metadata to apply to one created entry, validated once."""

    uid: int
    gid: int
    mode: int
    times_ns: tuple[int, int]  # (atime, mtime)
    xattrs: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, member: tarfile.TarInfo) -> _Meta:
        name = member.name
        for what, num in (("uid", member.uid), ("gid", member.gid)):
            if not 0 <= num <= _MAX_ID:
                raise InvalidArgument(f"invalid tar member {name!r}: {what} {num}")
        mtime = _ns(member.mtime, "mtime", name)
        atime_s = _pax_float(member, "atime")
        atime = mtime if atime_s is None else _ns(atime_s, "atime", name)
        xattrs = []
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX_PREFIX):
                continue
            attr = key[len(_XATTR_PAX_PREFIX) :]
            if not attr or "\x00" in attr:
                raise InvalidArgument(f"invalid tar member {name!r}: bad xattr {attr!r}")
            if attr.startswith(_OVERLAY_XATTR_PREFIX):
                continue  # only whiteout conversion may set these (module docstring)
            # tarfile decodes PAX values with surrogateescape: this restores the raw bytes.
            xattrs.append((attr, value.encode("utf-8", "surrogateescape")))
        return cls(member.uid, member.gid, member.mode & 0o7777, (atime, mtime), tuple(xattrs))


def _setxattrs(target: int | str, xattrs: tuple[tuple[str, bytes], ...]) -> None:
    """Set xattrs on an fd, or on a ``/proc/self/fd/N/name`` path without following it."""
    for attr, value in xattrs:
        try:
            if isinstance(target, int):
                os.setxattr(target, attr, value)
            else:
                os.setxattr(target, attr, value, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENOTSUP:  # the filesystem has no xattrs: Docker skips too
                raise


class _Extractor:
    """Applies tar members below a root directory fd. Not thread-safe; one per layer."""

    def __init__(self, root_fd: int, options: ExtractOptions) -> None:
        self._root = root_fd
        self._options = options
        # One-entry cache of the last parent directory: layers list a directory's files
        # together, so this saves a walk per member. It is dropped whenever a directory at
        # or above it is removed, so it always names what is at that path now.
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dir_times: dict[tuple[str, ...], tuple[int, int]] = {}
        self.files = 0
        self.content_bytes = 0

    def close(self) -> None:
        self._drop_cache()

    # -- walking ------------------------------------------------------------------------

    def _open_dir(self, parent: int, comp: str, *, create: bool, prefix: str, name: str) -> int:
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            if stat.S_ISLNK(os.stat(comp, dir_fd=parent, follow_symlinks=False).st_mode):
                raise InvalidArgument(
                    f"invalid tar member path: {name!r} escapes through a symlink ({prefix})"
                ) from None
            raise InvalidArgument(
                f"invalid tar member path: {name!r}: {prefix} is not a directory"
            ) from None
        os.mkdir(comp, 0o755, dir_fd=parent)
        fd = os.open(comp, _DIR_FLAGS, dir_fd=parent)
        os.fchmod(fd, 0o755)  # mkdir applied the umask
        return fd

    def _walk(self, dir_parts: tuple[str, ...], *, create: bool, name: str) -> int:
        """Open ``dir_parts`` below the root without following symlinks; caller closes.

        Raises FileNotFoundError for a missing component when ``create`` is false.
        """
        if self._options.open_dir is not None and dir_parts:
            return self._options.open_dir(dir_parts, create)
        fd = os.dup(self._root)
        try:
            for i, comp in enumerate(dir_parts):
                prefix = "/".join(dir_parts[: i + 1])
                child = self._open_dir(fd, comp, create=create, prefix=prefix, name=name)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, parts: tuple[str, ...], name: str) -> int:
        """The fd of the directory holding ``parts``, created if missing; owned by the cache."""
        dir_parts = parts[:-1]
        if self._cached is not None and self._cached[0] == dir_parts:
            return self._cached[1]
        fd = self._walk(dir_parts, create=True, name=name)
        self._drop_cache()
        self._cached = (dir_parts, fd)
        return fd

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _make_room(self, parent: int, parts: tuple[str, ...], *, keep_dir: bool) -> bool:
        """Remove whatever is at ``parts`` unless both it and the new entry are directories.

        Returns True if an existing directory was kept.
        """
        base = parts[-1]
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        is_dir = stat.S_ISDIR(st.st_mode)
        if self._options.no_overwrite_dir_non_dir and is_dir != keep_dir:
            here, root = self._display(parts), self._display(())
            if is_dir:
                raise InvalidArgument(
                    f'cannot overwrite directory "{here}" with non-directory "{root}"'
                )
            raise InvalidArgument(
                f'cannot overwrite non-directory "{here}" with directory "{root}"'
            )
        if is_dir and keep_dir:
            return True
        # The cached parent may have been reached through what goes now (a directory, or
        # a symlink an ``open_dir`` hook followed).
        if self._cached is not None and self._cached[0][: len(parts)] == parts:
            self._drop_cache()
        if not is_dir:
            os.unlink(base, dir_fd=parent)
            return False
        self._dir_times = {p: t for p, t in self._dir_times.items() if p[: len(parts)] != parts}
        shutil.rmtree(base, dir_fd=parent)  # fd-based: never follows symlinks inside
        return False

    def _display(self, parts: tuple[str, ...]) -> str:
        root = self._options.display_root
        if not parts:
            return root or "."
        return f"{root.rstrip('/')}/{'/'.join(parts)}" if root else "/".join(parts)

    # -- members --------------------------------------------------------------------------

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Create one member. Raises InvalidArgument or BerthError (wrapping OSError)."""
        try:
            self._apply(tar, member)
        except OSError as exc:
            raise BerthError(f"unpacking {member.name!r}: {exc}") from exc

    def _apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        parts = normalise_member_name(name)
        if not parts:
            if not member.isdir():
                raise InvalidArgument(f"invalid tar member path: {name!r}")
            self._root_entry(member)
            return
        whiteout = classify_whiteout(parts) if self._options.whiteouts else None
        if whiteout is not None:
            self._whiteout(whiteout, member)
            return
        meta = _Meta.of(member)
        if member.isreg():
            self._regular(tar, member, parts, meta)
        elif member.isdir():
            self._directory(parts, meta, name)
        elif member.issym():
            self._symlink(member, parts, meta)
        elif member.islnk():
            self._hardlink(member, parts)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._node(member, parts, meta)
        else:
            raise InvalidArgument(f"invalid tar member {name!r}: unsupported type {member.type!r}")
        self.files += 1

    def _root_entry(self, member: tarfile.TarInfo) -> None:
        meta = _Meta.of(member)
        os.fchown(self._root, meta.uid, meta.gid)
        os.fchmod(self._root, meta.mode)
        _setxattrs(self._root, meta.xattrs)
        self._dir_times[()] = meta.times_ns

    def _regular(
        self,
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        parts: tuple[str, ...],
        meta: _Meta,
    ) -> None:
        parent = self._parent(parts, member.name)
        self._make_room(parent, parts, keep_dir=False)
        src = tar.extractfile(member)
        if src is None:  # pragma: no cover - isreg() members always have a reader
            raise InvalidArgument(f"invalid tar member {member.name!r}")
        fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            while chunk := _read_member(src, member.name):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            # chown clears setuid/setgid and security.capability, so: owner, mode, xattrs.
            os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode)
            _setxattrs(fd, meta.xattrs)
            os.utime(fd, ns=meta.times_ns)
        finally:
            os.close(fd)
        self.content_bytes += member.size

    def _directory(self, parts: tuple[str, ...], meta: _Meta, name: str) -> None:
        parent = self._parent(parts, name)
        base = parts[-1]
        if not self._make_room(parent, parts, keep_dir=True):
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode)
            _setxattrs(fd, meta.xattrs)
        finally:
            os.close(fd)
        self._dir_times[parts] = meta.times_ns

    def _symlink(self, member: tarfile.TarInfo, parts: tuple[str, ...], meta: _Meta) -> None:
        target = member.linkname
        if not target or "\x00" in target:
            raise InvalidArgument(f"invalid tar member {member.name!r}: bad symlink target")
        parent = self._parent(parts, member.name)
        base = parts[-1]
        self._make_room(parent, parts, keep_dir=False)
        # Stored verbatim, absolute or not: a symlink is harmless until followed, and
        # nothing here follows one.
        os.symlink(target, base, dir_fd=parent)
        os.chown(base, meta.uid, meta.gid, dir_fd=parent, follow_symlinks=False)
        _setxattrs(f"/proc/self/fd/{parent}/{base}", meta.xattrs)
        os.utime(base, ns=meta.times_ns, dir_fd=parent, follow_symlinks=False)
        self.content_bytes += len(os.fsencode(target))  # its lstat size, as dockerd counts

    def _hardlink(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        name = member.name
        target = normalise_member_name(member.linkname)
        # A target at or below the link's own path would be removed to make room for it.
        if not target or target[: len(parts)] == parts:
            raise InvalidArgument(f"invalid tar member {name!r}: bad hardlink target")
        try:
            target_parent = self._walk(target[:-1], create=False, name=member.linkname)
        except FileNotFoundError:
            raise InvalidArgument(
                f"invalid tar member {name!r}: hardlink target {member.linkname!r} not found"
            ) from None
        try:
            try:
                st = os.stat(target[-1], dir_fd=target_parent, follow_symlinks=False)
            except FileNotFoundError:
                raise InvalidArgument(
                    f"invalid tar member {name!r}: hardlink target {member.linkname!r} not found"
                ) from None
            if stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(
                    f"invalid tar member {name!r}: hardlink to a directory {member.linkname!r}"
                )
            parent = self._parent(parts, name)
            self._make_room(parent, parts, keep_dir=False)
            # The link shares the target's inode and so its metadata: nothing to apply.
            os.link(
                target[-1],
                parts[-1],
                src_dir_fd=target_parent,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            os.close(target_parent)

    def _node(self, member: tarfile.TarInfo, parts: tuple[str, ...], meta: _Meta) -> None:
        if member.isfifo():
            kind, device = stat.S_IFIFO, 0
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            if not (0 <= member.devmajor <= _MAX_ID and 0 <= member.devminor <= _MAX_ID):
                raise InvalidArgument(f"invalid tar member {member.name!r}: bad device number")
            device = os.makedev(member.devmajor, member.devminor)
        parent = self._parent(parts, member.name)
        base = parts[-1]
        self._make_room(parent, parts, keep_dir=False)
        os.mknod(base, kind | 0o600, device, dir_fd=parent)
        # No fd to fchmod through: opening a device runs its driver and a fifo blocks.
        # fchmodat(AT_SYMLINK_NOFOLLOW) on the node just made under a no-follow parent fd.
        os.chown(base, meta.uid, meta.gid, dir_fd=parent, follow_symlinks=False)
        os.chmod(base, meta.mode, dir_fd=parent, follow_symlinks=False)
        _setxattrs(f"/proc/self/fd/{parent}/{base}", meta.xattrs)
        os.utime(base, ns=meta.times_ns, dir_fd=parent, follow_symlinks=False)

    def _whiteout(self, whiteout: Whiteout, member: tarfile.TarInfo) -> None:
        if whiteout.kind is WhiteoutKind.META:
            return
        if whiteout.kind is WhiteoutKind.OPAQUE:
            fd = self._walk(whiteout.parent, create=True, name=member.name)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
        else:
            hidden = (*whiteout.parent, whiteout.name)
            parent = self._parent(hidden, member.name)
            self._make_room(parent, hidden, keep_dir=False)
            # overlayfs: a character device 0/0 in an upper/lower layer hides the name below.
            os.mknod(whiteout.name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
            uid, gid = member.uid, member.gid
            if 0 <= uid <= _MAX_ID and 0 <= gid <= _MAX_ID:
                os.chown(whiteout.name, uid, gid, dir_fd=parent, follow_symlinks=False)
        self.files += 1

    def finish(self) -> None:
        """Apply directory times, deepest first, now that nothing changes them any more."""
        self._drop_cache()
        for parts, times in sorted(self._dir_times.items(), key=lambda kv: -len(kv[0])):
            if not parts:
                os.utime(self._root, ns=times)
                continue
            try:
                parent = self._walk(parts[:-1], create=False, name="/".join(parts))
            except (FileNotFoundError, InvalidArgument):
                continue  # replaced by a later member
            try:
                st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.utime(parts[-1], ns=times, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                pass
            finally:
                os.close(parent)


def _read_member(src: _Readable, name: str) -> bytes:
    try:
        return src.read(_CHUNK)
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid tar member {name!r}: {exc}") from exc
