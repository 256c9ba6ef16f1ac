"""A small HTTP/1.1 client for the Docker Engine API over a unix socket.

Theory of operation:
    One request per connection.  ``Client.send`` connects, writes the request
    (a bytes body with Content-Length, or a file streamed with sendfile or
    chunked encoding) and returns a ``Response`` whose status line and
    headers are read on demand, so a caller can send a request and read the
    answer later (``run`` sends ``/wait`` before ``/start``, as docker does).
    The body is read with Content-Length, chunked decoding, or until the
    daemon closes; after ``101 UPGRADED`` (connection hijack) the socket is a
    raw bidirectional stream and ``Response.sock`` is handed to the caller.

    We write HTTP ourselves instead of using ``http.client``: importing it
    pulls in ``email`` and ``ssl`` (~50 ms here), a third of the start-up
    budget of ``berth run``, and the hijack needs a raw socket anyway.

    Errors: ``ConnectError`` (no daemon), ``DaemonError`` (a 4xx/5xx answer,
    carrying the daemon's ``message``), ``ProtocolError`` (a malformed answer).

    Resource handling: a ``Response`` owns its socket; ``close()`` it (or use
    it as a context manager).  Reading the body to the end does not close it.
"""

from __future__ import annotations

import json
import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import TracebackType
    from typing import BinaryIO, Self, TypedDict, Unpack

    class RequestOptions(TypedDict, total=False):
        """The keyword arguments of ``Client.send``, shared by ``Client.request``."""

        query: Mapping[str, object] | None
        body: bytes | BinaryIO | None
        headers: Mapping[str, str] | None


API_VERSION = "1.43"
DEFAULT_HOST = "unix:///run/berth/berth.sock"
_CHUNK = 64 * 1024
_MAX_HEADER = 64 * 1024


class ClientError(Exception):
    """Base of the errors this module raises; the message is shown to the user."""


class ConnectError(ClientError):
    """The daemon socket is missing or refuses connections."""

    def __init__(self, host: str, reason: str = "") -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"Cannot connect to the berth daemon at {host}. Is berthd running?")


class DaemonError(ClientError):
    """The daemon answered 4xx/5xx; ``message`` is its ``{"message": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"Error response from daemon: {message}")


class ProtocolError(ClientError):
    """The daemon's answer is not the HTTP we expect."""


def resolve_host(flag: str | None, environ: Mapping[str, str]) -> str:
    """The daemon address: ``-H``, then ``BERTH_HOST``, then a unix ``DOCKER_HOST``."""
    if flag:
        return flag
    host = environ.get("BERTH_HOST")
    if host:
        return host
    host = environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host
    return DEFAULT_HOST


def socket_path(host: str) -> str:
    """The filesystem path of a ``unix://`` host.

    Raises:
        ClientError: another scheme (berth speaks only over unix sockets).
    """
    if not host.startswith("unix://") or len(host) <= len("unix://"):
        raise ClientError(f"unsupported host {host!r}: berth only supports unix:///path hosts")
    return host[len("unix://") :]


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode ``text`` for a URL (UTF-8), keeping unreserved and ``safe``."""
    keep = _SAFE | frozenset(safe.encode())
    return "".join(
        chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8", "surrogateescape")
    )


def encode_query(params: Mapping[str, object] | None) -> str:
    """``?k=v&...`` from ``params``; None values are left out, lists repeat the key."""
    if not params:
        return ""
    parts: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            text = ("1" if item else "0") if isinstance(item, bool) else str(item)
            parts.append(f"{quote(key)}={quote(text)}")
    return "?" + "&".join(parts) if parts else ""


def error_message(status: int, body: bytes) -> str:
    """The daemon's error text: ``{"message": ...}`` or the raw body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    text = body.decode("utf-8", "replace").strip()
    return text or f"HTTP {status}"


class Response:
    """An HTTP response being read from a socket."""

    def __init__(self, sock: socket.socket, method: str) -> None:
        self.sock = sock
        self.method = method
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self._buf = bytearray()
        self._have_head = False
        self._eof = False
        self._mode = ""  # "length" | "chunked" | "close" | "none"
        self._remaining = 0  # body bytes left (length) or in the current chunk

    # -- plumbing ---------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at end of stream."""
        if self._eof:
            return False
        data = self.sock.recv(_CHUNK)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _read_line(self) -> bytes:
        while True:
            idx = self._buf.find(b"\n")
            if idx >= 0:
                line = bytes(self._buf[: idx + 1])
                del self._buf[: idx + 1]
                return line
            if len(self._buf) > _MAX_HEADER:
                raise ProtocolError("line too long in HTTP response")
            if not self._fill():
                raise ProtocolError("connection closed in the middle of an HTTP response")

    def readable(self, timeout: float) -> bool:
        """Whether the status line can be read within ``timeout`` seconds."""
        if self._have_head or self._buf:
            return True
        import select  # lazy: only run's wait-before-start needs it

        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def read_head(self) -> Self:
        """Read the status line and headers (once)."""
        if self._have_head:
            return self
        line = self._read_line()
        while line in (b"\r\n", b"\n"):  # tolerate stray blank lines
            line = self._read_line()
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"malformed HTTP status line: {line[:80]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        while True:
            line = self._read_line()
            if line in (b"\r\n", b"\n"):
                break
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise ProtocolError(f"malformed HTTP header: {line[:80]!r}")
            self.headers[name.strip().lower()] = value.strip()
        self._have_head = True
        encoding = self.headers.get("transfer-encoding", "").lower()
        if self.status == 101:
            self._mode = "close"
        elif self.method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._mode = "none"
        elif "chunked" in encoding:
            self._mode = "chunked"
        elif "content-length" in self.headers:
            try:
                self._remaining = int(self.headers["content-length"])
            except ValueError:
                raise ProtocolError("malformed Content-Length") from None
            self._mode = "length"
        else:
            self._mode = "close"
        return self

    # -- body ----------------------------------------------------------------------

    def iter_chunks(self) -> Iterator[bytes]:
        """Yield body bytes as they arrive (any split), until the body ends."""
        self.read_head()
        if self._mode == "none":
            return
        if self._mode == "length":
            while self._remaining > 0:
                if not self._buf and not self._fill():
                    raise ProtocolError("connection closed before the end of the body")
                data = bytes(self._buf[: self._remaining])
                del self._buf[: len(data)]
                self._remaining -= len(data)
                yield data
            return
        if self._mode == "close":
            while True:
                if self._buf:
                    data = bytes(self._buf)
                    self._buf.clear()
                    yield data
                if not self._fill():
                    return
        while True:  # chunked
            if self._remaining == 0:
                size_line = self._read_line().split(b";", 1)[0].strip()
                try:
                    self._remaining = int(size_line, 16)
                except ValueError:
                    raise ProtocolError("malformed chunk size") from None
                if self._remaining == 0:
                    while self._read_line() not in (b"\r\n", b"\n"):
                        pass  # trailers
                    self._mode = "none"
                    return
            while self._remaining > 0:
                if not self._buf and not self._fill():
                    raise ProtocolError("connection closed inside a chunk")
                data = bytes(self._buf[: self._remaining])
                del self._buf[: len(data)]
                self._remaining -= len(data)
                yield data
            self._read_line()  # CRLF after the chunk

    def take_buffered(self) -> bytes:
        """The bytes read past the head and not consumed yet, taken out of the buffer.

        After a hijack they are the start of the raw stream; a caller that polls
        ``sock`` itself (``cli.interactive``) takes them first.
        """
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def read(self) -> bytes:
        """The whole body."""
        return b"".join(self.iter_chunks())

    def json(self) -> object:
        """The body decoded as JSON (None for an empty body)."""
        body = self.read()
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise ProtocolError("the daemon answered invalid JSON") from None

    def iter_json(self) -> Iterator[object]:
        """Decode a stream of JSON values (newline-separated or not) as they arrive."""
        import codecs  # already loaded by the interpreter; lazy for clarity

        decoder = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span chunks
        text = ""
        for chunk in self.iter_chunks():
            text += utf8.decode(chunk)
            while True:
                text = text.lstrip()
                if not text:
                    break
                try:
                    value, end = decoder.raw_decode(text)
                except ValueError:
                    break  # incomplete; wait for more bytes
                yield value
                text = text[end:]
        text += utf8.decode(b"", final=True)
        if text.strip():
            raise ProtocolError("the daemon's JSON stream ended inside a value")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    """The Engine API at ``host`` (a ``unix://`` URL), API version ``API_VERSION``."""

    def __init__(self, host: str, *, version: str = API_VERSION) -> None:
        self.host = host
        self.path = socket_path(host)
        self.prefix = f"/v{version}" if version else ""

    def connect(self) -> socket.socket:
        """A connected socket to the daemon.

        Raises:
            ConnectError: the socket is missing or refuses connections.
            ClientError: permission denied.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise ConnectError(self.host, str(exc)) from None
        except PermissionError as exc:
            sock.close()
            raise ClientError(
                "permission denied while trying to connect to the berth daemon socket at "
                f"{self.host}: {exc.strerror}"
            ) from None
        except OSError as exc:
            sock.close()
            raise ConnectError(self.host, str(exc)) from None
        return sock

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: bytes | BinaryIO | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request; the answer is read lazily from the returned ``Response``.

        ``body`` may be bytes (sent with Content-Length) or a binary file:
        a regular file is sent with its size and ``sendfile``, anything else
        (a pipe, stdin) with chunked transfer encoding.
        """
        sock = self.connect()
        try:
            lines = [f"{method} {self.prefix}{path}{encode_query(query)} HTTP/1.1", "Host: berth"]
            lines.append("User-Agent: berth-cli")
            for key, value in (headers or {}).items():
                lines.append(f"{key}: {value}")
            file_size: int | None = None
            if isinstance(body, bytes | bytearray):
                lines.append(f"Content-Length: {len(body)}")
            elif body is not None:
                file_size = _regular_file_size(body)
                if file_size is None:
                    lines.append("Transfer-Encoding: chunked")
                else:
                    lines.append(f"Content-Length: {file_size}")
            elif method in ("POST", "PUT"):
                lines.append("Content-Length: 0")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
            if isinstance(body, bytes | bytearray):
                sock.sendall(head + body)
            else:
                sock.sendall(head)
                if body is not None:
                    _send_file(sock, body, file_size)
        except BaseException:
            sock.close()
            raise
        return Response(sock, method)

    def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Response:
        """:meth:`send` a request and read the head; raise ``DaemonError`` on 4xx/5xx."""
        return checked(self.send(method, path, **options))

    def call_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        payload: object = None,
    ) -> object:
        """One JSON request/response round trip (``payload`` sent as the JSON body)."""
        body = None
        headers = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json"}
        with self.request(method, path, query=query, body=body, headers=headers) as response:
            return response.json()

    def get(self, path: str, **query: object) -> object:
        """``GET path?query`` decoded as JSON."""
        return self.call_json("GET", path, query=query)

    def post(self, path: str, payload: object = None, **query: object) -> object:
        """``POST path?query`` with an optional JSON body, decoded as JSON."""
        return self.call_json("POST", path, query=query, payload=payload)

    def delete(self, path: str, **query: object) -> object:
        """``DELETE path?query`` decoded as JSON."""
        return self.call_json("DELETE", path, query=query)

    def hijack(self, path: str, *, query: Mapping[str, object] | None = None) -> Response:
        """``POST`` with ``Upgrade: tcp`` and return the upgraded connection.

        The daemon answers ``101 UPGRADED`` (or ``200`` from older engines)
        and the socket becomes a raw stream: read it with
        ``Response.iter_chunks()`` (bytes already buffered after the headers
        come first) and write stdin to ``Response.sock``.
        """
        response = self.send(
            "POST",
            path,
            query=query,
            headers={"Connection": "Upgrade", "Upgrade": "tcp", "Content-Type": "text/plain"},
        )
        if checked(response).status == 200:
            response._mode = "close"  # pre-1.24 engines hijack without a 101
        return response


def check(response: Response) -> None:
    """Read the head of ``response`` and raise ``DaemonError`` for 4xx/5xx."""
    response.read_head()
    if response.status >= 400:
        raise DaemonError(response.status, error_message(response.status, response.read()))


def checked(response: Response) -> Response:
    """``response`` once :func:`check` passed; closed if it raised."""
    try:
        check(response)
    except BaseException:
        response.close()
        raise
    return response


def _regular_file_size(body: BinaryIO) -> int | None:
    try:
        fd = body.fileno()
        info = os.fstat(fd)
    except (OSError, ValueError):
        return None
    import stat  # lazy: only uploads need it

    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size - body.tell()


def _send_file(sock: socket.socket, body: BinaryIO, size: int | None) -> None:
    if size is not None:
        sock.sendfile(body, count=size)
        return
    while True:
        data = body.read(_CHUNK)
        if not data:
            break
        sock.sendall(f"{len(data):X}\r\n".encode() + data + b"\r\n")
    sock.sendall(b"0\r\n\r\n")
