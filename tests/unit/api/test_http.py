"""Tests for supervisor.api.http: ``serve_connection`` driven over a memory stream pair by an h11
client, in the style of hypercorn's ``tests/trio/test_sanity.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h11
import pytest
import trio
import trio.testing

from supervisor.api.http import (
    HIJACKED,
    Request,
    Response,
    Router,
    Streaming,
    json_response,
    serve_connection,
    split_target,
)
from supervisor.errors import Conflict, InvalidArgument, NoSuchContainer, NotFound, NotModified

READ = 65536


def make_router() -> Router:
    router = Router()

    @router.route("GET", "/containers/json")
    async def list_(req: Request) -> Response:
        return json_response(
            [{"Id": "abc", "all": req.q_bool("all"), "limit": req.q_int("limit", -1)}]
        )

    @router.route("GET", "/containers/{id}/json")
    async def inspect(req: Request) -> Response:
        if req.params["id"] == "missing":
            raise NoSuchContainer("missing")
        return json_response({"Id": req.params["id"]})

    @router.route("POST", "/containers/{id}/start")
    async def start(req: Request) -> Response:
        raise NotModified("container already running")

    @router.route("DELETE", "/containers/{id}")
    async def remove(req: Request) -> Response:
        raise Conflict("cannot remove container: container is running")

    @router.route("GET", "/images/json")
    async def images(req: Request) -> object:
        return ["list"]  # not a Response: sent as JSON

    @router.route("GET", "/images/{name:path}")
    async def image(req: Request) -> object:
        return {"name": req.params["name"]}

    @router.route("GET", "/gone")
    async def gone(req: Request) -> Response:
        raise NotFound("it went away")

    @router.route("GET", "/bad")
    async def bad(req: Request) -> Response:
        raise InvalidArgument("bad value")

    @router.route("GET", "/boom")
    async def boom(req: Request) -> Response:
        raise RuntimeError("kaput")

    @router.route("POST", "/echo")
    async def echo(req: Request) -> Response:
        return json_response({"got": await req.json(allow_empty=True)}, 201)

    @router.route("POST", "/ignore-body")
    async def ignore_body(req: Request) -> Response:
        return Response(204)

    @router.route("GET", "/text")
    async def text(req: Request) -> Response:
        return Response(200, b"plain text", "text/plain", [("X-Extra", "1")])

    @router.route("GET", "/stream")
    async def stream(req: Request) -> Streaming:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b'{"status":"a"}\n', b"", b'{"status":"b"}\n'):
                yield part

        return Streaming(chunks())

    @router.route("POST", "/attach")
    async def attach(req: Request) -> object:
        early = await req.hijack()
        await req.stream.send_all(b"hijacked:" + early)
        return HIJACKED

    return router


class Client:
    """An h11 client on one end of the memory stream pair."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def send(self, *events: Any) -> None:
        for event in events:
            data = self.conn.send(event)
            if data:
                await self.stream.send_all(data)

    async def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(READ))
                continue
            return event

    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> tuple[h11.Response, bytes]:
        all_headers = [("Host", "berth"), *(headers or [])]
        if body is not None:
            all_headers.append(("Content-Length", str(len(body))))
        await self.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())
        response = await self.next_event()
        assert isinstance(response, h11.Response)
        data = b""
        while True:
            event = await self.next_event()
            if isinstance(event, h11.EndOfMessage):
                break
            assert isinstance(event, h11.Data)
            data += event.data
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return response, data


def header(response: h11.Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.decode().lower() == name.lower():
            return value.decode()
    return None


async def read_until_eof(stream: Any) -> bytes:
    data = b""
    while chunk := await stream.receive_some(READ):
        data += chunk
    return data


@asynccontextmanager
async def serving(router: Router | None = None) -> AsyncIterator[Client]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server_stream, router or make_router())
        yield Client(client_stream)
        await client_stream.aclose()


# -- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["/containers/json", "/v1.43/containers/json", "/v1.24/containers/json", "/v1/containers/json"],
    ids=["bare", "v1.43", "v1.24", "v1"],
)
async def test_serve_connection_routes_with_and_without_version_prefix(target: str) -> None:
    async with serving() as client:
        response, body = await client.request("GET", target)
    assert response.status_code == 200
    assert json.loads(body) == [{"Id": "abc", "all": False, "limit": -1}]
    assert header(response, "Content-Type") == "application/json"
    assert header(response, "Api-Version") == "1.43"
    assert header(response, "Server") == "berth"
    assert header(response, "Ostype") == "linux"
    assert header(response, "Content-Length") == str(len(body))


async def test_serve_connection_path_params_are_unquoted() -> None:
    async with serving() as client:
        response, body = await client.request("GET", "/v1.43/containers/we%20b/json")
        image_response, image_body = await client.request(
            "GET", "/images/localhost:5000/team/app:v1/json"
        )
        _, list_body = await client.request("GET", "/images/json")
    assert response.status_code == 200
    assert json.loads(body) == {"Id": "we b"}
    assert image_response.status_code == 200
    assert json.loads(image_body) == {
        "name": "localhost:5000/team/app:v1/json"
    }  # a path param takes "/"
    assert json.loads(list_body) == ["list"]  # the route registered first wins


async def test_serve_connection_query_helpers_parse_values() -> None:
    async with serving() as client:
        _, body = await client.request("GET", "/containers/json?all=1&limit=3")
        _, falsy = await client.request("GET", "/containers/json?all=false")
        response, error = await client.request("GET", "/containers/json?limit=x")
    assert json.loads(body) == [{"Id": "abc", "all": True, "limit": 3}]
    assert json.loads(falsy)[0]["all"] is False
    assert response.status_code == 400
    assert json.loads(error) == {"message": "invalid value for limit: 'x'"}


@pytest.mark.parametrize(
    "target",
    ["/nope", "/v1.43/nope", "/v1.43", "/containers/a/b/json", "/"],
    ids=["bare", "versioned", "version-only", "extra-segment", "root"],
)
async def test_serve_connection_unknown_path_gives_404_json(target: str) -> None:
    async with serving() as client:
        response, body = await client.request("GET", target)
    assert response.status_code == 404
    assert json.loads(body) == {"message": "page not found"}
    assert header(response, "Content-Type") == "application/json"


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/containers/json"),
        ("PUT", "/v1.43/containers/abc/json"),
        ("GET", "/containers/abc/start"),
        ("HEAD", "/echo"),
    ],
    ids=["post-on-get", "put-on-get", "get-on-post", "head-on-post"],
)
async def test_serve_connection_wrong_method_gives_405(method: str, target: str) -> None:
    async with serving() as client:
        response, body = await client.request(method, target)
    assert response.status_code == 405
    if method != "HEAD":
        assert json.loads(body) == {"message": "method not allowed"}


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "status", "message"),
    [
        ("GET", "/containers/missing/json", 404, "No such container: missing"),
        ("GET", "/gone", 404, "it went away"),
        ("DELETE", "/containers/abc", 409, "cannot remove container: container is running"),
        ("GET", "/bad", 400, "bad value"),
    ],
    ids=["no-such-container", "not-found", "conflict", "invalid-argument"],
)
async def test_serve_connection_berth_error_gives_status_and_message(
    method: str, target: str, status: int, message: str
) -> None:
    async with serving() as client:
        response, body = await client.request(method, target)
    assert response.status_code == status
    assert json.loads(body) == {"message": message}


async def test_serve_connection_not_modified_gives_304_without_body() -> None:
    async with serving() as client:
        response, body = await client.request("POST", "/containers/abc/start")
    assert response.status_code == 304
    assert body == b""
    assert header(response, "Content-Length") is None
    assert header(response, "Content-Type") is None


async def test_serve_connection_unexpected_exception_gives_500() -> None:
    async with serving() as client:
        response, body = await client.request("GET", "/boom")
        after, _ = await client.request("GET", "/containers/json")  # the connection survives
    assert response.status_code == 500
    assert json.loads(body) == {"message": "internal error: RuntimeError: kaput"}
    assert after.status_code == 200


# -- bodies and responses -------------------------------------------------------------------


async def test_serve_connection_json_body_is_read() -> None:
    async with serving() as client:
        response, body = await client.request("POST", "/echo", body=b'{"Image": "busybox"}')
    assert response.status_code == 201
    assert json.loads(body) == {"got": {"Image": "busybox"}}


async def test_serve_connection_chunked_request_body_is_read() -> None:
    async with serving() as client:
        await client.send(
            h11.Request(
                method="POST",
                target="/echo",
                headers=[("Host", "x"), ("Transfer-Encoding", "chunked")],
            ),
            h11.Data(data=b'{"a":'),
            h11.Data(data=b" [1, 2]}"),
            h11.EndOfMessage(),
        )
        response = await client.next_event()
        data = await client.next_event()
    assert response.status_code == 201
    assert json.loads(data.data) == {"got": {"a": [1, 2]}}


@pytest.mark.parametrize(
    ("body", "expected"), [(b"", None), (b"  \n", None)], ids=["empty", "blank"]
)
async def test_serve_connection_empty_body_allowed_when_asked(
    body: bytes, expected: object
) -> None:
    async with serving() as client:
        _, data = await client.request("POST", "/echo", body=body)
    assert json.loads(data) == {"got": expected}


async def test_serve_connection_invalid_json_body_gives_400() -> None:
    async with serving() as client:
        response, body = await client.request("POST", "/echo", body=b"{not json")
    assert response.status_code == 400
    assert json.loads(body)["message"].startswith("invalid JSON: ")


async def test_serve_connection_custom_response_type_and_headers() -> None:
    async with serving() as client:
        response, body = await client.request("GET", "/text")
    assert body == b"plain text"
    assert header(response, "Content-Type") == "text/plain"
    assert header(response, "X-Extra") == "1"


async def test_serve_connection_streaming_response_is_chunked() -> None:
    async with serving() as client:
        response, body = await client.request("GET", "/stream")
    assert response.status_code == 200
    assert header(response, "Transfer-Encoding") == "chunked"
    assert header(response, "Content-Length") is None
    assert body == b'{"status":"a"}\n{"status":"b"}\n'


async def test_serve_connection_streaming_raw_bytes_are_chunk_framed() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server_stream, make_router())
        await client_stream.send_all(
            b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        raw = await read_until_eof(client_stream)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b'f\r\n{"status":"a"}\n\r\nf\r\n{"status":"b"}\n\r\n0\r\n\r\n'


async def test_serve_connection_streaming_producer_cancelled_when_client_hangs_up() -> None:
    cancelled = trio.Event()
    router = Router()

    @router.route("GET", "/events")
    async def events(req: Request) -> Streaming:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"first\n"
                await trio.sleep_forever()
            finally:
                cancelled.set()

        return Streaming(chunks())

    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_connection, server_stream, router)
            client = Client(client_stream)
            await client.send(
                h11.Request(method="GET", target="/events", headers=[("Host", "x")]),
                h11.EndOfMessage(),
            )
            assert (await client.next_event()).status_code == 200
            assert (await client.next_event()).data == b"first\n"
            await client_stream.aclose()
            await cancelled.wait()


async def test_serve_connection_head_sends_length_without_body() -> None:
    async with serving() as client:
        head, head_body = await client.request("HEAD", "/containers/json")
        get, get_body = await client.request("GET", "/containers/json")
    assert head.status_code == 200
    assert head_body == b""
    assert header(head, "Content-Length") == str(len(get_body)) == header(get, "Content-Length")


async def test_serve_connection_head_on_streaming_route_sends_no_body_and_keeps_serving() -> None:
    produced = []
    router = make_router()

    @router.route("GET", "/logs")
    async def logs(req: Request) -> Streaming:
        async def chunks() -> AsyncIterator[bytes]:
            produced.append(True)
            yield b"log line\n"

        return Streaming(chunks())

    with trio.fail_after(5):
        async with serving(router) as client:
            head, body = await client.request("HEAD", "/v1.43/logs")
            after, after_body = await client.request("GET", "/containers/abc/json")
    assert head.status_code == 200
    assert body == b""
    assert produced == []
    assert after.status_code == 200
    assert json.loads(after_body) == {"Id": "abc"}


async def test_serve_connection_keep_alive_serves_two_requests_on_one_connection() -> None:
    async with serving() as client:
        first, first_body = await client.request("GET", "/containers/abc/json")
        second, second_body = await client.request("GET", "/v1.43/containers/def/json")
    assert (first.status_code, second.status_code) == (200, 200)
    assert json.loads(first_body) == {"Id": "abc"}
    assert json.loads(second_body) == {"Id": "def"}


async def test_serve_connection_unread_body_is_drained_before_next_request() -> None:
    async with serving() as client:
        first, _ = await client.request("POST", "/ignore-body", body=b'{"x": 1}' * 1000)
        second, body = await client.request("GET", "/containers/abc/json")
    assert first.status_code == 204
    assert second.status_code == 200
    assert json.loads(body) == {"Id": "abc"}


async def test_serve_connection_connection_close_ends_after_response() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server_stream, make_router())
        await client_stream.send_all(
            b"GET /containers/abc/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        raw = await read_until_eof(client_stream)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b'{"Id": "abc"}\n')


async def test_serve_connection_client_close_ends_serving() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_connection, server_stream, make_router())
            await client_stream.aclose()


async def test_serve_connection_garbage_request_closes_connection() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_connection, server_stream, make_router())
            await client_stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
            raw = await read_until_eof(client_stream)  # ends: the server closed its side
    assert raw == b"" or raw.startswith(b"HTTP/1.1 400")


# -- hijack ----------------------------------------------------------------------------------


async def hijack_raw(request_head: bytes, extra: bytes = b"") -> bytes:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_connection, server_stream, make_router())
            await client_stream.send_all(request_head + extra)
            return await read_until_eof(client_stream)


async def test_hijack_upgrade_request_answers_101_upgraded() -> None:
    raw = await hijack_raw(
        b"POST /v1.43/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 UPGRADED"
    assert b"Content-Type: application/vnd.docker.raw-stream" in lines
    assert b"Connection: Upgrade" in lines
    assert b"Upgrade: tcp" in lines
    assert rest == b"hijacked:"


async def test_hijack_plain_request_answers_200_and_closes() -> None:
    raw = await hijack_raw(b"POST /attach HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in lines
    assert b"Content-Type: application/vnd.docker.raw-stream" in lines
    assert rest == b"hijacked:"


async def test_hijack_returns_bytes_sent_after_the_request() -> None:
    raw = await hijack_raw(
        b"POST /attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        extra=b"stdin-bytes",
    )
    assert raw.endswith(b"\r\n\r\nhijacked:stdin-bytes")


async def test_hijack_request_body_is_drained_first() -> None:
    raw = await hijack_raw(
        b"POST /attach HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody", extra=b"more"
    )
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"hijacked:more")


# -- split_target ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/v1.43/containers/json?all=1", "/containers/json", "all=1"),
        (b"/containers/json", "/containers/json", ""),
        (b"/v1.43", "/v1.43", ""),
        (b"/v1.43/", "/", ""),
        (b"/vx/containers/json", "/vx/containers/json", ""),
        (b"/images/a%2Fb/json?x=%20", "/images/a/b/json", "x=%20"),
    ],
    ids=["versioned", "bare", "version-only", "version-slash", "not-a-version", "quoted"],
)
def test_split_target_strips_version_and_splits_query(target: bytes, path: str, query: str) -> None:
    assert split_target(target) == (path, query)
