"""The build context ``berth build`` uploads: a tar of a directory, or standard input.

Theory of operation:
    The docker CLI's classic builder (``runBuild``) decides what goes to ``POST /build``;
    this module does the same, with docker's error messages:

    * ``PATH`` (a directory): the Dockerfile is ``-f`` (relative to the *current*
      directory), else ``PATH/Dockerfile``, else ``PATH/dockerfile``; symlinks in its
      path are resolved and it is sent as a path relative to the context
      (``dockerfile=sub/Dockerfile``).  ``.dockerignore`` is read, the Dockerfile and
      ``.dockerignore`` get exceptions when ignored (``trim_build_files``), the
      directory is walked with docker's incremental matching, and a tar of what is
      left is streamed while the request is sent (never built in memory or on disk).
    * a Dockerfile outside the context (``-f ../Dockerfile``) or on standard input
      (``-f -``): it travels inside the tar under a generated name
      (``.dockerfile.<20 hex>``, mode 0600) that is also appended to the context's
      ``.dockerignore`` (created if missing), so ``COPY . /`` does not pick it up; that
      name is the ``dockerfile=`` parameter (docker's ``AddDockerfileToBuildContext``).
    * ``-``: standard input is a context archive when its first 512 bytes are a tar
      header or start with gzip/bzip2/xz/zstd magic (sent unchanged, the daemon
      decompresses, ``dockerfile=`` only with ``-f``), otherwise it is the Dockerfile
      itself, sent as a one-file tar (``dockerfile=Dockerfile``).

    Safety: the walk never follows a symlink.  Directories are opened relative to their
    parent's descriptor with ``O_NOFOLLOW``, files are opened the same way when their
    content is sent, so a symlink (or one swapped in during the build) is archived as
    a symlink, or fails the upload, and never leaks a file from outside the context.
    Entries are owned by 0:0 as docker sends them; sockets are skipped; hard links
    inside the context become tar hard links.
"""

from __future__ import annotations

import os
import secrets
import stat
import tarfile
import time
from typing import NamedTuple

from cli.client import ClientError
from cli.tarnodes import set_node_type
from supervisor.build.dockerignore import ROOT, IgnoreError, Matcher, WalkState, parse_dockerignore
from supervisor.build.dockerignore import trim_build_files as _trim

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

DEFAULT_DOCKERFILE = "Dockerfile"
IGNORE_FILE = ".dockerignore"
ARCHIVE_HEADER_SIZE = 512  # docker peeks this much of stdin to tell an archive
_CHUNK = 1 << 16
_BLOCK = tarfile.BLOCKSIZE
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_MAGIC = (
    b"\x1f\x8b\x08",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
)


class BuildContext(NamedTuple):
    """What to upload: tar bytes produced lazily, and the ``dockerfile=`` value."""

    chunks: Iterator[bytes]
    dockerfile: str | None


class Entry(NamedTuple):
    """One path of the context that goes into the tar (relative, ``/``-separated)."""

    path: str
    st: os.stat_result


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


# -- where the context and the Dockerfile are -------------------------------------------------


def is_archive(head: bytes) -> bool:
    """Docker's ``IsArchive`` on the first bytes of standard input: compressed, or a
    valid tar header (a checksum that adds up)."""
    if head.startswith(_MAGIC):
        return True
    if len(head) < ARCHIVE_HEADER_SIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head[:ARCHIVE_HEADER_SIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def resolve_context_dir(path: str) -> str:
    """Docker's ``ResolveAndValidateContextPath``: absolute, symlinks resolved, a directory.

    Raises:
        ClientError: ``path "X" not found``, ``context must be a directory: /abs``.
    """
    if not os.path.exists(path):
        raise ClientError(f'unable to prepare context: path "{path}" not found')
    try:
        resolved = os.path.realpath(os.path.abspath(path), strict=True)
    except OSError as exc:
        raise ClientError(
            "unable to prepare context: unable to evaluate symlinks in context path: "
            f"lstat {exc.filename}: {_reason(exc)}"
        ) from None
    if not os.path.isdir(resolved):
        raise ClientError(f"unable to prepare context: context must be a directory: {resolved}")
    return resolved


def dockerfile_path(context_dir: str, given: str | None) -> str:
    """Docker's ``getDockerfileRelPath``: the absolute, symlink-free path of the Dockerfile.

    ``given`` (``-f``) is relative to the current directory; without it ``Dockerfile``
    in the context, or ``dockerfile`` if only that one exists.

    Raises:
        ClientError: the Dockerfile cannot be found.
    """
    if given:
        candidate = os.path.abspath(given)
    else:
        candidate = os.path.join(context_dir, DEFAULT_DOCKERFILE)
        alternative = os.path.join(context_dir, DEFAULT_DOCKERFILE.lower())
        if not os.path.lexists(candidate) and os.path.lexists(alternative):
            candidate = alternative
    try:
        resolved = os.path.realpath(candidate, strict=True)
    except OSError as exc:
        raise ClientError(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {exc.filename}: {_reason(exc)}"
        ) from None
    return resolved


def relative_dockerfile(context_dir: str, dockerfile: str) -> str | None:
    """The Dockerfile's path inside the context (``/``-separated), None when outside."""
    rel = os.path.relpath(dockerfile, context_dir)
    if rel == ".." or rel.startswith("../"):
        return None
    return rel


def read_ignore_patterns(context_dir: str) -> list[str]:
    """The patterns of ``context_dir/.dockerignore`` (none if it does not exist).

    Raises:
        ClientError: it cannot be read.
    """
    try:
        with open(os.path.join(context_dir, IGNORE_FILE), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ClientError(f"error reading .dockerignore: {_reason(exc)}") from None
    return parse_dockerignore(data.decode("utf-8", "surrogateescape"))


def trim_build_files(patterns: list[str], dockerfile: str, *, from_stdin: bool) -> list[str]:
    """``dockerignore.trim_build_files``, its errors as ``error checking context``.

    Raises:
        ClientError: a malformed pattern.
    """
    try:
        return _trim(patterns, dockerfile, from_stdin=from_stdin)
    except IgnoreError as exc:
        raise ClientError(f"error checking context: {exc}") from None


# -- the walk --------------------------------------------------------------------------------


def walk_context(context_dir: str, patterns: list[str]) -> list[Entry]:
    """Every path of ``context_dir`` the tar carries, in docker's order (each directory's
    names sorted bytewise, a directory before its content), checked readable first as
    docker's ``ValidateContextDirectory`` does.

    Raises:
        ClientError: a malformed pattern, an unreadable file or directory
            (``error checking context: ...``).
    """
    try:
        matcher = Matcher(patterns)
    except IgnoreError as exc:
        raise ClientError(f"error checking context: {exc}") from None
    entries: list[Entry] = []
    try:
        root = os.open(context_dir, _DIR_FLAGS)
    except OSError as exc:
        raise ClientError(f"error checking context: can't stat '{context_dir}'") from exc
    # Each frame: a directory's descriptor, its path prefix, its match state, its names.
    stack: list[tuple[int, str, WalkState, list[str]]] = []
    try:
        stack.append((root, "", ROOT, _names(root, context_dir)))
        while stack:
            fd, prefix, state, names = stack[-1]
            if not names:
                stack.pop()
                os.close(fd)
                continue
            name = names.pop()
            rel = prefix + name
            full = os.path.join(context_dir, rel)
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue  # gone since it was listed
            except OSError as exc:
                raise ClientError(f"error checking context: can't stat '{full}'") from exc
            skip, child_state = matcher.match_walk(rel, state)
            is_dir = stat.S_ISDIR(st.st_mode)
            if skip and not (is_dir and matcher.descend_excluded(rel)):
                continue
            if not skip:
                if stat.S_ISSOCK(st.st_mode):
                    continue  # tar cannot carry a socket (docker skips them too)
                if (stat.S_ISREG(st.st_mode) or is_dir) and not os.access(
                    name, os.R_OK, dir_fd=fd, follow_symlinks=False
                ):
                    raise ClientError(
                        f"error checking context: no permission to read from '{full}'"
                    )
                entries.append(Entry(rel, st))
            if is_dir:
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise ClientError(f"error checking context: can't stat '{full}'") from exc
                stack.append((sub, rel + "/", child_state, []))  # closed even if listing fails
                stack[-1] = (sub, rel + "/", child_state, _names(sub, full))
    finally:
        for fd, *_ in stack:
            os.close(fd)
    return entries


def _names(fd: int, full: str) -> list[str]:
    """The names of a directory, reversed so that ``pop()`` gives them in bytewise order."""
    try:
        names = os.listdir(fd)
    except OSError as exc:
        raise ClientError(f"error checking context: can't stat '{full}'") from exc
    names.sort(key=os.fsencode, reverse=True)
    return names


# -- the tar ---------------------------------------------------------------------------------


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % _BLOCK)


def file_entry(name: str, data: bytes, *, mode: int, mtime: float) -> bytes:
    """One regular file as tar bytes (header, content, padding), owned by 0:0."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(mtime)
    return _header(info) + data + _padding(len(data))


def end_of_archive() -> bytes:
    return bytes(2 * _BLOCK)


def _open_beneath(root_fd: int, rel: str) -> int:
    """Open ``rel`` under ``root_fd`` without following any symlink on the way."""
    *dirs, last = rel.split("/")
    fd = root_fd
    try:
        for part in dirs:
            parent = fd
            fd = os.open(part, _DIR_FLAGS, dir_fd=parent)
            if parent != root_fd:
                os.close(parent)
        return os.open(last, _FILE_FLAGS, dir_fd=fd)
    finally:
        if fd != root_fd:
            os.close(fd)


def iter_context_tar(
    context_dir: str,
    entries: list[Entry],
    *,
    replace: Callable[[bytes | None], bytes] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
    now: float = 0.0,
) -> Iterator[bytes]:
    """The tar of ``entries`` as a stream of chunks (file content read as it is sent).

    ``replace`` rewrites the top-level ``.dockerignore`` (given its content, or None when
    there is none: it is then added, mode 0600); ``extra`` files are added at the end
    (mode 0600, time ``now``), as docker's ``ReplaceFileTarWrapper`` does.

    Raises:
        ClientError: a file cannot be read any more, or is no longer what the walk saw
            (a symlink or something else swapped in).
    """
    links: dict[tuple[int, int], str] = {}
    root = os.open(context_dir, _DIR_FLAGS)
    try:
        replaced = False
        for entry in entries:
            if replace is not None and entry.path == IGNORE_FILE:
                replaced = True
                original = None
                if stat.S_ISREG(entry.st.st_mode):
                    original = b"".join(_file_content(root, context_dir, entry))
                if original is None:  # not a regular file: replaced by one
                    yield file_entry(IGNORE_FILE, replace(None), mode=0o600, mtime=now)
                    continue
                mode = stat.S_IMODE(entry.st.st_mode)
                yield file_entry(IGNORE_FILE, replace(original), mode=mode, mtime=entry.st.st_mtime)
                continue
            yield from _entry(root, context_dir, entry, links)
        if replace is not None and not replaced:
            yield file_entry(IGNORE_FILE, replace(None), mode=0o600, mtime=now)
        for name, data in extra or []:
            yield file_entry(name, data, mode=0o600, mtime=now)
        yield end_of_archive()
    finally:
        os.close(root)


def _entry(
    root: int, context_dir: str, entry: Entry, links: dict[tuple[int, int], str]
) -> Iterator[bytes]:
    st = entry.st
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFREG:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            yield _header(info)
            return
        if st.st_nlink > 1:
            links[key] = entry.path
        info.size = st.st_size
        yield _header(info)
        yield from _file_content(root, context_dir, entry)
        yield _padding(info.size)
        return
    if fmt == stat.S_IFLNK:
        info.type = tarfile.SYMTYPE
        try:
            parent, _, name = entry.path.rpartition("/")
            info.linkname = _readlink_beneath(root, parent, name)
        except OSError as exc:
            raise ClientError(_read_error(context_dir, entry, exc)) from None
    elif not set_node_type(info, st):
        return
    yield _header(info)


def _readlink_beneath(root: int, parent: str, name: str) -> str:
    if not parent:
        return os.readlink(name, dir_fd=root)
    fd = _open_dir_beneath(root, parent)
    try:
        return os.readlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def _open_dir_beneath(root: int, rel: str) -> int:
    fd = root
    for part in rel.split("/"):
        parent = fd
        fd = os.open(part, _DIR_FLAGS, dir_fd=parent)
        if parent != root:
            os.close(parent)
    return fd


def _read_error(context_dir: str, entry: Entry, exc: OSError) -> str:
    return f"error sending build context: {os.path.join(context_dir, entry.path)}: {_reason(exc)}"


def _file_content(root: int, context_dir: str, entry: Entry) -> Iterator[bytes]:
    """Exactly ``entry.st.st_size`` bytes of the file (zeros if it shrank meanwhile)."""
    try:
        fd = _open_beneath(root, entry.path)
    except OSError as exc:
        raise ClientError(_read_error(context_dir, entry, exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ClientError(
                f"error sending build context: {os.path.join(context_dir, entry.path)} "
                "changed while the context was sent"
            )
        left = entry.st.st_size
        while left:
            try:
                chunk = os.read(fd, min(_CHUNK, left))
            except OSError as exc:
                raise ClientError(_read_error(context_dir, entry, exc)) from None
            if not chunk:
                chunk = bytes(min(_CHUNK, left))
            left -= len(chunk)
            yield chunk
    finally:
        os.close(fd)


# -- putting it together ---------------------------------------------------------------------


def generated_dockerfile_name() -> str:
    """Docker's name for a Dockerfile added to the context: ``.dockerfile.`` + 20 hex."""
    return ".dockerfile." + secrets.token_hex(10)


def _append_to_ignore(name: str) -> Callable[[bytes | None], bytes]:
    def replace(original: bytes | None) -> bytes:
        base = original if original is not None else IGNORE_FILE.encode()
        return base + b"\n" + name.encode("utf-8", "surrogateescape") + b"\n"

    return replace


def directory_context(
    context: str,
    dockerfile: str | None,
    *,
    stdin_dockerfile: bytes | None = None,
    now: float | None = None,
    name: Callable[[], str] = generated_dockerfile_name,
) -> BuildContext:
    """The context of a directory (``berth build PATH``), walked now, tarred when read.

    ``dockerfile`` is ``-f`` (None for the default); with ``-f -`` the caller passes the
    Dockerfile read from standard input as ``stdin_dockerfile``.

    Raises:
        ClientError: docker's ``unable to prepare context`` / ``error checking context``.
    """
    context_dir = resolve_context_dir(context)
    when = time.time() if now is None else now
    extra_data = stdin_dockerfile
    rel: str | None = None
    if stdin_dockerfile is None:
        path = dockerfile_path(context_dir, dockerfile)
        rel = relative_dockerfile(context_dir, path)
        if rel is None:
            try:
                with open(path, "rb") as handle:
                    extra_data = handle.read()
            except OSError as exc:
                raise ClientError(f"unable to open Dockerfile: {_reason(exc)}") from None
    patterns = read_ignore_patterns(context_dir)
    patterns = trim_build_files(patterns, rel or "-", from_stdin=rel is None)
    entries = walk_context(context_dir, patterns)
    if extra_data is None:
        assert rel is not None
        return BuildContext(iter_context_tar(context_dir, entries, now=when), rel)
    generated = name()
    chunks = iter_context_tar(
        context_dir,
        entries,
        replace=_append_to_ignore(generated),
        extra=[(generated, extra_data)],
        now=when,
    )
    return BuildContext(chunks, generated)


def read_head(stream: BinaryIO, size: int = ARCHIVE_HEADER_SIZE) -> bytes:
    """Up to ``size`` bytes of ``stream`` (fewer only at its end)."""
    parts: list[bytes] = []
    left = size
    while left:
        data = stream.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _stream(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while data := stream.read(_CHUNK):
        yield data


def stdin_context(
    stdin: BinaryIO, dockerfile: str | None, *, now: float | None = None
) -> BuildContext:
    """The context of ``berth build -``: an archive passed through, or a Dockerfile.

    Raises:
        ClientError: ``-f -`` as well (docker's message).
    """
    if dockerfile == "-":
        raise ClientError("invalid argument: can't use stdin for both build context and dockerfile")
    head = read_head(stdin)
    if is_archive(head):
        return BuildContext(_stream(head, stdin), dockerfile or None)
    data = head + stdin.read()
    when = time.time() if now is None else now
    tar = file_entry(DEFAULT_DOCKERFILE, data, mode=0o644, mtime=when) + end_of_archive()
    return BuildContext(iter([tar]), DEFAULT_DOCKERFILE)


def open_build_context(
    context: str, dockerfile: str | None, *, stdin: BinaryIO, now: float | None = None
) -> BuildContext:
    """Docker's choice of context: ``-`` (standard input) or a local directory.

    Raises:
        ClientError: docker's messages for a missing path, a missing Dockerfile, a
            malformed ``.dockerignore``, an unreadable file.
    """
    if context == "-":
        return stdin_context(stdin, dockerfile, now=now)
    if dockerfile == "-":
        resolve_context_dir(context)  # docker reports a bad context before reading stdin
        return directory_context(context, None, stdin_dockerfile=stdin.read(), now=now)
    return directory_context(context, dockerfile, now=now)
