"""A small HTTP/1.1 client: h11 over trio TCP and TLS streams, for registries only.

Theory of operation: a :class:`Connection` is one TCP (or ``trio.SSLStream``) connection
driven by an ``h11.Connection(h11.CLIENT)``, one request at a time: :meth:`~Connection.request`
sends a request and returns a :class:`Response` as soon as the status line and headers
are in; the body is then pulled with :meth:`Response.receive_some`, :meth:`Response.iter_body`
or :meth:`Response.read`. When a response has been read to its end and both sides may keep
the connection (h11 says DONE/DONE), the connection goes back to its :class:`HttpClient`
pool for the next request to the same origin; anything else closes it. The client adds
what a registry conversation needs on top: a connect timeout (TCP and TLS handshake), TLS
with the system CA store (``ssl.create_default_context()``), redirects for GET and HEAD
(blob downloads are redirected to storage, often on another host, and the
``Authorization`` header is not carried to another origin) and one retry on a fresh
connection when a pooled one turns out to have been closed by the server.

Errors: everything that goes wrong on the wire (refused, reset, timeout, TLS, malformed
HTTP) is a :class:`ConnectionFailed` (500) naming the method and URL, in Go's wording
(``Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused``).
No status code is an error at this layer.

Cancellation: a request or body read cancelled midway closes its connection (its state is
unknown), never returns it to the pool.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager

import h11
import structlog
import trio

from supervisor.errors import BerthError
from supervisor.images.registry.protocol import Origin, origin_of_url, resolve_location

log = structlog.get_logger()

CONNECT_TIMEOUT = 30.0  # seconds for TCP connect plus TLS handshake (Go's dialer uses 30 s)
READ_SIZE = 65536
MAX_REDIRECTS = 10
MAX_IDLE_PER_ORIGIN = 8
USER_AGENT = "berth/0.1.0"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})

Body = bytes | AsyncIterable[bytes] | None
HeaderList = Sequence[tuple[str, str]]


class ConnectionFailed(BerthError):
    """The server could not be reached, or the connection broke mid-conversation (500)."""


class _Stale(ConnectionFailed):
    """A pooled connection failed before any byte of the answer: safe to retry."""


def _go_method(method: str) -> str:
    return method[:1].upper() + method[1:].lower()


def _describe_os_error(exc: OSError) -> str:
    """The innermost OSError text, lower-cased as Go prints it ("connection refused")."""
    causes: list[BaseException] = [exc]
    if isinstance(exc.__cause__, BaseExceptionGroup):
        causes = list(exc.__cause__.exceptions) or causes
    first = causes[0]
    if isinstance(first, OSError) and first.errno and not isinstance(first, socket.gaierror):
        return os.strerror(first.errno).lower()  # trio's own strerror adds the address
    if isinstance(first, OSError) and first.strerror:
        return first.strerror.lower()
    return str(first) or type(first).__name__


class Response(trio.abc.AsyncResource):
    """Status and headers of an answer; the body is pulled on demand.

    Resource handling: use ``async with response:`` (or read the body to its end): a
    response closed before its end closes its connection.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        method: str,
        origin: Origin,
        target: str,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
    ) -> None:
        self._connection = connection
        self.method = method
        self.origin = origin
        self.target = target
        self.status = status
        self.reason = reason
        self.headers = headers  # names lower-cased, values latin-1 decoded
        self.complete = False
        self.closed = False

    @property
    def url(self) -> str:
        return self.origin.url(self.target)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    @property
    def content_length(self) -> int | None:
        value = self.header("content-length")
        return int(value) if value is not None and value.strip().isdigit() else None

    async def receive_some(self) -> bytes:
        """The next piece of the body; ``b""`` once it has all been received.

        Errors: :class:`ConnectionFailed` when the connection breaks or the body ends early.
        """
        if self.complete or self.closed:
            return b""
        try:
            data = await self._connection._receive_body_chunk()
        except BaseException:
            await self.aclose()
            raise
        if not data:
            self.complete = True
        return data

    async def iter_body(self) -> AsyncIterator[bytes]:
        while data := await self.receive_some():
            yield data

    async def read(self, limit: int = 16 << 20) -> bytes:
        """The whole body (at most ``limit`` bytes, else :class:`BerthError`)."""
        parts: list[bytes] = []
        size = 0
        while data := await self.receive_some():
            size += len(data)
            if size > limit:
                await self.aclose()
                raise BerthError(
                    f'{_go_method(self.method)} "{self.url}": response body larger than {limit} bytes'
                )
            parts.append(data)
        return b"".join(parts)

    async def aclose(self) -> None:
        """Release the connection: back to the pool when the body was read to its end (or
        is already buffered), closed otherwise."""
        if self.closed:
            return
        self.closed = True
        if not self.complete and self._connection._finish_buffered(self):
            self.complete = True
        if not self.complete:
            await self._connection.aclose()


class Connection:
    """One HTTP/1.1 connection to ``origin``, one request at a time (see module doc)."""

    def __init__(
        self,
        origin: Origin,
        stream: trio.abc.Stream,
        *,
        pool: HttpClient | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.origin = origin
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT)
        self._pool = pool
        self._user_agent = user_agent
        self._busy = False
        self._received = False
        self._eof = False
        self._request_label = ""
        self.requests = 0  # requests sent over this connection
        self.closed = False

    def _error(self, detail: str, cause: BaseException | None = None) -> ConnectionFailed:
        stale = self.requests > 1 and not self._received
        cls = _Stale if stale else ConnectionFailed
        message = f"{self._request_label}: {detail}"
        if cause is not None:
            log.debug("registry.connection_failed", url=self._request_label, error=repr(cause))
        return cls(message)

    async def _send(self, event: h11.Event) -> None:
        try:
            data = self._h11.send(event)
        except h11.LocalProtocolError as exc:
            raise ConnectionFailed(f"{self._request_label}: invalid request: {exc}") from exc
        if data:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise self._error(_describe_broken(exc), exc) from exc

    async def _next_event(self) -> h11.Event:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self._eof:  # h11 reports a close mid-message as a protocol error
                    raise self._error("unexpected EOF" if self._received else "EOF", exc) from exc
                raise self._error(f"malformed HTTP response: {exc}", exc) from exc
            if event is h11.PAUSED:  # only after a complete response, never while reading one
                raise self._error("HTTP connection paused unexpectedly")
            if event is h11.NEED_DATA:
                try:
                    data = await self._stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise self._error(_describe_broken(exc), exc) from exc
                if data:
                    self._received = True
                else:
                    self._eof = True
                try:
                    self._h11.receive_data(bytes(data))
                except h11.RemoteProtocolError as exc:
                    raise self._error(f"malformed HTTP response: {exc}", exc) from exc
                continue
            if isinstance(event, h11.ConnectionClosed):
                raise self._error("EOF" if not self._received else "unexpected EOF")
            assert isinstance(event, h11.Event)  # NEED_DATA and PAUSED handled above
            return event

    async def request(
        self,
        method: str,
        target: str,
        headers: HeaderList = (),
        body: Body = None,
    ) -> Response:
        """Send a request and wait for the status line and headers of its answer.

        Args:
            method: ``GET``, ``HEAD``, ``PUT``...
            target: the request target (path and query).
            headers: extra headers; ``Host``, ``User-Agent`` and the body framing
                (``Content-Length`` for bytes, chunked for an iterable without one) are
                added unless given.
            body: bytes, an async iterable of bytes (sent as it comes), or None.

        Errors:
            :class:`ConnectionFailed` when the connection breaks before an answer.

        Resource handling: the returned :class:`Response` holds this connection until it
        is read to its end or closed.
        """
        if self._busy or self.closed:
            raise ConnectionFailed(f"connection to {self.origin.netloc} is not available")
        self._busy = True
        self._received = False
        self._eof = False
        self.requests += 1
        method = method.upper()
        self._request_label = f'{_go_method(method)} "{self.origin.url(target)}"'
        try:
            return await self._request(method, target, headers, body)
        except BaseException:
            await self.aclose()
            raise

    async def _request(self, method: str, target: str, headers: HeaderList, body: Body) -> Response:
        names = {name.lower() for name, _ in headers}
        all_headers = [("Host", self.origin.netloc)] if "host" not in names else []
        if "user-agent" not in names:
            all_headers.append(("User-Agent", self._user_agent))
        all_headers.extend(headers)
        if "content-length" not in names and "transfer-encoding" not in names:
            if isinstance(body, bytes):
                if body or method not in _NO_BODY_METHODS:
                    all_headers.append(("Content-Length", str(len(body))))
            elif body is not None:
                all_headers.append(("Transfer-Encoding", "chunked"))
            elif method not in _NO_BODY_METHODS:
                all_headers.append(("Content-Length", "0"))
        send_error: ConnectionFailed | None = None
        try:
            await self._send(h11.Request(method=method, target=target, headers=all_headers))
            if isinstance(body, bytes):
                if body:
                    await self._send(h11.Data(data=body))
            elif body is not None:
                chunks = aiter(body)
                try:
                    async for chunk in chunks:
                        if chunk:
                            await self._send(h11.Data(data=chunk))
                finally:
                    if isinstance(chunks, AsyncGenerator):  # close its file now, not at GC
                        await chunks.aclose()
            await self._send(h11.EndOfMessage())
        except ConnectionFailed as exc:
            # The server may have answered early (a 401 or 413 before reading the body)
            # and closed: read that answer if it arrived, as Go's transport does. The
            # connection is not reused then (our side never reached DONE).
            send_error = exc
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.InformationalResponse):
                    continue  # 100 Continue and friends
                break
        except ConnectionFailed:
            if send_error is not None:
                raise send_error from None
            raise
        if not isinstance(event, h11.Response):
            raise self._error(f"unexpected HTTP event {type(event).__name__}")
        return Response(
            self,
            method=method,
            origin=self.origin,
            target=target,
            status=event.status_code,
            reason=event.reason.decode("latin-1"),
            headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers],
        )

    async def _receive_body_chunk(self) -> bytes:
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
                continue
            if isinstance(event, h11.EndOfMessage):
                await self._response_done()
                return b""
            raise self._error(f"unexpected HTTP event {type(event).__name__}")

    def _finish_buffered(self, response: Response) -> bool:
        """Consume a body that is already entirely buffered (HEAD, 204, a small error
        body that came in with the headers) without waiting; True if that reached the end.
        """
        if self.closed:
            return False
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                return False
            if isinstance(event, h11.Data):
                continue
            if isinstance(event, h11.EndOfMessage):
                self._release_or_close_nowait()
                return True
            return False

    async def _response_done(self) -> None:
        if not self._reuse():
            await self.aclose()

    def _release_or_close_nowait(self) -> None:
        if self._reuse():
            return
        self.closed = True
        if self._pool is not None:
            self._pool._discard(self)
        # Closing a socket needs no waiting; SSLStream's close-notify is skipped (it is
        # optional for HTTP, RFC 9110 §9.6... and the connection is not reused anyway).
        _close_now(self._stream)

    def _reuse(self) -> bool:
        """Ready the connection for its next request (back to the pool, if any) once both
        sides have finished this exchange; False, with nothing done, if they have not."""
        if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
            return False
        self._h11.start_next_cycle()
        self._busy = False
        if self._pool is not None:
            self._pool._release(self)
        return True

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._pool is not None:
            self._pool._discard(self)
        await trio.aclose_forcefully(self._stream)


def _close_now(stream: trio.abc.Stream) -> None:
    inner: object = stream
    while isinstance(inner, trio.SSLStream):
        inner = inner.transport_stream
    if isinstance(inner, trio.SocketStream):
        inner.socket.close()


def _describe_broken(exc: BaseException) -> str:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, ssl.SSLError):
        return f"tls: {cause.reason or cause}"
    if isinstance(cause, OSError) and cause.strerror:
        return f"read/write: {cause.strerror.lower()}"
    if isinstance(exc, trio.ClosedResourceError):
        return "use of closed network connection"
    return "connection reset by peer"


def _default_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()  # the system CA store, hostname checks on
    context.set_alpn_protocols(["http/1.1"])
    return context


async def _open_stream(
    origin: Origin,
    *,
    server_hostname: str | None,
    connect_timeout: float,
    ssl_context: ssl.SSLContext | None,
    label: str,
) -> trio.abc.Stream:
    stream: trio.abc.Stream | None = None
    with trio.move_on_after(connect_timeout):
        try:
            tcp = await trio.open_tcp_stream(origin.host, origin.port)
        except OSError as exc:
            if isinstance(exc, socket.gaierror):
                detail = f"lookup {origin.host}: {_describe_os_error(exc)}"
            else:
                detail = f"dial tcp {origin.netloc_with_port}: connect: {_describe_os_error(exc)}"
            raise ConnectionFailed(f"{label}: {detail}") from exc
        if not origin.tls:
            stream = tcp
        else:
            tls = trio.SSLStream(
                tcp,
                ssl_context or _default_ssl_context(),
                server_hostname=server_hostname or origin.host,
                https_compatible=True,
            )
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                await trio.aclose_forcefully(tcp)
                raise ConnectionFailed(f"{label}: {_describe_broken(exc)}") from exc
            except BaseException:
                await trio.aclose_forcefully(tcp)
                raise
            stream = tls
    if stream is None:
        raise ConnectionFailed(f"{label}: dial tcp {origin.netloc_with_port}: i/o timeout")
    return stream


async def connect(
    origin: Origin,
    *,
    server_hostname: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    pool: HttpClient | None = None,
    user_agent: str = USER_AGENT,
    label: str = "",
) -> Connection:
    """Open a :class:`Connection` (the caller closes it with ``aclose``)."""
    stream = await _open_stream(
        origin,
        server_hostname=server_hostname,
        connect_timeout=connect_timeout,
        ssl_context=ssl_context,
        label=label or f'Connect "{origin.url("/")}"',
    )
    return Connection(origin, stream, pool=pool, user_agent=user_agent)


@asynccontextmanager
async def open_connection(
    host: str,
    port: int,
    *,
    tls: bool,
    server_hostname: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Connection]:
    """One connection, closed on exit. TLS uses the system CA store unless
    ``ssl_context`` is given; ``server_hostname`` defaults to ``host``.

    Errors: :class:`ConnectionFailed` on refusal, timeout or a failed TLS handshake.
    """
    origin = Origin("https" if tls else "http", host, port)
    connection = await connect(
        origin,
        server_hostname=server_hostname,
        connect_timeout=connect_timeout,
        ssl_context=ssl_context,
    )
    try:
        yield connection
    finally:
        await connection.aclose()


class HttpClient(trio.abc.AsyncResource):
    """Connections kept alive per origin, redirects and stale-connection retries.

    Resource handling: idle connections stay open until :meth:`aclose` (or ``async with``).
    Task safety: any number of tasks may send requests at once; each takes its own
    connection.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
        max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
    ) -> None:
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self.user_agent = user_agent
        self._max_idle = max_idle_per_origin
        self._idle: dict[Origin, list[Connection]] = {}
        self._closed = False
        self.connections_opened = 0  # for tests and statistics

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = _default_ssl_context()
        return self._ssl_context

    def _release(self, connection: Connection) -> None:
        idle = self._idle.setdefault(connection.origin, [])
        if self._closed or len(idle) >= self._max_idle:
            connection.closed = True
            _close_now(connection._stream)
            return
        idle.append(connection)

    def _discard(self, connection: Connection) -> None:
        idle = self._idle.get(connection.origin, [])
        if connection in idle:
            idle.remove(connection)

    async def _connection(self, origin: Origin, label: str) -> Connection:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        connection = await connect(
            origin,
            connect_timeout=self.connect_timeout,
            ssl_context=self._ssl() if origin.tls else None,
            pool=self,
            user_agent=self.user_agent,
            label=label,
        )
        self.connections_opened += 1
        return connection

    async def request(
        self,
        method: str,
        url: str | tuple[Origin, str],
        *,
        headers: HeaderList = (),
        body: Body = None,
        follow_redirects: bool = False,
    ) -> Response:
        """Send a request and return the answer's head (see :meth:`Connection.request`).

        Args:
            url: an absolute URL or ``(origin, target)``.
            follow_redirects: follow 301/302/303/307/308 for GET and HEAD (at most 10),
                dropping ``Authorization`` when the redirect leaves the origin.

        Errors:
            :class:`ConnectionFailed` (500) on network failure or a redirect loop.
        """
        if self._closed:
            raise ConnectionFailed("HTTP client is closed")
        method = method.upper()
        origin, target = origin_of_url(url) if isinstance(url, str) else url
        current_headers = list(headers)
        for _hop in range(MAX_REDIRECTS + 1):
            response = await self._send_once(method, origin, target, current_headers, body)
            location = response.header("location")
            if not (
                follow_redirects
                and method in ("GET", "HEAD")
                and response.status in REDIRECT_STATUSES
                and location
            ):
                return response
            await response.aclose()
            new_origin, target = resolve_location(origin, target, location)
            if new_origin != origin:
                # Storage back ends (S3 presigned URLs) reject a second credential, and a
                # registry's token is not theirs to see.
                current_headers = [
                    (k, v) for k, v in current_headers if k.lower() != "authorization"
                ]
            log.debug("registry.redirect_followed", status=response.status, to=new_origin.netloc)
            origin = new_origin
        raise ConnectionFailed(
            f'{_go_method(method)} "{origin.url(target)}": stopped after {MAX_REDIRECTS} redirects'
        )

    async def _send_once(
        self, method: str, origin: Origin, target: str, headers: HeaderList, body: Body
    ) -> Response:
        label = f'{_go_method(method)} "{origin.url(target)}"'
        replayable = body is None or isinstance(body, bytes)
        connection = await self._connection(origin, label)
        try:
            return await connection.request(method, target, headers, body)
        except _Stale:
            if not replayable:
                raise
            log.debug("registry.stale_connection_retried", url=label)
        connection = await self._connection_fresh(origin, label)
        return await connection.request(method, target, headers, body)

    async def _connection_fresh(self, origin: Origin, label: str) -> Connection:
        for connection in self._idle.pop(origin, []):
            connection.closed = True
            _close_now(connection._stream)
        return await self._connection(origin, label)

    async def aclose(self) -> None:
        """Close every idle connection; later releases close instead of pooling."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()
