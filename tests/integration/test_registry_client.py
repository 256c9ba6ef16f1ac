"""The registry client against a real registry (Debian's docker-registry, distribution 2.8)
on 127.0.0.1: uploads, mounts, manifests and indexes, verified and resumed downloads,
paging, errors, htpasswd auth. Needs only the registry binary (and htpasswd), not root.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.errors import NotFound, Unauthorized
from supervisor.images.registry import manifest as m
from supervisor.images.registry.auth import Credentials
from supervisor.images.registry.client import RegistryClient
from supervisor.images.registry.manifest import (
    Descriptor,
    DigestMismatch,
    Index,
    Manifest,
    Platform,
    build_index,
    build_manifest,
    digest_of,
    parse_manifest,
    select_platform,
)
from tests.registry import RunningRegistry, registry_available, running_registry

USER, PASSWORD = "berth", "s3cret-pass"


def _require_registry() -> None:
    if not registry_available() and os.environ.get("CI") != "true":
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")


@pytest.fixture(scope="module")
def registry() -> Iterator[RunningRegistry]:
    _require_registry()
    with running_registry() as reg:
        yield reg


@pytest.fixture(scope="module")
def auth_registry() -> Iterator[RunningRegistry]:
    _require_registry()
    with running_registry(auth=(USER, PASSWORD)) as reg:
        yield reg


def write(path: Path, data: bytes) -> tuple[Path, str, int]:
    path.write_bytes(data)
    return path, digest_of(data), len(data)


def pseudo_random(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


async def push_image(
    client: RegistryClient, repo: str, tag: str, tmp_path: Path, seed: int
) -> tuple[bytes, str]:
    """Push a config + one layer + a schema2 manifest; return (manifest bytes, digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = pseudo_random(50_000, seed)
    for name, data in (("config", config), ("layer", layer)):
        path, digest, size = write(tmp_path / f"{name}-{seed}", data)
        if await client.blob_exists(repo, digest, push=True) is None:
            await client.upload_blob(repo, path, digest, size)
    raw, media_type = build_manifest(
        Descriptor(m.DOCKER_CONFIG, digest_of(config), len(config)),
        [Descriptor(m.DOCKER_LAYER, digest_of(layer), len(layer))],
    )
    digest = await client.put_manifest(repo, tag, raw, media_type)
    return raw, digest


# -- blobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 65536], ids=["monolithic", "chunked"])
async def test_upload_then_head_and_fetch(
    registry: RunningRegistry, tmp_path: Path, chunk_size: int | None
) -> None:
    data = os.urandom(300_000)
    path, digest, size = write(tmp_path / "blob", data)
    progress: list[tuple[int, int]] = []
    async with RegistryClient(registry.address) as client:
        assert await client.blob_exists("up/load", digest) is None
        stored = await client.upload_blob(
            "up/load",
            path,
            digest,
            size,
            progress=lambda d, t: progress.append((d, t)),
            chunk_size=chunk_size,
        )
        assert stored == digest
        assert await client.blob_exists("up/load", digest) == size
        dest = tmp_path / "download.partial"
        assert await client.fetch_blob("up/load", digest, dest, size=size) == size
    assert dest.read_bytes() == data
    assert progress[-1] == (size, size)


async def test_upload_with_wrong_digest_refused_by_registry(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    path, _digest, size = write(tmp_path / "blob", b"hello")
    async with RegistryClient(registry.address) as client:
        with pytest.raises(
            Exception, match="digest invalid: provided digest did not match uploaded content"
        ):
            await client.upload_blob("bad/digest", path, digest_of(b"other"), size)


async def test_mount_between_repositories(registry: RunningRegistry, tmp_path: Path) -> None:
    path, digest, size = write(tmp_path / "blob", os.urandom(1000))
    async with RegistryClient(registry.address) as client:
        await client.upload_blob("mount/source", path, digest, size)
        assert await client.blob_exists("mount/target", digest) is None
        assert await client.mount_blob("mount/target", digest, "mount/source") is True
        assert await client.blob_exists("mount/target", digest) == size
        unknown = digest_of(b"never uploaded")
        assert await client.mount_blob("mount/target", unknown, "mount/source") is False


async def test_fetch_tampered_blob_is_digest_mismatch(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    data = os.urandom(20_000)
    path, digest, size = write(tmp_path / "blob", data)
    async with RegistryClient(registry.address) as client:
        await client.upload_blob("tamper/me", path, digest, size)
        stored = registry.blob_data_path(digest)
        assert stored.read_bytes() == data
        stored.write_bytes(bytes(b ^ 0xFF for b in data[:10]) + data[10:])  # same size
        dest = tmp_path / "download.partial"
        with pytest.raises(DigestMismatch, match=f"digest mismatch for blob {digest}"):
            await client.fetch_blob("tamper/me", digest, dest, size=size)
    assert not dest.exists()
    assert not (tmp_path / "download").exists()


async def test_fetch_resumes_partial_download_with_range(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    path, digest, size = write(tmp_path / "blob", data)
    async with RegistryClient(registry.address) as client:
        await client.upload_blob("resume/me", path, digest, size)
        dest = tmp_path / "download.partial"
        dest.write_bytes(data[: size // 2])
        progress: list[int] = []
        received = await client.fetch_blob(
            "resume/me", digest, dest, size=size, progress=lambda d, t: progress.append(d)
        )
    assert received == size - size // 2  # only the second half came over the wire
    assert progress[0] > size // 2
    assert dest.read_bytes() == data


async def test_fetch_unknown_blob_not_found(registry: RunningRegistry, tmp_path: Path) -> None:
    missing = digest_of(b"missing")
    async with RegistryClient(registry.address) as client:
        with pytest.raises(NotFound, match="blob unknown: blob unknown to registry"):
            await client.fetch_blob("nothing/here", missing, tmp_path / "p")


# -- manifests -------------------------------------------------------------------------------


async def test_schema2_manifest_by_tag_and_digest(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    async with RegistryClient(registry.address) as client:
        raw, digest = await push_image(client, "img/schema2", "v1", tmp_path, seed=1)
        assert digest == digest_of(raw)
        got_raw, media_type, got_digest = await client.get_manifest("img/schema2", "v1")
        assert (got_raw, media_type, got_digest) == (raw, m.DOCKER_MANIFEST, digest)
        by_digest = await client.get_manifest("img/schema2", digest)
        assert by_digest == (raw, m.DOCKER_MANIFEST, digest)
        head = await client.head_manifest("img/schema2", "v1")
        assert head is not None
        assert (head.media_type, head.digest, head.size) == (m.DOCKER_MANIFEST, digest, len(raw))
        parsed = parse_manifest(got_raw, media_type)
        assert isinstance(parsed, Manifest)
        assert await client.blob_exists("img/schema2", parsed.layers[0].digest) == 50_000


async def test_oci_index_and_platform_selection(registry: RunningRegistry, tmp_path: Path) -> None:
    async with RegistryClient(registry.address) as client:
        amd_raw, amd_digest = await push_image(client, "img/multi", "amd64", tmp_path, seed=2)
        arm_raw, arm_digest = await push_image(client, "img/multi", "arm64", tmp_path, seed=3)
        index_raw, index_type = build_index(
            [
                Descriptor(
                    m.DOCKER_MANIFEST, amd_digest, len(amd_raw), platform=Platform("linux", "amd64")
                ),
                Descriptor(
                    m.DOCKER_MANIFEST,
                    arm_digest,
                    len(arm_raw),
                    platform=Platform("linux", "arm64", "v8"),
                ),
            ]
        )
        index_digest = await client.put_manifest("img/multi", "latest", index_raw, index_type)
        raw, media_type, digest = await client.get_manifest("img/multi", "latest")
        assert (media_type, digest) == (m.OCI_INDEX, index_digest)
        index = parse_manifest(raw, media_type)
        assert isinstance(index, Index)
        chosen = select_platform(index, architecture="aarch64")
        assert chosen.digest == arm_digest
        assert (await client.get_manifest("img/multi", chosen.digest))[0] == arm_raw
        with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
            select_platform(index, architecture="s390x")


async def test_manifest_not_found_message(registry: RunningRegistry) -> None:
    async with RegistryClient(registry.address) as client:
        with pytest.raises(NotFound) as info:
            await client.get_manifest("x", "nope")
        assert await client.head_manifest("x", "nope") is None
    assert str(info.value) == (
        f"manifest for {registry.address}/x:nope not found: manifest unknown: manifest unknown"
    )


async def test_put_manifest_with_unknown_blob_refused(registry: RunningRegistry) -> None:
    raw, media_type = build_manifest(
        Descriptor(m.DOCKER_CONFIG, digest_of(b"no config"), 9),
        [Descriptor(m.DOCKER_LAYER, digest_of(b"no layer"), 8)],
    )
    async with RegistryClient(registry.address) as client:
        with pytest.raises(Exception, match="blob unknown"):
            await client.put_manifest("img/broken", "v1", raw, media_type)


# -- listings --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_catalog_pagination_and_tags(registry: RunningRegistry, tmp_path: Path) -> None:
    async with RegistryClient(registry.address) as client:
        for i in range(5):
            await push_image(client, f"page/r{i}", "t1", tmp_path, seed=10 + i)
        await push_image(client, "page/r0", "t2", tmp_path, seed=10)
        everything = await client.catalog()
        paged = await client.catalog(page_size=2)
        assert paged == everything
        assert {f"page/r{i}" for i in range(5)} <= set(everything)
        assert await client.catalog(3, page_size=2) == everything[:3]
        assert await client.tags("page/r0") == ["t1", "t2"]
        with pytest.raises(NotFound, match="name unknown"):
            await client.tags("page/none")
        assert await client.search_v1("page", 10) is None  # distribution has no v1 search


# -- htpasswd --------------------------------------------------------------------------------


async def test_htpasswd_without_credentials_unauthorized(auth_registry: RunningRegistry) -> None:
    async with RegistryClient(auth_registry.address) as client:
        with pytest.raises(Unauthorized) as info:
            await client.get_manifest("secret/app", "v1")
        with pytest.raises(Unauthorized):
            await client.login()
    assert str(info.value) == "unauthorized: authentication required"


async def test_htpasswd_wrong_credentials_unauthorized(auth_registry: RunningRegistry) -> None:
    async with RegistryClient(
        auth_registry.address, credentials=Credentials(USER, "wrong")
    ) as client:
        with pytest.raises(Unauthorized, match="unauthorized: authentication required"):
            await client.tags("secret/app")
        with pytest.raises(Unauthorized):
            await client.login()


async def test_htpasswd_right_credentials_work(
    auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    credentials = Credentials(USER, PASSWORD, serveraddress=auth_registry.address)
    async with RegistryClient(auth_registry.address, credentials=credentials) as client:
        assert await client.login() is None
        raw, digest = await push_image(client, "secret/app", "v1", tmp_path, seed=42)
        assert await client.get_manifest("secret/app", "v1") == (raw, m.DOCKER_MANIFEST, digest)
        assert await client.tags("secret/app") == ["v1"]
        assert "secret/app" in await client.catalog()
        # One connection carried it all (keep-alive), and Basic was learnt once.
        assert client.http.connections_opened == 1
