"""Tests for supervisor.images.registry.manifest: parse, platform selection, build."""

from __future__ import annotations

import contextlib
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.errors import BerthError, InvalidArgument, NotFound, Unsupported
from supervisor.images.registry import manifest as m
from supervisor.images.registry.manifest import (
    Descriptor,
    DigestMismatch,
    Index,
    Manifest,
    Platform,
    build_index,
    build_manifest,
    digest_of,
    media_type_of,
    normalize_platform,
    parse_manifest,
    select_platform,
    verify_digest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

# What `docker buildx imagetools inspect --raw` shows for a Docker Hub image (trimmed).
DOCKER_MANIFEST_RAW = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": m.DOCKER_MANIFEST,
        "config": {"mediaType": m.DOCKER_CONFIG, "size": 1457, "digest": D1},
        "layers": [
            {"mediaType": m.DOCKER_LAYER, "size": 2220094, "digest": D2},
            {
                "mediaType": m.DOCKER_FOREIGN_LAYER,
                "size": 10,
                "digest": D3,
                "urls": ["https://example.invalid/layer"],
            },
        ],
    }
).encode()

OCI_INDEX_RAW = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": m.OCI_INDEX,
        "manifests": [
            {
                "mediaType": m.OCI_MANIFEST,
                "digest": D1,
                "size": 100,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": m.OCI_MANIFEST,
                "digest": D2,
                "size": 100,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
            {
                "mediaType": m.OCI_MANIFEST,
                "digest": D3,
                "size": 100,
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
).encode()


def entry(digest: str, os: str, arch: str, variant: str | None = None) -> Descriptor:
    return Descriptor(
        m.OCI_MANIFEST, digest, 1, platform=Platform(os=os, architecture=arch, variant=variant)
    )


# -- parse ---------------------------------------------------------------------------------


def test_parse_manifest_docker_schema2_reads_config_and_layers() -> None:
    parsed = parse_manifest(DOCKER_MANIFEST_RAW, m.DOCKER_MANIFEST)
    assert isinstance(parsed, Manifest)
    assert parsed.media_type == m.DOCKER_MANIFEST
    assert parsed.config == Descriptor(m.DOCKER_CONFIG, D1, 1457)
    assert [layer.digest for layer in parsed.layers] == [D2, D3]
    assert parsed.layers[1].urls == ("https://example.invalid/layer",)
    assert parsed.layers[1].media_type in m.FOREIGN_LAYER_TYPES


def test_parse_manifest_oci_index_reads_platforms_and_annotations() -> None:
    parsed = parse_manifest(OCI_INDEX_RAW, m.OCI_INDEX + "; charset=utf-8")
    assert isinstance(parsed, Index)
    assert parsed.manifests[1].platform == Platform("linux", "arm64", "v8")
    assert parsed.manifests[2].annotations == {"vnd.docker.reference.type": "attestation-manifest"}
    assert parsed.annotations["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", m.DOCKER_MANIFEST),
        ("", m.DOCKER_MANIFEST),
        ("text/plain; charset=utf-8", m.DOCKER_MANIFEST),
        (None, m.DOCKER_MANIFEST),
    ],
    ids=["json", "empty", "text-plain", "none"],
)
def test_media_type_of_generic_content_type_uses_document(
    content_type: str | None, expected: str
) -> None:
    assert media_type_of(DOCKER_MANIFEST_RAW, content_type) == expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"schemaVersion": 2, "manifests": []}, m.OCI_INDEX),
        ({"schemaVersion": 2, "config": {}, "layers": []}, m.OCI_MANIFEST),
        ({"schemaVersion": 1, "fsLayers": []}, m.DOCKER_SCHEMA1_MANIFEST),
    ],
    ids=["index", "manifest", "schema1"],
)
def test_media_type_of_untyped_document_sniffs_shape(doc: dict[str, object], expected: str) -> None:
    assert media_type_of(json.dumps(doc).encode(), "application/json") == expected


def test_parse_manifest_schema1_is_unsupported() -> None:
    raw = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
    with pytest.raises(Unsupported, match="schema 1"):
        parse_manifest(raw, m.DOCKER_SCHEMA1_SIGNED_MANIFEST)


def test_parse_manifest_unknown_media_type_is_unsupported() -> None:
    with pytest.raises(Unsupported, match=r"application/vnd\.example"):
        parse_manifest(b"{}", "application/vnd.example")


def test_parse_manifest_media_type_contradicting_header_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="does not match"):
        parse_manifest(DOCKER_MANIFEST_RAW, m.OCI_MANIFEST)


@pytest.mark.parametrize(
    "doc",
    [
        {"schemaVersion": 2, "layers": []},
        {"schemaVersion": 2, "config": {"mediaType": "x", "size": 1, "digest": D1}},
        {"schemaVersion": 3, "config": {"mediaType": "x", "size": 1, "digest": D1}, "layers": []},
        {
            "schemaVersion": True,
            "config": {"mediaType": "x", "size": 1, "digest": D1},
            "layers": [],
        },
        {
            "schemaVersion": 2,
            "config": {"mediaType": "x", "size": 1, "digest": "sha256:abc"},
            "layers": [],
        },
        {"schemaVersion": 2, "config": {"mediaType": "x", "size": -1, "digest": D1}, "layers": []},
        {
            "schemaVersion": 2,
            "config": {"mediaType": "x", "size": True, "digest": D1},
            "layers": [],
        },
        {"schemaVersion": 2, "config": {"size": 1, "digest": D1}, "layers": []},
        {"schemaVersion": 2, "config": "x", "layers": []},
        {"schemaVersion": 2, "config": {"mediaType": "x", "size": 1, "digest": D1}, "layers": {}},
        {
            "schemaVersion": 2,
            "config": {"mediaType": "x", "size": 1, "digest": D1, "urls": "nope"},
            "layers": [],
        },
        {
            "schemaVersion": 2,
            "config": {"mediaType": "x", "size": 1, "digest": D1, "annotations": {"a": 1}},
            "layers": [],
        },
    ],
    ids=[
        "no-config",
        "no-layers",
        "version-3",
        "version-bool",
        "short-digest",
        "negative-size",
        "bool-size",
        "no-media-type",
        "config-not-object",
        "layers-not-list",
        "urls-not-list",
        "annotation-not-string",
    ],
)
def test_parse_manifest_malformed_is_invalid(doc: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument, match="invalid manifest"):
        parse_manifest(json.dumps(doc).encode(), m.OCI_MANIFEST)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"\xff\xfe", b"[" * 100_000],
    ids=["empty", "text", "list", "bytes", "deep"],
)
def test_parse_manifest_not_an_object_is_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_manifest(raw, m.OCI_MANIFEST)


def test_parse_manifest_index_needs_manifests_list() -> None:
    with pytest.raises(InvalidArgument, match="manifests"):
        parse_manifest(b'{"schemaVersion": 2}', m.OCI_INDEX)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([1, 2, 3, "2"]),
        "mediaType": st.sampled_from([m.OCI_MANIFEST, m.DOCKER_MANIFEST, m.OCI_INDEX, "x"]),
        "config": json_values,
        "layers": json_values,
        "manifests": json_values,
        "annotations": json_values,
        "subject": json_values,
    },
)


@pytest.mark.slow
@settings(deadline=None)
@given(
    doc=manifest_like,
    content_type=st.sampled_from(
        [
            m.OCI_MANIFEST,
            m.DOCKER_MANIFEST,
            m.OCI_INDEX,
            m.DOCKER_MANIFEST_LIST,
            "application/json",
            "",
        ]
    ),
)
def test_parse_manifest_random_documents_raise_only_berth_errors(
    doc: dict[str, object], content_type: str
) -> None:
    with contextlib.suppress(InvalidArgument, Unsupported):
        parse_manifest(json.dumps(doc).encode(), content_type)


@given(raw=st.binary(max_size=200))
def test_parse_manifest_random_bytes_raise_only_berth_errors(raw: bytes) -> None:
    with contextlib.suppress(InvalidArgument, Unsupported):
        parse_manifest(raw, "application/json")


# -- platform selection ------------------------------------------------------------------------

ARM_INDEX = Index(
    m.OCI_INDEX,
    (
        entry(D1, "linux", "arm", "v6"),
        entry(D2, "linux", "arm", "v7"),
        entry(D3, "linux", "arm64"),
    ),
)


@pytest.mark.parametrize(
    ("index", "want", "expected"),
    [
        (parse_manifest(OCI_INDEX_RAW, m.OCI_INDEX), ("linux", "amd64", None), D1),
        (parse_manifest(OCI_INDEX_RAW, m.OCI_INDEX), ("linux", "x86_64", None), D1),
        (parse_manifest(OCI_INDEX_RAW, m.OCI_INDEX), ("linux", "amd64", "v3"), D1),
        (parse_manifest(OCI_INDEX_RAW, m.OCI_INDEX), ("linux", "arm64", None), D2),
        (parse_manifest(OCI_INDEX_RAW, m.OCI_INDEX), ("linux", "aarch64", None), D2),
        (Index(m.OCI_INDEX, (entry(D1, "linux", "amd64", "v2"),)), ("linux", "amd64", None), D1),
        (
            Index(m.OCI_INDEX, (entry(D1, "linux", "amd64"), entry(D2, "linux", "amd64"))),
            ("linux", "amd64", None),
            D1,
        ),
        (ARM_INDEX, ("linux", "arm", "v7"), D2),
        (ARM_INDEX, ("linux", "arm", None), D2),
        (ARM_INDEX, ("linux", "arm", "v6"), D1),
        (ARM_INDEX, ("linux", "armhf", None), D2),
        (
            Index(m.OCI_INDEX, (entry(D1, "linux", "arm", "v5"), entry(D2, "linux", "arm", "v6"))),
            ("linux", "arm", "v7"),
            D2,
        ),
        (ARM_INDEX, ("linux", "arm64", "v8"), D3),
        (ARM_INDEX, ("LINUX", "arm64", "8"), D3),
    ],
    ids=[
        "amd64",
        "x86_64-alias",
        "amd64-ignores-variant",
        "arm64-default-v8",
        "aarch64-alias",
        "amd64-entry-variant-ignored",
        "first-of-equals",
        "arm-v7-exact",
        "arm-default-v7",
        "arm-v6-exact",
        "armhf-alias",
        "arm-v7-runs-v6-best-compatible",
        "arm64-v8-matches-no-variant",
        "case-and-bare-variant",
    ],
)
def test_select_platform_docker_rules(
    index: Index, want: tuple[str, str, str | None], expected: str
) -> None:
    os_, arch, variant = want
    assert select_platform(index, os=os_, architecture=arch, variant=variant).digest == expected


def test_select_platform_no_match_docker_message() -> None:
    index = Index(m.OCI_INDEX, (entry(D1, "linux", "arm64"), entry(D2, "windows", "amd64")))
    with pytest.raises(NotFound) as info:
        select_platform(index)
    assert str(info.value) == "no matching manifest for linux/amd64 in the manifest list entries"


def test_select_platform_no_match_names_variant() -> None:
    with pytest.raises(NotFound, match="linux/arm/v5 in the manifest"):
        select_platform(ARM_INDEX, architecture="arm", variant="v5")


def test_select_platform_skips_entries_without_platform_and_attestations() -> None:
    index = Index(
        m.OCI_INDEX,
        (
            Descriptor(m.OCI_MANIFEST, D1, 1),
            entry(D2, "unknown", "unknown"),
            entry(D3, "linux", "amd64"),
        ),
    )
    assert select_platform(index).digest == D3


def test_normalize_platform_aliases() -> None:
    assert normalize_platform("Linux", "x86_64", None) == Platform("linux", "amd64")
    assert normalize_platform("linux", "aarch64", None) == Platform("linux", "arm64", "v8")
    assert normalize_platform("linux", "armel", None) == Platform("linux", "arm", "v6")
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"


# -- build, digests --------------------------------------------------------------------------


def test_build_manifest_docker_matches_distribution_encoding() -> None:
    config = Descriptor(m.DOCKER_CONFIG, D1, 7)
    raw, media_type = build_manifest(config, [Descriptor(m.DOCKER_LAYER, D2, 9)])
    assert media_type == m.DOCKER_MANIFEST
    # distribution's schema2.FromStruct: MarshalIndent(m, "", "   "), size before digest.
    assert raw.decode() == (
        "{\n"
        '   "schemaVersion": 2,\n'
        f'   "mediaType": "{m.DOCKER_MANIFEST}",\n'
        '   "config": {\n'
        f'      "mediaType": "{m.DOCKER_CONFIG}",\n'
        '      "size": 7,\n'
        f'      "digest": "{D1}"\n'
        "   },\n"
        '   "layers": [\n'
        "      {\n"
        f'         "mediaType": "{m.DOCKER_LAYER}",\n'
        '         "size": 9,\n'
        f'         "digest": "{D2}"\n'
        "      }\n"
        "   ]\n"
        "}"
    )


def test_build_manifest_oci_compact_go_order_and_escapes() -> None:
    layer = Descriptor(m.OCI_LAYER_ZSTD, D2, 9, annotations={"b": "<&>", "a": "é"})
    raw, media_type = build_manifest(Descriptor(m.OCI_CONFIG, D1, 7), [layer], oci=True)
    assert media_type == m.OCI_MANIFEST
    assert (
        raw
        == (
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            f'"config":{{"mediaType":"{m.OCI_CONFIG}","digest":"{D1}","size":7}},'
            f'"layers":[{{"mediaType":"{m.OCI_LAYER_ZSTD}","digest":"{D2}","size":9,'
            '"annotations":{"a":"é","b":"\\u003c\\u0026\\u003e"}}]}'
        ).encode()
    )


def test_build_manifest_rejects_bad_descriptors() -> None:
    with pytest.raises(InvalidArgument, match="invalid digest"):
        build_manifest(Descriptor(m.OCI_CONFIG, "sha256:nope", 1), [])
    with pytest.raises(InvalidArgument, match="negative size"):
        build_manifest(Descriptor(m.OCI_CONFIG, D1, 1), [Descriptor(m.OCI_LAYER, D2, -1)])
    with pytest.raises(InvalidArgument, match="no media type"):
        build_manifest(Descriptor("", D1, 1), [])


def test_build_index_round_trips_platforms() -> None:
    entries = [entry(D1, "linux", "amd64"), entry(D2, "linux", "arm", "v7")]
    raw, media_type = build_index(entries)
    parsed = parse_manifest(raw, media_type)
    assert isinstance(parsed, Index)
    assert list(parsed.manifests) == entries
    docker_raw, docker_type = build_index(entries, oci=False)
    assert docker_type == m.DOCKER_MANIFEST_LIST
    assert parse_manifest(docker_raw, docker_type).media_type == m.DOCKER_MANIFEST_LIST


digests = st.sampled_from([D1, D2, D3])
texts = st.text(max_size=12)
descriptors = st.builds(
    Descriptor,
    media_type=st.sampled_from(sorted(m.LAYER_TYPES)),
    digest=digests,
    size=st.integers(min_value=0, max_value=1 << 40),
    urls=st.lists(texts, max_size=2).map(tuple),
    annotations=st.dictionaries(texts, texts, max_size=3),
)


@pytest.mark.slow
@settings(deadline=None)
@given(config=descriptors, layers=st.lists(descriptors, max_size=5), oci=st.booleans())
def test_build_manifest_parse_round_trip(
    config: Descriptor, layers: list[Descriptor], oci: bool
) -> None:
    raw, media_type = build_manifest(config, layers, oci=oci)
    parsed = parse_manifest(raw, media_type)
    assert isinstance(parsed, Manifest)
    assert parsed.config == config
    assert list(parsed.layers) == layers
    assert json.loads(raw)["mediaType"] == media_type
    again, _ = build_manifest(parsed.config, list(parsed.layers), oci=oci)
    assert again == raw  # deterministic: the same content, the same digest


def test_digest_of_and_verify() -> None:
    assert digest_of(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert digest_of(b"abc", "sha512").startswith("sha512:")
    verify_digest(b"abc", digest_of(b"abc"))
    with pytest.raises(DigestMismatch, match="digest mismatch for blob x") as info:
        verify_digest(b"abd", digest_of(b"abc"), "blob x")
    assert isinstance(info.value, InvalidArgument)
    with pytest.raises(InvalidArgument, match="unsupported digest algorithm"):
        digest_of(b"", "md5")


def test_descriptor_hashable_despite_annotations() -> None:
    a = Descriptor(m.OCI_LAYER, D1, 1, annotations={"k": "v"})
    b = Descriptor(m.OCI_LAYER, D1, 1, annotations={"k": "v"})
    assert a == b
    assert len({a, b}) == 1


def test_errors_are_berth_errors() -> None:
    assert issubclass(DigestMismatch, BerthError)


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ("linux", "platform must be an object"),
        ({"os": 1, "architecture": "amd64"}, "platform.os must be a string"),
        ({"os": "linux", "architecture": "amd64", "os.features": [1]}, "must be a list of strings"),
    ],
    ids=["not-object", "os-not-string", "features-not-strings"],
)
def test_parse_manifest_bad_platform_is_invalid(platform: object, message: str) -> None:
    doc = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": m.OCI_MANIFEST, "digest": D1, "size": 1, "platform": platform}],
    }
    with pytest.raises(InvalidArgument, match=message):
        parse_manifest(json.dumps(doc).encode(), m.OCI_INDEX)


def test_parse_manifest_reads_subject_artifact_type_and_windows_platform() -> None:
    doc = {
        "schemaVersion": 2,
        "artifactType": "application/vnd.example+type",
        "config": {"mediaType": m.OCI_EMPTY, "digest": D1, "size": 2},
        "layers": [],
        "subject": {"mediaType": m.OCI_MANIFEST, "digest": D2, "size": 3},
    }
    parsed = parse_manifest(json.dumps(doc).encode(), m.OCI_MANIFEST)
    assert isinstance(parsed, Manifest)
    assert parsed.subject == Descriptor(m.OCI_MANIFEST, D2, 3)
    assert parsed.artifact_type == "application/vnd.example+type"


@pytest.mark.parametrize(
    ("want", "have", "match"),
    [
        (("linux", "arm", "7"), ("linux", "arm", "v7"), True),
        (("linux", "arm64", None), ("linux", "arm64", "v9"), False),
        (("linux", "arm", "v6"), ("linux", "arm", "v7"), False),
        (("linux", "arm", "v7"), ("linux", "arm", "v9"), False),
        (("linux", "riscv64", None), ("linux", "riscv64", "rva20"), False),
    ],
    ids=[
        "bare-arm-variant",
        "arm64-other-variant",
        "arm-newer",
        "arm-unknown",
        "other-arch-variant",
    ],
)
def test_select_platform_variant_edges(
    want: tuple[str, str, str | None], have: tuple[str, str, str | None], match: bool
) -> None:
    index = Index(m.OCI_INDEX, (entry(D1, *have),))
    if match:
        assert (
            select_platform(index, os=want[0], architecture=want[1], variant=want[2]).digest == D1
        )
    else:
        with pytest.raises(NotFound):
            select_platform(index, os=want[0], architecture=want[1], variant=want[2])


def test_build_index_windows_platform_fields_round_trip() -> None:
    windows = Descriptor(
        m.OCI_MANIFEST,
        D1,
        5,
        platform=Platform("windows", "amd64", os_version="10.0.17763.1", os_features=("win32k",)),
        artifact_type="application/vnd.example",
    )
    raw, media_type = build_index([windows])
    parsed = parse_manifest(raw, media_type)
    assert isinstance(parsed, Index)
    assert parsed.manifests == (windows,)
    docker_raw, _ = build_index([windows], oci=False)
    assert b"artifactType" not in docker_raw  # not a field of Docker's descriptor
