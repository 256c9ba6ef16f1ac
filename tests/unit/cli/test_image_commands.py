"""Image and registry commands against a fake Engine API: requests and output.

Every command runs in-process through ``cli.main.main``; the fake records
what the CLI sent (method, path, query, headers, body).  Standard input is
a real file put on fd 0, and a terminal on stdout is a real pty, so the
commands' ``isatty`` checks see what they would see in a shell.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pty
import stat
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.cli.fakeengine import FakeEngine, serve

INDEX = "https://index.docker.io/v1/"
DIGEST = "sha256:" + "a" * 64
IMAGE_ID = "sha256:" + "b" * 64


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield from serve()


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "berth-config"
    monkeypatch.setenv("BERTH_CONFIG", str(directory))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("DOCKER_DEFAULT_PLATFORM", raising=False)
    return directory


def write_config(directory: Path, data: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(data))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def registry_auth(request: object) -> object:
    """The decoded ``X-Registry-Auth`` header of a recorded request."""
    headers = request.headers  # type: ignore[attr-defined]
    value = headers["x-registry-auth"]
    return json.loads(base64.urlsafe_b64decode(value))


@contextlib.contextmanager
def stdin_from(tmp_path: Path, data: bytes) -> Iterator[None]:
    """Put a regular file holding ``data`` on fd 0 (not a terminal) and ``sys.stdin``."""
    source = tmp_path / "stdin"
    source.write_bytes(data)
    saved = os.dup(0)
    fd = os.open(source, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, closefd=False)))
    try:
        yield
    finally:
        sys.stdin = old_stdin
        os.dup2(saved, 0)
        os.close(saved)


@contextlib.contextmanager
def stdout_on_terminal(columns: int = 120) -> Iterator[list[bytes]]:
    """Point fd 1 at a raw pty of ``columns`` columns; collect what was written."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    tty.setraw(slave)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(slave, 1)
    old_stdout = sys.stdout  # capfd's stdout writes to its file, not to fd 1
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)))
    collected: list[bytes] = []
    try:
        yield collected
    finally:
        sys.stdout.flush()
        sys.stdout = old_stdout
        os.dup2(saved, 1)
        os.close(saved)
        os.close(slave)
        os.set_blocking(master, False)
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                collected.append(chunk)
        os.close(master)


# --- pull ----------------------------------------------------------------------------

PULL_STREAM: list[object] = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "ec562eabd705"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 1_200_000, "total": 3_400_000},
        "progress": "[=================>        ]  1.2MB/3.4MB",
        "id": "ec562eabd705",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "ec562eabd705"},
    {"status": "Download complete", "progressDetail": {}, "id": "ec562eabd705"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 3_400_000, "total": 3_400_000},
        "id": "ec562eabd705",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "ec562eabd705"},
    {"status": f"Digest: {DIGEST}"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def test_pull_request_and_plain_progress(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/create", stream=PULL_STREAM)
    assert main(["-H", engine.host, "pull", "busybox"]) == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == [
        "Using default tag: latest",
        "latest: Pulling from library/busybox",
        "ec562eabd705: Pulling fs layer",
        "ec562eabd705: Verifying Checksum",
        "ec562eabd705: Download complete",
        "ec562eabd705: Pull complete",
        f"Digest: {DIGEST}",
        "Status: Downloaded newer image for busybox:latest",
        "docker.io/library/busybox:latest",
    ]
    request = engine.only()
    assert (request.method, request.path) == ("POST", "/images/create")
    assert request.query == {"fromImage": ["docker.io/library/busybox"], "tag": ["latest"]}
    assert request.headers["x-registry-auth"] == "e30="  # {} without credentials
    assert request.body == b""


def test_pull_sends_the_stored_docker_hub_credentials(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_config(config_dir, {"auths": {INDEX: {"auth": b64("bob:s3cret")}}})
    engine.on("POST", "/images/create", stream=[])
    assert main(["-H", engine.host, "pull", "-q", "bob/app:1.0"]) == 0
    assert capfd.readouterr().out == "docker.io/bob/app:1.0\n"
    request = engine.only()
    assert request.query == {"fromImage": ["docker.io/bob/app"], "tag": ["1.0"]}
    assert registry_auth(request) == {
        "username": "bob",
        "password": "s3cret",
        "serveraddress": INDEX,
    }


def test_pull_by_digest_uses_the_digest_as_tag_and_a_scheme_prefixed_key(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_config(
        config_dir,
        {
            "auths": {
                INDEX: {"auth": b64("hub:x")},
                "https://localhost:5000": {"auth": b64("alice:pw"), "identitytoken": "tok"},
            },
            "psFormat": "table {{.ID}}",
        },
    )
    engine.on("POST", "/images/create", stream=[{"status": "Status: up to date"}])
    assert main(["-H", engine.host, "pull", f"localhost:5000/team/app@{DIGEST}"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "Status: up to date",
        f"localhost:5000/team/app@{DIGEST}",
    ]
    request = engine.only()
    assert request.query == {"fromImage": ["localhost:5000/team/app"], "tag": [DIGEST]}
    assert registry_auth(request) == {
        "username": "alice",
        "password": "pw",
        "serveraddress": "https://localhost:5000",
        "identitytoken": "tok",
    }


def test_pull_all_tags(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/create", stream=[])
    assert main(["-H", engine.host, "pull", "-a", "--platform", "Linux/AMD64", "busybox"]) == 0
    assert capfd.readouterr().out == "docker.io/library/busybox\n"
    assert engine.only().query == {
        "fromImage": ["docker.io/library/busybox"],
        "platform": ["linux/amd64"],
    }
    assert main(["-H", engine.host, "image", "pull", "--all-tags", "busybox:1.36"]) == 1
    assert capfd.readouterr().err == "tag can't be used with --all-tags/-a\n"
    assert len(engine.requests) == 1


def test_pull_error_in_the_stream_is_one_line_and_exit_1(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "POST",
        "/images/create",
        stream=[
            {"status": "Pulling from library/busybox", "id": "latest"},
            {
                "errorDetail": {"message": "manifest unknown: manifest unknown"},
                "error": "manifest unknown: manifest unknown",
            },
        ],
    )
    assert main(["-H", engine.host, "pull", "busybox:nope"]) == 1
    captured = capfd.readouterr()
    assert captured.out == "latest: Pulling from library/busybox\n"
    assert captured.err == "manifest unknown: manifest unknown\n"


def test_pull_refused_by_the_daemon(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "POST",
        "/images/create",
        status=404,
        json={"message": "pull access denied for nope, repository does not exist"},
    )
    assert main(["-H", engine.host, "pull", "nope"]) == 1
    captured = capfd.readouterr()
    assert captured.err == (
        "Error response from daemon: pull access denied for nope, repository does not exist\n"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("busybox:", "invalid reference format"),
        (
            "a" * 64,
            f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings",
        ),
    ],
)
def test_pull_rejects_bad_references_without_a_request(
    engine: FakeEngine,
    config_dir: Path,
    capfd: pytest.CaptureFixture[str],
    name: str,
    message: str,
) -> None:
    assert main(["-H", engine.host, "pull", name]) == 1
    assert capfd.readouterr().err == message + "\n"
    assert engine.requests == []


def test_pull_on_a_terminal_redraws_progress_lines(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/create", stream=PULL_STREAM[:3])
    with stdout_on_terminal(columns=120) as written:
        assert main(["-H", engine.host, "pull", "busybox"]) == 0
    text = b"".join(written).decode()
    assert text == (
        "Using default tag: latest\n"
        "latest: Pulling from library/busybox\n"
        "\n\x1b[1A\x1b[2K\rec562eabd705: Pulling fs layer \r\x1b[1B"
        "\x1b[1A\x1b[2K\rec562eabd705: Downloading "
        "[=================>                                 ]    1.2MB/3.4MB\r\x1b[1B"
        "docker.io/library/busybox:latest\n"
    )


# --- push ----------------------------------------------------------------------------

PUSH_STREAM: list[object] = [
    {"status": "The push refers to repository [localhost:5000/team/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "3d24ee258efc"},
    {"status": "Preparing", "progressDetail": {}, "id": "9f8e7d6c5b4a"},
    {"status": "Waiting", "progressDetail": {}, "id": "9f8e7d6c5b4a"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 512, "total": 2048},
        "id": "3d24ee258efc",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "3d24ee258efc"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "9f8e7d6c5b4a"},
    {"status": f"v1: digest: {DIGEST} size: 527"},
    {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": DIGEST, "Size": 527}},
]


def test_push_request_and_plain_progress(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_config(config_dir, {"auths": {"localhost:5000": {"auth": b64("alice:pw")}}})
    engine.on("POST", "/images/localhost:5000/team/app/push", stream=PUSH_STREAM)
    assert main(["-H", engine.host, "push", "localhost:5000/team/app:v1"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "The push refers to repository [localhost:5000/team/app]",
        "3d24ee258efc: Preparing",
        "9f8e7d6c5b4a: Preparing",
        "9f8e7d6c5b4a: Waiting",
        "3d24ee258efc: Pushed",
        "9f8e7d6c5b4a: Layer already exists",
        f"v1: digest: {DIGEST} size: 527",
    ]
    request = engine.only()
    assert (request.method, request.path) == ("POST", "/images/localhost:5000/team/app/push")
    assert request.query == {"tag": ["v1"]}
    assert registry_auth(request) == {
        "username": "alice",
        "password": "pw",
        "serveraddress": "localhost:5000",
    }


def test_push_default_tag_quiet_and_no_credentials(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "POST",
        "/images/docker.io/library/busybox/push",
        stream=[{"status": "Mounted from library/alpine", "progressDetail": {}, "id": "1a2b"}],
    )
    assert main(["-H", engine.host, "push", "busybox"]) == 0
    assert (
        capfd.readouterr().out == "Using default tag: latest\n1a2b: Mounted from library/alpine\n"
    )
    assert engine.requests[0].query == {"tag": ["latest"]}
    assert engine.requests[0].headers["x-registry-auth"] == "e30="
    assert main(["-H", engine.host, "image", "push", "-q", "busybox"]) == 0
    assert capfd.readouterr().out == "docker.io/library/busybox:latest\n"
    assert main(["-H", engine.host, "push", "--all-tags", "busybox"]) == 0
    assert engine.requests[2].query == {}


def test_push_refuses_digests(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["-H", engine.host, "push", f"busybox@{DIGEST}"]) == 1
    assert capfd.readouterr().err == "cannot push a digest reference\n"
    assert engine.requests == []


# --- login / logout ------------------------------------------------------------------


def test_login_verifies_then_stores_credentials(
    engine: FakeEngine,
    config_dir: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    write_config(config_dir, {"auths": {"other.io": {"auth": b64("x:y")}}, "psFormat": "raw"})
    engine.on("POST", "/auth", json={"Status": "Login Succeeded", "IdentityToken": ""})
    code = main(["-H", engine.host, "login", "-u", "bob", "-p", "pw", "localhost:5000"])
    assert code == 0
    captured = capfd.readouterr()
    assert captured.out == "Login Succeeded\n"
    path = config_dir / "config.json"
    assert captured.err == (
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        f"\nWARNING! Your credentials are stored unencrypted in '{path}'.\n"
        "Configure a credential helper to remove this warning. See\n"
        "https://docs.docker.com/go/credential-store/\n\n"
    )
    request = engine.only()
    assert (request.method, request.path) == ("POST", "/auth")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "username": "bob",
        "password": "pw",
        "serveraddress": "localhost:5000",
    }
    assert json.loads(path.read_text()) == {
        "auths": {
            "other.io": {"auth": b64("x:y")},
            "localhost:5000": {"auth": b64("bob:pw")},
        },
        "psFormat": "raw",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # an existing file keeps its mode


def test_login_creates_a_private_config_and_keeps_identity_tokens(
    engine: FakeEngine,
    config_dir: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    engine.on("POST", "/auth", json={"Status": "Login Succeeded", "IdentityToken": "tok-123"})
    with stdin_from(tmp_path, b"  s3cret \n"):
        code = main(["-H", engine.host, "login", "-u", "bob", "--password-stdin"])
    assert code == 0
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("Login Succeeded\n", "")  # no password stored
    assert engine.only().json() == {"username": "bob", "password": "s3cret", "serveraddress": INDEX}
    path = config_dir / "config.json"
    assert json.loads(path.read_text()) == {
        "auths": {INDEX: {"auth": b64("bob:"), "identitytoken": "tok-123"}}
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert path.read_text().startswith('{\n\t"auths": {\n\t\t"https://index.docker.io/v1/": {')


def test_login_docker_io_and_urls_map_to_their_config_keys(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/auth", json={"Status": "Login Succeeded"})
    for server in ("docker.io", "https://reg.example.com:8443/v2/"):
        argv = ["-H", engine.host, "login", "-u", "u", "-p", "p", server]
        assert main(argv) == 0
    servers = [r.json()["serveraddress"] for r in engine.requests]  # type: ignore[index]
    assert servers == [INDEX, "reg.example.com:8443"]
    auths = json.loads((config_dir / "config.json").read_text())["auths"]
    assert sorted(auths) == sorted([INDEX, "reg.example.com:8443"])


def test_login_refused_stores_nothing(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "POST",
        "/auth",
        status=401,
        json={"message": "unauthorized: incorrect username or password"},
    )
    assert main(["-H", engine.host, "login", "-u", "bob", "-p", "bad"]) == 1
    captured = capfd.readouterr()
    assert captured.err.splitlines()[-1] == (
        "Error response from daemon: unauthorized: incorrect username or password"
    )
    assert captured.out == ""
    assert not (config_dir / "config.json").exists()


def test_login_without_a_terminal_needs_both_credentials(
    engine: FakeEngine, config_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with stdin_from(tmp_path, b""):
        assert main(["-H", engine.host, "login", "-u", "bob"]) == 1
    assert capfd.readouterr().err == (
        "Error: Cannot perform an interactive login from a non TTY device\n"
    )
    assert engine.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-p", "x", "--password-stdin", "-u", "a"],
            "conflicting options: cannot specify both --password and --password-stdin",
        ),
        (["--password-stdin"], "the --password-stdin option requires --username to be set"),
        (["-u", "", "-p", "x"], "username is empty"),
        (["-u", "a", "-p", ""], "password is empty"),
    ],
)
def test_login_flag_errors(
    engine: FakeEngine,
    config_dir: Path,
    capfd: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert main(["-H", engine.host, "login", *argv]) == 1
    assert capfd.readouterr().err == message + "\n"
    assert engine.requests == []


def test_login_with_stored_credentials(
    engine: FakeEngine, config_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_config(config_dir, {"auths": {"localhost:5000": {"auth": b64("bob:pw")}}})
    engine.on("POST", "/auth", json={"Status": "Login Succeeded"})
    with stdin_from(tmp_path, b""):
        assert main(["-H", engine.host, "login", "localhost:5000"]) == 0
    captured = capfd.readouterr()
    assert captured.out == "Login Succeeded\n"
    assert captured.err.startswith("Authenticating with existing credentials... [Username: bob]\n")
    assert engine.only().json() == {
        "username": "bob",
        "password": "pw",
        "serveraddress": "localhost:5000",
    }


def test_logout_removes_every_spelling_of_the_server(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        config_dir,
        {
            "auths": {
                "https://localhost:5000": {"auth": b64("a:b")},
                "localhost:5000": {"auth": b64("a:b")},
                INDEX: {"auth": b64("c:d")},
            },
            "credsStore": "",
            "detachKeys": "ctrl-x",
        },
    )
    assert main(["-H", engine.host, "logout", "localhost:5000"]) == 0
    assert capfd.readouterr().out == "Removing login credentials for localhost:5000\n"
    assert json.loads(path.read_text()) == {
        "auths": {INDEX: {"auth": b64("c:d")}},
        "credsStore": "",
        "detachKeys": "ctrl-x",
    }
    assert main(["-H", engine.host, "logout"]) == 0
    assert capfd.readouterr().out == f"Removing login credentials for {INDEX}\n"
    assert json.loads(path.read_text())["auths"] == {}
    assert engine.requests == []  # logout is client-side


def test_logout_without_a_config_file_creates_none(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["-H", engine.host, "logout", "https://reg.example.com/v2/"]) == 0
    assert capfd.readouterr().out == "Removing login credentials for reg.example.com\n"
    assert not config_dir.exists()


def test_broken_config_is_a_warning_for_pull(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{not json")
    engine.on("POST", "/images/create", stream=[])
    assert main(["-H", engine.host, "pull", "-q", "busybox"]) == 0
    captured = capfd.readouterr()
    assert captured.err.startswith(
        f"WARNING: Error parsing config file ({config_dir / 'config.json'}): "
    )
    assert engine.only().headers["x-registry-auth"] == "e30="


# --- search --------------------------------------------------------------------------

SEARCH_RESULTS = [
    {
        "name": "busybox",
        "description": "Busybox base image with a rather long description\nthat wraps",
        "star_count": 3300,
        "is_official": True,
        "is_automated": False,
    },
    {
        "name": "radial/busyboxplus",
        "description": "Full-chain, Internet enabled, busybox made from scratch.",
        "star_count": 57,
        "is_official": False,
        "is_automated": True,
    },
]


def test_search_request_and_table(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/images/search", json=SEARCH_RESULTS)
    argv = ["search", "--limit", "5", "--filter", "is-official=true", "-f", "stars=3", "busybox"]
    assert main(["-H", engine.host, *argv]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "NAME                 DESCRIPTION                                     STARS     OFFICIAL",
        "busybox              Busybox base image with a rather long descri…   3300      [OK]",
        "radial/busyboxplus   Full-chain, Internet enabled, busybox made f…   57        ",
    ]
    request = engine.only()
    assert (request.method, request.path) == ("GET", "/images/search")
    assert request.query["term"] == ["busybox"]
    assert request.query["limit"] == ["5"]
    assert json.loads(request.query["filters"][0]) == {"is-official": ["true"], "stars": ["3"]}
    assert request.headers["x-registry-auth"] == "e30="


def test_search_formats_and_registry_credentials(
    engine: FakeEngine, config_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_config(config_dir, {"auths": {"http://reg.local:5000": {"auth": b64("u:p")}}})
    engine.on("GET", "/images/search", json=SEARCH_RESULTS)
    assert main(["-H", engine.host, "search", "--format", "json", "reg.local:5000/busy"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert json.loads(lines[0]) == {
        "Description": "Busybox base image with a rather long descri…",
        "IsOfficial": "true",
        "Name": "busybox",
        "StarCount": "3300",
    }
    assert json.loads(lines[1])["IsOfficial"] == "false"
    request = engine.only()
    assert request.query == {"term": ["reg.local:5000/busy"]}
    assert registry_auth(request) == {
        "username": "u",
        "password": "p",
        "serveraddress": "http://reg.local:5000",
    }
    assert (
        main(
            [
                "-H",
                engine.host,
                "search",
                "--no-trunc",
                "--format",
                "{{.Name}}: {{.Description}}",
                "x",
            ]
        )
        == 0
    )
    assert capfd.readouterr().out.splitlines()[0] == (
        "busybox: Busybox base image with a rather long description that wraps"
    )


# --- commit --------------------------------------------------------------------------


def test_commit_sends_every_parameter_and_prints_the_id(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/commit", status=201, json={"Id": IMAGE_ID})
    argv = ["commit", "-a", "Ann <a@b.c>", "-m", "snapshot", "-c", "ENV A=1", "-c", "CMD sh"]
    assert main(["-H", engine.host, *argv, "web", "myapp"]) == 0
    assert capfd.readouterr().out == IMAGE_ID + "\n"
    request = engine.only()
    assert (request.method, request.path) == ("POST", "/commit")
    assert request.query == {
        "container": ["web"],
        "repo": ["docker.io/library/myapp"],
        "tag": ["latest"],
        "comment": ["snapshot"],
        "author": ["Ann <a@b.c>"],
        "changes": ["ENV A=1", "CMD sh"],
    }
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {}


def test_commit_without_reference_and_without_pause(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/commit", status=201, json={"Id": IMAGE_ID})
    assert main(["-H", engine.host, "container", "commit", "--pause=false", "web"]) == 0
    assert engine.only().query == {
        "container": ["web"],
        "repo": [""],
        "tag": [""],
        "comment": [""],
        "author": [""],
        "pause": ["0"],
    }
    assert main(["-H", engine.host, "commit", "web", f"x@{DIGEST}"]) == 1
    assert capfd.readouterr().err == "refusing to create a tag with a digest reference\n"


# --- save / export / load -------------------------------------------------------------

TAR = b"ustar-ish" + bytes(range(256)) * 64


def test_save_to_a_file(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/images/get", raw=TAR, content_type="application/x-tar")
    target = tmp_path / "images.tar"
    assert main(["-H", engine.host, "save", "-o", str(target), "busybox", "alpine:3"]) == 0
    assert target.read_bytes() == TAR
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["images.tar"]  # no temporary left
    request = engine.only()
    assert (request.method, request.path) == ("GET", "/images/get")
    assert request.query == {"names": ["busybox", "alpine:3"]}
    assert capfd.readouterr() == ("", "")


def test_save_to_stdout_and_refusing_a_terminal(
    engine: FakeEngine, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    engine.on("GET", "/images/get", raw=TAR, content_type="application/x-tar")
    assert main(["-H", engine.host, "image", "save", "busybox"]) == 0
    assert capfdbinary.readouterr().out == TAR
    with stdout_on_terminal() as written:
        assert main(["-H", engine.host, "save", "busybox"]) == 1
    assert written == []
    assert capfdbinary.readouterr().err == (
        b"cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    )
    assert len(engine.requests) == 1


def test_save_error_leaves_no_file(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/images/get", status=404, json={"message": "No such image: nope:latest"})
    target = tmp_path / "out.tar"
    assert main(["-H", engine.host, "save", "-o", str(target), "nope"]) == 1
    assert capfd.readouterr().err == "Error response from daemon: No such image: nope:latest\n"
    assert list(tmp_path.iterdir()) == []
    missing = tmp_path / "no" / "dir.tar"
    assert main(["-H", engine.host, "save", "-o", str(missing), "busybox"]) == 1
    assert capfd.readouterr().err == (
        f"failed to save image: invalid output path: stat {missing.parent}: "
        "no such file or directory\n"
    )
    assert main(["-H", engine.host, "save", "-o", str(tmp_path), "busybox"]) == 1
    assert capfd.readouterr().err == "failed to save image: cannot write to a directory\n"


def test_export(
    engine: FakeEngine, tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    engine.on("GET", "/containers/web/export", raw=TAR, content_type="application/octet-stream")
    assert main(["-H", engine.host, "export", "web"]) == 0
    assert capfdbinary.readouterr().out == TAR
    target = tmp_path / "web.tar"
    assert main(["-H", engine.host, "container", "export", "--output", str(target), "web"]) == 0
    assert target.read_bytes() == TAR
    assert [r.path for r in engine.requests] == ["/containers/web/export"] * 2


LOAD_STREAM: list[object] = [
    {"stream": "Loaded image: busybox:latest\n"},
    {"stream": f"Loaded image ID: {IMAGE_ID}\n"},
]


def test_load_from_a_file(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/load", stream=LOAD_STREAM)
    archive = tmp_path / "in.tar"
    archive.write_bytes(TAR)
    assert main(["-H", engine.host, "load", "-i", str(archive)]) == 0
    assert capfd.readouterr().out == (
        f"Loaded image: busybox:latest\nLoaded image ID: {IMAGE_ID}\n"
    )
    request = engine.only()
    assert (request.method, request.path) == ("POST", "/images/load")
    assert request.query == {"quiet": ["1"]}  # stdout is not a terminal
    assert request.headers["content-type"] == "application/x-tar"
    assert request.body == TAR


def test_load_from_stdin_and_missing_file(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/load", stream=LOAD_STREAM[:1])
    with stdin_from(tmp_path, TAR):
        assert main(["-H", engine.host, "image", "load", "-q"]) == 0
    assert capfd.readouterr().out == "Loaded image: busybox:latest\n"
    assert engine.only().body == TAR
    missing = tmp_path / "missing.tar"
    assert main(["-H", engine.host, "load", "-i", str(missing)]) == 1
    assert capfd.readouterr().err == f"open {missing}: no such file or directory\n"


def test_load_error_in_the_stream(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/load", stream=[{"errorDetail": {"message": "unexpected EOF"}}])
    archive = tmp_path / "in.tar"
    archive.write_bytes(b"x")
    assert main(["-H", engine.host, "load", "-i", str(archive)]) == 1
    assert capfd.readouterr().err == "unexpected EOF\n"


# --- history -------------------------------------------------------------------------

HISTORY = [
    {
        "Id": IMAGE_ID,
        "Created": 0,  # replaced per test: now - 2 hours
        "CreatedBy": '/bin/sh -c #(nop)  CMD ["sh"]',
        "Size": 0,
        "Comment": "",
        "Tags": ["busybox:latest"],
    },
    {
        "Id": "<missing>",
        "Created": 0,
        "CreatedBy": "/bin/sh -c #(nop) ADD file:9e4a3c1b2f0d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f in /",
        "Size": 4_261_376,
        "Comment": "imported",
        "Tags": None,
    },
]


def _history(now: int) -> list[dict[str, object]]:
    items = [dict(h) for h in HISTORY]
    items[0]["Created"] = now - 2 * 3600
    items[1]["Created"] = now - 3 * 86400
    return items


def test_history_table(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/images/busybox/history", json=_history(int(time.time())))
    assert main(["-H", engine.host, "history", "busybox"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT",
        'bbbbbbbbbbbb   2 hours ago   /bin/sh -c #(nop)  CMD ["sh"]                   0B        ',
        "<missing>      3 days ago    /bin/sh -c #(nop) ADD file:9e4a3c1b2f0d8e7a6…   4.26MB    imported",
    ]
    assert engine.only().path == "/images/busybox/history"


def test_history_quiet_non_human_and_formats(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1_704_067_200
    engine.on("GET", "/images/busybox:1.36/history", json=_history(now))
    host = ["-H", engine.host]
    assert main([*host, "image", "history", "-q", "busybox:1.36"]) == 0
    assert capfd.readouterr().out == "bbbbbbbbbbbb\n<missing>\n"
    assert main([*host, "history", "-q", "--no-trunc", "busybox:1.36"]) == 0
    assert capfd.readouterr().out == f"{IMAGE_ID}\n<missing>\n"
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert main([*host, "history", "--human=false", "busybox:1.36"]) == 0
    finally:
        monkeypatch.undo()
        time.tzset()
    assert capfd.readouterr().out.splitlines() == [
        "IMAGE          CREATED AT             CREATED BY                                      SIZE      COMMENT",
        'bbbbbbbbbbbb   2023-12-31T22:00:00Z   /bin/sh -c #(nop)  CMD ["sh"]                   0         ',
        "<missing>      2023-12-29T00:00:00Z   /bin/sh -c #(nop) ADD file:9e4a3c1b2f0d8e7a6…   4261376   imported",
    ]
    assert main([*host, "history", "--format", "{{.ID}} {{.Size}}", "busybox:1.36"]) == 0
    assert capfd.readouterr().out == "bbbbbbbbbbbb 0B\n<missing> 4.26MB\n"


# --- prune ---------------------------------------------------------------------------

PRUNE_REPORT = {
    "ImagesDeleted": [
        {"Untagged": "old:1"},
        {"Deleted": IMAGE_ID},
    ],
    "SpaceReclaimed": 1_234_567,
}


def test_image_prune_forced(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("POST", "/images/prune", json=PRUNE_REPORT)
    assert main(["-H", engine.host, "image", "prune", "-f", "--filter", "until=24h"]) == 0
    assert capfd.readouterr().out == (
        f"Deleted Images:\nuntagged: old:1\ndeleted: {IMAGE_ID}\n\nTotal reclaimed space: 1.235MB\n"
    )
    request = engine.only()
    assert (request.method, request.path, request.body) == ("POST", "/images/prune", b"")
    assert json.loads(request.query["filters"][0]) == {"until": ["24h"], "dangling": ["true"]}


def test_image_prune_all_asks_first(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/images/prune", json={"ImagesDeleted": None, "SpaceReclaimed": 0})
    with stdin_from(tmp_path, b"y\n"):
        assert main(["-H", engine.host, "image", "prune", "-a"]) == 0
    assert capfd.readouterr().out == (
        "WARNING! This will remove all images without at least one container associated "
        "to them.\nAre you sure you want to continue? [y/N] Total reclaimed space: 0B\n"
    )
    assert json.loads(engine.only().query["filters"][0]) == {"dangling": ["false"]}


def test_image_prune_declined_sends_nothing(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with stdin_from(tmp_path, b"yes\n"):  # docker accepts only "y"
        assert main(["-H", engine.host, "image", "prune"]) == 0
    assert capfd.readouterr() == (
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ",
        "",
    )
    assert engine.requests == []


def test_container_prune(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    cid = "4f2a9c0e1b7d" + "0" * 52
    engine.on(
        "POST", "/containers/prune", json={"ContainersDeleted": [cid], "SpaceReclaimed": 2048}
    )
    assert main(["-H", engine.host, "container", "prune", "--force"]) == 0
    assert capfd.readouterr().out == (
        f"Deleted Containers:\n{cid}\n\nTotal reclaimed space: 2.048kB\n"
    )
    request = engine.only()
    assert (request.method, request.path, request.query) == ("POST", "/containers/prune", {})
    assert main(["-H", engine.host, "container", "prune", "-f", "--filter", "label=a=b"]) == 0
    assert json.loads(engine.requests[1].query["filters"][0]) == {"label": ["a=b"]}


# --- images --------------------------------------------------------------------------


def test_images_digests_and_filters(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    now = int(time.time())
    engine.on(
        "GET",
        "/images/json",
        json=[
            {
                "Id": IMAGE_ID,
                "RepoTags": ["busybox:latest"],
                "RepoDigests": [f"busybox@{DIGEST}"],
                "Created": now - 3 * 86400,
                "Size": 4_261_376,
            }
        ],
    )
    argv = ["images", "--digests", "-f", "dangling=false", "-f", "since=alpine", "busybox"]
    assert main(["-H", engine.host, *argv]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "REPOSITORY   TAG       DIGEST                                                                    IMAGE ID       CREATED      SIZE",
        f"busybox      latest    {DIGEST}   bbbbbbbbbbbb   3 days ago   4.26MB",
    ]
    request = engine.only()
    assert request.query.keys() == {"filters"}
    assert json.loads(request.query["filters"][0]) == {
        "dangling": ["false"],
        "since": ["alpine"],
        "reference": ["busybox"],
    }
    assert main(["-H", engine.host, "image", "ls", "--digests", "--format", "table {{.ID}}"]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "IMAGE ID       DIGEST",
        f"bbbbbbbbbbbb   {DIGEST}",
    ]
    for flt in ("before=busybox:1", "label=a=b", "reference=bus*"):
        assert main(["-H", engine.host, "image", "list", "--filter", flt, "-q"]) == 0
        key, _, value = flt.partition("=")
        assert json.loads(engine.requests[-1].query["filters"][0]) == {key: [value]}
