"""Tests for supervisor.images.registry.client against FakeRegistry: the Bearer token flow
(which the real registry only offers with a signed-JWT token server), redirects to
storage, tampered and resumed downloads, error mapping.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from supervisor.errors import BerthError, Forbidden, NotFound, Unauthorized
from supervisor.images.registry import manifest as m
from supervisor.images.registry.auth import Credentials
from supervisor.images.registry.client import RegistryClient
from supervisor.images.registry.http import ConnectionFailed
from supervisor.images.registry.manifest import DigestMismatch
from tests.unit.images.registry.fakeserver import (
    FakeRegistry,
    FakeServer,
    Reply,
    Request,
    error_reply,
    json_reply,
    serve,
    serve_registry,
    sha256,
)

BLOB = bytes(range(256)) * 40  # 10 KiB
BLOB_DIGEST = sha256(BLOB)
MANIFEST_RAW = (
    b'{"schemaVersion":2,"mediaType":"'
    + m.OCI_MANIFEST.encode()
    + b'","config":{"mediaType":"x","digest":"'
    + BLOB_DIGEST.encode()
    + b'","size":1},"layers":[]}'
)


@asynccontextmanager
async def registry_and_client(
    registry: FakeRegistry, credentials: Credentials | None = None
) -> AsyncIterator[tuple[FakeServer, RegistryClient]]:
    registry.blobs.setdefault(BLOB_DIGEST, BLOB)
    registry.manifests.setdefault(("app", "v1"), (MANIFEST_RAW, m.OCI_MANIFEST))
    async with (
        serve_registry(registry) as server,
        RegistryClient(server.address, credentials=credentials) as client,
    ):
        yield server, client


def authorizations(server: FakeServer, path_prefix: str = "/v2/") -> list[str | None]:
    return [
        r.headers.get("authorization") for r in server.requests if r.path.startswith(path_prefix)
    ]


# -- Bearer token flow ------------------------------------------------------------------------


async def test_bearer_flow_fetches_token_with_basic_credentials_and_caches_it() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "s3cret")) as (server, client):
        raw, media_type, digest = await client.get_manifest("app", "v1")
        assert (raw, media_type, digest) == (MANIFEST_RAW, m.OCI_MANIFEST, sha256(MANIFEST_RAW))
        assert await client.blob_exists("app", BLOB_DIGEST) == len(BLOB)
        await client.get_manifest("app", "v1")
    assert len(registry.token_requests) == 1  # cached for the scope
    token_request = registry.token_requests[0]
    assert token_request.method == "GET"
    assert token_request.query == {
        "service": ["fake-registry"],
        "scope": ["repository:app:pull"],
        "account": ["alice"],
    }
    assert (
        token_request.headers["authorization"]
        == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    )
    first, *rest = authorizations(server)
    assert first is None  # the first request learns the challenge
    assert all(value is not None and value.startswith("Bearer tok-") for value in rest)


async def test_bearer_anonymous_token_for_public_pull() -> None:
    registry = FakeRegistry(users={"alice": "x"}, anonymous_pull=True)
    async with registry_and_client(registry) as (_server, client):
        assert (await client.get_manifest("app", "v1"))[0] == MANIFEST_RAW
    assert "authorization" not in registry.token_requests[0].headers


async def test_bearer_wrong_password_unauthorized_with_token_server_message() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "wrong")) as (server, client):
        with pytest.raises(Unauthorized) as info:
            await client.get_manifest("app", "v1")
    # Go reports the token server's refusal as the error of the request that needed it.
    assert str(info.value) == (
        f'Get "http://{server.address}/v2/app/manifests/v1": '
        "unauthorized: incorrect username or password"
    )


async def test_bearer_identity_token_posts_refresh_grant() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"}, refresh_tokens={"refresh-alice": "alice"})
    async with registry_and_client(registry, Credentials(identitytoken="refresh-alice")) as (
        _s,
        client,
    ):
        assert (await client.get_manifest("app", "v1"))[0] == MANIFEST_RAW
    request = registry.token_requests[0]
    assert request.method == "POST"
    form = urllib.parse.parse_qs(request.body.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["scope"] == ["repository:app:pull"]
    assert "authorization" not in request.headers


async def test_registry_token_is_used_as_bearer_without_token_server() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    registry.tokens["pre-issued"] = ("alice", "repository:app:pull")
    async with registry_and_client(registry, Credentials(registrytoken="pre-issued")) as (
        server,
        client,
    ):
        assert (await client.get_manifest("app", "v1"))[0] == MANIFEST_RAW
    assert registry.token_requests == []
    assert authorizations(server)[-1] == "Bearer pre-issued"


async def test_push_token_also_serves_pull() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "s3cret")) as (_server, client):
        assert await client.blob_exists("app", BLOB_DIGEST, push=True) == len(BLOB)
        await client.get_manifest("app", "v1")
        assert await client.put_manifest("app", "v2", MANIFEST_RAW, m.OCI_MANIFEST) == sha256(
            MANIFEST_RAW
        )
    assert [r.query["scope"] for r in registry.token_requests] == [["repository:app:pull,push"]]


async def test_rejected_token_is_fetched_again_once() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "s3cret")) as (_server, client):
        await client.get_manifest("app", "v1")
        registry.revoke_next = True
        assert (await client.get_manifest("app", "v1"))[0] == MANIFEST_RAW
    assert len(registry.token_requests) == 2


async def test_token_without_enough_scope_is_unauthorized_with_registry_message() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"}, anonymous_pull=True)
    async with registry_and_client(registry) as (_server, client):
        with pytest.raises(Unauthorized) as info:
            await client.put_manifest("app", "v2", MANIFEST_RAW, m.OCI_MANIFEST)
    assert str(info.value) == "unauthorized: authentication required"


async def test_mount_asks_one_token_for_both_repositories() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "s3cret")) as (server, client):
        assert await client.mount_blob("other", BLOB_DIGEST, "app") is True
        missing = "sha256:" + "0" * 64
        assert await client.mount_blob("other", missing, "app") is False
    assert registry.token_requests[0].query["scope"] == [
        "repository:app:pull",
        "repository:other:pull,push",
    ]
    assert registry.uploads == {}  # the session opened instead of a mount was cancelled
    assert [r.method for r in server.requests if "/uploads/" in r.path][-1] == "DELETE"


async def test_login_bearer_returns_identity_token() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "s3cret")) as (_server, client):
        assert await client.login() == "refresh-alice"
    assert registry.token_requests[0].query["offline_token"] == ["true"]


async def test_login_bearer_wrong_password() -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    async with registry_and_client(registry, Credentials("alice", "nope")) as (_server, client):
        with pytest.raises(Unauthorized, match="incorrect username or password"):
            await client.login()


async def test_login_open_registry_returns_none() -> None:
    async with registry_and_client(FakeRegistry()) as (_server, client):
        assert await client.login() is None


# -- Basic auth ----------------------------------------------------------------------------------


def basic_only(request: Request) -> Reply:
    expected = "Basic " + base64.b64encode(b"bob:pw").decode()
    if request.headers.get("authorization") != expected:
        return error_reply(
            401,
            "UNAUTHORIZED",
            "authentication required",
            [("WWW-Authenticate", 'Basic realm="basic-realm"')],
        )
    if request.path == "/v2/":
        return json_reply(200, {})
    return json_reply(200, {"name": "x", "tags": ["a"]})


@pytest.mark.parametrize(
    ("credentials", "outcome"),
    [
        (None, "unauthorized: authentication required"),
        (Credentials("bob", "bad"), "unauthorized: authentication required"),
        (Credentials("bob", "pw"), None),
    ],
    ids=["none", "wrong", "right"],
)
async def test_basic_challenge(credentials: Credentials | None, outcome: str | None) -> None:
    async with (
        serve(basic_only) as server,
        RegistryClient(server.address, credentials=credentials) as client,
    ):
        if outcome is None:
            assert await client.tags("x") == ["a"]
            assert await client.tags("x") == ["a"]
            assert await client.login() is None
            # Once Basic is known it is sent up front: one 401 in all.
            assert [r.headers.get("authorization") is None for r in server.requests].count(
                True
            ) == 2
        else:
            with pytest.raises(Unauthorized) as info:
                await client.tags("x")
            assert str(info.value) == outcome
            with pytest.raises(Unauthorized):
                await client.login()


# -- errors ----------------------------------------------------------------------------------


async def test_manifest_not_found_docker_message() -> None:
    async with registry_and_client(FakeRegistry()) as (server, client):
        with pytest.raises(NotFound) as info:
            await client.get_manifest("app", "nope")
        assert str(info.value) == (
            f"manifest for {server.address}/app:nope not found: manifest unknown: manifest unknown"
        )
        assert await client.head_manifest("app", "nope") is None


def test_familiar_names_for_docker_hub() -> None:
    client = RegistryClient("docker.io")
    assert client._familiar("library/busybox", "nope") == "busybox:nope"
    assert client._familiar("user/app", "sha256:" + "a" * 64) == "user/app@sha256:" + "a" * 64
    assert client.origin.host == "registry-1.docker.io"
    assert client.search_origin.host == "index.docker.io"


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (
            error_reply(403, "DENIED", "requested access to the resource is denied"),
            NotFound,  # Docker's pull turns DENIED into a 404 with a hint to log in
            "repository does not exist or may require 'docker login': "
            "denied: requested access to the resource is denied",
        ),
        (
            Reply(500, [], b"oops"),
            BerthError,
            "received unexpected HTTP status: 500 Internal Server Error",
        ),
        (
            error_reply(429, "TOOMANYREQUESTS", "You have reached your pull rate limit."),
            BerthError,
            "toomanyrequests: You have reached your pull rate limit.",
        ),
        (
            error_reply(401, "UNAUTHORIZED", "no challenge"),
            Unauthorized,
            "unauthorized: no challenge",
        ),
    ],
    ids=["403", "500", "429", "401-without-challenge"],
)
async def test_status_maps_to_error_class(
    reply: Reply, error: type[BerthError], message: str
) -> None:
    async with serve(lambda r: reply) as server, RegistryClient(server.address) as client:
        with pytest.raises(error) as info:
            await client.get_manifest("app", "v1")
    assert message in str(info.value)
    assert type(info.value) is error


async def test_connection_refused_names_registry() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with RegistryClient(f"127.0.0.1:{port}") as client:
            with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}.*connection refused"):
                await client.get_manifest("app", "v1")


async def test_invalid_names_rejected_before_any_request() -> None:
    async with RegistryClient("127.0.0.1:1") as client:
        with pytest.raises(BerthError, match="invalid repository name"):
            await client.get_manifest("../x", "v1")
        with pytest.raises(BerthError, match="invalid tag or digest"):
            await client.get_manifest("x", "a/b")
        with pytest.raises(BerthError, match="invalid digest"):
            await client.blob_exists("x", "sha256:short")


# -- manifests -------------------------------------------------------------------------------


async def test_get_manifest_by_digest_verifies_bytes() -> None:
    registry = FakeRegistry()
    async with registry_and_client(registry) as (_server, client):
        digest = sha256(MANIFEST_RAW)
        registry.manifests[("app", digest)] = (MANIFEST_RAW, m.OCI_MANIFEST)
        assert (await client.get_manifest("app", digest))[2] == digest
        other = "sha256:" + "e" * 64
        registry.manifests[("app", other)] = (MANIFEST_RAW, m.OCI_MANIFEST)
        with pytest.raises(DigestMismatch, match=f"expected {other}"):
            await client.get_manifest("app", other)


async def test_get_manifest_wrong_announced_digest_is_mismatch() -> None:
    def lying(request: Request) -> Reply:
        return Reply(
            200,
            [("Content-Type", m.OCI_MANIFEST), ("Docker-Content-Digest", "sha256:" + "f" * 64)],
            MANIFEST_RAW,
        )

    async with serve(lying) as server, RegistryClient(server.address) as client:
        with pytest.raises(DigestMismatch):
            await client.get_manifest("app", "v1")


async def test_get_manifest_generic_content_type_and_no_digest_header() -> None:
    async with (
        serve(lambda r: Reply(200, [("Content-Type", "application/json")], MANIFEST_RAW)) as server,
        RegistryClient(server.address) as client,
    ):
        raw, media_type, digest = await client.get_manifest("app", "v1")
    assert (media_type, digest) == (m.OCI_MANIFEST, sha256(raw))
    assert server.requests[0].headers["accept"] == ", ".join(m.MANIFEST_ACCEPT)


async def test_head_manifest() -> None:
    async with registry_and_client(FakeRegistry()) as (_server, client):
        head = await client.head_manifest("app", "v1")
    assert head is not None
    assert (head.media_type, head.digest, head.size) == (
        m.OCI_MANIFEST,
        sha256(MANIFEST_RAW),
        len(MANIFEST_RAW),
    )


async def test_put_manifest_by_wrong_digest_refused_locally() -> None:
    async with registry_and_client(FakeRegistry()) as (server, client):
        with pytest.raises(DigestMismatch):
            await client.put_manifest("app", "sha256:" + "0" * 64, MANIFEST_RAW, m.OCI_MANIFEST)
        assert not [r for r in server.requests if r.method == "PUT"]


# -- blob downloads ----------------------------------------------------------------------------


async def test_fetch_blob_follows_redirect_to_storage_without_token(tmp_path: Path) -> None:
    def storage(request: Request) -> Reply:
        assert "authorization" not in request.headers
        return registry.blob_reply(request, BLOB)

    registry = FakeRegistry(users={"alice": "s3cret"})
    async with serve(storage) as storage_server:
        registry.blob_redirect = storage_server.url
        async with registry_and_client(registry, Credentials("alice", "s3cret")) as (
            _server,
            client,
        ):
            dest = tmp_path / "partial"
            seen: list[tuple[int, int]] = []
            received = await client.fetch_blob(
                "app", BLOB_DIGEST, dest, size=len(BLOB), progress=lambda d, t: seen.append((d, t))
            )
    assert dest.read_bytes() == BLOB
    assert received == len(BLOB)
    assert seen[-1] == (len(BLOB), len(BLOB))
    assert storage_server.requests[0].path == f"/storage/{BLOB_DIGEST}"


async def test_fetch_blob_tampered_raises_and_removes_partial(tmp_path: Path) -> None:
    registry = FakeRegistry()
    registry.served_blobs[BLOB_DIGEST] = BLOB[:-1] + b"\x00"
    async with registry_and_client(registry) as (_server, client):
        dest = tmp_path / "partial"
        with pytest.raises(DigestMismatch, match=f"digest mismatch for blob {BLOB_DIGEST}"):
            await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB))
    assert not dest.exists()


async def test_fetch_blob_longer_than_size_is_mismatch(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (_server, client):
        dest = tmp_path / "partial"
        with pytest.raises(DigestMismatch, match="more than 100 bytes"):
            await client.fetch_blob("app", BLOB_DIGEST, dest, size=100)
    assert not dest.exists()


async def test_fetch_blob_resumes_with_range(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (server, client):
        dest = tmp_path / "partial"
        dest.write_bytes(BLOB[:4000])
        received = await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB))
    assert received == len(BLOB) - 4000
    assert dest.read_bytes() == BLOB
    assert server.requests[-1].headers["range"] == "bytes=4000-"


async def test_fetch_blob_range_ignored_restarts_from_zero(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry(honour_range=False)) as (_server, client):
        dest = tmp_path / "partial"
        dest.write_bytes(b"garbage!" * 10)  # would be wrong if appended to
        received = await client.fetch_blob("app", BLOB_DIGEST, dest)
    assert received == len(BLOB)
    assert dest.read_bytes() == BLOB


async def test_fetch_blob_broken_download_resumes_itself(tmp_path: Path) -> None:
    registry = FakeRegistry(cut_next_blob_at=3000)
    async with registry_and_client(registry) as (server, client):
        dest = tmp_path / "partial"
        received = await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB))
    assert dest.read_bytes() == BLOB
    assert received == len(BLOB)  # 3000 + the rest: nothing fetched twice
    assert server.requests[-1].headers["range"] == "bytes=3000-"


async def test_fetch_blob_complete_partial_is_verified_without_download(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (server, client):
        dest = tmp_path / "partial"
        dest.write_bytes(BLOB)
        assert await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB)) == 0
        assert server.requests == []
        dest.write_bytes(BLOB + b"extra")  # longer than size: start over
        assert await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB)) == len(BLOB)
        assert dest.read_bytes() == BLOB


async def test_fetch_blob_unknown_size_complete_partial_416(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (_server, client):
        dest = tmp_path / "partial"
        dest.write_bytes(BLOB)
        assert await client.fetch_blob("app", BLOB_DIGEST, dest) == 0
        assert dest.read_bytes() == BLOB


async def test_fetch_blob_unknown_is_not_found(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (_server, client):
        missing = "sha256:" + "0" * 64
        with pytest.raises(
            NotFound, match=f"blob {missing} not found: blob unknown: blob unknown to registry"
        ):
            await client.fetch_blob("app", missing, tmp_path / "p")


# -- uploads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunk_size", [None, 3000, 1 << 20], ids=["monolithic", "chunked", "one-chunk"]
)
async def test_upload_blob(tmp_path: Path, chunk_size: int | None) -> None:
    registry = FakeRegistry(users={"alice": "s3cret"})
    source = tmp_path / "blob"
    data = os.urandom(10_000)
    source.write_bytes(data)
    seen: list[int] = []
    async with registry_and_client(registry, Credentials("alice", "s3cret")) as (server, client):
        digest = await client.upload_blob(
            "app",
            source,
            sha256(data),
            len(data),
            progress=lambda d, t: seen.append(d),
            chunk_size=chunk_size,
        )
    assert digest == sha256(data)
    assert registry.blobs[digest] == data
    assert seen[-1] == len(data)
    patches = [r for r in server.requests if r.method == "PATCH"]
    if chunk_size == 3000:
        assert [r.headers["content-range"] for r in patches] == [
            "0-2999",
            "3000-5999",
            "6000-8999",
            "9000-9999",
        ]
    elif chunk_size is None:
        assert patches == []


async def test_upload_blob_wrong_size_refused(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"abc")
    async with RegistryClient("127.0.0.1:1") as client:
        with pytest.raises(DigestMismatch, match="a file of 3 bytes, not 4"):
            await client.upload_blob("app", source, sha256(b"abc"), 4)


async def test_upload_blob_digest_refused_by_registry(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"abc")
    async with registry_and_client(FakeRegistry()) as (_server, client):
        with pytest.raises(
            BerthError, match="digest invalid: provided digest did not match uploaded content"
        ):
            await client.upload_blob("app", source, sha256(b"abd"), 3)


# -- listings --------------------------------------------------------------------------------


async def test_catalog_follows_links_until_limit() -> None:
    names = [f"r{i:02d}" for i in range(7)]

    def catalog(request: Request) -> Reply:
        n = int(request.query["n"][0])
        last = request.query.get("last", [""])[0]
        rest = [x for x in names if x > last]
        page = rest[:n]
        headers = []
        if len(rest) > n:
            headers.append(("Link", f'</v2/_catalog?last={page[-1]}&n={n}>; rel="next"'))
        return json_reply(200, {"repositories": page}, headers)

    async with serve(catalog) as server, RegistryClient(server.address) as client:
        assert await client.catalog(page_size=3) == names
        assert len(server.requests) == 3
        assert await client.catalog(5, page_size=3) == names[:5]


async def test_catalog_does_not_follow_links_off_registry() -> None:
    def catalog(request: Request) -> Reply:
        return json_reply(
            200,
            {"repositories": ["a"]},
            [("Link", '<http://127.0.0.2:1/v2/_catalog?last=a>; rel="next"')],
        )

    async with serve(catalog) as server, RegistryClient(server.address) as client:
        assert await client.catalog() == ["a"]


async def test_tags_unknown_repository() -> None:
    async with registry_and_client(FakeRegistry()) as (server, client):
        assert await client.tags("app") == ["v1"]
        with pytest.raises(NotFound) as info:
            await client.tags("nope")
    assert str(info.value) == (
        f"repository {server.address}/nope not found: name unknown: repository name not known to registry"
    )


async def test_search_v1_results_and_absent() -> None:
    results = [
        {"name": "library/busybox", "description": "d", "star_count": 3, "is_official": True}
    ]

    def search(request: Request) -> Reply:
        if request.path != "/v1/search":
            return Reply(404)
        assert request.query == {"q": ["busy box"], "n": ["5"]}
        return json_reply(200, {"num_results": 1, "query": "busy box", "results": results})

    async with serve(search) as server, RegistryClient(server.address) as client:
        assert await client.search_v1("busy box", 5) == results
    async with registry_and_client(FakeRegistry()) as (_server, client):
        assert await client.search_v1("x", 5) is None


def test_json_helper_sanity() -> None:
    assert json.loads(MANIFEST_RAW)["config"]["digest"] == BLOB_DIGEST


async def test_fetch_blob_wrong_content_range_restarts_from_zero(tmp_path: Path) -> None:
    def from_zero(request: Request) -> Reply:
        if "range" in request.headers:  # answers 206, but from the start
            return Reply(206, [("Content-Range", f"bytes 0-{len(BLOB) - 1}/{len(BLOB)}")], BLOB)
        return Reply(200, [], BLOB)

    async with serve(from_zero) as server, RegistryClient(server.address) as client:
        dest = tmp_path / "partial"
        dest.write_bytes(BLOB[:100])
        assert await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB)) == len(BLOB)
    assert dest.read_bytes() == BLOB
    assert ["range" in r.headers for r in server.requests] == [True, False]


async def test_fetch_blob_416_with_wrong_partial_restarts(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (server, client):
        dest = tmp_path / "partial"
        dest.write_bytes(b"\x00" * (len(BLOB) + 10))  # size unknown: only the registry can tell
        assert await client.fetch_blob("app", BLOB_DIGEST, dest) == len(BLOB)
    assert dest.read_bytes() == BLOB
    assert [r.headers.get("range") for r in server.requests] == [f"bytes={len(BLOB) + 10}-", None]


async def test_fetch_blob_full_size_wrong_partial_downloads_again(tmp_path: Path) -> None:
    async with registry_and_client(FakeRegistry()) as (_server, client):
        dest = tmp_path / "partial"
        dest.write_bytes(b"\x00" * len(BLOB))
        received = await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB))
    assert received == len(BLOB)  # the full-size partial was checked, then replaced
    assert dest.read_bytes() == BLOB


async def test_fetch_blob_every_attempt_broken_keeps_partial(tmp_path: Path) -> None:
    registry = FakeRegistry()

    def always_cut(request: Request) -> Reply:
        reply = registry.handle(request)
        if request.path.startswith("/v2/app/blobs/"):
            reply.cut_after = 1000
            reply.headers.append(("Content-Length", str(len(reply.body))))
        return reply

    registry.blobs[BLOB_DIGEST] = BLOB
    async with serve(always_cut) as server, RegistryClient(server.address) as client:
        registry.server = server
        dest = tmp_path / "partial"
        with pytest.raises(ConnectionFailed, match="unexpected EOF"):
            await client.fetch_blob("app", BLOB_DIGEST, dest, size=len(BLOB))
    assert dest.read_bytes() == BLOB[:3000]  # three attempts, each resumed: ready for a fourth


def refusing_token_registry(
    error: str, description: str | None = None
) -> Callable[[Request], Reply]:
    """A token registry whose tokens never carry the access asked for: every request but
    ``/token`` is a 401 with RFC 6750 ``error`` (as distribution answers a token that lacks
    the action), after the token was fetched."""

    def handle(request: Request) -> Reply:
        if request.path == "/token":
            return json_reply(200, {"token": "weak", "expires_in": 300})
        challenge = f'Bearer realm="http://{request.headers["host"]}/token",service="s"'
        if request.headers.get("authorization") == "Bearer weak":
            challenge += f',scope="repository:app:pull,push",error="{error}"'
            if description is not None:
                challenge += f',error_description="{description}"'
        return error_reply(
            401, "UNAUTHORIZED", "authentication required", [("WWW-Authenticate", challenge)]
        )

    return handle


async def test_insufficient_scope_on_push_is_denied(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(BLOB)
    handler = refusing_token_registry("insufficient_scope")
    async with serve(handler) as server, RegistryClient(server.address) as client:
        with pytest.raises(Forbidden) as info:
            await client.upload_blob("app", blob, BLOB_DIGEST, len(BLOB))
    assert str(info.value) == "denied: requested access to the resource is denied"


async def test_insufficient_scope_on_pull_is_docker_pull_access_denied() -> None:
    handler = refusing_token_registry("insufficient_scope", "no pulling app")
    async with serve(handler) as server, RegistryClient(server.address) as client:
        with pytest.raises(NotFound) as info:
            await client.get_manifest("app", "v1")
    assert str(info.value) == (
        f"pull access denied for {server.address}/app, repository does not exist or may "
        "require 'docker login': denied: no pulling app"
    )


async def test_invalid_token_is_unauthorized() -> None:
    async with (
        serve(refusing_token_registry("invalid_token")) as server,
        RegistryClient(server.address) as client,
    ):
        with pytest.raises(Unauthorized) as info:
            await client.tags("app")
    assert str(info.value) == "unauthorized: authentication required"
