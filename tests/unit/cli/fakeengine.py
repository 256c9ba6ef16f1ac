"""A scriptable fake Docker Engine API on a unix socket, for CLI tests.

Each test declares the answers it needs (``engine.on("POST", "/auth",
json=...)``); the fake records every request (method, path, query,
headers, body) and answers 404 ``page not found`` to anything else.
Streams (``stream=[...]``) are sent with chunked encoding, one chunk per
item, as the daemon sends JSON progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class Request:
    """One request the fake received."""

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self) -> object:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path} {self.query})"


class Answer:
    def __init__(
        self,
        status: int,
        payload: object,
        stream: list[object] | None,
        raw: bytes | None,
        content_type: str,
    ) -> None:
        self.status = status
        self.payload = payload
        self.stream = stream
        self.raw = raw
        self.content_type = content_type


class FakeEngine:
    """Routes and the requests received."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.routes: dict[tuple[str, str], Answer] = {}
        self.host = ""

    def on(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: object = None,
        stream: list[object] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Answer ``method path`` with JSON, a chunked JSON-lines stream, or raw bytes."""
        self.routes[(method, path)] = Answer(status, json, stream, raw, content_type)

    def only(self) -> Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: FakeEngine

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        assert url.path.startswith("/v1.43/"), url.path
        path = url.path[len("/v1.43") :]
        request = Request(
            method,
            path,
            parse_qs(url.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            self._body(),
        )
        self.engine.requests.append(request)
        answer = self.engine.routes.get((method, path))
        if answer is None:
            answer = Answer(404, {"message": "page not found"}, None, None, "application/json")
        if answer.stream is not None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for item in answer.stream:
                chunk = item if isinstance(item, bytes) else json.dumps(item).encode() + b"\r\n"
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if answer.raw is not None:
            body = answer.raw
        else:
            body = b"" if answer.payload is None else json.dumps(answer.payload).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:  # writing nothing to a client that already left would still raise EPIPE
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up early (as the CLI does after an error in a stream) is
        not an error of the fake; socketserver's default would print a traceback into
        the stderr the tests capture."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ValueError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextlib.contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a fresh unix socket in a thread; yields the ``unix://``
    host for ``-H``. Tests with a hand-written engine (hijack, long-poll) bind their
    state to the handler class and share this plumbing."""
    directory = tempfile.mkdtemp(prefix="berth-cli-")  # short: AF_UNIX paths are limited
    path = os.path.join(directory, "docker.sock")
    server = _Server(path, handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(directory, ignore_errors=True)


def serve() -> Iterator[FakeEngine]:
    """Run a ``FakeEngine`` until the generator is closed (a fixture body)."""
    fake = FakeEngine()
    with serve_handler(type("BoundHandler", (_Handler,), {"engine": fake})) as host:
        fake.host = host
        yield fake
