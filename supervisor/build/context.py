"""The build context on disk, and what COPY/ADD read from it or from a stage.

A context arrives as a tar (plain or compressed) and is extracted with the layer
unpacker's hostile-path rules (no member may climb out, no symlink is followed on the
way). Sources are then found with ``docker cp``'s in-root walk
(:class:`~supervisor.containers.copy.ContainerFS`), so a symlink inside the context or a
stage resolves inside it, never on the host. :func:`collect` turns the sources of one
COPY/ADD into a single tar whose members are already named, owned and moded as they
land in the image, plus a checksum of what matters for the cache (names, modes, owners,
link targets and contents: not mtimes). :class:`BuildFS` makes WORKDIR's directory
inside a stage's root, with the same in-root walk.

This module does blocking I/O: run it in a worker thread.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, BinaryIO

import attrs

from supervisor.containers.copy import ContainerFS
from supervisor.containers.copypath import NoSuchPath, parse_container_path
from supervisor.errors import BerthError, InvalidArgument
from supervisor.images.unpack import ExtractOptions, extract_tar, open_layer_stream

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def extract_context(tar_path: Path, dest: Path) -> None:
    """Extract the uploaded context ``tar_path`` into the empty directory ``dest``.

    Errors: InvalidArgument (400) for a hostile or corrupt tar.
    """
    fd = os.open(dest, _DIR_FLAGS)
    try:
        with open(tar_path, "rb") as raw:
            head = raw.read(1)
            if not head:
                return  # an empty body: an empty context
            raw.seek(0)
            stream = open_layer_stream(raw)
            extract_tar(stream, fd, ExtractOptions(whiteouts=False))
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid build context: {exc}") from None
    finally:
        os.close(fd)


@attrs.frozen
class Collected:
    tar: Path  # the combined tar, members named relative to "/"
    checksum: str  # "file:", "dir:" or "multi:" and the hex sha256 of what is copied
    files: int


@attrs.frozen
class InlineFile:
    """A source that is not a path: a heredoc body or a file ADD fetched from a URL.

    Docker's modes: 0644 for a heredoc (BuildKit's ``Mkfile``), 0600 for a download
    (the classic builder writes it with 0600 and keeps that); ``mtime`` is the
    download's ``Last-Modified`` (0 when there is none, as Docker).
    """

    data: bytes
    mode: int = 0o644
    mtime: int = 0


@attrs.frozen
class CopyRequest:
    sources: tuple[str, ...]  # after substitution, as written
    dest: str  # absolute (the builder joined a relative one to WORKDIR)
    dest_is_dir: bool  # ends in "/", or the destination is a directory in the image
    owner: tuple[int, int] | None  # --chown; None keeps 0:0 (files from the context)
    chmod: int | None
    extract_archives: bool  # ADD
    from_context: bool  # sources are context paths (else a stage's or image's root)


def _glob(root: Path, pattern: str) -> list[str]:
    """Context-relative paths matching ``pattern`` (Docker: ``filepath.Match`` on each
    path below the root); symlinks are matched by name, never followed."""
    pattern = "/".join(p for p in pattern.split("/") if p not in ("", "."))
    found: list[str] = []
    depth = pattern.count("/")
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        rel_parts = [] if rel == "." else rel.split("/")
        for name in sorted([*dirnames, *filenames]):
            path = "/".join([*rel_parts, name])
            if fnmatch.fnmatchcase(path, pattern):
                found.append(path)
        if len(rel_parts) >= depth:
            dirnames.clear()
    return sorted(found)


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _member_tar(fs: ContainerFS, path: str) -> tuple[IO[bytes], bool]:
    """The tar ``docker cp`` would send for ``path`` (a directory: its content, ``./x``)."""
    cp = parse_container_path(path)
    source = fs.open_source(cp, shown=path)
    try:
        is_dir = bool(source.stat.mode & (1 << 31))
        if is_dir:
            source.close()
            source = fs.open_source(parse_container_path(path.rstrip("/") + "/."), shown=path)
        out = tempfile.TemporaryFile()  # noqa: SIM115 -- the caller closes it (returned)
        source.write_tar(out)
        out.seek(0)
        return out, is_dir
    finally:
        source.close()


def _is_archive(data: bytes) -> bool:
    return (
        data[:2] == b"\x1f\x8b"
        or data[:3] == b"BZh"
        or data[:6] == b"\xfd7zXZ\x00"
        or (len(data) >= 262 and data[257:262] == b"ustar")
    )


def collect(
    fs: ContainerFS, req: CopyRequest, work: Path, *, inline: Mapping[str, InlineFile]
) -> Collected:
    """One tar with everything a COPY/ADD puts in the image.

    ``inline`` holds the sources named by a heredoc or URL rather than a path (keyed by
    the name the source has in ``req.sources``); ``--chmod`` overrides their mode too.

    Errors: InvalidArgument (400) for a source outside the root or matching nothing,
    several sources into a non-directory; BerthError for I/O failures.
    """
    paths: list[str] = []
    for source in req.sources:
        if source in inline:
            paths.append(source)
            continue
        clean = "/" + "/".join(p for p in source.split("/") if p not in ("", "."))
        if _is_glob(source):
            matches = _glob(fs.rootfs, clean)
            if not matches:
                raise InvalidArgument(
                    "COPY failed: no source files were specified"
                    if not req.from_context
                    else f"COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
                )
            paths += ["/" + m for m in matches]
        else:
            if ".." in source.split("/") and req.from_context:
                normal = os.path.normpath("/" + source)
                if not normal.startswith("/"):
                    raise InvalidArgument(f"forbidden path outside the build context: {source}")
            paths.append(clean)
    if len(paths) > 1 and not req.dest_is_dir:
        raise InvalidArgument(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
        )
    dest_parts = [p for p in req.dest.split("/") if p]
    kind = "multi" if len(paths) > 1 else "file"  # "dir" once the one source is a directory
    out_path = work / "copy.tar"
    digest = hashlib.sha256()
    count = 0
    with (
        open(out_path, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out,
    ):
        for path in paths:
            if path in inline:
                item = inline[path]
                info = tarfile.TarInfo(
                    "/".join([*dest_parts, path] if req.dest_is_dir else dest_parts)
                )
                info.size = len(item.data)
                info.mode = item.mode
                info.mtime = item.mtime
                count += _add(out, info, io.BytesIO(item.data), req, digest)
                continue
            try:
                member_tar, is_dir = _member_tar(fs, path)
                if is_dir and kind == "file":
                    kind = "dir"
            except NoSuchPath:
                where = (
                    "build context or excluded by .dockerignore" if req.from_context else "stage"
                )
                raise InvalidArgument(
                    f"COPY failed: file not found in {where}: stat {path.lstrip('/')}: file does not exist"
                ) from None
            with member_tar, tarfile.open(fileobj=member_tar, mode="r|") as tin:
                for member in tin:
                    name = member.name
                    if is_dir:
                        rel = name.removeprefix("./")
                        if rel in ("", "."):
                            continue
                        target = [*dest_parts, *rel.split("/")]
                    elif req.dest_is_dir:
                        target = [*dest_parts, name]
                    else:
                        target = dest_parts
                    data_file = tin.extractfile(member) if member.isreg() else None
                    if (
                        req.extract_archives
                        and not is_dir
                        and member.isreg()
                        and data_file is not None
                    ):
                        spooled = tempfile.TemporaryFile()  # noqa: SIM115 -- closed below or by the GC once copied
                        while chunk := data_file.read(1 << 20):
                            spooled.write(chunk)
                        spooled.seek(0)
                        if _is_archive(spooled.read(512)):
                            spooled.seek(0)
                            count += _add_archive(out, spooled, dest_parts, req, digest)
                            spooled.close()
                            continue
                        spooled.seek(0)
                        data_file = spooled
                    member.name = "/".join(target)
                    if not member.name:
                        continue
                    count += _add(out, member, data_file, req, digest)
    # dockerd's classic builder names the content in history as file:, dir: or multi:
    return Collected(tar=out_path, checksum=f"{kind}:{digest.hexdigest()}", files=count)


def _add(
    out: tarfile.TarFile,
    info: tarfile.TarInfo,
    data: BinaryIO | IO[bytes] | None,
    req: CopyRequest,
    digest: hashlib._Hash,
    *,
    keep_owner: bool = False,
) -> int:
    if not keep_owner or req.owner is not None:
        info.uid, info.gid = req.owner or (0, 0)
        info.uname = info.gname = ""
    if req.chmod is not None and not info.issym():
        info.mode = (info.mode & ~0o7777) | req.chmod
    content = hashlib.sha256()
    if data is not None and info.isreg():
        with tempfile.TemporaryFile() as body:
            size = 0
            while chunk := data.read(1 << 20):
                content.update(chunk)
                body.write(chunk)
                size += len(chunk)
            body.seek(0)
            info.size = size
            out.addfile(info, body)
    else:
        out.addfile(info)
    digest.update(
        f"{info.name}\0{info.type!r}\0{info.mode:o}\0{info.uid}:{info.gid}\0{info.linkname}\0"
        f"{content.hexdigest()}\n".encode()
    )
    return 1


def _add_archive(
    out: tarfile.TarFile,
    archive: IO[bytes],
    dest: Sequence[str],
    req: CopyRequest,
    digest: hashlib._Hash,
) -> int:
    """ADD of a local tar: its members land below the destination directory (Docker
    keeps their owners unless --chown)."""
    count = 0
    try:
        stream = open_layer_stream(archive)  # type: ignore[arg-type]
        with tarfile.open(fileobj=stream, mode="r|") as tin:
            for member in tin:
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if ".." in parts:
                    raise InvalidArgument(f"invalid archive member path: {member.name!r}")
                if not parts:
                    continue
                member.name = "/".join([*dest, *parts])
                if member.islnk():
                    link = [p for p in member.linkname.split("/") if p not in ("", ".")]
                    if ".." in link:
                        raise InvalidArgument(f"invalid hardlink target: {member.linkname!r}")
                    member.linkname = "/".join([*dest, *link])
                data = tin.extractfile(member) if member.isreg() else None
                count += _add(out, member, data, req, digest, keep_owner=True)
    except tarfile.TarError as exc:
        raise BerthError(f"ADD failed: extracting archive: {exc}") from exc
    return count


class BuildFS(ContainerFS):
    """A stage's file tree while a step changes it (an overlay of its layers)."""

    def make_workdir(self, path: str) -> None:
        """WORKDIR's directory: ``path`` (absolute) and its missing parents, made inside
        the root as Docker's classic builder does (``ContainerCreateWorkdir``): 0755,
        owned by root whatever USER says, symlinks on the way resolved inside the root
        (a dangling one gets its target made). An existing directory is left alone.

        Errors: BerthError when a component is not a directory (Docker: ``Cannot mkdir:
        /bin/sh is not a directory``) or symlinks loop.
        """
        parts = tuple(p for p in path.split("/") if p not in ("", "."))
        try:
            found = self._walk(parts, follow_last=True, create=True)
        except NotADirectoryError:
            raise BerthError(f"mkdir {path}: not a directory") from None
        except OSError as exc:
            raise BerthError(f"mkdir {path}: {exc.strerror}") from exc
        try:
            if found.st is None or not stat.S_ISDIR(found.st.st_mode):
                raise BerthError(f"Cannot mkdir: {path} is not a directory")
        finally:
            found.close()


def stat_kind(fs: ContainerFS, path: str) -> str | None:
    """``"dir"``, ``"other"`` or None (missing) for ``path`` inside ``fs``."""
    try:
        st = fs.stat_path(parse_container_path(path), shown=path)
    except NoSuchPath:
        return None
    except InvalidArgument:
        return "other"
    return "dir" if st.mode & (1 << 31) else "other"


def lookup_owner(fs: ContainerFS, spec: str) -> tuple[int, int]:
    """``--chown=user[:group]``: numbers as they are, names from the root's
    /etc/passwd and /etc/group (Docker's ``parseChownFlag``)."""
    user, _, group = spec.partition(":")

    def find(path: str, name: str, what: str) -> tuple[int, int]:
        if name.isdigit():
            return int(name), -1
        text = (fs.read_file(path) or b"").decode("utf-8", "replace")
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == name:
                return int(fields[2]), int(fields[3]) if what == "user" else -1
        raise InvalidArgument(
            f"unable to convert uid/gid chown string to host mapping: can't find {what} {name}"
        )

    uid, primary = find("/etc/passwd", user, "user")
    if not group:
        return uid, (primary if primary >= 0 else uid)
    gid, _ = find("/etc/group", group, "group")
    return uid, gid


def iter_mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter: {text}") from None
    if value > 0o7777:
        raise InvalidArgument(f"invalid chmod parameter: {text}")
    return value
