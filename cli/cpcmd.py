"""``berth cp``: copy files between a container and the local file system, as ``docker cp``.

Theory of operation:
    The daemon only ever sees tar streams: ``HEAD .../archive`` says what a container
    path is, ``GET`` sends a tar of it, ``PUT`` extracts a tar into a container
    directory. Everything that makes ``cp`` behave like ``cp`` (file to file, file into a
    directory, a directory to a new name, ``dir/.`` for a directory's content) happens
    here, by choosing where the tar is extracted and renaming its first path component,
    exactly as the docker CLI does (moby ``pkg/archive/copy.go``: ``CopyInfoSourcePath``,
    ``CopyInfoDestinationPath``, ``PrepareArchiveCopy``, ``RebaseArchiveEntries``):

    * the source is archived under its base name (``src``; ``.`` for ``src/.``);
    * if the destination is an existing directory, the tar is extracted into it as is;
    * otherwise it is extracted into the destination's parent with the first component
      renamed to the destination's name (a new name for a file or a directory); copying
      a directory onto an existing file is "cannot copy directory", a file onto a
      missing ``dir/`` is "no such directory".

    Uploads are tars built on the fly while the request is sent (no temporary file);
    downloads are extracted while they arrive. Local extraction follows docker's
    ``Untar`` (no chown, never replace a directory by a file or the reverse) and never
    writes outside the destination, whatever the tar says: names are cleaned, parents
    that resolve outside it are refused.

    The path helpers at the top copy Go's ``path/filepath`` semantics (``Base("a/")`` is
    ``a``, ``Clean("//a")`` is ``/a``) because the rules above are written in them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import stat
import sys
import tarfile
import time
from typing import NamedTuple

from cli.chunks import ChunkReader
from cli.client import Client, ClientError, DaemonError, quote
from cli.render import human_size  # docker cp's sizes: go-units, 3 significant digits
from cli.tarnodes import set_node_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from cli.argspec import Parsed

_CHUNK = 1 << 16
_BLOCK = tarfile.BLOCKSIZE
_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27
_GO_MODE_DEVICE = 1 << 26
_GO_MODE_IRREGULAR = 1 << 19
_MAX_DEST_LINKS = 10  # CopyInfoDestinationPath's limit


# -- Go's path/filepath, as the copy rules use it ------------------------------------------


def go_clean(path: str) -> str:
    """``filepath.Clean``."""
    if not path:
        return "."
    cleaned = os.path.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")  # POSIX keeps "//", Go does not
    return cleaned


def go_base(path: str) -> str:
    """``filepath.Base``: ``a/`` is ``a``, ``/`` is ``/``, ``""`` is ``.``."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def go_dir(path: str) -> str:
    """``filepath.Dir``."""
    return go_clean(path[: path.rfind("/") + 1])


def go_join(*parts: str) -> str:
    """``filepath.Join``: empty parts are skipped, the result is cleaned."""
    kept = [p for p in parts if p]
    return go_clean("/".join(kept)) if kept else ""


def specifies_current_dir(path: str) -> bool:
    return go_base(path) == "."


def asserts_directory(path: str) -> bool:
    return path.endswith("/") or specifies_current_dir(path)


def preserve_trailing_dot_or_separator(cleaned: str, original: str) -> str:
    """``archive.PreserveTrailingDotOrSeparator``."""
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """``archive.SplitPathDirEntry``: ``(dir, base)``, ``a/b/.`` giving ``(a/b, .)``."""
    cleaned = go_clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return go_dir(cleaned), go_base(cleaned)


def resolve_local_path(path: str) -> str:
    """An absolute local path, keeping a trailing ``/`` or ``/.``."""
    return preserve_trailing_dot_or_separator(go_clean(os.path.abspath(path)), path)


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` into its parts; ``("", arg)`` for a local path (absolute, no
    colon, or starting with ``.`` like ``./file:name``)."""
    if arg.startswith("/"):
        return "", arg
    container, colon, path = arg.partition(":")
    if not colon or container.startswith("."):
        return "", arg
    return container, path


def rebase_name(name: str, old: str, new: str) -> str:
    """``RebaseArchiveEntries`` on one name: the first ``old`` becomes ``new`` (``/`` as
    ``old`` stands for the empty prefix every name of a root archive has)."""
    if old == "/":
        old = ""
    i = name.find(old)
    return name if i < 0 else name[:i] + new + name[i + len(old) :]


def get_rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """``archive.GetRebaseName``: ``resolved`` with ``path``'s trailing markers, and the
    name entries must carry when resolving changed the last element (else "")."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    return resolved, (go_base(path) if go_base(path) != go_base(resolved) else "")


# -- copy decisions --------------------------------------------------------------------------


class CopyInfo(NamedTuple):
    """moby's ``archive.CopyInfo``: a side of the copy."""

    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


class Plan(NamedTuple):
    """Where to extract, and how the archive's first component is renamed (or not)."""

    directory: str
    rename: tuple[str, str] | None


def prepare_archive_copy(src: CopyInfo, dst: CopyInfo) -> Plan:
    """``archive.PrepareArchiveCopy``.

    Raises:
        ClientError: "cannot copy directory" (a directory onto an existing file), "no
            such directory" (a file onto a missing path that asserts a directory).
    """
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    _, src_base = split_path_dir_entry(src.path)
    if dst.exists and dst.is_dir:
        return Plan(dst.path, None)  # extract into it as it is
    if dst.exists and src.is_dir:
        raise ClientError("cannot copy directory")
    if src.rebase_name:
        src_base = src.rebase_name
    if dst.exists or src.is_dir:
        return Plan(dst_dir, (src_base, dst_base))
    if asserts_directory(dst.path):
        raise ClientError("no such directory")
    return Plan(dst_dir, (src_base, dst_base))


def parse_stat(header: str) -> dict[str, object] | None:
    """The ``X-Docker-Container-Path-Stat`` header, decoded (None if absent or bad)."""
    if not header:
        return None
    try:
        doc = json.loads(base64.b64decode(header))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _mode(doc: dict[str, object] | None) -> int:
    value = (doc or {}).get("mode", 0)
    return value if isinstance(value, int) else 0


def output_mode_error(mode: int) -> str | None:
    """``ValidateOutputPathFileMode`` on a Go mode: what is wrong with it, or None."""
    if mode & _GO_MODE_DEVICE:
        return "got a device"
    if mode & _GO_MODE_IRREGULAR:
        return "got an irregular file"
    return None


# -- the command -----------------------------------------------------------------------------


def cmd_cp(client: Client, parsed: Parsed) -> int:
    """``berth cp``: see the module docstring; messages and exit codes as docker's."""
    source, destination = parsed.args
    if not source:
        raise ClientError("source can not be empty")
    if not destination:
        raise ClientError("destination can not be empty")
    quiet = parsed.flag("quiet") or not os.isatty(1)
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        raise ClientError("copying between containers is not supported")
    follow = parsed.flag("follow_link")
    try:
        if src_container:
            return copy_from_container(
                client, src_container, src_path, dst_path, follow_link=follow, quiet=quiet
            )
        if dst_container:
            return copy_to_container(
                client,
                dst_container,
                src_path,
                dst_path,
                follow_link=follow,
                copy_uid_gid=parsed.flag("archive"),
                quiet=quiet,
            )
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and exc.filename is None:
            raise  # our stdout went away: main's quiet exit
        raise ClientError(_os_message(exc)) from None
    raise ClientError("must specify at least one container source")


def _os_message(exc: OSError, op: str = "") -> str:
    reason = exc.strerror or str(exc)
    reason = reason[:1].lower() + reason[1:]
    if exc.filename is None:
        return reason
    return f"{op or 'lstat'} {exc.filename}: {reason}"


def _stat(client: Client, container: str, path: str) -> dict[str, object] | None:
    """``HEAD .../archive``: the path's stat, or None for any error (docker ignores it)."""
    try:
        with client.request(
            "HEAD", f"/containers/{quote(container)}/archive", query={"path": path}
        ) as response:
            return parse_stat(response.headers.get("x-docker-container-path-stat", ""))
    except DaemonError:
        return None


# -- to a container ------------------------------------------------------------------------


def copy_to_container(
    client: Client,
    container: str,
    src_path: str,
    dst_path: str,
    *,
    follow_link: bool,
    copy_uid_gid: bool,
    quiet: bool,
) -> int:
    """``docker cp SRC CONTAINER:DEST``."""
    if src_path != "-":
        src_path = resolve_local_path(src_path)
    dst = CopyInfo(dst_path)
    found = _stat(client, container, dst_path)
    if found is not None and _mode(found) & _GO_MODE_SYMLINK:
        link = str(found.get("linkTarget") or "")
        if not link.startswith("/"):
            link = go_join(split_path_dir_entry(dst_path)[0], link)
        dst = CopyInfo(link)
        found = _stat(client, container, link)
    problem = output_mode_error(_mode(found))
    if problem is not None:
        raise ClientError(
            f'destination "{container}:{dst_path}" must be a directory or a regular file: {problem}'
        )
    if found is not None:
        dst = CopyInfo(dst.path, exists=True, is_dir=bool(_mode(found) & _GO_MODE_DIR))
    progress = _Progress("Copying to container - ", enabled=not quiet)
    if src_path == "-":
        if not dst.is_dir:
            raise ClientError(f'destination "{container}:{dst_path}" must be a directory')
        body: BinaryIO = sys.stdin.buffer
        directory = dst.path
    else:
        src = copy_info_source_path(src_path, follow_link=follow_link)
        plan = prepare_archive_copy(src, dst)
        directory = plan.directory
        top = split_path_dir_entry(src.path)[1]
        if src.rebase_name:
            top = src.rebase_name
        if plan.rename is not None:
            top = rebase_name(top, *plan.rename)
        raw = ChunkReader(_local_tar(src.path, top), progress.add)
        body = io.BufferedReader(raw, _CHUNK)
    query: dict[str, object] = {"path": directory, "noOverwriteDirNonDir": "true"}
    if copy_uid_gid:
        query["copyUIDGID"] = "true"
    with client.request(
        "PUT",
        f"/containers/{quote(container)}/archive",
        query=query,
        body=body,
        headers={"Content-Type": "application/x-tar"},
    ) as response:
        response.read()
    progress.done(f"{container}:{dst.path}")
    return 0


def copy_info_source_path(path: str, *, follow_link: bool) -> CopyInfo:
    """``archive.CopyInfoSourcePath`` (local): the path to archive and its rebase name.

    Without ``-L`` only the parent is resolved (a symlink is copied as a symlink);
    with it, the whole path.
    """
    if follow_link:
        resolved = os.path.realpath(path.rstrip("/") or "/", strict=True)
        resolved, rebase = get_rebase_name(path, resolved)
    else:
        head, _, base = path.rpartition("/")
        real_dir = os.path.realpath(head or "/", strict=True)
        resolved = real_dir.rstrip("/") + "/" + base
        rebase = ""
        if path.endswith("/") and go_base(path) != go_base(resolved):
            rebase = go_base(path)
    st = os.lstat(resolved)
    return CopyInfo(resolved, exists=True, is_dir=stat.S_ISDIR(st.st_mode), rebase_name=rebase)


def _entry_name(top: str, rel: str) -> str:
    return top if not rel else f"{top.rstrip('/')}/{rel}"


def _local_tar(path: str, top: str) -> Iterator[bytes]:
    """A tar of the local ``path`` (not followed if it is a symlink), entries named from
    ``top``; symlinks inside are archived as symlinks, hardlinks once, sockets never."""
    links: dict[tuple[int, int], str] = {}
    source_dir, source_base = split_path_dir_entry(path)
    start = os.path.join(source_dir, source_base) if source_base != "." else source_dir
    stack: list[tuple[str, str]] = [(start, "")]
    while stack:
        full, rel = stack.pop()
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue  # gone since it was listed
        name = _entry_name(top, rel)
        yield from _local_entry(full, name, st, links)
        if stat.S_ISDIR(st.st_mode):
            children = sorted(os.listdir(full))
            stack.extend(
                (os.path.join(full, c), f"{rel}/{c}" if rel else c) for c in reversed(children)
            )
    yield bytes(2 * _BLOCK)


def _local_entry(
    full: str, name: str, st: os.stat_result, links: dict[tuple[int, int], str]
) -> Iterator[bytes]:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    fmt = stat.S_IFMT(st.st_mode)
    data: int | None = None
    if fmt == stat.S_IFREG:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
        else:
            if st.st_nlink > 1:
                links[key] = name
            data = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            info.size = os.fstat(data).st_size
    elif fmt == stat.S_IFLNK:
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
    elif not set_node_type(info, st):
        return
    yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if data is None:
        return
    try:
        left = info.size
        while left:
            chunk = os.read(data, min(_CHUNK, left)) or bytes(min(_CHUNK, left))
            left -= len(chunk)
            yield chunk
    finally:
        os.close(data)
    if info.size % _BLOCK:
        yield bytes(_BLOCK - info.size % _BLOCK)


class _Progress:
    """docker's ``Copying to container - 1.2MB`` line on a terminal, and the final
    ``Successfully copied`` message (both on stderr, not when quiet)."""

    def __init__(self, header: str, *, enabled: bool) -> None:
        self.header = header
        self.enabled = enabled
        self.total = 0
        self._live = enabled and os.isatty(2)
        self._shown = 0.0

    def add(self, n: int) -> None:
        self.total += n
        if self._live and time.monotonic() - self._shown >= 0.1:
            self._shown = time.monotonic()
            sys.stderr.write(f"\r\x1b[2K{self.header}{human_size(self.total)}")
            sys.stderr.flush()

    def done(self, where: str) -> None:
        if not self.enabled:
            return
        clear = "\r\x1b[2K" if self._live and self._shown else ""
        sys.stderr.write(f"{clear}Successfully copied {human_size(self.total)} to {where}\n")
        sys.stderr.flush()


# -- from a container ----------------------------------------------------------------------


def validate_output_path(path: str) -> None:
    """``command.ValidateOutputPath``: the parent must exist; an existing path must be a
    directory, a regular file, or at least not a device."""
    parent = go_dir(go_clean(path))
    if parent not in ("", ".") and not os.path.exists(parent):
        raise ClientError(f'invalid output path: directory "{parent}" does not exist')
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        raise ClientError(
            f'invalid output path: "{path}" must be a directory or a regular file: got a device'
        )


def copy_from_container(
    client: Client,
    container: str,
    src_path: str,
    dst_path: str,
    *,
    follow_link: bool,
    quiet: bool,
) -> int:
    """``docker cp CONTAINER:SRC DEST``."""
    if dst_path != "-":
        dst_path = resolve_local_path(dst_path)
    validate_output_path(dst_path)
    rebase = ""
    if follow_link:
        found = _stat(client, container, src_path)
        if found is not None and _mode(found) & _GO_MODE_SYMLINK:
            link = str(found.get("linkTarget") or "")
            if not link.startswith("/"):
                link = go_join(split_path_dir_entry(src_path)[0], link)
            src_path, rebase = get_rebase_name(src_path, link)
    with client.request(
        "GET", f"/containers/{quote(container)}/archive", query={"path": src_path}
    ) as response:
        if dst_path == "-":
            out = sys.stdout.buffer
            for chunk in response.iter_chunks():
                out.write(chunk)
            out.flush()
            return 0
        doc = parse_stat(response.headers.get("x-docker-container-path-stat", ""))
        src = CopyInfo(src_path, exists=True, is_dir=bool(_mode(doc) & _GO_MODE_DIR))
        renames: list[tuple[str, str]] = []
        if rebase:
            renames.append((split_path_dir_entry(src_path)[1], rebase))
            src = src._replace(rebase_name=rebase)
        dst = copy_info_destination_path(dst_path)
        plan = prepare_archive_copy(src, dst)
        if plan.rename is not None:
            renames.append(plan.rename)
        progress = _Progress("Copying from container - ", enabled=not quiet)
        reader = io.BufferedReader(ChunkReader(response.iter_chunks(), progress.add), _CHUNK)
        untar(reader, plan.directory, renames=renames)
    progress.done(dst_path)
    return 0


def copy_info_destination_path(path: str) -> CopyInfo:
    """``archive.CopyInfoDestinationPath``: the local destination, its last element's
    symlinks followed (so a copy onto a link writes where it points).

    Raises:
        ClientError: too many links; the parent is missing or not a directory.
    """
    original = path
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    hops = 0
    while st is not None and stat.S_ISLNK(st.st_mode):
        hops += 1
        if hops > _MAX_DEST_LINKS + 1:
            raise ClientError(f"too many symlinks in {original}")
        target = os.readlink(path)
        if not target.startswith("/"):
            target = go_join(split_path_dir_entry(path)[0], target)
        path = target
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is not None:
        return CopyInfo(path, exists=True, is_dir=stat.S_ISDIR(st.st_mode))
    parent = split_path_dir_entry(path)[0]
    try:
        parent_st = os.stat(parent)
    except OSError as exc:
        raise ClientError(_os_message(exc, "stat")) from None
    if not stat.S_ISDIR(parent_st.st_mode):
        raise ClientError("not a directory")
    return CopyInfo(path)


# -- local extraction ----------------------------------------------------------------------


class _StreamTar(tarfile.TarFile):
    members: list[tarfile.TarInfo]  # set by TarFile.__init__; typeshed leaves it out


def untar(reader: BinaryIO, dest: str, *, renames: list[tuple[str, str]] | None = None) -> None:
    """Extract a tar stream into the existing directory ``dest`` as docker's ``Untar``
    with ``NoLchown`` and ``NoOverwriteDirNonDir``: names renamed by ``renames`` (in
    order), cleaned and joined to ``dest``; an existing directory meets a directory
    (merged; ``.`` itself is left alone), anything else replaces what is there;
    directory times are set last.

    Raises:
        ClientError: a member outside ``dest`` (also through a symlink), a bad link, a
            directory/non-directory conflict, a corrupt tar, a file system error.
    """
    real_dest = os.path.realpath(dest)
    dir_times: list[tuple[str, int]] = []
    try:
        with _StreamTar.open(fileobj=reader, mode="r|", errors="surrogateescape") as tar:
            for member in tar:
                tar.members.clear()  # stream mode keeps them all otherwise
                name = member.name
                for old, new in renames or []:
                    name = rebase_name(name, old, new)
                _untar_one(tar, member, name, dest, real_dest, dir_times, renames or [])
    except tarfile.TarError as exc:
        raise ClientError(f"invalid tar: {exc}") from None
    except OSError as exc:
        raise ClientError(_os_message(exc, "open")) from None
    for path, mtime in reversed(dir_times):
        with contextlib.suppress(OSError):
            os.utime(path, (mtime, mtime), follow_symlinks=False)


def _inside(real_dest: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == real_dest or real.startswith(real_dest.rstrip("/") + "/")


def _untar_one(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    name: str,
    dest: str,
    real_dest: str,
    dir_times: list[tuple[str, int]],
    renames: list[tuple[str, str]],
) -> None:
    cleaned = go_clean(name)
    path = go_join(dest, cleaned)
    rel = os.path.relpath(path, dest)
    if rel == ".." or rel.startswith("../"):
        raise ClientError(f'"{name}" is outside of "{dest}"')
    parent = go_dir(path)
    if cleaned != "." and not _inside(real_dest, parent):
        raise ClientError(f'"{name}" is outside of "{dest}"')  # through a symlink
    if not os.path.lexists(parent):
        os.makedirs(parent, 0o755, exist_ok=True)
    try:
        existing: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        is_dir = stat.S_ISDIR(existing.st_mode)
        if is_dir and not member.isdir():
            raise ClientError(f'cannot overwrite directory "{path}" with non-directory "{dest}"')
        if not is_dir and member.isdir():
            raise ClientError(f'cannot overwrite non-directory "{path}" with directory "{dest}"')
        if is_dir and cleaned == ".":
            return
        if not is_dir:
            os.unlink(path)
    mode = member.mode & 0o7777
    if member.isdir():
        if existing is None:
            os.mkdir(path, 0o700)
        os.chmod(path, mode)
        dir_times.append((path, int(member.mtime)))
        return
    if member.isreg():
        src = tar.extractfile(member)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            while src is not None and (chunk := src.read(_CHUNK)):
                os.write(fd, chunk)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    elif member.issym():
        target = member.linkname
        if not target.startswith("/") and not _lexically_inside(
            dest, go_join(go_dir(path), target)
        ):
            raise ClientError(f'invalid symlink "{path}" -> "{target}"')
        os.symlink(target, path)
    elif member.islnk():
        target = member.linkname
        for old, new in renames:
            target = rebase_name(target, old, new)
        target_path = go_join(dest, target)
        if not _lexically_inside(dest, target_path) or not _inside(real_dest, go_dir(target_path)):
            raise ClientError(f'invalid hardlink "{target_path}" -> "{member.linkname}"')
        os.link(target_path, path, follow_symlinks=False)
        return
    elif member.ischr() or member.isblk() or member.isfifo():
        kind = (
            stat.S_IFIFO if member.isfifo() else (stat.S_IFCHR if member.ischr() else stat.S_IFBLK)
        )
        os.mknod(path, kind | mode, os.makedev(member.devmajor, member.devminor))
    else:
        raise ClientError(f"unhandled tar header type {member.type!r} for {name!r}")
    with contextlib.suppress(OSError):
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def _lexically_inside(dest: str, path: str) -> bool:
    rel = os.path.relpath(path, dest)
    return rel != ".." and not rel.startswith("../")
