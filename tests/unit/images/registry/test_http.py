"""Tests for supervisor.images.registry.http against the in-process loopback server."""

from __future__ import annotations

import functools
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from supervisor.images.registry.http import ConnectionFailed, HttpClient, open_connection
from supervisor.images.registry.protocol import Origin
from tests.unit.images.registry.fakeserver import Reply, Request, serve


def echo(request: Request) -> Reply:
    return Reply(200, [("X-Method", request.method)], request.body or request.target.encode())


async def test_open_connection_keeps_alive_for_several_requests() -> None:
    async with serve(echo) as server, open_connection("127.0.0.1", server.port, tls=False) as conn:
        for n in range(3):
            response = await conn.request("GET", f"/n{n}")
            assert response.status == 200
            assert await response.read() == f"/n{n}".encode()
    assert server.connections == 1
    assert [r.headers["host"] for r in server.requests] == [server.address] * 3
    assert server.requests[0].headers["user-agent"].startswith("berth/")


async def test_client_pool_reuses_connection_per_origin() -> None:
    async with serve(echo) as server, HttpClient() as client:
        for _ in range(3):
            response = await client.request("GET", f"{server.url}/x")
            async with response:
                assert await response.read() == b"/x"
        head = await client.request("HEAD", f"{server.url}/x")
        await head.aclose()  # no body to read: released without waiting
        again = await client.request("GET", f"{server.url}/y")
        assert await again.read() == b"/y"
    assert server.connections == 1
    assert client.connections_opened == 1


async def test_client_response_closed_early_drops_connection() -> None:
    big = b"x" * (4 << 20)
    async with serve(lambda r: Reply(200, [], big)) as server, HttpClient() as client:
        response = await client.request("GET", f"{server.url}/")
        assert len(await response.receive_some()) > 0
        await response.aclose()  # mid-body: the connection cannot be reused
        response = await client.request("GET", f"{server.url}/")
        assert await response.read(limit=8 << 20) == big
    assert server.connections == 2


async def test_client_bytes_and_streamed_bodies() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"ab", b"", b"cd"):
            yield part

    async with serve(echo) as server, HttpClient() as client:
        response = await client.request("PUT", f"{server.url}/b", body=b"payload")
        assert await response.read() == b"payload"
        response = await client.request("PATCH", f"{server.url}/s", body=chunks())
        assert await response.read() == b"abcd"
        response = await client.request("POST", f"{server.url}/e")
        await response.read()
    put, patch, post = server.requests
    assert put.headers["content-length"] == "7"
    assert patch.headers["transfer-encoding"] == "chunked"
    assert post.headers["content-length"] == "0"


async def test_client_retries_once_when_pooled_connection_was_closed() -> None:
    def once_per_connection(request: Request) -> Reply:
        return Reply(200, [], b"ok", close=True)  # keep-alive promised, then closed

    async with serve(once_per_connection) as server, HttpClient() as client:
        for _ in range(3):
            response = await client.request("GET", f"{server.url}/")
            assert await response.read() == b"ok"
            await trio.testing.wait_all_tasks_blocked()
    assert server.connections == 3


async def test_client_follows_redirect_to_other_host_without_authorization() -> None:
    async with serve(echo) as storage:

        def registry(request: Request) -> Reply:
            return Reply(307, [("Location", f"{storage.url}/blob?sig=1")], b"moved")

        async with serve(registry) as server, HttpClient() as client:
            response = await client.request(
                "GET",
                f"{server.url}/v2/x/blobs/d",
                headers=[("Authorization", "Bearer secret"), ("Range", "bytes=3-")],
                follow_redirects=True,
            )
            assert response.status == 200
            assert response.origin == Origin("http", "127.0.0.1", storage.port)
            assert await response.read() == b"/blob?sig=1"
            not_followed = await client.request("GET", f"{server.url}/v2/x/blobs/d")
            assert not_followed.status == 307
            await not_followed.aclose()
    assert server.requests[0].headers["authorization"] == "Bearer secret"
    assert "authorization" not in storage.requests[0].headers
    assert storage.requests[0].headers["range"] == "bytes=3-"


async def test_client_redirect_loop_stops() -> None:
    async with (
        serve(lambda r: Reply(302, [("Location", "/again")])) as server,
        HttpClient() as client,
    ):
        with pytest.raises(ConnectionFailed, match="stopped after 10 redirects"):
            await client.request("GET", f"{server.url}/", follow_redirects=True)
    assert len(server.requests) == 11


async def test_client_connection_refused_names_url() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        async with HttpClient() as client:
            with pytest.raises(ConnectionFailed) as info:
                await client.request("GET", f"http://127.0.0.1:{port}/v2/")
    assert str(info.value) == (
        f'Get "http://127.0.0.1:{port}/v2/": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )


async def test_client_body_cut_short_is_connection_failed() -> None:
    async with (
        serve(lambda r: Reply(200, [], b"0123456789", cut_after=4)) as server,
        HttpClient() as client,
    ):
        response = await client.request("GET", f"{server.url}/")
        with pytest.raises(ConnectionFailed, match="unexpected EOF"):
            await response.read()


async def test_client_no_answer_is_connection_failed() -> None:
    async with serve(lambda r: Reply(no_answer=True)) as server, HttpClient() as client:
        with pytest.raises(ConnectionFailed, match=f'Get "{server.url}/": EOF'):
            await client.request("GET", f"{server.url}/")


async def test_client_malformed_response_is_connection_failed() -> None:
    async def garbage(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"NOT HTTP\r\n\r\n")
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, garbage, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        async with HttpClient() as client:
            with pytest.raises(ConnectionFailed, match="malformed HTTP response"):
                await client.request("GET", f"http://127.0.0.1:{port}/")
        nursery.cancel_scope.cancel()


async def test_client_read_limit() -> None:
    async with serve(lambda r: Reply(200, [], b"x" * 100)) as server, HttpClient() as client:
        response = await client.request("GET", f"{server.url}/")
        with pytest.raises(Exception, match="larger than 10 bytes"):
            await response.read(limit=10)


async def test_client_closed_refuses_requests() -> None:
    client = HttpClient()
    await client.aclose()
    with pytest.raises(ConnectionFailed, match="closed"):
        await client.request("GET", "http://127.0.0.1:1/")


async def test_connect_timeout_covers_tls_handshake() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()  # accepts TCP, never speaks TLS

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, silent, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(ConnectionFailed, match=f"dial tcp 127.0.0.1:{port}: i/o timeout"):
            async with open_connection("127.0.0.1", port, tls=True, connect_timeout=0.05):
                pass
        nursery.cancel_scope.cancel()


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_with_trusted_ca_works(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with serve(echo, ssl_context=server_context) as server:
        async with open_connection(
            "127.0.0.1", server.port, tls=True, ssl_context=client_context
        ) as conn:
            response = await conn.request("GET", "/secure")
            assert await response.read() == b"/secure"
        async with HttpClient(ssl_context=client_context) as client:
            response = await client.request("GET", f"https://127.0.0.1:{server.port}/again")
            assert await response.read() == b"/again"


async def test_tls_untrusted_certificate_refused_with_system_store(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    async with serve(echo, ssl_context=server_context) as server:
        with pytest.raises(ConnectionFailed, match="tls: CERTIFICATE_VERIFY_FAILED"):
            async with open_connection("127.0.0.1", server.port, tls=True):
                pass
