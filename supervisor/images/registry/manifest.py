"""Image manifests and indexes (Docker schema2, OCI image spec): parse, pick, build. Pure.

Theory of operation: a registry answers a manifest request with bytes and a
``Content-Type``. :func:`media_type_of` settles what those bytes are (the header, else the
document's own ``mediaType``, else its shape, as containerd does), :func:`parse_manifest`
turns them into a :class:`Manifest` (config + layers) or an :class:`Index` (a manifest
list: one :class:`Descriptor` per platform), and :func:`select_platform` picks the entry
the daemon runs, with Docker's matching rules. :func:`build_manifest` goes the other way
for push and emits the bytes Go's encoder would, so a digest computed here is the digest
Docker computes for the same content.

Rules:
  * The digest of a manifest is the digest of the bytes as received or sent, never of a
    re-encoding (:func:`digest_of` on the raw bytes).
  * Anything malformed raises :class:`~supervisor.errors.InvalidArgument`; a well-formed
    document we do not handle (schema 1, an unknown media type) raises
    :class:`~supervisor.errors.Unsupported`. Nothing else escapes.
  * Imports only the standard library, attrs and ``supervisor.errors``: no I/O, no trio.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import attrs

from supervisor.errors import InvalidArgument, NotFound, Unsupported

# -- media types ------------------------------------------------------------------------
# Docker's, from distribution's manifest/schema2 and manifest/manifestlist packages.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_UNCOMPRESSED = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# The OCI image spec's (specs-go/v1/mediatype.go).
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})
LAYER_TYPES = frozenset(
    {
        DOCKER_LAYER,
        DOCKER_LAYER_UNCOMPRESSED,
        DOCKER_FOREIGN_LAYER,
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_NONDISTRIBUTABLE,
        OCI_LAYER_NONDISTRIBUTABLE_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
    }
)
# Layers a registry does not hold: they come from their ``urls`` (Windows base layers).
FOREIGN_LAYER_TYPES = frozenset(
    {
        DOCKER_FOREIGN_LAYER,
        OCI_LAYER_NONDISTRIBUTABLE,
        OCI_LAYER_NONDISTRIBUTABLE_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
    }
)
# What a pull asks for, best first (the ``Accept`` header; Docker sends the same four).
MANIFEST_ACCEPT: tuple[str, ...] = (
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
)

# Content types that say nothing about the document: look inside instead.
_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})
# go-digest: a registered algorithm and its exact length of lower-case hex.
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$")
_MAX_SIZE = 1 << 62  # larger than any blob; rejects the absurd without a bignum


class DigestMismatch(InvalidArgument):
    """Content whose digest is not the one it was asked for or announced with (400)."""

    def __init__(self, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"digest mismatch for {what}: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Platform:
    """``platform`` of an index entry (OCI image-index.md)."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@attrs.frozen
class Descriptor:
    """A content descriptor: what, how big, which digest (OCI descriptor.md)."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    platform: Platform | None = None
    artifact_type: str | None = None


@attrs.frozen
class Manifest:
    """An image manifest: one config blob and the layers, base first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    subject: Descriptor | None = None
    artifact_type: str | None = None


@attrs.frozen
class Index:
    """A manifest list / image index: one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)


# -- digests ------------------------------------------------------------------------------


def digest_of(raw: bytes, algorithm: str = "sha256") -> str:
    """``sha256:<hex>`` of ``raw`` (or another registered algorithm)."""
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise InvalidArgument(f"unsupported digest algorithm: {algorithm}")
    return f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}"


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def check_digest(text: str) -> str:
    """Return ``text`` if it is a well-formed digest, else raise InvalidArgument."""
    if not is_digest(text):
        raise InvalidArgument(f"invalid digest: {text!r}")
    return text


def verify_digest(raw: bytes, expected: str, what: str = "content") -> None:
    """Raise :class:`DigestMismatch` unless ``raw`` hashes to ``expected``."""
    actual = digest_of(raw, check_digest(expected).split(":", 1)[0])
    if actual != expected:
        raise DigestMismatch(expected, actual, what)


# -- parsing --------------------------------------------------------------------------------


def _strip_params(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _load(raw: bytes) -> dict[str, object]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidArgument(f"invalid manifest: not JSON: {exc}") from None
    except RecursionError:
        raise InvalidArgument("invalid manifest: nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    return doc


def _sniff(doc: Mapping[str, object]) -> str:
    """Media type of a document that does not declare one (containerd's rules)."""
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_MANIFEST
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    raise InvalidArgument("invalid manifest: cannot tell its media type")


def media_type_of(raw: bytes, content_type: str | None) -> str:
    """The media type of manifest bytes: the ``Content-Type`` (parameters dropped) unless
    it is generic (``application/json``, ``text/plain``, none), then the document's
    ``mediaType``, then its shape.
    """
    declared = _strip_params(content_type or "")
    if declared not in _GENERIC_TYPES:
        return declared
    doc = _load(raw)
    inner = doc.get("mediaType")
    if isinstance(inner, str) and inner:
        return inner
    return _sniff(doc)


def _string(doc: Mapping[str, object], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid manifest: {where}{key} must be a string")
    return value


def _strings(doc: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid manifest: {where}{key} must be a list of strings")
    return tuple(str(v) for v in value)


def _annotations(doc: Mapping[str, object], where: str) -> dict[str, str]:
    value = doc.get("annotations")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidArgument(f"invalid manifest: {where}annotations must map strings to strings")
    return {str(k): str(v) for k, v in value.items()}


def _platform(value: object, where: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid manifest: {where}platform must be an object")
    os_ = _string(value, "os", where + "platform.") or ""
    arch = _string(value, "architecture", where + "platform.") or ""
    return Platform(
        os=os_,
        architecture=arch,
        variant=_string(value, "variant", where + "platform.") or None,
        os_version=_string(value, "os.version", where + "platform.") or None,
        os_features=_strings(value, "os.features", where + "platform."),
    )


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid manifest: {where} must be an object")
    prefix = where + "."
    media_type = _string(value, "mediaType", prefix)
    if not media_type:
        raise InvalidArgument(f"invalid manifest: {where} has no mediaType")
    digest = _string(value, "digest", prefix)
    if digest is None or not is_digest(digest):
        raise InvalidArgument(f"invalid manifest: {where} has an invalid digest: {digest!r}")
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < _MAX_SIZE:
        raise InvalidArgument(f"invalid manifest: {where} has an invalid size: {size!r}")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        urls=_strings(value, "urls", prefix),
        annotations=_annotations(value, prefix),
        platform=_platform(value.get("platform"), prefix),
        artifact_type=_string(value, "artifactType", prefix) or None,
    )


def _descriptors(doc: Mapping[str, object], key: str, what: str) -> tuple[Descriptor, ...]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid manifest: {what}")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value))


def parse_manifest(raw: bytes, media_type: str | None) -> Manifest | Index:
    """Parse manifest bytes fetched with ``Content-Type: media_type``.

    Args:
        raw: the bytes exactly as the registry sent them.
        media_type: the response's ``Content-Type`` (parameters are ignored; a generic or
            missing one falls back to the document, see :func:`media_type_of`).

    Returns:
        A :class:`Manifest` for Docker schema2 / OCI manifests, an :class:`Index` for
        manifest lists / OCI indexes.

    Errors:
        :class:`~supervisor.errors.InvalidArgument` (400) for malformed documents or a
        ``mediaType`` field contradicting the header; :class:`~supervisor.errors.Unsupported`
        (501) for schema 1 and unknown media types.
    """
    kind = media_type_of(raw, media_type)
    if kind in SCHEMA1_TYPES:
        raise Unsupported(
            "Docker Image manifest schema 1 is not supported; the image must be pushed again "
            "with a newer client"
        )
    if kind not in MANIFEST_TYPES and kind not in INDEX_TYPES:
        raise Unsupported(f"unsupported manifest media type: {kind}")
    doc = _load(raw)
    version = doc.get("schemaVersion")
    if version != 2 or isinstance(version, bool):
        raise InvalidArgument(f"invalid manifest: unsupported schemaVersion {version!r}")
    inner = doc.get("mediaType")
    if inner is not None and inner != kind:
        # distribution and the OCI spec both refuse a body that contradicts its type.
        raise InvalidArgument(
            f"invalid manifest: mediaType {inner!r} does not match the content type {kind!r}"
        )
    annotations = _annotations(doc, "")
    if kind in INDEX_TYPES:
        manifests = _descriptors(doc, "manifests", "an index needs a manifests list")
        return Index(media_type=kind, manifests=manifests, annotations=annotations)
    if "config" not in doc:
        raise InvalidArgument("invalid manifest: no config descriptor")
    layers = _descriptors(doc, "layers", "no layers list")
    subject = doc.get("subject")
    return Manifest(
        media_type=kind,
        config=_descriptor(doc["config"], "config"),
        layers=layers,
        annotations=annotations,
        subject=None if subject is None else _descriptor(subject, "subject"),
        artifact_type=_string(doc, "artifactType", "") or None,
    )


# -- platform selection -------------------------------------------------------------------

# containerd's platforms.Normalize: the names `uname -m` and distributions use.
_ARCH_ALIASES: Mapping[str, tuple[str, str | None]] = {
    "i386": ("386", None),
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


def normalize_platform(os: str, architecture: str, variant: str | None) -> Platform:
    """Docker's normal form: lower case, ``x86_64``→``amd64``, ``aarch64``→``arm64``, and
    the default variant made explicit for arm (``v7``) and arm64 (``v8``).
    """
    arch = architecture.lower()
    var = (variant or "").lower() or None
    if arch in _ARCH_ALIASES:
        arch, alias_variant = _ARCH_ALIASES[arch]
        var = var or alias_variant
    if arch == "arm64" and var == "8":
        var = "v8"
    if arch == "arm" and var in ("5", "6", "7", "8"):
        var = f"v{var}"
    if var is None:
        var = _DEFAULT_VARIANT.get(arch)
    return Platform(os=os.lower(), architecture=arch, variant=var)


def _variant_rank(want: Platform, have: Platform) -> int | None:
    """0 for a perfect match, higher for a worse compatible one, None for no match.

    amd64 ignores variants (Docker's rule: v2/v3 microarchitecture levels all run on an
    amd64 host as far as the daemon is concerned). For arm, a v7 host also runs v6 and v5
    (containerd's platforms.Only), ranked after the exact variant.
    """
    if have.os != want.os or have.architecture != want.architecture:
        return None
    if want.architecture == "amd64" or have.variant == want.variant:
        return 0
    if want.architecture == "arm" and want.variant and have.variant:
        order = ["v8", "v7", "v6", "v5"]
        if want.variant in order and have.variant in order:
            gap = order.index(have.variant) - order.index(want.variant)
            return gap if gap > 0 else None
    return None


def select_platform(
    index: Index, *, os: str = "linux", architecture: str = "amd64", variant: str | None = None
) -> Descriptor:
    """The index entry to run on ``os/architecture[/variant]``, with Docker's rules.

    os and architecture must match exactly (after normalising ``x86_64``/``aarch64``...);
    amd64 ignores variants; a missing variant means the architecture's default. Among
    equal matches the first entry wins, as in Docker. Entries without a platform (and
    attestation manifests, whose platform is ``unknown/unknown``) never match.

    Errors:
        :class:`~supervisor.errors.NotFound` (404) "no matching manifest for linux/amd64
        in the manifest list entries", Docker's message.
    """
    want = normalize_platform(os, architecture, variant)
    best: tuple[int, int, Descriptor] | None = None
    for position, entry in enumerate(index.manifests):
        if entry.platform is None:
            continue
        have = normalize_platform(
            entry.platform.os, entry.platform.architecture, entry.platform.variant
        )
        rank = _variant_rank(want, have)
        if rank is not None and (best is None or (rank, position) < best[:2]):
            best = (rank, position, entry)
    if best is None:
        shown = f"{os}/{architecture}" + (f"/{variant}" if variant else "")
        raise NotFound(f"no matching manifest for {shown} in the manifest list entries")
    return best[2]


# -- building -----------------------------------------------------------------------------


def _go_json(value: object, *, indent: str | None) -> bytes:
    """Encode like Go's encoding/json: UTF-8 kept as is, ``<``, ``>``, ``&``, U+2028 and
    U+2029 escaped (Go's HTML-safe default), ``": "`` only when indenting.
    """
    if indent is None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, ensure_ascii=False, indent=indent)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)  # these only ever occur inside JSON strings
    return text.encode()


def _descriptor_doc(desc: Descriptor, *, oci: bool) -> dict[str, object]:
    # Field order follows the Go structs: distribution.Descriptor puts size before digest,
    # the OCI specs-go Descriptor digest before size.
    doc: dict[str, object] = {"mediaType": desc.media_type}
    if oci:
        doc["digest"] = desc.digest
        doc["size"] = desc.size
    else:
        doc["size"] = desc.size
        doc["digest"] = desc.digest
    if desc.urls:
        doc["urls"] = list(desc.urls)
    if desc.annotations:
        doc["annotations"] = dict(sorted(desc.annotations.items()))  # Go sorts map keys
    if desc.platform is not None:
        platform: dict[str, object] = {
            "architecture": desc.platform.architecture,
            "os": desc.platform.os,
        }
        if desc.platform.os_version:
            platform["os.version"] = desc.platform.os_version
        if desc.platform.os_features:
            platform["os.features"] = list(desc.platform.os_features)
        if desc.platform.variant:
            platform["variant"] = desc.platform.variant
        doc["platform"] = platform
    if desc.artifact_type and oci:
        doc["artifactType"] = desc.artifact_type
    return doc


def _check_descriptor(desc: Descriptor, what: str) -> None:
    check_digest(desc.digest)
    if desc.size < 0:
        raise InvalidArgument(f"{what} has a negative size")
    if not desc.media_type:
        raise InvalidArgument(f"{what} has no media type")


def build_manifest(
    config: Descriptor, layers: Sequence[Descriptor], *, oci: bool = False
) -> tuple[bytes, str]:
    """Encode an image manifest for push.

    Docker schema2 comes out as distribution's ``schema2.FromStruct`` writes it (Go's
    ``MarshalIndent`` with three spaces); OCI as containerd and BuildKit write it (compact
    ``json.Marshal``). Either way the bytes are deterministic, so the same content always
    has the same digest.

    Returns:
        ``(raw, media_type)``; the manifest digest is ``digest_of(raw)``.
    """
    _check_descriptor(config, "config")
    for i, layer in enumerate(layers):
        _check_descriptor(layer, f"layers[{i}]")
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": _descriptor_doc(config, oci=oci),
        "layers": [_descriptor_doc(layer, oci=oci) for layer in layers],
    }
    return _go_json(doc, indent=None if oci else "   "), media_type


def build_index(manifests: Sequence[Descriptor], *, oci: bool = True) -> tuple[bytes, str]:
    """Encode an OCI index (or a Docker manifest list with ``oci=False``)."""
    for i, entry in enumerate(manifests):
        _check_descriptor(entry, f"manifests[{i}]")
    media_type = OCI_INDEX if oci else DOCKER_MANIFEST_LIST
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [_descriptor_doc(entry, oci=oci) for entry in manifests],
    }
    return _go_json(doc, indent=None if oci else "   "), media_type
