"""The CLI against a fake Docker Engine API served on a unix socket.

The fake is a stdlib ``http.server`` over AF_UNIX in a thread.  It records
every request, answers ``ps``/``create``/``start``/``stop``, hijacks
``attach`` (``101 UPGRADED`` then multiplexed frames once the container is
"started"), and answers ``wait`` like moby: the 200 head at once, the body
when the container "exits".  Commands run in-process through
``cli.main.main`` and their output is read with ``capfd``.
"""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.main import main
from cli.stream import STDERR, STDOUT, encode_frame

CID = "4f2a9c0e1b7d" + "0" * 52
TIMEOUT = 5.0


class FakeEngine:
    """What the fake daemon knows and what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, list[str]]]] = []
        self.bodies: dict[str, object] = {}
        self.started = threading.Event()
        self.output_done = threading.Event()
        self.frames = [(STDOUT, b"hello from busybox\n"), (STDERR, b"oops\n")]
        self.exit_code = 3
        self.containers: list[dict[str, object]] = []

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.calls]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: FakeEngine  # set on a subclass per server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet (and AF_UNIX has no client address to print)

    # -- helpers ------------------------------------------------------------------

    def reply(self, status: int, payload: object = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self, method: str) -> None:
        url = urlsplit(self.path)
        assert url.path.startswith("/v1.43/"), url.path
        path = url.path[len("/v1.43") :]
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.engine.calls.append((method, path, query))
        if body:
            self.engine.bodies[path] = json.loads(body)
        handler = getattr(self, f"on_{method.lower()}", None)
        assert handler is not None
        handler(path, query)

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_DELETE(self) -> None:
        self.route("DELETE")

    # -- routes ---------------------------------------------------------------------

    def on_get(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/containers/json":
            self.reply(200, self.engine.containers)
        else:
            self.reply(404, {"message": "page not found"})

    def on_delete(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(404, {"message": f"No such container: {path.rsplit('/', 1)[-1]}"})

    def on_post(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/containers/create":
            body = self.engine.bodies[path]
            assert isinstance(body, dict)
            if body["Image"] == "missing":
                self.reply(404, {"message": "No such image: missing:latest"})
            else:
                self.reply(201, {"Id": CID, "Warnings": []})
        elif path == f"/containers/{CID}/start":
            self.engine.started.set()
            self.send_response(204)
            self.end_headers()
        elif path == f"/containers/{CID}/attach":
            self.hijack()
        elif path == f"/containers/{CID}/wait":
            self.wait()
        elif path.endswith("/stop"):
            name = path.split("/")[2]
            if name == "ghost":
                self.reply(404, {"message": "No such container: ghost"})
            else:
                self.send_response(204)
                self.end_headers()
        else:
            self.reply(404, {"message": "page not found"})

    def hijack(self) -> None:
        assert self.headers["Upgrade"] == "tcp"
        assert self.headers["Connection"] == "Upgrade"
        head = (
            "HTTP/1.1 101 UPGRADED\r\n"
            "Content-Type: application/vnd.docker.multiplexed-stream\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        self.wfile.write(head.encode())
        self.wfile.flush()
        assert self.engine.started.wait(TIMEOUT), "the CLI never started the container"
        data = b"".join(encode_frame(stream, payload) for stream, payload in self.engine.frames)
        # Split frames across writes to exercise the incremental demuxer.
        for i in range(0, len(data), 7):
            self.wfile.write(data[i : i + 7])
            self.wfile.flush()
        self.close_connection = True
        self.engine.output_done.set()

    def wait(self) -> None:
        # moby: the head is flushed as soon as the wait is registered ...
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self.wfile.flush()
        # ... and the body follows when the container exits.
        assert self.engine.output_done.wait(TIMEOUT)
        body = json.dumps({"StatusCode": self.engine.exit_code, "Error": None}).encode()
        self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine() -> tuple[FakeEngine, str]:
    directory = tempfile.mkdtemp(prefix="berth-cli-")  # short: AF_UNIX paths are limited
    path = os.path.join(directory, "docker.sock")
    fake = FakeEngine()
    handler = type("BoundHandler", (Handler,), {"engine": fake})
    server = Server(path, handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake, f"unix://{path}"
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(directory, ignore_errors=True)


def test_ps_renders_docker_table(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    fake.containers = [
        {
            "Id": CID,
            "Names": ["/web"],
            "Image": "busybox",
            "Command": "sh -c 'while true; do sleep 1; done'",
            "Created": int(time.time()) - 5 * 3600,
            "State": "running",
            "Status": "Up 5 hours",
            "Ports": [],
        }
    ]
    assert main(["-H", host, "ps", "-a", "--filter", "status=running"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert lines == [
        "CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS       PORTS     NAMES",
        '4f2a9c0e1b7d   busybox   "sh -c \'while true; …"   5 hours ago   Up 5 hours             web',
    ]
    method, path, query = fake.calls[0]
    assert (method, path) == ("GET", "/containers/json")
    assert query["all"] == ["1"]
    assert json.loads(query["filters"][0]) == {"status": ["running"]}


def test_ps_quiet_prints_short_ids(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    fake.containers = [{"Id": CID, "Names": ["/a"], "Created": 0}]
    assert main(["-H", host, "ps", "-q"]) == 0
    assert capfd.readouterr().out == CID[:12] + "\n"


def test_run_detached_creates_starts_and_prints_id(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    code = main(
        [
            "-H",
            host,
            "run",
            "-d",
            "--name",
            "web",
            "-e",
            "A=1",
            "-m",
            "64m",
            "busybox",
            "sleep",
            "9",
        ]
    )
    assert code == 0
    assert capfd.readouterr().out == CID + "\n"
    assert fake.paths() == ["POST /containers/create", f"POST /containers/{CID}/start"]
    assert fake.calls[0][2] == {"name": ["web"]}
    body = fake.bodies["/containers/create"]
    assert isinstance(body, dict)
    assert body["Image"] == "busybox"
    assert body["Cmd"] == ["sleep", "9"]
    assert body["Env"] == ["A=1"]
    assert body["AttachStdout"] is False
    assert body["HostConfig"]["Memory"] == 64 * 1024 * 1024


def test_run_foreground_streams_output_and_exits_with_container_code(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    assert main(["-H", host, "run", "--rm", "busybox", "sh", "-c", "echo hello"]) == 3
    captured = capfd.readouterr()
    assert captured.out == "hello from busybox\n"
    assert captured.err == "oops\n"
    # docker's order: attach before start, wait registered before start.
    assert fake.paths() == [
        "POST /containers/create",
        f"POST /containers/{CID}/attach",
        f"POST /containers/{CID}/wait",
        f"POST /containers/{CID}/start",
    ]
    assert fake.calls[1][2] == {"stream": ["1"], "stdout": ["1"], "stderr": ["1"]}
    assert fake.calls[2][2] == {"condition": ["removed"]}
    body = fake.bodies["/containers/create"]
    assert isinstance(body, dict)
    assert body["HostConfig"]["AutoRemove"] is True
    assert body["AttachStdout"] is True


def test_run_missing_image_reports_and_exits_125(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    _, host = engine
    assert main(["-H", host, "run", "missing"]) == 125
    assert capfd.readouterr().err.splitlines() == [
        "Unable to find image 'missing:latest' locally",
        "Error response from daemon: No such image: missing:latest",
    ]


def test_stop_reports_each_failure_and_exits_1(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    _, host = engine
    assert main(["-H", host, "stop", "-t", "1", "web", "ghost", "db"]) == 1
    captured = capfd.readouterr()
    assert captured.out == "web\ndb\n"
    assert captured.err == "Error response from daemon: No such container: ghost\n"


def test_missing_socket_prints_cannot_connect(capfd: pytest.CaptureFixture[str]) -> None:
    host = "unix:///nonexistent/berth.sock"
    assert main(["-H", host, "ps"]) == 1
    assert main(["-H", host, "run", "busybox"]) == 125
    err = capfd.readouterr().err.splitlines()
    assert (
        err
        == [
            f"Cannot connect to the berth daemon at {host}. Is berthd running?",
        ]
        * 2
    )
