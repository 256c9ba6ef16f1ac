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
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.main import main
from cli.stream import STDERR, STDOUT, encode_frame
from tests.unit.cli.fakeengine import serve_handler

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
        if self.headers.get("Content-Type") == "application/json":
            self.engine.bodies[path] = json.loads(body)
        elif body:
            self.engine.bodies[path] = body
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
        elif path == "/containers/web/json":
            self.reply(200, {"Id": CID, "Name": "/web", "State": {"Status": "running"}})
        elif path == "/images/busybox/json":
            self.reply(200, {"Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest"]})
        elif path.startswith(("/containers/", "/images/")) and path.endswith("/json"):
            kind = "container" if path.startswith("/containers/") else "image"
            self.reply(404, {"message": f"No such {kind}: {path.split('/')[2]}"})
        elif path == "/containers/web/logs":
            frames = encode_frame(STDOUT, b"line 1\n") + encode_frame(STDERR, b"warn\n")
            self.stream("application/vnd.docker.multiplexed-stream", [frames[:5], frames[5:]])
        elif path == "/events":
            events = [
                {
                    "Type": "container",
                    "Action": "start",
                    "Actor": {"ID": CID, "Attributes": {"name": "web", "image": "busybox"}},
                    "timeNano": 1704067200000000001,
                },
                {
                    "Type": "image",
                    "Action": "tag",
                    "Actor": {"ID": "sha256:1"},
                    "timeNano": 1704067201000000000,
                },
            ]
            self.stream("application/json", [json.dumps(e).encode() + b"\n" for e in events])
        else:
            self.reply(404, {"message": "page not found"})

    def stream(self, content_type: str, chunks: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def on_delete(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(404, {"message": f"No such container: {path.rsplit('/', 1)[-1]}"})

    def on_post(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/images/create":
            self.stream("application/json", [b'{"status":"sha256:' + b"c" * 64 + b'"}\r\n'])
        elif path == "/containers/create":
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


@pytest.fixture
def engine() -> Iterator[tuple[FakeEngine, str]]:
    fake = FakeEngine()
    with serve_handler(type("BoundHandler", (Handler,), {"engine": fake})) as host:
        yield fake, host


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
    err = capfd.readouterr().err.splitlines()
    # docker's order: the note, the pull's progress (this fake answers any pull), and the
    # create that still fails.
    assert err[0] == "Unable to find image 'missing:latest' locally"
    assert err[-1] == "Error response from daemon: No such image: missing:latest"


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


def test_logs_demultiplexes_to_stdout_and_stderr(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    assert main(["-H", host, "logs", "--tail", "5", "-t", "web"]) == 0
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("line 1\n", "warn\n")
    assert fake.calls[0][2] == {
        "stdout": ["1"],
        "stderr": ["1"],
        "timestamps": ["1"],
        "tail": ["5"],
    }


def test_inspect_falls_back_to_images_and_reports_missing(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    _, host = engine
    assert main(["-H", host, "inspect", "web", "busybox", "nope"]) == 1
    captured = capfd.readouterr()
    objects = json.loads(captured.out)
    assert [o["Id"][:6] for o in objects] == [CID[:6], "sha256"]
    assert captured.out.startswith("[\n    {\n        ")
    assert captured.err == "Error: No such object: nope\n"
    assert main(["-H", host, "inspect", "-f", "{{.Name}} {{.State.Status}}", "web"]) == 0
    assert capfd.readouterr().out == "/web running\n"


def test_import_streams_the_tar_and_prints_the_id(
    engine: tuple[FakeEngine, str], capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake, host = engine
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(b"\0" * 2048)
    code = main(
        ["-H", host, "import", "-c", "CMD sh", "-m", "hi", str(tar), "localhost:5000/bb:v1"]
    )
    assert code == 0
    assert capfd.readouterr().out == "sha256:" + "c" * 64 + "\n"
    method, path, query = fake.calls[0]
    assert (method, path) == ("POST", "/images/create")
    assert query == {
        "fromSrc": ["-"],
        "repo": ["localhost:5000/bb"],
        "tag": ["v1"],
        "message": ["hi"],
        "changes": ["CMD sh"],
    }
    assert fake.bodies["/images/create"] == b"\0" * 2048


def test_events_default_lines(
    engine: tuple[FakeEngine, str],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, host = engine
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert main(["-H", host, "events", "--since", "1704067200", "--until", "1704067300"]) == 0
    finally:
        monkeypatch.undo()
        time.tzset()
    assert capfd.readouterr().out.splitlines() == [
        f"2024-01-01T00:00:00.000000001Z container start {CID} (image=busybox, name=web)",
        "2024-01-01T00:00:01.000000000Z image tag sha256:1",
    ]
    assert fake.calls[0][2] == {"since": ["1704067200"], "until": ["1704067300"]}
