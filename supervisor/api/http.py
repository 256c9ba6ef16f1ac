"""The HTTP/1.1 layer: h11 over trio streams, with connection hijacking.

Theory of operation: one task per connection (:func:`serve_connection`) reads a
request with h11, finds the route, calls the handler and sends what it returns. A
handler returns a :class:`Response` (JSON, bytes or empty), a :class:`Streaming`
response (chunked, for progress, logs and events) or :data:`HIJACKED` after taking the
raw stream over with :meth:`Request.hijack` — which is why this is not an ASGI server
(ARCHITECTURE.md §8). Errors become responses in :mod:`supervisor.api.errors`.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import h11
import structlog
import trio

from supervisor.api.errors import error_response
from supervisor.errors import InvalidArgument, NotFound, berth_error_in

log = structlog.get_logger()

MAX_HEADER_BYTES = 64 * 1024
READ_SIZE = 65536
SERVER_HEADER = b"berth"


@attrs.define
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = attrs.field(factory=list)


@attrs.define
class Streaming:
    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    watch_disconnect: bool = True  # cancel the producer when the client goes away


Write = Callable[[bytes], Awaitable[None]]


@attrs.define
class Produced:
    """A body written by a producer: ``await produce(write)`` (pull, push, load progress).

    The status line goes out with the first chunk, so an error raised before any output
    still becomes a proper error status (Docker answers 404 for an unknown tag); after
    that, errors are reported in-band by the producer (Docker's ``errorDetail``).
    ``headers`` go out with the status line, so the producer may still add to them
    before its first write (``docker cp``'s stat header needs the path resolved first).
    """

    produce: Callable[[Write], Awaitable[None]]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = attrs.field(factory=list)


HIJACKED = object()


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode() + b"\n")


class Request:
    def __init__(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        event: h11.Request,
        path: str,
        query: str,
    ) -> None:
        self._conn = conn
        self.stream = stream
        self.method = event.method.decode()
        self.path = path
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        self.params: dict[str, str] = {}
        self._body_done = False
        self.hijacked = False

    # -- query helpers ----------------------------------------------------------------

    def q(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def q_all(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def q_bool(self, name: str, default: bool = False) -> bool:
        values = self.query.get(name)
        if not values:
            return default
        return values[-1].lower() not in ("", "0", "false", "no")

    def q_int(self, name: str, default: int | None = None) -> int | None:
        value = self.q(name)
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {value!r}") from None

    def q_json(self, name: str) -> Any:
        value = self.q(name)
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise InvalidArgument(f"invalid JSON in {name} parameter") from None

    # -- body ---------------------------------------------------------------------------

    async def iter_body(self) -> AsyncIterator[bytes]:
        while not self._body_done:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.stream.receive_some(READ_SIZE)
                self._conn.receive_data(bytes(data))
                if not data and self._conn.their_state is not h11.DONE:
                    raise InvalidArgument("request body ended early")
                continue
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_done = True

    async def body(self, limit: int = 64 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.iter_body():
            size += len(chunk)
            if size > limit:
                raise InvalidArgument("request body too large")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self, *, allow_empty: bool = False) -> Any:
        raw = await self.body()
        if not raw.strip():
            if allow_empty:
                return None
            raise InvalidArgument("request body is empty")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidArgument(f"invalid JSON: {exc}") from None

    async def drain(self) -> None:
        async for _ in self.iter_body():
            pass

    # -- hijack --------------------------------------------------------------------------

    async def hijack(self, content_type: str = "application/vnd.docker.raw-stream") -> bytes:
        """Take over the raw connection (Docker's attach/exec): answer 101 UPGRADED when
        the client asked for ``Upgrade: tcp``, else 200 with a close-delimited body.

        Returns bytes the client already sent beyond the request (stdin, for later).
        Resource handling: the connection is closed after the handler returns.
        """
        if self.headers.get("content-length", "0") not in (
            "",
            "0",
        ) or "chunked" in self.headers.get("transfer-encoding", ""):
            await self.drain()
        self.hijacked = True
        upgrade = "upgrade" in self.headers.get("connection", "").lower()
        if upgrade:
            head = (
                "HTTP/1.1 101 UPGRADED\r\n"
                f"Content-Type: {content_type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            )
        else:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
        await self.stream.send_all(head.encode())
        trailing, _closed = self._conn.trailing_data
        return bytes(trailing)


Handler = Callable[[Request], Awaitable[object]]
_VERSION = re.compile(r"^/v\d+(?:\.\d+)?(?=/)")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        if pattern.endswith("{name:path}"):
            regex = (
                "^"
                + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern[: -len("{name:path}")])
                + "(?P<name>.+)$"
            )
        route = (method, re.compile(regex), handler)
        if pattern.endswith("{name:path}"):
            self._routes.append(route)  # catch-alls last: /images/prune beats /images/{name}
        else:
            catch_all = next(
                (i for i, r in enumerate(self._routes) if r[1].pattern.endswith("(?P<name>.+)$")),
                None,
            )
            self._routes.insert(len(self._routes) if catch_all is None else catch_all, route)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn

        return deco

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for m, regex, handler in self._routes:
            match = regex.match(path)
            if match:
                if m == method or (method == "HEAD" and m == "GET"):
                    return handler, {
                        k: urllib.parse.unquote(v) for k, v in match.groupdict().items()
                    }
                allowed = True
        if allowed:
            raise _MethodNotAllowed()
        raise NotFound("page not found")


class _MethodNotAllowed(Exception):
    pass


def split_target(target: bytes) -> tuple[str, str]:
    raw = target.decode("latin-1")
    path, _, query = raw.partition("?")
    path = urllib.parse.unquote(path)
    path = _VERSION.sub("", path)
    return path, query


async def serve_connection(stream: trio.abc.Stream, router: Router) -> None:
    """Serve requests on one connection until the client closes it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        while True:
            event = await _next_event(conn, stream)
            if isinstance(event, h11.ConnectionClosed) or event is None:
                return
            if not isinstance(event, h11.Request):
                return
            keep_going = await _handle(conn, stream, router, event)
            if not keep_going or conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        # h11.ProtocolError: the client's (Remote) or a response h11 refused (Local); either
        # way this connection is over, and the listener must not go down with it.
        return
    except Exception:
        log.error("api.connection_failed", exc_info=True)
        return
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> object:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(READ_SIZE)
            conn.receive_data(bytes(data))
            continue
        return event


async def _handle(
    conn: h11.Connection, stream: trio.abc.Stream, router: Router, event: h11.Request
) -> bool:
    path, query = split_target(event.target)
    req = Request(conn, stream, event, path, query)
    started = time.monotonic()
    result: object
    try:
        handler, req.params = router.find(req.method, path)
        result = await handler(req)
    except _MethodNotAllowed:
        result = json_response({"message": "method not allowed"}, 405)
    except Exception as exc:  # noqa: BLE001 -- the one place that turns errors into responses
        status, body = error_response(exc, method=req.method, path=path)
        result = Response(status, body) if status != 304 else Response(304)
    if result is HIJACKED or req.hijacked:
        return False
    if not req._body_done:
        try:
            await req.drain()
        except InvalidArgument:
            return False
    status = await _send(conn, stream, req, result)
    log.debug(
        "api.request_completed",
        method=req.method,
        path=path,
        status=status,
        duration_ms=round((time.monotonic() - started) * 1000, 2),
    )
    return True


def _headers(
    content_type: str | None, extra: list[tuple[str, str]] | None = None
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"Server", SERVER_HEADER),
        (b"Api-Version", b"1.43"),
        (b"Docker-Experimental", b"false"),
        (b"Ostype", b"linux"),
    ]
    if content_type:
        headers.append((b"Content-Type", content_type.encode()))
    for k, v in extra or []:
        headers.append((k.encode(), v.encode()))
    return headers


async def _send_produced(
    conn: h11.Connection, stream: trio.abc.Stream, req: Request, result: Produced
) -> int:
    started = False
    lock = trio.Lock()  # producers may write from several tasks (parallel layer pushes)

    async def write(chunk: bytes) -> None:
        async with lock:
            await _write_locked(chunk)

    async def _write_locked(chunk: bytes) -> None:
        nonlocal started
        if not started:
            started = True
            headers = _headers(result.content_type, result.headers)
            await stream.send_all(
                conn.send(h11.Response(status_code=result.status, headers=headers))
            )
        if chunk and req.method != "HEAD":
            await stream.send_all(conn.send(h11.Data(data=chunk)))

    try:
        await result.produce(write)
    except Exception as exc:
        if not started:
            status, body = error_response(exc, method=req.method, path=req.path)
            return await _send(conn, stream, req, Response(status, body))
        found = berth_error_in(exc)
        if found is None or result.content_type != "application/json":
            raise
        # Docker reports a failure after progress began in-band, as the last message.
        message = str(found)
        detail: dict[str, object] = {"message": message}
        code = getattr(found, "code", None)
        if isinstance(code, int):
            detail["code"] = code  # a build's failed RUN: its exit status, as Docker sends
        await write(json.dumps({"errorDetail": detail, "error": message}).encode() + b"\r\n")
    if not started:
        await write(b"")
    await stream.send_all(conn.send(h11.EndOfMessage()))
    return result.status


async def _send(conn: h11.Connection, stream: trio.abc.Stream, req: Request, result: object) -> int:
    if isinstance(result, Produced):
        return await _send_produced(conn, stream, req, result)
    if isinstance(result, Streaming):
        headers = _headers(result.content_type)
        await stream.send_all(conn.send(h11.Response(status_code=result.status, headers=headers)))
        try:
            async with trio.open_nursery() as nursery:
                if result.watch_disconnect:
                    nursery.start_soon(_watch_disconnect, stream, nursery.cancel_scope)
                if req.method != "HEAD":  # a HEAD response has no body: h11 refuses one
                    async for chunk in result.chunks:
                        if chunk:
                            await stream.send_all(conn.send(h11.Data(data=chunk)))
                nursery.cancel_scope.cancel()
        finally:
            aclose = getattr(result.chunks, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True):
                    await aclose()
        if conn.our_state is h11.SEND_BODY:
            await stream.send_all(conn.send(h11.EndOfMessage()))
        return result.status
    if not isinstance(result, Response):
        result = json_response(result)
    if result.status in (204, 304):
        headers = _headers(None, result.headers)
        body = b""
    else:
        headers = _headers(result.content_type, result.headers)
        body = result.body if req.method != "HEAD" else b""
        headers.append((b"Content-Length", str(len(result.body)).encode()))
    # One write for head and body: each write wakes the client, and on a busy host that
    # wake-up, not the bytes, is what a small response costs.
    out = conn.send(h11.Response(status_code=result.status, headers=headers))
    if body:
        out += conn.send(h11.Data(data=body))
    await stream.send_all(out + conn.send(h11.EndOfMessage()))
    return result.status


async def _watch_disconnect(stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
    """Cancel a long stream (events, logs -f) when the client hangs up."""
    try:
        while await stream.receive_some(READ_SIZE):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()
