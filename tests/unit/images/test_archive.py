"""Tests for supervisor.images.archive: docker-archive written as ``docker save`` (Docker
20.10-24) writes it, read back; OCI layouts read; hostile archives refused; cross-checked
with skopeo (and umoci) when they are installed (required when CI=true).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from supervisor.errors import BerthError, InvalidArgument
from supervisor.images.archive import (
    ArchiveImage,
    ArchiveLayer,
    LoadedImage,
    chain_ids,
    go_json,
    legacy_layer_ids,
    plan_docker_archive,
    read_archive,
    write_docker_archive,
)
from supervisor.images.unpack import open_layer_stream, unpack_layer
from tests.tarhelpers import make_tar

CREATED = "2024-01-02T03:04:05.5Z"
CREATED_S = 1704164645
# container.Config{} as Go's json.Marshal writes it (Docker 20.10-24).
GO_ZERO_CONFIG = (
    b'{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,'
    b'"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,'
    b'"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,'
    b'"Labels":null}'
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_for(diff_ids: list[str], **extra: object) -> bytes:
    doc: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def archive_layer(data: bytes) -> ArchiveLayer:
    return ArchiveLayer(diff_id=sha(data), size=len(data), open=lambda: io.BytesIO(data))


def image(layers: list[bytes], *tags: str, **extra: object) -> ArchiveImage:
    return ArchiveImage(
        config=config_for([sha(x) for x in layers], **extra),
        repo_tags=tags,
        layers=tuple(archive_layer(x) for x in layers),
    )


def write_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    path.write_bytes(make_tar(*entries))
    return path


def reg(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def directory(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, None


def read_layer(layer_open: Callable[[], BinaryIO]) -> bytes:
    with layer_open() as raw:
        return open_layer_stream(raw).read()


LAYER_A = layer_tar({"a": b"alpha\n", "etc/os-release": b"ID=test\n"})
LAYER_B = layer_tar({"b": b"beta\n"})
LAYER_C = layer_tar({"c": b"gamma\n"})


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, list[ArchiveImage]]:
    images = [
        image([LAYER_A, LAYER_B, LAYER_A], "busybox:latest", "docker.io/library/busybox:1.36"),
        image([LAYER_A, LAYER_C], "localhost:5000/team/app:v2", created="2023-06-01T00:00:00Z"),
        image([LAYER_C], created="2020-01-01T00:00:00Z"),  # untagged
    ]
    path = tmp_path / "saved.tar"
    with path.open("wb") as f:
        write_docker_archive(f, images)
    return path, images


# -- writing ------------------------------------------------------------------------------------


def test_round_trip_write_then_read(saved: tuple[Path, list[ArchiveImage]], tmp_path: Path) -> None:
    path, images = saved
    loaded = read_archive(path)
    assert [x.config for x in loaded] == [x.config for x in images]
    assert [x.repo_tags for x in loaded] == [
        ("busybox:latest", "busybox:1.36"),
        ("localhost:5000/team/app:v2",),
        (),
    ]
    for got, want in zip(loaded, images, strict=True):
        assert got.id == sha(want.config)
        assert [layer.diff_id for layer in got.layers] == [x.diff_id for x in want.layers]
        for layer in got.layers:
            assert layer.media_type is None
            assert sha(read_layer(layer.open)) == layer.diff_id
    dest = tmp_path / "rootfs"
    dest.mkdir()
    with loaded[0].layers[0].open() as raw:
        unpack_layer(open_layer_stream(raw), dest)
    assert (dest / "etc/os-release").read_bytes() == b"ID=test\n"


def test_archive_is_what_docker_save_writes(saved: tuple[Path, list[ArchiveImage]]) -> None:
    path, images = saved
    busybox_ids = [v for v, _ in legacy_layer_ids(json.loads(images[0].config))]
    app_ids = [v for v, _ in legacy_layer_ids(json.loads(images[1].config))]
    solo_ids = [v for v, _ in legacy_layer_ids(json.loads(images[2].config))]
    assert busybox_ids[0] == app_ids[0]  # same chain, same empty v1 image: one directory
    configs = [hashlib.sha256(x.config).hexdigest() for x in images]
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        by_name = {m.name: m for m in members}
        manifest = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
        repositories = tar.extractfile("repositories").read()  # type: ignore[union-attr]
        assert tar.extractfile(f"{busybox_ids[1]}/VERSION").read() == b"1.0"  # type: ignore[union-attr]
    layer_dirs = sorted({*busybox_ids, *app_ids, *solo_ids})
    expected_names = sorted(
        [
            *(n for d in layer_dirs for n in (d, f"{d}/VERSION", f"{d}/json", f"{d}/layer.tar")),
            *(f"{c}.json" for c in configs),
            "manifest.json",
            "repositories",
        ],
        key=lambda n: n.split("/"),
    )
    assert names == expected_names
    assert (
        manifest
        == go_json(
            [
                {
                    "Config": f"{configs[0]}.json",
                    "RepoTags": ["busybox:latest", "busybox:1.36"],
                    "Layers": [f"{v}/layer.tar" for v in busybox_ids],
                },
                {
                    "Config": f"{configs[1]}.json",
                    "RepoTags": ["localhost:5000/team/app:v2"],
                    "Layers": [f"{v}/layer.tar" for v in app_ids],
                },
                {
                    "Config": f"{configs[2]}.json",
                    "RepoTags": None,
                    "Layers": [f"{v}/layer.tar" for v in solo_ids],
                },
            ]
        )
        + b"\n"
    )
    assert json.loads(manifest)[2]["RepoTags"] is None
    assert repositories == (
        b'{"busybox":{"1.36":"%s","latest":"%s"},"localhost:5000/team/app":{"v2":"%s"}}\n'
        % (busybox_ids[2].encode(), busybox_ids[2].encode(), app_ids[1].encode())
    )
    # The same DiffID under a second v1 id is a symlink to the first copy, as moby writes.
    top = by_name[f"{busybox_ids[2]}/layer.tar"]
    assert top.issym()
    assert top.linkname == f"../{busybox_ids[0]}/layer.tar"
    # LAYER_C comes first under the solo image's id or the app's: exactly one real copy.
    real = [m for m in members if m.name.endswith("/layer.tar") and m.isreg()]
    assert sorted(m.size for m in real) == sorted(len(x) for x in (LAYER_A, LAYER_B, LAYER_C))
    # modes and times as moby's Chtimes leaves them
    assert by_name[busybox_ids[1]].isdir()
    assert by_name[busybox_ids[1]].mode == 0o755
    assert by_name[f"{busybox_ids[1]}/json"].mode == 0o644
    assert by_name[f"{configs[0]}.json"].mtime == CREATED_S
    assert by_name[f"{busybox_ids[1]}/layer.tar"].mtime == CREATED_S
    assert by_name["manifest.json"].mtime == 0
    assert by_name["repositories"].mtime == 0
    data = path.read_bytes()
    assert data.endswith(bytes(1024))
    assert len(data) % 512 == 0


def test_writing_is_deterministic(saved: tuple[Path, list[ArchiveImage]]) -> None:
    path, images = saved
    again = io.BytesIO()
    write_docker_archive(again, images)
    assert again.getvalue() == path.read_bytes()


def test_legacy_ids_follow_moby_create_id() -> None:
    """v1.CreateID, spelled out with literal JSON rather than through go_json."""
    d0, d1 = sha(LAYER_A), sha(LAYER_B)
    config = json.loads(config_for([d0, d1], created="1970-01-01T00:00:00Z"))
    run = (
        b'{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,'
        b'"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,'
        b'"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"Image":"","Volumes":null,"WorkingDir":"",'
        b'"Entrypoint":null,"OnBuild":null,"Labels":null}'
    )
    base_id = hashlib.sha256(
        b'{"container_config":' + GO_ZERO_CONFIG + b',"created":"1970-01-01T00:00:00Z",'
        b'"layer_id":"' + d0.encode() + b'"}'
    ).hexdigest()
    chain = chain_ids([d0, d1])[1]
    assert chain == sha(f"{d0} {d1}".encode())
    top_id = hashlib.sha256(
        b'{"architecture":"amd64","config":'
        + run
        + b',"container_config":'
        + GO_ZERO_CONFIG
        + b',"created":"1970-01-01T00:00:00Z","layer_id":"'
        + chain.encode()
        + b'","os":"linux","parent":"sha256:'
        + base_id.encode()
        + b'"}'
    ).hexdigest()
    assert legacy_layer_ids(config) == [
        (
            base_id,
            b'{"id":"' + base_id.encode() + b'","created":"1970-01-01T00:00:00Z",'
            b'"container_config":' + GO_ZERO_CONFIG + b',"os":"linux"}',
        ),
        (
            top_id,
            b'{"id":"'
            + top_id.encode()
            + b'","parent":"'
            + base_id.encode()
            + b'","created":"1970-01-01T00:00:00Z","container_config":'
            + GO_ZERO_CONFIG
            + b',"config":'
            + run
            + b',"architecture":"amd64","os":"linux"}',
        ),
    ]


def test_v1_json_rebuilds_go_structs_from_the_config() -> None:
    config: dict[str, object] = {
        "id": "ignored",
        "parent": "sha256:ignored-too",
        "Comment": "imported",  # Go matches field names case-insensitively
        "created": "2024-05-06T07:08:09.120000000+00:00",
        "docker_version": "24.0.7",
        "author": "a <b> & c",
        "unknown": "dropped",
        "container_config": None,
        "config": {
            "cmd": "echo hi",  # StrSlice takes a lone string
            "ExposedPorts": {"8080/tcp": {"x": 1}, "53/udp": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3},
            "ArgsEscaped": True,
            "Volumes": {"/data": {}},
            "Labels": {"z": "1", "a": "\u2028"},
            "StopSignal": "SIGINT",
            "StopTimeout": 5,
            "Shell": ["/bin/bash", "-c"],
            "Env": [],
            "Bogus": 1,
        },
        "variant": "v8",
        "architecture": "arm64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(LAYER_A)]},
    }
    [(v1_id, raw)] = legacy_layer_ids(config)
    assert raw == (
        b'{"id":"' + v1_id.encode() + b'","comment":"imported",'
        b'"created":"2024-05-06T07:08:09.12Z","container_config":' + GO_ZERO_CONFIG + b","
        b'"docker_version":"24.0.7","author":"a \\u003cb\\u003e \\u0026 c",'
        b'"config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,'
        b'"AttachStdout":false,"AttachStderr":false,'
        b'"ExposedPorts":{"53/udp":{},"8080/tcp":{}},"Tty":false,"OpenStdin":false,'
        b'"StdinOnce":false,"Env":[],"Cmd":["echo hi"],'
        b'"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000,"Retries":3},'
        b'"ArgsEscaped":true,"Image":"","Volumes":{"/data":{}},"WorkingDir":"",'
        b'"Entrypoint":null,"OnBuild":null,"Labels":{"a":"\\u2028","z":"1"},'
        b'"StopSignal":"SIGINT","StopTimeout":5,"Shell":["/bin/bash","-c"]},'
        b'"architecture":"arm64","variant":"v8","os":"linux"}'
    )


@pytest.mark.parametrize(
    ("created", "text", "seconds"),
    [
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", 1704164645),
        ("2024-01-02t03:04:05.000000000z", "2024-01-02T03:04:05Z", 1704164645),
        ("2024-01-02T03:04:05.123456789123Z", "2024-01-02T03:04:05.123456789Z", 1704164645),
        ("2024-01-02T05:04:05.5+02:00", "2024-01-02T05:04:05.5+02:00", 1704164645),
        ("2024-01-02T03:04:05-00:00", "2024-01-02T03:04:05Z", 1704164645),
        ("yesterday", "0001-01-01T00:00:00Z", 0),
        (None, "0001-01-01T00:00:00Z", 0),
    ],
)
def test_created_is_reprinted_as_go_does(created: object, text: str, seconds: int) -> None:
    config = json.loads(config_for([sha(LAYER_A)]))
    config["created"] = created
    [(_, raw)] = legacy_layer_ids(config)
    assert json.loads(raw)["created"] == text
    [*_, cfg] = [
        m
        for m in plan_docker_archive(
            [ArchiveImage(json.dumps(config).encode(), (), (archive_layer(LAYER_A),))]
        )
        if m.name.endswith(".json") and "/" not in m.name and m.name != "manifest.json"
    ]
    assert cfg.mtime == seconds


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"k": '<&>\u2028\u2029\x01\x7f\n\t"\\é\ud800', "n": [1, True, None]}) == (
        b'{"k":"\\u003c\\u0026\\u003e\\u2028\\u2029\\u0001\x7f\\n\\t\\"\\\\\xc3\xa9\xef\xbf\xbd",'
        b'"n":[1,true,null]}'
    )


def test_same_config_twice_is_one_image_with_both_tags() -> None:
    a = image([LAYER_A], "a:1")
    b = image([LAYER_A], "b:2", "a:1")
    out = io.BytesIO()
    write_docker_archive(out, [a, b])
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert [item["RepoTags"] for item in manifest] == [["a:1", "b:2"]]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ArchiveImage(b"not json", (), (archive_layer(LAYER_A),)), "invalid JSON"),
        (lambda: ArchiveImage(b"[]", (), (archive_layer(LAYER_A),)), "not a JSON object"),
        (lambda: ArchiveImage(config_for([]), (), ()), "no layers"),
        (
            lambda: ArchiveImage(config_for([sha(LAYER_A)]), (), (archive_layer(LAYER_B),)),
            "do not match",
        ),
        (
            lambda: ArchiveImage(config_for([sha(LAYER_A)]), (), ()),
            "do not match",
        ),
        (lambda: ArchiveImage(config_for(["md5:00"]), (), ()), "invalid diff id"),
        (lambda: image([LAYER_A], "busybox"), "not name:tag"),
        (lambda: image([LAYER_A], "busybox@sha256:" + "0" * 64), "not name:tag"),
        (lambda: image([LAYER_A], "Not A Ref:1"), "invalid reference"),
    ],
)
def test_invalid_images_are_refused_before_writing(
    make: Callable[[], ArchiveImage], message: str
) -> None:
    out = io.BytesIO()
    with pytest.raises(InvalidArgument, match=message):
        write_docker_archive(out, [make()])
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("data", "size", "message"),
    [
        (LAYER_A[:-1], len(LAYER_A), "shorter"),
        (LAYER_A + b"\0", len(LAYER_A), "longer"),
        (LAYER_A[:-1] + b"\1", len(LAYER_A), "does not match"),
    ],
)
def test_corrupt_layer_streams_fail_the_save(data: bytes, size: int, message: str) -> None:
    layer = ArchiveLayer(diff_id=sha(LAYER_A), size=size, open=lambda: io.BytesIO(data))
    img = ArchiveImage(config_for([sha(LAYER_A)]), (), (layer,))
    with pytest.raises(BerthError, match=message):
        write_docker_archive(io.BytesIO(), [img])


class _CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        n = memoryview(data).nbytes  # type: ignore[arg-type]
        self.size += n
        return n


class _Generated(io.RawIOBase):
    """``size`` bytes made on demand; records whether it was closed."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size
        self.block = hashlib.sha256(b"x").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        view = memoryview(buffer).cast("B")  # type: ignore[arg-type]
        n = min(len(view), len(self.block), self.left)
        view[:n] = self.block[:n]
        self.left -= n
        return n


@pytest.mark.slow
def test_layers_stream_without_being_buffered() -> None:
    size = 64 << 20
    digest = hashlib.sha256()
    gen = _Generated(size)
    while chunk := gen.read(1 << 20):
        digest.update(chunk)
    opened: list[_Generated] = []

    def open_layer() -> io.BufferedReader:
        opened.append(_Generated(size))
        return io.BufferedReader(opened[-1])

    layer = ArchiveLayer(diff_id="sha256:" + digest.hexdigest(), size=size, open=open_layer)
    img = ArchiveImage(config_for([layer.diff_id]), ("big:1",), (layer,))
    sink = _CountingSink()
    tracemalloc.start()
    try:
        write_docker_archive(sink, [img])  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert sink.size > size
    assert opened[0].closed


# -- reading: formats ------------------------------------------------------------------------------


def oci_layout_entries(
    *,
    layers: list[bytes],
    annotations: dict[str, str] | None = None,
    gzip_layers: bool = True,
    config_extra: dict[str, object] | None = None,
) -> tuple[list[tuple[tarfile.TarInfo, bytes | None]], dict[str, bytes]]:
    """An OCI image layout as tar entries, and its blobs by role."""
    blobs = [gzip.compress(x, mtime=0) if gzip_layers else x for x in layers]
    config = config_for([sha(x) for x in layers], **(config_extra or {}))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar"
                    + ("+gzip" if gzip_layers else ""),
                    "digest": sha(b),
                    "size": len(b),
                }
                for b in blobs
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha(manifest),
                    "size": len(manifest),
                    "annotations": annotations or {},
                }
            ],
        }
    ).encode()
    entries = [
        reg("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        reg("index.json", index),
        directory("blobs/"),
        directory("blobs/sha256/"),
        *(reg("blobs/sha256/" + sha(b)[7:], b) for b in [config, manifest, *blobs]),
    ]
    return entries, {"config": config, "manifest": manifest, "index": index}


@pytest.mark.parametrize(
    ("annotations", "tags"),
    [
        (
            {
                "io.containerd.image.name": "docker.io/library/busybox:latest",
                "org.opencontainers.image.ref.name": "latest",
            },
            ("docker.io/library/busybox:latest",),
        ),
        (
            {"org.opencontainers.image.ref.name": "registry.example/app:1"},
            ("registry.example/app:1",),
        ),
        ({"org.opencontainers.image.ref.name": "latest"}, ()),
        ({}, ()),
    ],
)
def test_oci_layout_is_read(
    tmp_path: Path, annotations: dict[str, str], tags: tuple[str, ...]
) -> None:
    entries, blobs = oci_layout_entries(layers=[LAYER_A, LAYER_B], annotations=annotations)
    [img] = read_archive(write_tar(tmp_path / "oci.tar", entries))
    assert img.config == blobs["config"]
    assert img.repo_tags == tags
    assert [x.media_type for x in img.layers] == ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2
    with img.layers[0].open() as raw:
        assert raw.read(2) == b"\x1f\x8b"  # the member as stored; the caller decompresses
    assert [read_layer(x.open) for x in img.layers] == [LAYER_A, LAYER_B]


def test_docker_25_combined_layout_prefers_manifest_json(tmp_path: Path) -> None:
    entries, blobs = oci_layout_entries(layers=[LAYER_A], gzip_layers=False)
    layer_blob = "blobs/sha256/" + sha(LAYER_A)[7:]
    manifest = [
        {
            "Config": "blobs/sha256/" + sha(blobs["config"])[7:],
            "RepoTags": ["busybox:latest"],
            "Layers": [layer_blob],
        }
    ]
    entries = [e for e in entries if e[0].name != "index.json"]
    entries += [
        reg("index.json", b"{ not even JSON"),
        reg("manifest.json", json.dumps(manifest).encode()),
    ]
    [img] = read_archive(write_tar(tmp_path / "combined.tar", entries))
    assert img.repo_tags == ("busybox:latest",)
    assert img.layers[0].member == layer_blob
    assert read_layer(img.layers[0].open) == LAYER_A


def _platform_index(tmp_path: Path, *, with_arm_blob: bool) -> Path:
    amd_entries, amd = oci_layout_entries(layers=[LAYER_A], gzip_layers=False)
    arm_entries, arm = oci_layout_entries(
        layers=[LAYER_B], gzip_layers=False, config_extra={"architecture": "arm64"}
    )
    inner = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(amd["manifest"]),
                "size": len(amd["manifest"]),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(arm["manifest"]),
                "size": len(arm["manifest"]),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "a" * 64,
                "size": 1,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
    }
    inner_raw = json.dumps(inner).encode()
    outer = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": sha(inner_raw),
                "size": len(inner_raw),
                "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"},
            }
        ],
    }
    blobs = {e[0].name: e for e in amd_entries if e[0].name.startswith("blobs/sha256/")}
    if with_arm_blob:
        blobs.update({e[0].name: e for e in arm_entries if e[0].name.startswith("blobs/sha256/")})
    entries = [
        reg("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        reg("index.json", json.dumps(outer).encode()),
        reg("blobs/sha256/" + sha(inner_raw)[7:], inner_raw),
        *blobs.values(),
    ]
    return write_tar(tmp_path / "multi.tar", entries)


def test_multi_platform_index_picks_the_platform(tmp_path: Path) -> None:
    path = _platform_index(tmp_path, with_arm_blob=True)
    [arm] = read_archive(path, platform="linux/arm64/v8")
    assert json.loads(arm.config)["architecture"] == "arm64"
    assert arm.repo_tags == ("docker.io/library/multi:1",)
    [amd] = read_archive(path, platform="linux/amd64")
    assert read_layer(amd.layers[0].open) == LAYER_A
    with pytest.raises(InvalidArgument, match="multi-platform image"):
        read_archive(path)
    with pytest.raises(InvalidArgument, match="no image for platform linux/s390x"):
        read_archive(path, platform="linux/s390x")


def test_multi_platform_index_with_one_platform_present_needs_no_choice(tmp_path: Path) -> None:
    # What a containerd-store `docker save` of a pulled image holds: the whole index,
    # blobs for the local platform only.
    [img] = read_archive(_platform_index(tmp_path, with_arm_blob=False))
    assert json.loads(img.config)["architecture"] == "amd64"


def test_layers_behind_hardlinks_and_symlinks_are_followed(tmp_path: Path) -> None:
    config = config_for([sha(LAYER_A), sha(LAYER_B), sha(LAYER_A)])
    manifest = [
        {
            "Config": "c.json",
            "RepoTags": None,
            "Layers": ["x/layer.tar", "y/layer.tar", "z/layer.tar"],
        }
    ]
    path = write_tar(
        tmp_path / "links.tar",
        [
            reg("c.json", config),
            reg("manifest.json", json.dumps(manifest).encode()),
            reg("blobs/a", LAYER_A),
            link("x/layer.tar", "../blobs/a"),
            reg("y/layer.tar", LAYER_B),
            link("z/layer.tar", "x/layer.tar", tarfile.LNKTYPE),
        ],
    )
    [img] = read_archive(path)
    assert img.repo_tags == ()
    assert [x.member for x in img.layers] == ["blobs/a", "y/layer.tar", "blobs/a"]
    assert [read_layer(x.open) for x in img.layers] == [LAYER_A, LAYER_B, LAYER_A]


def test_layer_readers_are_independent_and_seekable(saved: tuple[Path, list[ArchiveImage]]) -> None:
    path, _ = saved
    layer = read_archive(path)[0].layers[1]
    with layer.open() as one, layer.open() as two:
        assert one.read(10) == LAYER_B[:10]
        assert two.read() == LAYER_B
        assert one.read() == LAYER_B[10:]
        one.seek(0)
        assert one.read(3) == LAYER_B[:3]
        assert one.seek(0, io.SEEK_END) == len(LAYER_B)
        assert one.read() == b""


def test_archive_replaced_after_reading_is_detected(saved: tuple[Path, list[ArchiveImage]]) -> None:
    path, images = saved
    layer = read_archive(path)[0].layers[0]
    tmp = path.with_suffix(".new")
    with tmp.open("wb") as f:
        write_docker_archive(f, images[:1])
    tmp.replace(path)
    with pytest.raises(BerthError, match="changed"):
        layer.open()
    path.unlink()
    with pytest.raises(BerthError, match="reading image archive"):
        layer.open()


# -- reading: hostile and broken archives -------------------------------------------------------


def _docker_entries(
    *, layers: list[str] | None = None, config_name: str = "c.json", diff_ids: int = 1
) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    config = config_for([sha(LAYER_A)] * diff_ids)
    manifest = [
        {
            "Config": config_name,
            "RepoTags": ["x:1"],
            "Layers": layers if layers is not None else ["l/layer.tar"],
        }
    ]
    return [
        reg("c.json", config),
        reg("manifest.json", json.dumps(manifest).encode()),
        reg("l/layer.tar", LAYER_A),
    ]


def _hostile() -> Iterator[tuple[str, list[tuple[tarfile.TarInfo, bytes | None]], str]]:
    base = _docker_entries()
    yield "dotdot-member", [*base, reg("../evil", b"x")], "invalid member path '../evil'"
    yield "dotdot-inside-member", [*base, reg("a/../../evil", b"x")], "invalid member path"
    yield "absolute-member", [*base, reg("/etc/evil", b"x")], "invalid member path '/etc/evil'"
    yield "absolute-symlink-member", [*base, link("/abs", "x")], "invalid member path"
    yield (
        "missing-layer",
        _docker_entries(layers=["nope/layer.tar"]),
        "layer 'nope/layer.tar' is missing",
    )
    yield (
        "missing-config",
        _docker_entries(config_name="gone.json"),
        "config 'gone.json' is missing",
    )
    yield "dotdot-layer-ref", _docker_entries(layers=["../l/layer.tar"]), "invalid layer path"
    yield "absolute-layer-ref", _docker_entries(layers=["/l/layer.tar"]), "invalid layer path"
    yield "dotdot-config-ref", _docker_entries(config_name="../c.json"), "invalid config path"
    yield (
        "symlink-out",
        [*_docker_entries(layers=["s/layer.tar"]), link("s/layer.tar", "../../outside")],
        "links outside the archive",
    )
    yield (
        "absolute-symlink",
        [*_docker_entries(layers=["s/layer.tar"]), link("s/layer.tar", "/etc/passwd")],
        "links outside the archive",
    )
    yield (
        "symlink-loop",
        [*_docker_entries(layers=["s/layer.tar"]), link("s/layer.tar", "layer.tar")],
        "too many levels",
    )
    yield (
        "hardlink-out",
        [*_docker_entries(layers=["h"]), link("h", "../etc/passwd", tarfile.LNKTYPE)],
        "invalid layer link target path",
    )
    yield (
        "layer-is-a-dir",
        [*_docker_entries(layers=["d"]), directory("d")],
        "is not a regular file",
    )
    yield (
        "diff-id-count",
        _docker_entries(diff_ids=2),
        "lists 1 layers but config 'c.json' has 2 diff_ids",
    )
    yield "duplicate", [*base, reg("l/layer.tar", LAYER_B)], "duplicate member 'l/layer.tar'"
    yield "bad-config", [reg("c.json", b"{"), *base[1:]], "invalid JSON"
    yield (
        "config-without-rootfs",
        [reg("c.json", b'{"os": "linux"}'), *base[1:]],
        "no rootfs.diff_ids",
    )
    yield "manifest-not-list", [base[0], reg("manifest.json", b"{}"), base[2]], "not a list"
    yield (
        "manifest-entry-without-config",
        [base[0], reg("manifest.json", b'[{"Layers": []}]'), base[2]],
        "has no Config",
    )
    yield (
        "manifest-bad-tags",
        [base[0], reg("manifest.json", b'[{"Config": "c.json", "RepoTags": "x", "Layers": []}]')],
        "RepoTags",
    )
    yield "neither-format", [reg("repositories", b"{}")], "neither manifest.json"
    yield "manifest-bad-json", [base[0], reg("manifest.json", b"[{"), base[2]], "invalid JSON"
    yield "manifest-entry-not-object", [base[0], reg("manifest.json", b"[1]")], "not an object"
    yield (
        "manifest-layers-not-strings",
        [base[0], reg("manifest.json", b'[{"Config": "c.json", "Layers": [1]}]')],
        "Layers is not a list of strings",
    )
    yield "root-entry-not-a-dir", [*base, reg("./", b"")], "invalid member"
    oci, blobs = oci_layout_entries(layers=[LAYER_A])
    manifest_name = "blobs/sha256/" + sha(blobs["manifest"])[7:]
    yield (
        "oci-manifest-digest-mismatch",
        [reg(e[0].name, b"{}") if e[0].name == manifest_name else e for e in oci],
        "does not match its digest",
    )
    yield (
        "oci-without-layout",
        [e for e in oci if e[0].name != "oci-layout"],
        "without an oci-layout",
    )
    index = json.loads(blobs["index"])
    index["manifests"][0]["digest"] = "sha256:../../../etc/passwd"
    yield (
        "oci-bad-digest",
        [
            reg("index.json", json.dumps(index).encode()) if e[0].name == "index.json" else e
            for e in oci
        ],
        "unsupported digest",
    )
    layer_name = next(e[0].name for e in oci if e[1] and e[1].startswith(b"\x1f\x8b"))
    yield (
        "oci-missing-layer",
        [e for e in oci if e[0].name != layer_name],
        "layer blob .* is missing",
    )
    yield (
        "oci-layout-version",
        [
            reg("oci-layout", b'{"imageLayoutVersion": "2.0.0"}')
            if e[0].name == "oci-layout"
            else e
            for e in oci
        ],
        "unsupported OCI layout version '2.0.0'",
    )
    yield (
        "oci-index-without-manifests",
        [
            reg("index.json", b'{"schemaVersion": 2}') if e[0].name == "index.json" else e
            for e in oci
        ],
        "index.json has no manifests list",
    )
    changes: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
        ("no-config", lambda m: m.pop("config"), "has no config"),
        ("no-layers", lambda m: m.pop("layers"), "has no layers list"),
        (
            "layer-count",
            lambda m: m["layers"].append(m["layers"][0]),
            "lists 2 layers but its config has 1",
        ),
        ("layer-media-type", lambda m: m["layers"][0].pop("mediaType"), "has no mediaType"),
        ("layer-size", lambda m: m["layers"][0].__setitem__("size", 1), "its descriptor says 1"),
    ]
    for label, change, message in changes:
        changed = json.loads(blobs["manifest"])
        change(changed)
        yield (
            f"oci-manifest-{label}",
            _with_manifest(oci, blobs, json.dumps(changed).encode()),
            message,
        )
    yield (
        "oci-manifest-not-json",
        _with_manifest(oci, blobs, b"[not json"),
        "image manifest: invalid JSON",
    )
    yield (
        "oci-manifest-not-object",
        _with_manifest(oci, blobs, b"[]"),
        "image manifest is not a JSON object",
    )
    # Indexes nested past the limit (a loop of indexes would be cut the same way).
    nested = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    for _ in range(8):
        oci = [*oci, reg("blobs/sha256/" + sha(nested)[7:], nested)]
        outer = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": sha(nested),
                    "size": len(nested),
                }
            ],
        }
        nested = json.dumps(outer).encode()
    yield (
        "oci-nested-too-deep",
        [reg("index.json", nested) if e[0].name == "index.json" else e for e in oci],
        "nested too deep",
    )


def _with_manifest(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], blobs: dict[str, bytes], manifest: bytes
) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """``entries`` with the image manifest replaced (and index.json pointing at it)."""
    index = json.loads(blobs["index"])
    index["manifests"][0].update(digest=sha(manifest), size=len(manifest))
    old = "blobs/sha256/" + sha(blobs["manifest"])[7:]
    out = [e for e in entries if e[0].name not in (old, "index.json")]
    return [
        *out,
        reg("index.json", json.dumps(index).encode()),
        reg("blobs/sha256/" + sha(manifest)[7:], manifest),
    ]


@pytest.mark.parametrize(
    ("entries", "message"), [pytest.param(e, m, id=i) for i, e, m in _hostile()]
)
def test_hostile_or_broken_archives_are_refused(
    tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]], message: str
) -> None:
    path = write_tar(tmp_path / "bad.tar", entries)
    with pytest.raises(InvalidArgument, match=message):
        read_archive(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a tar file"),
        (b"hello world" * 100, "not a tar file"),
        (gzip.compress(b"x" * 100), "gzip-compressed: decompress it first"),
        (b"\x28\xb5\x2f\xfd" + bytes(60), "zstd-compressed"),
        (bz2.compress(b"x" * 100), "bzip2-compressed"),
        (lzma.compress(b"x" * 100), "xz-compressed"),
    ],
)
def test_non_tar_input_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(content)
    with pytest.raises(InvalidArgument, match=message):
        read_archive(path)


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    whole = write_tar(tmp_path / "whole.tar", _docker_entries()).read_bytes()
    with tarfile.open(tmp_path / "whole.tar") as tar:
        layer = tar.getmember("l/layer.tar")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: layer.offset_data + 10])  # the last member loses its data
    with pytest.raises(InvalidArgument, match="unexpected end of data"):
        read_archive(cut)
    cut.write_bytes(whole[: layer.offset + 100])  # ... or its header
    with pytest.raises(InvalidArgument, match="is missing"):  # tarfile stops at a cut header
        read_archive(cut)


def test_missing_or_special_archive_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        read_archive(tmp_path / "absent.tar")
    with pytest.raises(InvalidArgument, match="not a regular file"):
        read_archive(tmp_path)


# -- cross-checks with skopeo and umoci ------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI (apt-get install -y skopeo umoci)")
        pytest.skip(f"{name} is not installed (apt-get install -y {name})")
    return path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _tar_dir(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(src)), recursive=False)
    return out


@pytest.mark.slow
def test_skopeo_accepts_our_archive(saved: tuple[Path, list[ArchiveImage]], tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    path, images = saved
    out = json.loads(_run(skopeo, "inspect", f"docker-archive:{path}:busybox:latest"))
    assert out["Layers"] == [x.diff_id for x in images[0].layers]
    assert out["Architecture"] == "amd64"
    raw = _run(
        skopeo, "inspect", "--config", "--raw", f"docker-archive:{path}:localhost:5000/team/app:v2"
    )
    assert raw.encode() == images[1].config
    # and converts it to an OCI archive that we read back to the same image and layer bytes
    oci = tmp_path / "oci.tar"
    _run(
        skopeo,
        "--insecure-policy",
        "copy",
        f"docker-archive:{path}:busybox:latest",
        f"oci-archive:{oci}:busybox:latest",
    )
    [img] = read_archive(oci)
    # skopeo rewrites the config as an OCI config; the rootfs survives
    assert json.loads(img.config)["rootfs"] == json.loads(images[0].config)["rootfs"]
    assert img.repo_tags == ("busybox:latest",)
    assert [read_layer(x.open) for x in img.layers] == [LAYER_A, LAYER_B, LAYER_A]


@pytest.mark.slow
def test_we_read_skopeo_and_umoci_output(tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    umoci = _tool("umoci")
    layout = tmp_path / "layout"
    bundle = tmp_path / "bundle"
    _run(umoci, "init", "--layout", str(layout))
    _run(umoci, "new", "--image", f"{layout}:v1")
    _run(umoci, "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle))
    (bundle / "rootfs/etc").mkdir(parents=True)
    (bundle / "rootfs/etc/hello").write_bytes(b"from umoci\n")
    _run(umoci, "repack", "--image", f"{layout}:v1", str(bundle))
    _run(umoci, "config", "--image", f"{layout}:v1", "--config.cmd", "/bin/true")

    # umoci's own layout, as a tarball (the bare tag "v1" names no repository)
    [from_umoci] = read_archive(_tar_dir(layout, tmp_path / "umoci.tar"))
    assert from_umoci.repo_tags == ()
    assert from_umoci.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"

    # skopeo's docker-archive of it: root-level <hex>.tar layers, legacy symlink dirs
    archive = tmp_path / "skopeo.tar"
    _run(
        skopeo,
        "--insecure-policy",
        "copy",
        f"oci:{layout}:v1",
        f"docker-archive:{archive}:example.com/app:v1",
    )
    [from_skopeo] = read_archive(archive)
    assert from_skopeo.repo_tags in (("example.com/app:v1",), ("docker.io/example.com/app:v1",))
    assert from_skopeo.config == from_umoci.config
    for loaded in (from_umoci, from_skopeo):
        diff_ids = json.loads(loaded.config)["rootfs"]["diff_ids"]
        assert [x.diff_id for x in loaded.layers] == diff_ids
        tars = [read_layer(x.open) for x in loaded.layers]
        assert [sha(t) for t in tars] == diff_ids
    dest = tmp_path / "rootfs"
    dest.mkdir()
    for layer in from_skopeo.layers:
        with layer.open() as raw:
            unpack_layer(open_layer_stream(raw), dest)
    assert (dest / "etc/hello").read_bytes() == b"from umoci\n"


def test_oci_entries_naming_one_manifest_are_one_image(tmp_path: Path) -> None:
    entries, blobs = oci_layout_entries(layers=[LAYER_A])
    index = json.loads(blobs["index"])
    first = index["manifests"][0]
    index["manifests"] = [
        {**first, "annotations": {"io.containerd.image.name": "docker.io/library/a:1"}},
        {**first, "annotations": {"io.containerd.image.name": "docker.io/library/b:2"}},
        {**first, "annotations": {"io.containerd.image.name": "docker.io/library/a:1"}},
        {"mediaType": "application/vnd.in-toto+json", "digest": sha(b"x"), "size": 1},
    ]
    entries = [
        reg("index.json", json.dumps(index).encode()) if e[0].name == "index.json" else e
        for e in entries
    ]
    [img] = read_archive(write_tar(tmp_path / "two-names.tar", entries))
    assert img.repo_tags == ("docker.io/library/a:1", "docker.io/library/b:2")


def test_v1_json_keeps_the_rarer_fields() -> None:
    config: dict[str, object] = {
        "container": "0123abcd",
        "config": {"NetworkDisabled": True, "MacAddress": "02:42:ac:11:00:02", "Healthcheck": {}},
        "os": "linux",
        "Size": 1234,
        "rootfs": {"diff_ids": [sha(LAYER_A)]},
    }
    [(_, raw)] = legacy_layer_ids(config)
    doc = json.loads(raw)
    assert list(doc) == ["id", "created", "container", "container_config", "config", "os", "Size"]
    assert doc["container"] == "0123abcd"
    assert doc["Size"] == 1234
    assert doc["config"]["NetworkDisabled"] is True
    assert doc["config"]["MacAddress"] == "02:42:ac:11:00:02"
    assert doc["config"]["Healthcheck"] == {}


def test_go_json_refuses_what_json_cannot_say() -> None:
    assert go_json([1.5]) == b"[1.5]"
    with pytest.raises(TypeError):
        go_json({"x": object()})


def test_layer_reader_refuses_negative_seeks(saved: tuple[Path, list[ArchiveImage]]) -> None:
    path, _ = saved
    with read_archive(path)[0].layers[0].open() as raw, pytest.raises(OSError, match="negative"):
        raw.seek(-1)


def test_loaded_image_id_is_the_config_digest() -> None:
    assert LoadedImage(config=b"{}", repo_tags=(), layers=()).id == sha(b"{}")
