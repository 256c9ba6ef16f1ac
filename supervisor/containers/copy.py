"""``docker cp``'s I/O: paths resolved inside a container, tar streams out and in.

Theory of operation
-------------------
A running container owns its files: while we read or write them it can swap any
directory for a symlink to ``/``. So nothing here ever hands a path string to the
kernel below the container root. :class:`ContainerFS` walks a container path one
component at a time from a directory fd of the root (``openat`` relative to the previous
directory, ``O_NOFOLLOW``), the way ``openat2(RESOLVE_IN_ROOT)`` would:

* a symlink met on the way is read (``readlinkat``) and its target is pushed back onto
  the components still to walk; an absolute target restarts from the root fd, ``..``
  pops back to the parent directory fd but never above the root. At most 40 links are
  followed (Linux's limit), so loops end with ELOOP.
* when the walk reaches a mount's destination (a volume, a bind, the generated
  ``/etc/hosts``...), it continues from an fd of the mount's host source instead of the
  directory the root file system has there: the longest destination wins because the
  walk meets it last. A ``..`` from a mount's top returns to the directory that holds
  the mount point, as in the container.
* the last component is looked up with ``fstatat(AT_SYMLINK_NOFOLLOW)`` and reported as
  it is (a symlink stays a symlink) unless the request asks for it to be followed.

Reads and writes then go through fds of what the walk found: the tar writer lists
directories through their fds and opens each entry relative to its parent with
``O_NOFOLLOW``; the extractor (:func:`supervisor.images.unpack.extract_tar`) is given an
``open_dir`` hook that resolves each member's parent directory the same way (following
symlinks *inside* the root as Docker's chrooted extraction does, so a tar that makes
``a -> /etc`` and then writes ``a/passwd`` writes the container's ``/etc/passwd``, never
the host's). The rules without I/O (path cleaning, names, modes, read-only checks) live in
:mod:`supervisor.containers.copypath`.

Blocking: :class:`ContainerFS` and :class:`Source` run in worker threads; the async
functions at the bottom are the bridges (tar out through a pipe to the HTTP response,
the request body through a pipe into the extracting thread). Nothing buffers more than
a pipe's worth of data or one directory's listing.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import stat
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

import attrs
import outcome
import trio

from supervisor.containers.copypath import (
    ContainerPath,
    Mount,
    NoSuchPath,
    PathStat,
    check_upload_symlink,
    go_file_mode,
    join_lexically,
    show_path,
    upload_hardlink_parts,
    upload_member_parts,
    writable_error,
)
from supervisor.errors import BerthError, InvalidArgument
from supervisor.images.unpack import ExtractOptions, UnpackStats, extract_tar, open_layer_stream
from supervisor.threadpipe import pipe_from_thread

__all__ = [
    "ContainerFS",
    "ExtractTarget",
    "Source",
    "extract_from_body",
    "stream_source",
]

T = TypeVar("T")

MAX_SYMLINKS: Final = 40  # Linux's MAXSYMLINKS: ELOOP after that many
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK: Final = 1 << 16
_BLOCK: Final = tarfile.BLOCKSIZE
_CAPABILITY_XATTR: Final = "security.capability"


@attrs.define
class _Found:
    """What a walk found: the entry ``name`` in the directory ``dir_fd`` (``"."``: the
    directory itself). Owns ``dir_fd``.

    Attributes:
        parts: the entry's container path, symlinks resolved.
        st: its lstat, or None when the last component does not exist.
    """

    parts: tuple[str, ...]
    dir_fd: int
    name: str
    st: os.stat_result | None

    def close(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1


def _open_source(source: str) -> tuple[int, str]:
    """An fd and entry name for a mount's host source: ``(fd, ".")`` for a directory,
    ``(parent fd, base name)`` for a file. Host paths are trusted: the kernel followed
    their symlinks when it mounted them, and so do we."""
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_PATH)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            return os.open(".", _DIR_FLAGS, dir_fd=fd), "."
    finally:
        os.close(fd)
    real = os.path.realpath(source)
    parent, base = os.path.split(real)
    return os.open(parent or "/", _DIR_FLAGS & ~os.O_NOFOLLOW), base


class ContainerFS:
    """A container's file tree as its processes see it: ``rootfs`` plus ``mounts``.

    Args:
        rootfs: the mounted root file system (``ContainerManager.mounted_rootfs``).
        mounts: the container's mounts with a host side.
        container: the container as the client named it (for Docker's messages).
        readonly_rootfs: ``HostConfig.ReadonlyRootfs``: writes outside every mount are
            refused.

    Resource handling: every method opens and closes its own fds, except that
    :meth:`open_source` and :meth:`open_target` return objects owning some (close them).
    """

    def __init__(
        self,
        rootfs: Path,
        mounts: Sequence[Mount],
        *,
        container: str,
        readonly_rootfs: bool = False,
    ) -> None:
        self.rootfs = rootfs
        self.mounts = tuple(mounts)
        self.container = container
        self.readonly_rootfs = readonly_rootfs
        self._by_dest = {m.destination: m for m in self.mounts}
        children: dict[tuple[str, ...], set[str]] = {}
        for m in self.mounts:
            children.setdefault(m.destination[:-1], set()).add(m.destination[-1])
        self._mount_children = children

    # -- walking ------------------------------------------------------------------------

    def _walk(
        self,
        parts: Sequence[str],
        *,
        follow_last: bool,
        create: bool = False,
        lenient: bool = False,
    ) -> _Found:
        """Resolve ``parts`` inside the root (see the module docstring).

        With ``create``, missing components are made as directories (0755, as Docker's
        extraction makes parents), each after checking the directory it goes into may be
        written to. With ``lenient``, a missing or non-directory component ends the walk:
        the rest is joined to the path as written and ``st`` is None (Docker's
        ``FollowSymlinkInScope``, which a symlink's ``linkTarget`` comes from).

        Raises:
            FileNotFoundError: a component before the last is missing (without
                ``create``); the last one missing gives ``st=None`` instead.
            NotADirectoryError: a component before the last is not a directory.
            OSError(ELOOP): too many symlinks.
            InvalidArgument: ``create`` in a read-only place.
        """
        todo = [p for p in reversed(parts) if p not in ("", ".")]
        names: list[str] = []
        fds = [os.open(self.rootfs, _DIR_FLAGS)]
        hops = 0
        try:
            while todo:
                comp = todo.pop()
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if names:
                        names.pop()
                        os.close(fds.pop())
                    continue
                last = not todo
                here = (*names, comp)
                mount = self._by_dest.get(here)
                if mount is not None:
                    fd, name = _open_source(mount.source)
                    if last:
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        return _Found(here, fd, name, st)
                    if name != ".":
                        os.close(fd)
                        raise NotADirectoryError(errno.ENOTDIR, "not a directory", show_path(here))
                    names.append(comp)
                    fds.append(fd)
                    continue
                try:
                    st = os.stat(comp, dir_fd=fds[-1], follow_symlinks=False)
                except FileNotFoundError:
                    if lenient:
                        rest = join_lexically(names, [comp, *reversed(todo)])
                        return _Found(tuple(rest), os.dup(fds[-1]), comp, None)
                    if last and not create:
                        return _Found(here, os.dup(fds[-1]), comp, None)
                    if not create:
                        raise
                    self._check_writable(names)
                    with contextlib.suppress(FileExistsError):  # made meanwhile: fine
                        os.mkdir(comp, 0o755, dir_fd=fds[-1])
                    st = os.stat(comp, dir_fd=fds[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links")
                    target = os.readlink(comp, dir_fd=fds[-1])
                    if target.startswith("/"):
                        for fd in fds[1:]:
                            os.close(fd)
                        del fds[1:], names[:]
                    todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                    continue
                if last:
                    return _Found(here, os.dup(fds[-1]), comp, st)
                if not stat.S_ISDIR(st.st_mode):
                    if lenient:
                        rest = join_lexically(names, [comp, *reversed(todo)])
                        return _Found(tuple(rest), os.dup(fds[-1]), comp, None)
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", show_path(here))
                fds.append(os.open(comp, _DIR_FLAGS, dir_fd=fds[-1]))
                names.append(comp)
            # Nothing left: the walk ended on a directory (the root, ``..``, a link to one).
            return _Found(tuple(names), os.dup(fds[-1]), ".", os.fstat(fds[-1]))
        finally:
            for fd in fds:
                os.close(fd)

    def _link_target(self, parts: Sequence[str]) -> str:
        """Where the symlink at ``parts`` leads, resolved inside the root ("" for a loop)."""
        try:
            found = self._walk(parts, follow_last=True, lenient=True)
        except OSError:
            return ""
        found.close()
        return show_path(found.parts)

    def _check_writable(self, parts: Sequence[str]) -> None:
        problem = writable_error(parts, self.mounts, readonly_rootfs=self.readonly_rootfs)
        if problem is not None:
            raise InvalidArgument(problem)

    def _walk_for(self, parts: Sequence[str], *, follow_last: bool, shown: str) -> _Found:
        """:meth:`_walk` with Docker's errors for a request about ``shown``."""
        try:
            return self._walk(parts, follow_last=follow_last)
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchPath(shown, self.container) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidArgument(f"{shown}: too many levels of symbolic links") from None
            raise BerthError(f"{shown}: {exc.strerror}") from exc

    def _find(self, path: ContainerPath, shown: str) -> _Found:
        """Walk to ``path`` for a request; Docker's errors for what is not there."""
        found = self._walk_for(path.parts, follow_last=path.follow_last, shown=shown)
        if found.st is None:
            found.close()
            raise NoSuchPath(shown, self.container)
        if path.follow_last and not stat.S_ISDIR(found.st.st_mode):
            found.close()
            raise InvalidArgument(f"{shown}: not a directory")
        return found

    # -- reading ------------------------------------------------------------------------

    def stat_path(self, path: ContainerPath, *, shown: str) -> PathStat:
        """``HEAD /containers/{id}/archive``: what ``path`` is.

        Args:
            path: the cleaned request path.
            shown: the path as the client wrote it (for messages).

        Errors:
            NoSuchPath (404); InvalidArgument: a trailing ``/`` on a non-directory, a
            symlink loop.
        """
        found = self._find(path, shown)
        try:
            return self._stat_of(path, found)
        finally:
            found.close()

    def _stat_of(self, path: ContainerPath, found: _Found) -> PathStat:
        st = found.st
        assert st is not None  # _find checked
        link = ""
        if stat.S_ISLNK(st.st_mode):
            link = self._link_target(path.parts)
        return PathStat(path.name, st.st_size, go_file_mode(st.st_mode), st.st_mtime_ns, link)

    def open_source(self, path: ContainerPath, *, shown: str) -> Source:
        """``GET /containers/{id}/archive``: find ``path`` and keep hold of it.

        Returns:
            The entry with its stat; :meth:`Source.write_tar` archives it.

        Errors: as :meth:`stat_path`.
        """
        found = self._find(path, shown)
        try:
            return Source(self, found, self._stat_of(path, found))
        except BaseException:
            found.close()
            raise

    def read_file(self, path: str, *, limit: int = 1 << 20) -> bytes | None:
        """A regular file's first ``limit`` bytes, or None (``/etc/passwd`` for
        ``copyUIDGID``)."""
        try:
            found = self._walk(tuple(join_lexically((), path.split("/"))), follow_last=True)
        except OSError:
            return None
        try:
            if found.st is None or not stat.S_ISREG(found.st.st_mode):
                return None
            fd = os.open(found.name, _READ_FLAGS, dir_fd=found.dir_fd)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                return os.read(fd, limit)
            finally:
                os.close(fd)
        except OSError:
            return None
        finally:
            found.close()

    # -- writing ------------------------------------------------------------------------

    def open_target(self, path: ContainerPath, *, shown: str) -> ExtractTarget:
        """``PUT /containers/{id}/archive``: the directory to extract into.

        The last element is followed (Docker: extracting "to a symlink that points to a
        directory" extracts into the directory).

        Errors:
            NoSuchPath (404); InvalidArgument (400): not a directory ("extraction point
            is not a directory"), read-only volume or root file system.
        """
        found = self._walk_for(path.parts, follow_last=True, shown=shown)
        try:
            if found.st is None:
                raise NoSuchPath(shown, self.container)
            if not stat.S_ISDIR(found.st.st_mode):
                raise InvalidArgument("extraction point is not a directory")
            self._check_writable(found.parts)
            fd = os.open(found.name, _DIR_FLAGS, dir_fd=found.dir_fd)
        finally:
            found.close()
        return ExtractTarget(self, found.parts, fd)

    def _open_dir_below(self, base: tuple[str, ...], parts: tuple[str, ...], create: bool) -> int:
        """``ExtractOptions.open_dir`` for an extraction into ``base``."""
        try:
            found = self._walk((*base, *parts), follow_last=True, create=create)
        except NotADirectoryError:
            raise InvalidArgument(
                f"invalid tar member path: {'/'.join(parts)!r}: not a directory"
            ) from None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise InvalidArgument(
                f"invalid tar member path: {'/'.join(parts)!r}: too many levels of symbolic links"
            ) from None
        try:
            if found.st is None:
                raise FileNotFoundError(errno.ENOENT, "no such directory", "/".join(parts))
            if not stat.S_ISDIR(found.st.st_mode):
                raise InvalidArgument(
                    f"invalid tar member path: {'/'.join(parts)!r}: not a directory"
                )
            if create:
                self._check_writable(found.parts)
            return os.open(found.name, _DIR_FLAGS, dir_fd=found.dir_fd)
        finally:
            found.close()


@attrs.define
class ExtractTarget:
    """A directory uploads are extracted into. Owns ``fd``."""

    fs: ContainerFS
    parts: tuple[str, ...]
    fd: int

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def extract(
        self,
        fileobj: BinaryIO,
        *,
        no_overwrite_dir_non_dir: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> UnpackStats:
        """Extract an uploaded tar (plain, gzip, bzip2, xz or zstd) here, as Docker's
        ``archive.Untar``: later members replace what is there, directories merge, a
        ``./`` member is skipped (Docker leaves an existing destination's owner and mode
        alone), ``.wh.`` names are plain files.

        Args:
            fileobj: the upload, read to its end.
            no_overwrite_dir_non_dir: Docker's ``noOverwriteDirNonDir``.
            owner: ``(uid, gid)`` for every member (``copyUIDGID``); None keeps the tar's.

        Errors:
            InvalidArgument (400): a member climbs out, a bad symlink or hardlink target,
            a member replacing a mount point, a read-only place, a corrupt tar.
            BerthError (500): the file system refused a change.
        """
        options = ExtractOptions(
            whiteouts=False,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            open_dir=functools.partial(self.fs._open_dir_below, self.parts),
            prepare=functools.partial(self._prepare, owner=owner),
            display_root=show_path(self.parts),
        )
        with open_layer_stream(fileobj) as stream:
            if isinstance(stream, io.BufferedReader) and not stream.peek(1):
                return UnpackStats(files=0, bytes=0, content_bytes=0)  # Docker: nothing to do
            return extract_tar(stream, self.fd, options)

    def _prepare(self, member: tarfile.TarInfo, *, owner: tuple[int, int] | None) -> bool:
        """Rewrite a member's names as Docker's ``Unpack`` reads them; refuse escapes;
        skip the destination's own entry (``./``), as Docker's ``Unpack`` does."""
        parts = upload_member_parts(member.name, self.parts)
        if not parts:
            return False
        if member.issym():
            check_upload_symlink(parts, member.linkname, self.parts)
        elif member.islnk():
            member.linkname = "/".join(upload_hardlink_parts(parts, member.linkname, self.parts))
        if not member.isdir():
            where = (*self.parts, *parts)
            for m in self.fs.mounts:
                if m.destination[: len(where)] == where:
                    raise InvalidArgument(
                        f"cannot replace mount point {show_path(m.destination)} "
                        f"with {member.name!r}"
                    )
        member.name = "/".join(parts)
        if owner is not None:
            member.uid, member.gid = owner
        return True


# --------------------------------------------------------------------------------------
# The tar writer
# --------------------------------------------------------------------------------------


@attrs.define
class Source:
    """An entry found for ``GET .../archive``. Owns the walk's fd."""

    fs: ContainerFS
    found: _Found
    stat: PathStat

    def close(self) -> None:
        self.found.close()

    def write_tar(self, out: BinaryIO) -> None:
        """Write the entry (a directory: with everything below it, crossing into the
        mounts there) as a tar stream, Docker's naming: entries start with the request's
        name (``src``, ``src/a``; ``.``, ``./a``; ``/``, ``/bin``).

        Nothing is followed: symlinks are archived as symlinks; a file that changes
        size while read is cut or padded to the size in its header.
        """
        writer = _TarWriter(out, self.fs)
        found = self.found
        assert found.st is not None
        top = self.stat.name
        writer.entry(found.dir_fd, found.name, found.st, top)
        if stat.S_ISDIR(found.st.st_mode):
            fd = os.open(found.name, _DIR_FLAGS, dir_fd=found.dir_fd)
            writer.tree(fd, found.parts, top)
        writer.close()


def _child_name(top: str, child: str) -> str:
    return f"{top.rstrip('/')}/{child}"


class _TarWriter:
    """Tar headers and data written straight to ``out`` (no ``TarFile``: it would keep
    every member in memory)."""

    def __init__(self, out: BinaryIO, fs: ContainerFS) -> None:
        self._out = out
        self._fs = fs
        self._links: dict[tuple[int, int], str] = {}

    def _header(self, info: tarfile.TarInfo) -> None:
        self._out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def entry(self, dir_fd: int, name: str, st: os.stat_result, arcname: str) -> None:
        """Archive one entry, ``name`` in ``dir_fd``, as ``arcname``."""
        info = tarfile.TarInfo(arcname)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime_ns // 1_000_000_000
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFREG:
            self._regular(dir_fd, name, st, info)
            return
        if fmt == stat.S_IFDIR:
            info.type = tarfile.DIRTYPE
        elif fmt == stat.S_IFLNK:
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dir_fd)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            info.type = tarfile.CHRTYPE if fmt == stat.S_IFCHR else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif fmt == stat.S_IFIFO:
            info.type = tarfile.FIFOTYPE
        else:
            return  # a socket: tar has no type for it (Docker skips them too)
        self._header(info)

    def _regular(self, dir_fd: int, name: str, st: os.stat_result, info: tarfile.TarInfo) -> None:
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key)
            if first is not None:
                info.type, info.linkname = tarfile.LNKTYPE, first
                self._header(info)
                return
            self._links[key] = info.name
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except (FileNotFoundError, OSError) as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
                return  # gone or replaced while we walked: as if listed a moment later
            raise
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                return
            info.size = fst.st_size
            with contextlib.suppress(OSError):
                cap = os.getxattr(fd, _CAPABILITY_XATTR)
                info.pax_headers = {
                    "SCHILY.xattr." + _CAPABILITY_XATTR: cap.decode("utf-8", "surrogateescape")
                }
            self._header(info)
            self._copy(fd, info.size)
        finally:
            os.close(fd)

    def _copy(self, fd: int, size: int) -> None:
        left = size
        while left:
            chunk = os.read(fd, min(_CHUNK, left))
            if not chunk:
                chunk = bytes(min(_CHUNK, left))  # the file shrank: pad, the header said so
            self._out.write(chunk)
            left -= len(chunk)
        if size % _BLOCK:
            self._out.write(bytes(_BLOCK - size % _BLOCK))

    def tree(self, top_fd: int, top_parts: tuple[str, ...], top_name: str) -> None:
        """Archive everything below the directory ``top_fd`` (owned: closed here)."""
        stack: list[tuple[int, tuple[str, ...], str, Iterator[str]]] = []

        def push(fd: int, parts: tuple[str, ...], arc: str) -> None:
            try:
                names = set(os.listdir(fd)) | self._fs._mount_children.get(parts, set())
            except BaseException:
                os.close(fd)
                raise
            stack.append((fd, parts, arc, iter(sorted(names))))

        push(top_fd, top_parts, top_name)
        try:
            while stack:
                fd, parts, arc, names = stack[-1]
                child = next(names, None)
                if child is None:
                    os.close(fd)
                    stack.pop()
                    continue
                here = (*parts, child)
                arcname = _child_name(arc, child)
                mount = self._fs._by_dest.get(here)
                owned = -1
                try:
                    if mount is not None:
                        owned, name = _open_source(mount.source)
                        parent = owned
                    else:
                        parent, name = fd, child
                    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    if owned >= 0:
                        os.close(owned)
                    continue  # removed while we walk
                try:
                    self.entry(parent, name, st, arcname)
                    if stat.S_ISDIR(st.st_mode):
                        push(os.open(name, _DIR_FLAGS, dir_fd=parent), here, arcname)
                finally:
                    if owned >= 0:
                        os.close(owned)
        finally:
            for fd, *_ in stack:
                os.close(fd)

    def close(self) -> None:
        self._out.write(bytes(2 * _BLOCK))


# --------------------------------------------------------------------------------------
# Async bridges
# --------------------------------------------------------------------------------------


async def stream_source(source: Source, write: Callable[[bytes], Awaitable[None]]) -> None:
    """Stream ``source`` as a tar to ``write`` from a worker thread.

    Cancellation: a client that goes away breaks the pipe and ends the thread.
    Resource handling: ``source`` is not closed.
    Errors: a single failure (the client gone: ``trio.BrokenResourceError``) is raised as
    itself, not in the ExceptionGroup of the pipe's nursery, so the HTTP layer knows it.
    """
    try:
        await pipe_from_thread(source.write_tar, write)
    except BaseExceptionGroup as group:
        sole: BaseException = group
        while isinstance(sole, BaseExceptionGroup) and len(sole.exceptions) == 1:
            sole = sole.exceptions[0]
        if isinstance(sole, Exception) and not isinstance(sole, BaseExceptionGroup):
            raise sole from None
        raise


async def extract_from_body(chunks: AsyncIterator[bytes], consume: Callable[[BinaryIO], T]) -> T:
    """Run ``consume(reader)`` in a worker thread, ``reader`` yielding ``chunks``.

    The body is fed through a pipe as the thread reads it (no buffering beyond the
    pipe). If the thread finishes first (an error, or a tar's end before the body's),
    the feeding stops; the caller's HTTP layer drains the rest.

    Cancellation: the feeder is cancelled and the pipe closed, so the thread sees the
    end of its input and returns or fails; we wait for it.
    Errors: whatever ``consume`` raises. A body that breaks off (client gone) ends the
    thread's input early, which ``consume`` reports (a truncated tar: InvalidArgument).
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    sink = trio.lowlevel.FdStream(w)

    def run() -> T:
        with os.fdopen(r, "rb") as reader:
            return consume(reader)

    async def feed() -> None:
        try:
            async for chunk in chunks:
                await sink.send_all(chunk)
        except Exception:  # noqa: BLE001 - the reader is gone, or the body broke off
            pass  # (client gone, bad chunking): either way the thread sees its input end
        finally:
            with trio.CancelScope(shield=True):
                await sink.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        # Captured, not raised here: the nursery would wrap it in an ExceptionGroup.
        result = await outcome.acapture(trio.to_thread.run_sync, run)
        nursery.cancel_scope.cancel()
    return result.unwrap()
