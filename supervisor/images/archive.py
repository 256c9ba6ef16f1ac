"""``docker save`` / ``docker load`` archive formats: write Docker's legacy docker-archive,
read it back or read an OCI image layout tarball.

Theory of operation
-------------------
**Writing** produces what ``docker save`` of Docker 20.10-24 produces (moby
``image/tarexport/save.go``), so that Docker, skopeo and podman load it:

* ``manifest.json``: ``[{"Config": "<image hex>.json", "RepoTags": [...] | null,
  "Layers": ["<v1 id>/layer.tar", ...]}]``; ``<image hex>.json``: the config, byte for byte
  (its sha256 is the image id); ``repositories``: ``{"<familiar name>": {"<tag>": "<top v1
  id>"}}``, written only when some image has a tag;
* per layer a directory named by its *legacy v1 id* holding ``VERSION`` (``1.0``), ``json``
  (the v1-compat image JSON) and ``layer.tar`` (the uncompressed layer). A DiffID already
  written under another v1 id becomes a symlink ``../<first id>/layer.tar``, as moby does.
* The v1 ids follow moby's ``saveImage`` and ``v1.CreateID``: for layer *i* of an image, a
  ``V1Image`` (the image's own for the top layer, otherwise an empty one created at the
  epoch) is marshalled the way Go's ``encoding/json`` does, ``id`` dropped, ``layer_id``
  (the chain id of layers 0..i) and ``parent`` (the previous v1 id, ``sha256:...``) added,
  keys sorted, and hashed. :func:`_v1_image` rebuilds Go's ``V1Image`` / ``container.Config``
  structs from the config (field order, ``omitempty``, ``null`` for missing slices and maps,
  case-insensitive keys, HTML-safe string escapes, RFC 3339 times re-printed as Go does).
  For configs Docker itself wrote this gives Docker's ids; for hand-made configs with
  fields of the wrong type (which Docker refuses to load at all) the fields are dropped.
  Loaders (Docker since 1.10, skopeo, podman) read ``manifest.json`` and ignore these ids.
* Member order is Go's ``filepath.Walk`` order (names sorted per directory); mtimes are
  the image's ``created`` time for its config and layer entries and 0 for ``manifest.json``
  and ``repositories`` (moby's ``Chtimes`` calls), so the same images give the same bytes.
  The trailer is two zero blocks, unpadded, as Go's ``archive/tar`` writes.
* Layers stream from their ``open()`` straight into the output, hashed on the way: a layer
  whose bytes do not match its DiffID or recorded size fails the save (BerthError) rather
  than producing an archive Docker would reject on load.

**Reading** never extracts: one pass over the tar headers builds an index of member names
(every name normalised; an absolute name or a ``..`` component anywhere fails the whole
archive), then only the members the manifests name are read, by offset. Symlink and
hardlink members are followed inside the archive (skopeo and moby write them for repeated
layers), never out of it, at most :data:`_MAX_LINKS` deep. ``manifest.json`` wins when an
archive also has ``index.json`` (Docker 25 writes both). Layers come back as raw member
streams; the caller sniffs the compression (``unpack.open_layer_stream``) and verifies
each DiffID while unpacking.

The pure helpers (Go JSON, v1 ids, planning) import nothing but the standard library,
``attrs`` and ``supervisor``'s pure modules; the I/O is what a worker thread runs.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, Final

import attrs

from supervisor.errors import BerthError, InvalidArgument
from supervisor.images import reference
from supervisor.images.unpack import normalise_member_name

if TYPE_CHECKING:
    from pathlib import Path

    from _typeshed import WriteableBuffer

__all__ = [
    "ArchiveImage",
    "ArchiveLayer",
    "LoadedImage",
    "LoadedLayer",
    "chain_ids",
    "go_json",
    "legacy_layer_ids",
    "plan_docker_archive",
    "read_archive",
    "write_docker_archive",
]

_CHUNK: Final = 1 << 20
_BLOCK: Final = tarfile.BLOCKSIZE
_MAX_JSON: Final = 32 << 20
_MAX_MEMBERS: Final = 200_000
_MAX_LINKS: Final = 16
_MAX_INDEX_DEPTH: Final = 4
_DIGEST_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
_EPOCH_GO: Final = "1970-01-01T00:00:00Z"
_ZERO_TIME_GO: Final = "0001-01-01T00:00:00Z"

MANIFEST_JSON: Final = "manifest.json"
REPOSITORIES: Final = "repositories"
OCI_LAYOUT: Final = "oci-layout"
OCI_INDEX: Final = "index.json"

_MANIFEST_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
_INDEX_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
_NAME_ANNOTATION: Final = "io.containerd.image.name"
_REF_ANNOTATION: Final = "org.opencontainers.image.ref.name"

JSONValue = object  # what json.loads returns; narrowed with isinstance before use


# --------------------------------------------------------------------------------------
# Values.
# --------------------------------------------------------------------------------------


@attrs.frozen
class ArchiveLayer:
    """One layer to save.

    Attributes:
        diff_id: ``sha256:<hex>`` of the uncompressed layer tar.
        size: its length in bytes (a tar header needs it before the data).
        open: returns a fresh stream of the uncompressed tar; the writer closes it.
    """

    diff_id: str
    size: int
    open: Callable[[], BinaryIO]


@attrs.frozen
class ArchiveImage:
    """One image to save.

    Attributes:
        config: the image config, exact bytes (its sha256 is the image id).
        repo_tags: ``name:tag`` references (any form :func:`reference.parse` accepts;
            written in Docker's familiar form, e.g. ``busybox:latest``).
        layers: in ``rootfs.diff_ids`` order.
    """

    config: bytes
    repo_tags: tuple[str, ...]
    layers: tuple[ArchiveLayer, ...]


@attrs.frozen
class _ArchiveSource:
    """The archive file, and what it looked like when it was indexed."""

    path: Path
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


@attrs.frozen
class LoadedLayer:
    """A layer inside a loaded archive.

    Attributes:
        diff_id: what the image config's ``rootfs.diff_ids`` says the uncompressed tar
            hashes to; the caller verifies it while unpacking.
        size: bytes of the member as stored (compressed or not).
        media_type: the OCI descriptor's media type; None in a docker-archive.
        member: the archive member holding the bytes (after following links).
    """

    diff_id: str
    size: int
    media_type: str | None
    member: str
    _source: _ArchiveSource = attrs.field(repr=False)
    _offset: int = attrs.field(repr=False)

    def open(self) -> BinaryIO:
        """A reader of the member's raw bytes (gzip, zstd or plain tar).

        Resource handling:
            The caller closes it. Each call opens the archive file anew, so layers can be
            read concurrently from worker threads.

        Errors:
            BerthError: the archive file is gone or was replaced since it was read.
        """
        src = self._source
        try:
            fd = os.open(src.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise BerthError(f"reading image archive {src.path}: {exc.strerror}") from exc
        if _identity(os.fstat(fd)) != src.identity:
            os.close(fd)
            raise BerthError(f"image archive {src.path} changed while being loaded")
        return io.BufferedReader(_Slice(fd, self._offset, self.size), _CHUNK)


@attrs.frozen
class LoadedImage:
    """An image found in an archive.

    Attributes:
        config: the config's exact bytes.
        repo_tags: references as the archive names them, verbatim (manifest.json
            ``RepoTags``, or the OCI ``io.containerd.image.name`` annotation, or an
            ``org.opencontainers.image.ref.name`` that is a reference rather than a bare
            tag); normalise with :func:`reference.normalize`.
        layers: in ``rootfs.diff_ids`` order.
    """

    config: bytes
    repo_tags: tuple[str, ...]
    layers: tuple[LoadedLayer, ...]

    @property
    def id(self) -> str:
        """``sha256:<hex>`` of the config: the image id."""
        return "sha256:" + hashlib.sha256(self.config).hexdigest()


# --------------------------------------------------------------------------------------
# Pure part: Go's encoding/json, v1 ids, configs.
# --------------------------------------------------------------------------------------

_GO_ESCAPE_RE: Final = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_GO_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def _go_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    if "\ud800" <= ch <= "\udfff":  # a lone surrogate: invalid UTF-8 to Go
        return "\ufffd"
    return f"\\u{ord(ch):04x}"


def go_json(value: JSONValue) -> bytes:
    """Marshal like Go's ``json.Marshal``: compact, dict order kept (build Go structs in
    field order and sort Go maps yourself), ``<>&`` and U+2028/9 escaped, UTF-8 kept."""
    return _go_encode(value).encode("utf-8")


def _go_encode(value: JSONValue) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, str):
        return '"' + _GO_ESCAPE_RE.sub(_go_escape, value) + '"'
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{_go_encode(str(k))}:{_go_encode(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_go_encode(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_RFC3339_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def _go_time(value: JSONValue) -> tuple[str, int]:
    """A config ``created`` as Go re-prints it (RFC 3339, trailing zeros of the fraction
    dropped, a zero offset as ``Z``), and its whole Unix seconds (floor; 0 if invalid)."""
    m = _RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return _ZERO_TIME_GO, 0
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "")[:9].rstrip("0")
    zone = m.group(8).upper()
    sign = 0
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        if offset == 0:
            zone, sign = "Z", 0
    text = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"
    text += (f".{frac}" if frac else "") + zone
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    except (ValueError, OverflowError):  # pragma: no cover - the regex bounds the fields
        return _ZERO_TIME_GO, 0
    if sign:
        seconds -= offset
    return text, seconds


def _fold(obj: JSONValue) -> dict[str, JSONValue]:
    """Go's case-insensitive field matching: lower-cased key → value, the last one wins."""
    if not isinstance(obj, dict):
        return {}
    return {str(k).lower(): v for k, v in obj.items()}


def _go_str(v: JSONValue) -> str:
    return v if isinstance(v, str) else ""


def _go_bool(v: JSONValue) -> bool:
    return v if isinstance(v, bool) else False


def _go_int(v: JSONValue) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _go_strings(v: JSONValue) -> list[str] | None:
    """``[]string``: null stays null, ``[]`` stays ``[]``."""
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return list(v)
    return None


def _go_strslice(v: JSONValue) -> list[str] | None:
    """``strslice.StrSlice``: a lone string is a one-element list."""
    return [v] if isinstance(v, str) else _go_strings(v)


def _go_set(v: JSONValue) -> dict[str, JSONValue] | None:
    """``map[string]struct{}``: keys sorted, every value ``{}``."""
    return {k: {} for k in sorted(v)} if isinstance(v, dict) else None


def _go_labels(v: JSONValue) -> dict[str, JSONValue] | None:
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        return None
    return {k: v[k] for k in sorted(v)}


def _go_health(v: JSONValue) -> dict[str, JSONValue] | None:
    if not isinstance(v, dict):
        return None
    f = _fold(v)
    out: dict[str, JSONValue] = {}
    if test := _go_strings(f.get("test")):
        out["Test"] = test
    for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
        if n := _go_int(f.get(key.lower())):
            out[key] = n
    return out


def _go_container_config(obj: JSONValue) -> dict[str, JSONValue]:
    """moby ``api/types/container.Config`` (v20.10-v24) as ``json.Marshal`` writes it."""
    f = _fold(obj)
    out: dict[str, JSONValue] = {}
    for key in ("Hostname", "Domainname", "User"):
        out[key] = _go_str(f.get(key.lower()))
    for key in ("AttachStdin", "AttachStdout", "AttachStderr"):
        out[key] = _go_bool(f.get(key.lower()))
    if ports := _go_set(f.get("exposedports")):
        out["ExposedPorts"] = ports
    for key in ("Tty", "OpenStdin", "StdinOnce"):
        out[key] = _go_bool(f.get(key.lower()))
    out["Env"] = _go_strings(f.get("env"))
    out["Cmd"] = _go_strslice(f.get("cmd"))
    if (health := _go_health(f.get("healthcheck"))) is not None:
        out["Healthcheck"] = health
    if _go_bool(f.get("argsescaped")):
        out["ArgsEscaped"] = True
    out["Image"] = _go_str(f.get("image"))
    out["Volumes"] = _go_set(f.get("volumes"))
    out["WorkingDir"] = _go_str(f.get("workingdir"))
    out["Entrypoint"] = _go_strslice(f.get("entrypoint"))
    if _go_bool(f.get("networkdisabled")):
        out["NetworkDisabled"] = True
    if mac := _go_str(f.get("macaddress")):
        out["MacAddress"] = mac
    out["OnBuild"] = _go_strings(f.get("onbuild"))
    out["Labels"] = _go_labels(f.get("labels"))
    if signal := _go_str(f.get("stopsignal")):
        out["StopSignal"] = signal
    timeout = f.get("stoptimeout")
    if isinstance(timeout, int) and not isinstance(timeout, bool):
        out["StopTimeout"] = timeout
    if shell := _go_strslice(f.get("shell")):
        out["Shell"] = shell
    return out


def _v1_image(config: dict[str, JSONValue] | None) -> dict[str, JSONValue]:
    """moby ``image.V1Image`` marshalled without ``id`` and ``parent``: from ``config`` (the
    top layer), or the empty one created at the epoch that lower layers get."""
    if config is None:
        return {"created": _EPOCH_GO, "container_config": _go_container_config(None)}
    f = _fold(config)
    out: dict[str, JSONValue] = {}
    # "parent" in a config is Image.Parent, which shadows V1Image.Parent: not used here.
    if comment := _go_str(f.get("comment")):
        out["comment"] = comment
    out["created"] = _go_time(f.get("created"))[0]
    if container := _go_str(f.get("container")):
        out["container"] = container
    out["container_config"] = _go_container_config(f.get("container_config"))
    for key in ("docker_version", "author"):
        if value := _go_str(f.get(key)):
            out[key] = value
    if isinstance(f.get("config"), dict):
        out["config"] = _go_container_config(f.get("config"))
    for key in ("architecture", "variant", "os"):
        if value := _go_str(f.get(key)):
            out[key] = value
    if size := _go_int(f.get("size")):
        out["Size"] = size
    return out


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI ChainIDs: ``chain[0] = diff[0]``, ``chain[i] = sha256(chain[i-1] + " " + diff[i])``."""
    out: list[str] = []
    for diff_id in diff_ids:
        if out:
            diff_id = "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest()
        out.append(diff_id)
    return out


def legacy_layer_ids(config: dict[str, JSONValue]) -> list[tuple[str, bytes]]:
    """The v1 ids and ``json`` files ``docker save`` writes for an image's layers.

    Args:
        config: the parsed image config (its ``rootfs.diff_ids`` already validated).

    Returns:
        One ``(v1 id hex, json bytes)`` per layer, bottom first.
    """
    diff_ids = _diff_ids(config, "image config")
    os_name = _go_str(_fold(config).get("os"))
    out: list[tuple[str, bytes]] = []
    parent = ""
    for i, chain_id in enumerate(chain_ids(diff_ids)):
        v1 = _v1_image(config if i == len(diff_ids) - 1 else None)
        keyed: dict[str, JSONValue] = dict(v1)
        keyed["layer_id"] = chain_id
        if parent:
            keyed["parent"] = "sha256:" + parent
        v1_id = hashlib.sha256(go_json({k: keyed[k] for k in sorted(keyed)})).hexdigest()
        # The json file: the same V1Image with id, parent and os filled in, in field order.
        written = {**v1, "id": v1_id}
        if parent:
            written["parent"] = parent
        if os_name:
            written["os"] = os_name
        ordered = {k: written[k] for k in _V1_FIELD_ORDER if k in written}
        out.append((v1_id, go_json(ordered)))
        parent = v1_id
    return out


_V1_FIELD_ORDER: Final = (
    "id",
    "parent",
    "comment",
    "created",
    "container",
    "container_config",
    "docker_version",
    "author",
    "config",
    "architecture",
    "variant",
    "os",
    "Size",
)


def _diff_ids(config: JSONValue, where: str) -> list[str]:
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise InvalidArgument(f"{where}: no rootfs.diff_ids list")
    for d in diff_ids:
        if not isinstance(d, str) or not _DIGEST_RE.fullmatch(d):
            raise InvalidArgument(f"{where}: invalid diff id {d!r}")
    return diff_ids


def _parse_config(data: bytes, where: str) -> dict[str, JSONValue]:
    try:
        config = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise InvalidArgument(f"{where}: not a JSON object")
    return config


# --------------------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------------------


@attrs.frozen
class _Member:
    """One entry of the archive to write; exactly one of data/layer/linkname for files."""

    name: str
    mtime: int
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    layer: ArchiveLayer | None = None
    linkname: str = ""


def plan_docker_archive(images: Sequence[ArchiveImage]) -> list[_Member]:
    """Decide every member of the docker-archive for ``images``, in write order. Pure.

    Errors:
        InvalidArgument: a config is not JSON or lists other diff ids than the layers
        given; an image has no layers (Docker: "empty export - not implemented"); a repo
        tag is not a valid ``name:tag``.
    """
    merged: dict[str, tuple[ArchiveImage, list[str]]] = {}
    for image in images:
        hex_id = hashlib.sha256(image.config).hexdigest()
        if hex_id in merged:
            tags = merged[hex_id][1]
            tags.extend(t for t in image.repo_tags if t not in tags)
        else:
            merged[hex_id] = (image, list(image.repo_tags))

    members: list[_Member] = []
    manifest: list[JSONValue] = []
    repositories: dict[str, dict[str, str]] = {}
    written_ids: set[str] = set()
    layer_paths: dict[str, str] = {}  # diff id -> member holding its bytes
    for hex_id, (image, tags) in merged.items():
        where = f"image sha256:{hex_id}"
        config = _parse_config(image.config, where)
        diff_ids = _diff_ids(config, where)
        if not diff_ids:
            raise InvalidArgument(f"{where}: cannot save an image with no layers")
        if [layer.diff_id for layer in image.layers] != diff_ids:
            raise InvalidArgument(f"{where}: the layers given do not match rootfs.diff_ids")
        created = _go_time(_fold(config).get("created"))[1]
        v1_ids = []
        for layer, (v1_id, v1_json) in zip(image.layers, legacy_layer_ids(config), strict=True):
            v1_ids.append(v1_id)
            if v1_id in written_ids:
                continue
            written_ids.add(v1_id)
            members.append(_Member(v1_id, created, kind=tarfile.DIRTYPE))
            members.append(_Member(f"{v1_id}/VERSION", created, data=b"1.0"))
            members.append(_Member(f"{v1_id}/json", created, data=v1_json))
            tar_name = f"{v1_id}/layer.tar"
            if layer.diff_id in layer_paths:
                target = f"../{layer_paths[layer.diff_id]}"
                members.append(_Member(tar_name, created, kind=tarfile.SYMTYPE, linkname=target))
            else:
                layer_paths[layer.diff_id] = tar_name
                members.append(_Member(tar_name, created, layer=layer))
        members.append(_Member(f"{hex_id}.json", created, data=image.config))
        repo_tags = []
        for tag in tags:
            ref = reference.parse(tag)
            if ref.tag is None or ref.digest is not None:
                raise InvalidArgument(f"{where}: repo tag {tag!r} is not name:tag")
            repo_tags.append(reference.familiar(str(ref)))
            repositories.setdefault(reference.familiar_repository(ref), {})[ref.tag] = v1_ids[-1]
        manifest.append(
            {
                "Config": f"{hex_id}.json",
                "RepoTags": repo_tags or None,
                "Layers": [f"{v}/layer.tar" for v in v1_ids],
            }
        )
    # json.Encoder.Encode: Go's Marshal plus a newline; Go sorts map keys.
    members.append(_Member(MANIFEST_JSON, 0, data=go_json(manifest) + b"\n"))
    if repositories:
        repos = {name: dict(sorted(tags.items())) for name, tags in sorted(repositories.items())}
        members.append(_Member(REPOSITORIES, 0, data=go_json(repos) + b"\n"))
    # filepath.Walk order: names sorted within each directory, a directory before its
    # contents; comparing component lists gives exactly that.
    members.sort(key=lambda m: m.name.split("/"))
    return members


def write_docker_archive(out: BinaryIO, images: Sequence[ArchiveImage]) -> None:
    """Write ``images`` to ``out`` as a docker-archive (``docker save`` format).

    Args:
        out: where the (uncompressed) tar goes; need not be seekable.
        images: the images; two with the same config are one image with both's tags.

    Resource handling:
        ``out`` is not closed; each layer stream is closed after it is copied. On error
        ``out`` holds a partial archive: the caller discards it (for an HTTP response,
        aborts the connection rather than ending the body cleanly).

    Errors:
        InvalidArgument: see :func:`plan_docker_archive`.
        BerthError: a layer stream is shorter or longer than its size, or its bytes do not
        hash to its DiffID (a corrupt layer store).
    """
    writer = _TarWriter(out)
    for member in plan_docker_archive(images):
        writer.add(member)
    writer.close()


class _TarWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self._out.write(view) :]

    def add(self, member: _Member) -> None:
        info = tarfile.TarInfo(member.name)
        info.type = member.kind
        info.mtime = member.mtime
        info.uname = info.gname = ""
        if member.kind == tarfile.DIRTYPE:
            info.mode = 0o755
        elif member.kind == tarfile.SYMTYPE:
            info.mode = 0o777
            info.linkname = member.linkname
        else:
            info.mode = 0o644
            info.size = member.layer.size if member.layer is not None else len(member.data)
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if member.layer is not None:
            self._copy_layer(member.layer)
        elif member.kind == tarfile.REGTYPE:
            self._write(member.data)
        if pad := -info.size % _BLOCK:
            self._write(bytes(pad))

    def _copy_layer(self, layer: ArchiveLayer) -> None:
        sha = hashlib.sha256()
        left = layer.size
        with layer.open() as src:
            while left:
                chunk = src.read(min(left, _CHUNK))
                if not chunk:
                    raise BerthError(
                        f"layer {layer.diff_id} is shorter than its recorded size {layer.size}"
                    )
                sha.update(chunk)
                self._write(chunk)
                left -= len(chunk)
            if src.read(1):
                raise BerthError(
                    f"layer {layer.diff_id} is longer than its recorded size {layer.size}"
                )
        if "sha256:" + sha.hexdigest() != layer.diff_id:
            raise BerthError(f"layer {layer.diff_id} does not match its digest (corrupt store?)")

    def close(self) -> None:
        self._write(bytes(2 * _BLOCK))


# --------------------------------------------------------------------------------------
# Reading.
# --------------------------------------------------------------------------------------

_COMPRESSED_MAGIC: Final = (
    (re.compile(rb"\x1f\x8b"), "gzip"),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd"),
    (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2"),
    (re.compile(rb"\xfd7zXZ\x00"), "xz"),
)


def read_archive(path: Path, *, platform: str | None = None) -> list[LoadedImage]:
    """Read the images in a docker-archive or an OCI image layout tarball.

    Args:
        path: an uncompressed tar file (seekable); it is read, never extracted.
        platform: ``os/arch[/variant]`` to pick from a multi-platform OCI index. Without it
            an index must have exactly one image manifest whose blob is in the archive.

    Returns:
        The images, in archive order; images with the same config are merged (their tags
        joined).

    Resource handling:
        The file is closed on return. The returned layers reopen it by path when opened:
        keep it in place (and unchanged) until they are read.

    Errors:
        InvalidArgument: not a tar, compressed, neither format, a hostile or inconsistent
        archive (escaping or duplicate member names, a manifest naming a missing or
        non-regular member, a link leaving the archive, a diff id count that does not match
        the layers, a digest mismatch in an OCI layout, malformed JSON).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidArgument(f"cannot read image archive {path}: {exc.strerror}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InvalidArgument(f"image archive {path} is not a regular file")
    with open(fd, "rb") as f:
        head = f.read(10)
        for magic, kind in _COMPRESSED_MAGIC:
            if magic.match(head):
                raise InvalidArgument(f"image archive is {kind}-compressed: decompress it first")
        f.seek(0)
        reader = _ArchiveReader(f, _ArchiveSource(path, _identity(st)), st.st_size)
        if MANIFEST_JSON in reader.index:
            images = reader.docker_archive()
        elif OCI_INDEX in reader.index:
            images = reader.oci_layout(platform)
        else:
            raise InvalidArgument(
                "image archive has neither manifest.json (docker save) nor index.json"
                " (OCI layout); archives from Docker before 1.10 are not supported"
            )
    return _merge(images)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _merge(images: list[LoadedImage]) -> list[LoadedImage]:
    by_id: dict[str, LoadedImage] = {}
    for image in images:
        seen = by_id.get(image.id)
        if seen is None:
            by_id[image.id] = image
        else:
            tags = seen.repo_tags + tuple(t for t in image.repo_tags if t not in seen.repo_tags)
            by_id[image.id] = attrs.evolve(seen, repo_tags=tags)
    return list(by_id.values())


def _member_key(name: str, what: str) -> str:
    try:
        return "/".join(normalise_member_name(name))
    except InvalidArgument:
        raise InvalidArgument(f"image archive: invalid {what} path {name!r}") from None


class _IndexTar(tarfile.TarFile):
    members: list[tarfile.TarInfo]  # set by TarFile.__init__; typeshed leaves it out


class _ArchiveReader:
    def __init__(self, f: BinaryIO, source: _ArchiveSource, file_size: int) -> None:
        self._f = f
        self._source = source
        self._size = file_size
        self.index = self._build_index()

    # -- index ----------------------------------------------------------------------------

    def _build_index(self) -> dict[str, tarfile.TarInfo]:
        index: dict[str, tarfile.TarInfo] = {}
        try:
            tar = _IndexTar.open(fileobj=self._f, mode="r:", errors="surrogateescape")
        except tarfile.TarError as exc:
            raise InvalidArgument(f"image archive is not a tar file: {exc}") from None
        with tar:
            while True:
                try:
                    info = tar.next()
                except tarfile.TarError as exc:
                    raise InvalidArgument(f"image archive: invalid tar: {exc}") from None
                if info is None:
                    return index
                tar.members.clear()  # random-access mode keeps them all otherwise
                key = _member_key(info.name, "member")
                if not key:
                    if not info.isdir():
                        raise InvalidArgument(f"image archive: invalid member {info.name!r}")
                    continue
                prior = index.get(key)
                if prior is not None and not (prior.isdir() and info.isdir()):
                    raise InvalidArgument(f"image archive: duplicate member {key!r}")
                index[key] = info
                if len(index) > _MAX_MEMBERS:
                    raise InvalidArgument(f"image archive has more than {_MAX_MEMBERS} members")

    def resolve(self, name: str, what: str) -> tuple[str, tarfile.TarInfo]:
        """The regular member ``name`` names, following symlinks and hardlinks inside."""
        key = _member_key(name, what)
        for _ in range(_MAX_LINKS):
            info = self.index.get(key)
            if info is None:
                raise InvalidArgument(f"image archive: {what} {name!r} is missing")
            if info.issym():
                target = info.linkname
                joined = posixpath.normpath(posixpath.join(posixpath.dirname(key), target))
                if target.startswith("/") or joined == ".." or joined.startswith("../"):
                    raise InvalidArgument(
                        f"image archive: {what} {name!r} links outside the archive ({target!r})"
                    )
                key = joined
            elif info.islnk():
                key = _member_key(info.linkname, f"{what} link target")
            elif not info.isreg() or info.issparse():
                raise InvalidArgument(f"image archive: {what} {name!r} is not a regular file")
            elif info.offset_data + info.size > self._size:  # pragma: no cover - tarfile checks
                raise InvalidArgument(f"image archive is truncated: {what} {name!r}")
            else:
                return key, info
        raise InvalidArgument(f"image archive: {what} {name!r}: too many levels of links")

    def read_member(self, name: str, what: str, *, limit: int = _MAX_JSON) -> bytes:
        _, info = self.resolve(name, what)
        if info.size > limit:
            raise InvalidArgument(f"image archive: {what} {name!r} is too large ({info.size})")
        data = b""
        while len(data) < info.size:
            chunk = os.pread(self._f.fileno(), info.size - len(data), info.offset_data + len(data))
            if not chunk:  # pragma: no cover - resolve() checked the size against the file
                raise InvalidArgument(f"image archive is truncated: {what} {name!r}")
            data += chunk
        return data

    def read_json(self, name: str, what: str) -> tuple[bytes, JSONValue]:
        data = self.read_member(name, what)
        try:
            return data, json.loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"image archive: {what} {name!r}: invalid JSON: {exc}") from None

    def layer(self, name: str, diff_id: str, media_type: str | None, what: str) -> LoadedLayer:
        key, info = self.resolve(name, what)
        return LoadedLayer(
            diff_id=diff_id,
            size=info.size,
            media_type=media_type,
            member=key,
            source=self._source,
            offset=info.offset_data,
        )

    # -- docker-archive -------------------------------------------------------------------

    def docker_archive(self) -> list[LoadedImage]:
        _, manifest = self.read_json(MANIFEST_JSON, "manifest")
        if not isinstance(manifest, list):
            raise InvalidArgument("image archive: manifest.json is not a list")
        images = []
        for n, item in enumerate(manifest):
            where = f"manifest.json entry {n}"
            if not isinstance(item, dict):
                raise InvalidArgument(f"image archive: {where} is not an object")
            config_name, tags, layer_names = (
                item.get("Config"),
                item.get("RepoTags"),
                item.get("Layers"),
            )
            if not isinstance(config_name, str):
                raise InvalidArgument(f"image archive: {where} has no Config")
            if tags is None:
                tags = []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise InvalidArgument(f"image archive: {where}: RepoTags is not a list of strings")
            if not isinstance(layer_names, list) or not all(
                isinstance(x, str) for x in layer_names
            ):
                raise InvalidArgument(f"image archive: {where}: Layers is not a list of strings")
            config = self.read_member(config_name, "config")
            diff_ids = _diff_ids(_parse_config(config, f"config {config_name!r}"), config_name)
            if len(diff_ids) != len(layer_names):
                raise InvalidArgument(
                    f"image archive: {where} lists {len(layer_names)} layers but config"
                    f" {config_name!r} has {len(diff_ids)} diff_ids"
                )
            layers = tuple(
                self.layer(name, diff_id, None, "layer")
                for name, diff_id in zip(layer_names, diff_ids, strict=True)
            )
            images.append(LoadedImage(config=config, repo_tags=tuple(tags), layers=layers))
        return images

    # -- OCI image layout -------------------------------------------------------------------

    def oci_layout(self, platform: str | None) -> list[LoadedImage]:
        if OCI_LAYOUT not in self.index:
            raise InvalidArgument("image archive: index.json without an oci-layout file")
        _, layout = self.read_json(OCI_LAYOUT, "oci-layout")
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if not isinstance(version, str) or not version.startswith("1."):
            raise InvalidArgument(f"image archive: unsupported OCI layout version {version!r}")
        _, index = self.read_json(OCI_INDEX, "index")
        images = []
        for desc, names in self._manifests(index, "index.json", (), platform, 0):
            images.append(self._oci_image(desc, names))
        return images

    def _blob_name(self, desc: dict[str, JSONValue], what: str) -> str:
        digest = desc.get("digest")
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            raise InvalidArgument(f"image archive: {what}: unsupported digest {digest!r}")
        return "blobs/sha256/" + digest.removeprefix("sha256:")

    def _blob(self, desc: dict[str, JSONValue], what: str) -> bytes:
        data = self.read_member(self._blob_name(desc, what), what)
        if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
            raise InvalidArgument(
                f"image archive: {what} {desc['digest']} does not match its digest"
            )
        return data

    def _blob_json(
        self, desc: dict[str, JSONValue], what: str
    ) -> tuple[bytes, dict[str, JSONValue]]:
        data = self._blob(desc, what)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"image archive: {what}: invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidArgument(f"image archive: {what} is not a JSON object")
        return data, doc

    def _manifests(
        self,
        index: JSONValue,
        where: str,
        names: tuple[str, ...],
        platform: str | None,
        depth: int,
    ) -> list[tuple[dict[str, JSONValue], tuple[str, ...]]]:
        """Image manifest descriptors reachable from ``index``, with the names they get."""
        if depth > _MAX_INDEX_DEPTH:
            raise InvalidArgument("image archive: image indexes nested too deep")
        descs = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(descs, list) or not all(isinstance(d, dict) for d in descs):
            raise InvalidArgument(f"image archive: {where} has no manifests list")
        if depth:  # a nested index is one image for several platforms: pick one
            descs = self._pick_platform(descs, where, platform)
        out: list[tuple[dict[str, JSONValue], tuple[str, ...]]] = []
        for desc in descs:
            media_type = desc.get("mediaType")
            own = names or _oci_names(desc.get("annotations"))
            if media_type in _MANIFEST_TYPES:
                out.append((desc, own))
            elif media_type in _INDEX_TYPES:
                _, child = self._blob_json(desc, "image index")
                out.extend(
                    self._manifests(child, f"index {desc['digest']}", own, platform, depth + 1)
                )
            # Anything else (attestations, artifacts) is not an image: skipped, as Docker.
        return out

    def _pick_platform(
        self, descs: list[dict[str, JSONValue]], where: str, platform: str | None
    ) -> list[dict[str, JSONValue]]:
        candidates = [
            d
            for d in descs
            if (
                d.get("mediaType") in _MANIFEST_TYPES
                and _platform_of(d) not in ("unknown/unknown", "")
            )
            or d.get("mediaType") in _INDEX_TYPES
        ]
        if platform is not None:
            wanted = platform.split("/")
            chosen = [d for d in candidates if _platform_matches(_platform_of(d), wanted)]
            if not chosen:
                raise InvalidArgument(
                    f"image archive: {where} has no image for platform {platform}"
                )
            return chosen[:1]
        present = [d for d in candidates if self._blob_name(d, "manifest") in self.index]
        if len(present) == 1:
            return present
        platforms = ", ".join(sorted(_platform_of(d) for d in present)) or "none"
        raise InvalidArgument(
            f"image archive: {where} is a multi-platform image ({platforms}): choose a platform"
        )

    def _oci_image(self, desc: dict[str, JSONValue], names: tuple[str, ...]) -> LoadedImage:
        _, manifest = self._blob_json(desc, "image manifest")
        config_desc = manifest.get("config")
        layer_descs = manifest.get("layers")
        if not isinstance(config_desc, dict):
            raise InvalidArgument(f"image archive: manifest {desc['digest']} has no config")
        if not isinstance(layer_descs, list) or not all(isinstance(d, dict) for d in layer_descs):
            raise InvalidArgument(f"image archive: manifest {desc['digest']} has no layers list")
        config = self._blob(config_desc, "image config")
        where = f"config {config_desc['digest']}"
        diff_ids = _diff_ids(_parse_config(config, where), where)
        if len(diff_ids) != len(layer_descs):
            raise InvalidArgument(
                f"image archive: manifest {desc['digest']} lists {len(layer_descs)} layers but"
                f" its config has {len(diff_ids)} diff_ids"
            )
        layers = []
        for layer_desc, diff_id in zip(layer_descs, diff_ids, strict=True):
            media_type = layer_desc.get("mediaType")
            if not isinstance(media_type, str):
                raise InvalidArgument(
                    f"image archive: a layer of {desc['digest']} has no mediaType"
                )
            layer = self.layer(
                self._blob_name(layer_desc, "layer"), diff_id, media_type, "layer blob"
            )
            if layer_desc.get("size") != layer.size:
                raise InvalidArgument(
                    f"image archive: layer {layer_desc['digest']} is {layer.size} bytes,"
                    f" its descriptor says {layer_desc.get('size')!r}"
                )
            layers.append(layer)
        return LoadedImage(config=config, repo_tags=names, layers=tuple(layers))


def _oci_names(annotations: JSONValue) -> tuple[str, ...]:
    """The reference an index entry names: containerd's full name, else a ref.name that is
    a reference; a bare tag (``latest``, the common OCI use) names no repository."""
    if not isinstance(annotations, dict):
        return ()
    name = annotations.get(_NAME_ANNOTATION)
    if isinstance(name, str) and name:
        return (name,)
    ref = annotations.get(_REF_ANNOTATION)
    if isinstance(ref, str) and ("/" in ref or ":" in ref):
        return (ref,)
    return ()


def _annotations(desc: dict[str, JSONValue]) -> dict[str, JSONValue]:
    annotations = desc.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _platform_of(desc: dict[str, JSONValue]) -> str:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return ""
    parts = [p.get("os"), p.get("architecture")]
    if p.get("variant"):
        parts.append(p.get("variant"))
    return "/".join(str(x) for x in parts)


def _platform_matches(have: str, wanted: list[str]) -> bool:
    parts = have.split("/")
    if parts[:2] != wanted[:2]:
        return False
    return len(wanted) < 3 or len(parts) < 3 or parts[2] == wanted[2]


class _Slice(io.RawIOBase):
    """``size`` bytes at ``offset`` of an fd this owns, read with pread."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self._start = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as raw, raw.cast("B") as view:
            want = min(len(view), self._size - self._pos)
            if want <= 0:
                return 0
            n = os.preadv(self._fd, [view[:want]], self._start + self._pos)
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
