"""``berth exec`` and ``berth attach``: argument parsing, request bodies as docker 28 sends
them, and the request sequence against a fake engine on a unix socket."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cyclopts import App

from cli.app import build_app, parse_with_cyclopts
from cli.argspec import Parsed, parse_argv
from cli.client import ClientError
from cli.execcmd import build_exec_body, check_attachable, read_env_file, start_body
from cli.main import main
from cli.stream import STDERR, STDOUT, encode_frame
from tests.unit.cli.fakeengine import serve_handler

# --- parsing -----------------------------------------------------------------------------


@functools.cache
def _app() -> App:
    return build_app()


def both(argv: list[str]) -> Parsed:
    """Parse with the fast parser and with cyclopts; they must agree."""
    fast = parse_argv(argv)
    slow = parse_with_cyclopts(argv, app=_app())
    assert isinstance(slow, Parsed), slow
    if fast is not None:
        assert fast == slow
    return slow


def test_exec_options_before_the_container_the_command_after() -> None:
    parsed = both(["exec", "-it", "-u", "nobody", "-e", "A=1", "box", "sh", "-c", "ls -l", "-e"])
    assert parsed.command == "exec"
    assert parsed.args == ["box", "sh", "-c", "ls -l", "-e"]
    assert (parsed.flag("interactive"), parsed.flag("tty"), parsed.flag("detach")) == (
        True,
        True,
        False,
    )
    assert parsed.texts("env") == ["A=1"]
    assert parsed.text("user") == "nobody"


def test_container_exec_and_attach_aliases() -> None:
    assert both(["container", "exec", "-d", "box", "true"]).command == "exec"
    parsed = both(["container", "attach", "--no-stdin", "--detach-keys", "ctrl-a", "box"])
    assert parsed.command == "attach"
    assert parsed.args == ["box"]
    assert parsed.flag("no_stdin") is True
    assert parsed.text("detach_keys") == "ctrl-a"
    assert parsed.flag("sig_proxy") is True


def test_sig_proxy_turns_off_with_false() -> None:
    assert parse_argv(["attach", "--sig-proxy=false", "box"]) is None  # cyclopts' spelling
    assert both(["attach", "--sig-proxy=false", "box"]).flag("sig_proxy") is False
    run = both(["run", "-it", "--sig-proxy=false", "--detach-keys=ctrl-x", "busybox", "sh"])
    assert (run.flag("sig_proxy"), run.text("detach_keys")) == (False, "ctrl-x")


def test_start_takes_detach_keys_and_create_does_not() -> None:
    assert both(["start", "-ai", "--detach-keys", "ctrl-a", "c"]).text("detach_keys") == "ctrl-a"
    assert parse_argv(["create", "--detach-keys", "x", "busybox"]) is None


# --- bodies --------------------------------------------------------------------------------


def exec_body(argv: list[str], **kw: object) -> dict[str, object]:
    parsed = both(["exec", *argv])
    options: dict[str, object] = {
        "environ": {},
        "read_file": lambda path: b"",
        "size": (30, 100),
        "keys": "",
    }
    options.update(kw)
    return build_exec_body(parsed, **options)  # type: ignore[arg-type]  # kw from the table


def test_exec_body_it_is_dockers() -> None:
    # What docker 28 sends for `docker exec -it box sh` on a 30x100 terminal.
    assert json.dumps(exec_body(["-it", "box", "sh"]), separators=(",", ":")) == (
        '{"User":"","Privileged":false,"Tty":true,"ConsoleSize":[30,100],"AttachStdin":true,'
        '"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,'
        '"WorkingDir":"","Cmd":["sh"]}'
    )


def test_exec_body_plain_has_no_console_size() -> None:
    assert json.dumps(exec_body(["box", "true"]), separators=(",", ":")) == (
        '{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,'
        '"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"",'
        '"Cmd":["true"]}'
    )


def test_exec_body_detached_attaches_nothing_even_with_i() -> None:
    body = exec_body(["-d", "-i", "box", "sleep", "1"])
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (
        False,
        False,
        False,
    )
    assert body["Detach"] is True


def test_exec_body_user_env_workdir_privileged_keys() -> None:
    body = exec_body(
        [
            "-u",
            "nobody:nogroup",
            "--env-file",
            "f",
            "-e",
            "B=2",
            "-e",
            "HOME",
            "-e",
            "UNSET",
            "-w",
            "/tmp",
            "--privileged",
            "box",
            "env",
        ],
        environ={"HOME": "/root", "FROMFILE": "x"},
        read_file=lambda path: b"# comment\nA=1\nFROMFILE\nMISSING\n",
        keys="ctrl-a",
    )
    assert body["User"] == "nobody:nogroup"
    assert body["Env"] == ["A=1", "FROMFILE=x", "B=2", "HOME=/root", "UNSET"]
    assert body["WorkingDir"] == "/tmp"
    assert body["Privileged"] is True
    assert body["DetachKeys"] == "ctrl-a"


def test_exec_start_body_console_size_only_with_tty() -> None:
    assert start_body(detach=False, tty=True, size=(30, 100)) == {
        "Detach": False,
        "Tty": True,
        "ConsoleSize": [30, 100],
    }
    assert start_body(detach=True, tty=False, size=(0, 0)) == {"Detach": True, "Tty": False}


def test_read_env_file_missing_is_dockers_open_error(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(ClientError) as exc:
        read_env_file(str(path))
    assert str(exc.value) == f"open {path}: no such file or directory"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"Running": False}, "You cannot attach to a stopped container, start it first"),
        (
            {"Running": True, "Paused": True},
            "You cannot attach to a paused container, unpause it first",
        ),
        (
            {"Running": True, "Restarting": True},
            "You cannot attach to a restarting container, wait until it is running",
        ),
    ],
    ids=["stopped", "paused", "restarting"],
)
def test_check_attachable_gives_dockers_messages(state: dict[str, bool], message: str) -> None:
    with pytest.raises(ClientError) as exc:
        check_attachable({"State": state})
    assert str(exc.value) == message


def test_check_attachable_accepts_a_running_container() -> None:
    check_attachable({"State": {"Running": True, "Paused": False, "Restarting": False}})


# --- against a fake engine -----------------------------------------------------------------

EXEC_ID = "e" * 64


class Engine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, list[str]], dict[str, str], bytes]] = []
        self.state: dict[str, object] = {"Running": True, "Paused": False, "Restarting": False}
        self.config: dict[str, object] = {"Tty": False, "OpenStdin": False}
        self.exit_code: object = 7
        self.exec_status = 201
        self.attached = threading.Event()

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, *_ in self.calls]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Engine

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def reply(self, status: int, payload: object = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def hijack(self, frames: bytes) -> None:
        self.wfile.write(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream"
            b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frames
        )
        self.wfile.flush()
        self.close_connection = True

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        path = url.path.removeprefix("/v1.43")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.engine.calls.append((self.command, path, parse_qs(url.query), headers, body))
        frames = encode_frame(STDOUT, b"out\n") + encode_frame(STDERR, b"err\n")
        if path == "/containers/ghost/json":
            self.reply(404, {"message": "No such container: ghost"})
        elif path == "/containers/box/json":
            self.reply(200, {"Id": "box", "State": self.engine.state, "Config": self.engine.config})
        elif path == "/containers/box/exec":
            if self.engine.exec_status == 409:
                self.reply(409, {"message": "Container box is not running"})
            else:
                self.reply(201, {"Id": EXEC_ID})
        elif path == f"/exec/{EXEC_ID}/start":
            if headers.get("upgrade") == "tcp":
                self.hijack(frames)
            else:
                self.reply(200)
        elif path == f"/exec/{EXEC_ID}/json":
            self.reply(200, {"ID": EXEC_ID, "Running": False, "ExitCode": self.engine.exit_code})
        elif path == "/containers/box/attach":
            self.hijack(frames)
            self.engine.attached.set()
        elif path == "/containers/box/wait":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            self.wfile.flush()
            assert self.engine.attached.wait(10)
            result = json.dumps({"StatusCode": 3, "Error": None}).encode()
            self.wfile.write(f"{len(result):x}\r\n".encode() + result + b"\r\n0\r\n\r\n")
            self.wfile.flush()
        else:
            self.reply(404, {"message": "page not found"})

    do_GET = do_POST = handle_any


@pytest.fixture
def engine() -> Iterator[tuple[Engine, str]]:
    fake = Engine()
    with serve_handler(type("Bound", (Handler,), {"engine": fake})) as host:
        yield fake, host


def test_exec_inspects_creates_starts_hijacked_and_exits_with_the_code(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    assert main(["-H", host, "exec", "-e", "A=1", "box", "sh", "-c", "x"]) == 7
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("out\n", "err\n")
    assert fake.paths() == [
        "GET /containers/box/json",
        "POST /containers/box/exec",
        f"POST /exec/{EXEC_ID}/start",
        f"GET /exec/{EXEC_ID}/json",
    ]
    _, _, _, headers, body = fake.calls[2]
    assert (headers["upgrade"], headers["connection"]) == ("tcp", "Upgrade")
    assert json.loads(body) == {"Detach": False, "Tty": False}
    assert json.loads(fake.calls[1][4])["Env"] == ["A=1"]


def test_exec_null_exit_code_is_zero(engine: tuple[Engine, str]) -> None:
    fake, host = engine
    fake.exit_code = None
    assert main(["-H", host, "exec", "box", "true"]) == 0


def test_exec_detached_starts_without_hijack_and_prints_nothing(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    assert main(["-H", host, "exec", "-d", "box", "sleep", "1"]) == 0
    assert capfd.readouterr().out == ""
    assert fake.paths() == [
        "GET /containers/box/json",
        "POST /containers/box/exec",
        f"POST /exec/{EXEC_ID}/start",
    ]
    _, _, _, headers, body = fake.calls[2]
    assert "upgrade" not in headers
    assert json.loads(body) == {"Detach": True, "Tty": False}


def test_exec_in_a_missing_or_stopped_container_exits_1(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    assert main(["-H", host, "exec", "ghost", "true"]) == 1
    assert capfd.readouterr().err == "Error response from daemon: No such container: ghost\n"
    fake.exec_status = 409
    assert main(["-H", host, "exec", "box", "true"]) == 1
    assert capfd.readouterr().err == "Error response from daemon: Container box is not running\n"


def test_exec_it_without_a_terminal_fails_before_creating(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake, host = engine
    saved = os.dup(0)
    r, w = os.pipe()
    os.dup2(r, 0)
    try:
        assert main(["-H", host, "exec", "-it", "box", "sh"]) == 1
    finally:
        os.dup2(saved, 0)
        for fd in (saved, r, w):
            os.close(fd)
    assert capfd.readouterr().err == "the input device is not a TTY\n"
    assert fake.paths() == ["GET /containers/box/json"]  # "No such container" would win


def test_exec_requires_a_command(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["-H", "unix:///nonexistent", "exec", "box"]) == 2
    assert "requires at least 2 arguments" in capfd.readouterr().err


def test_exec_bad_env_file_fails_before_any_request(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake, host = engine
    missing = tmp_path / "nope"
    assert main(["-H", host, "exec", "--env-file", str(missing), "box", "env"]) == 1
    assert capfd.readouterr().err == f"open {missing}: no such file or directory\n"
    assert fake.calls == []


def test_exec_bad_detach_keys_fail_before_any_request(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    assert main(["-H", host, "exec", "--detach-keys", "ctrl-1", "box", "sh"]) == 1
    assert capfd.readouterr().err == "Invalid detach keys (ctrl-1) provided\n"
    assert fake.calls == []


def test_attach_waits_attaches_rechecks_and_exits_with_the_code(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    fake.config = {"Tty": False, "OpenStdin": False}
    assert main(["-H", host, "attach", "--sig-proxy=false", "box"]) == 3
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("out\n", "err\n")
    assert fake.paths() == [
        "GET /containers/box/json",
        "POST /containers/box/wait",
        "POST /containers/box/attach",
        "GET /containers/box/json",
    ]
    assert fake.calls[1][2] == {}  # no condition: the daemon's not-running, as docker
    # No stdin: the container was not created with -i.
    assert fake.calls[2][2] == {"stream": ["1"], "stdout": ["1"], "stderr": ["1"]}


def test_attach_stdin_and_detach_keys_reach_the_query(engine: tuple[Engine, str]) -> None:
    fake, host = engine
    fake.config = {"Tty": False, "OpenStdin": True}
    saved = os.dup(0)
    r, w = os.pipe()
    os.close(w)  # stdin at its end at once
    os.dup2(r, 0)
    try:
        assert main(["-H", host, "attach", "--detach-keys", "ctrl-a", "box"]) == 3
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(r)
    assert fake.calls[2][2] == {
        "stream": ["1"],
        "stdin": ["1"],
        "stdout": ["1"],
        "stderr": ["1"],
        "detachKeys": ["ctrl-a"],
    }


def test_attach_to_a_stopped_container_exits_1(
    engine: tuple[Engine, str], capfd: pytest.CaptureFixture[str]
) -> None:
    fake, host = engine
    fake.state = {"Running": False}
    assert main(["-H", host, "attach", "box"]) == 1
    assert capfd.readouterr().err == "You cannot attach to a stopped container, start it first\n"
    assert fake.paths() == ["GET /containers/box/json"]


def test_the_plain_run_path_loads_no_terminal_machinery() -> None:
    # berth run is benchmarked: -i/-t, exec and attach load their modules when used.
    import subprocess
    import sys

    code = (
        "import sys, cli.main, cli.commands, cli.create, cli.stream;"
        "loaded = {'cli.interactive', 'cli.execcmd', 'cli.detachkeys', 'termios', 'tty'};"
        "print(sorted(loaded & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_attach_no_stdin_leaves_stdin_out_of_the_query(engine: tuple[Engine, str]) -> None:
    fake, host = engine
    fake.config = {"Tty": False, "OpenStdin": True}
    assert main(["-H", host, "attach", "--no-stdin", "box"]) == 3
    assert fake.calls[2][2] == {"stream": ["1"], "stdout": ["1"], "stderr": ["1"]}
