"""Tests for cli.buildcmd: options to query, upload progress, stream rendering, and the
whole command against a fake engine.

Expected bytes come from the docker 28.2.2 CLI (DOCKER_BUILDKIT=0) talking to a fake
daemon that recorded its requests and answered the classic builder's stream.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.argspec import Parsed, parse_argv
from cli.buildcmd import (
    BuildFailed,
    BuildOutput,
    UploadProgress,
    build_query,
    parse_build_args,
    registry_config,
    sending_line,
    stream_error,
)
from cli.main import main
from cli.units import InvalidArgument
from tests.unit.cli.fakeengine import FakeEngine, serve

IMAGE_ID = "sha256:" + "ab" * 32


def _parsed(*argv: str) -> Parsed:
    parsed = parse_argv(["build", *argv])
    if parsed is None:
        from cli.app import parse_with_cyclopts

        result = parse_with_cyclopts(["build", *argv])
        assert isinstance(result, Parsed)
        parsed = result
    return parsed


# -- options -> query ------------------------------------------------------------------------


def test_build_query_defaults_are_dockers() -> None:
    assert build_query(_parsed("."), dockerfile="Dockerfile", environ={}) == {
        "dockerfile": "Dockerfile",
        "version": "1",
    }


def test_build_query_every_option() -> None:
    parsed = _parsed(
        *("-t", "a", "-t", "b:1"),
        *("--build-arg", "K=V", "--build-arg", "FOO", "--build-arg", "UNSET"),
        *("--label", "l=1", "--label", "m"),
        *("--target", "t", "--no-cache", "--pull", "--rm=false", "--force-rm", "-q"),
        *("--network", "host", "--platform", "linux/amd64", "--add-host", "h:1.2.3.4"),
        *("--cache-from", "x", "--iidfile", "/tmp/iid"),
        ".",
    )
    query = build_query(parsed, dockerfile="Dockerfile", environ={"FOO": "fromenv"})
    assert query == {
        "t": ["a", "b:1"],
        "extrahosts": ["h:1.2.3.4"],
        "q": "1",
        "nocache": "1",
        "rm": "0",
        "forcerm": "1",
        "pull": "1",
        "networkmode": "host",
        "dockerfile": "Dockerfile",
        "buildargs": '{"K":"V","FOO":"fromenv","UNSET":null}',
        "labels": '{"l":"1","m":""}',
        "cachefrom": '["x"]',
        "target": "t",
        "platform": "linux/amd64",
        "version": "1",
    }


def test_build_query_without_dockerfile_sends_none() -> None:
    assert "dockerfile" not in build_query(_parsed("-"), dockerfile=None, environ={})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["K=V"], {"K": "V"}),
        (["K="], {"K": ""}),
        (["K=a=b"], {"K": "a=b"}),
        (["HOME"], {"HOME": "/root"}),
        (["NOPE"], {"NOPE": None}),
        (["K=1", "K=2"], {"K": "2"}),
    ],
)
def test_parse_build_args_table(values: list[str], expected: dict[str, str | None]) -> None:
    assert parse_build_args(values, {"HOME": "/root"}) == expected


def test_parse_build_args_empty_name_is_a_flag_error() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_build_args(["=x"], {})
    assert str(info.value) == (
        'invalid argument "=x" for "--build-arg" flag: invalid environment variable: =x'
    )


def test_bad_tag_is_a_flag_error() -> None:
    with pytest.raises(InvalidArgument, match='invalid argument "UPPER" for "-t, --tag" flag'):
        build_query(_parsed("-t", "UPPER", "."), dockerfile="Dockerfile", environ={})


def test_bad_label_is_a_flag_error() -> None:
    with pytest.raises(InvalidArgument, match="invalid label '=x': empty name"):
        build_query(_parsed("--label", "=x", "."), dockerfile="Dockerfile", environ={})


@pytest.mark.parametrize(
    "argv",
    [["image", "build", "."], ["builder", "build", "."], ["build", "."]],
    ids=["image-build", "builder-build", "build"],
)
def test_build_aliases_parse_to_build(argv: list[str]) -> None:
    parsed = parse_argv(argv)
    assert parsed is not None
    assert (parsed.command, parsed.args) == ("build", ["."])
    assert parsed.flag("rm") is True


def test_build_dash_context_parses() -> None:
    parsed = parse_argv(["build", "-f", "-", "-"])
    assert parsed is not None
    assert parsed.args == ["-"]
    assert parsed.text("file") == "-"


def test_registry_config_empty_without_credentials(tmp_path: Path) -> None:
    assert registry_config({"DOCKER_CONFIG": str(tmp_path)}) == "e30="


def test_registry_config_sends_every_stored_credential(tmp_path: Path) -> None:
    auth = base64.b64encode(b"bob:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"localhost:5000": {"auth": auth}}}))
    decoded = json.loads(
        base64.urlsafe_b64decode(registry_config({"DOCKER_CONFIG": str(tmp_path)}))
    )
    assert decoded == {
        "localhost:5000": {
            "username": "bob",
            "password": "s3cret",
            "serveraddress": "localhost:5000",
        }
    }


# -- upload progress -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "line"),
    [
        (7680, "Sending build context to Docker daemon   7.68kB\r"),
        (2048, "Sending build context to Docker daemon  2.048kB\r"),
        (0, "Sending build context to Docker daemon \r\n"),
        (123456789, "Sending build context to Docker daemon  123.5MB\r"),
    ],
)
def test_sending_line_matches_docker(size: int, line: str) -> None:
    assert sending_line(size) == line


def test_upload_progress_not_live_writes_final_figure_only() -> None:
    written: list[str] = []
    progress = UploadProgress(written.append, live=False)
    for _ in range(100):
        progress.add(100_000)
    progress.done()
    assert written == ["Sending build context to Docker daemon     10MB\r\r\n"]


def test_upload_progress_live_every_512k_at_most_ten_per_second() -> None:
    written: list[str] = []
    now = [0.0]
    progress = UploadProgress(written.append, live=True, clock=lambda: now[0])
    progress.add(400_000)  # below 512 KiB: nothing
    assert written == []
    progress.add(200_000)
    assert written == ["Sending build context to Docker daemon    600kB\r"]
    progress.add(600_000)  # enough bytes, but within 100 ms
    assert len(written) == 1
    now[0] = 0.2
    progress.add(1)
    assert written[-1] == "Sending build context to Docker daemon    1.2MB\r"
    progress.done()
    assert written[-1].endswith("\r\r\n")


# -- the stream --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"stream": "Step 1/1 : FROM x\n"}, None),
        ({"errorDetail": {"message": "boom"}, "error": "boom"}, ("boom", 1)),
        ({"errorDetail": {"code": 3, "message": "exit 3"}}, ("exit 3", 3)),
        ({"error": "legacy"}, ("legacy", 1)),
        ({"errorDetail": {"code": True, "message": "odd"}}, ("odd", 1)),
        ({"errorDetail": {}, "error": "fallback"}, ("fallback", 1)),
        ("not a dict", None),
    ],
)
def test_stream_error_table(message: object, expected: tuple[str, int] | None) -> None:
    assert stream_error(message) == expected


def test_build_output_renders_classic_builder_stream() -> None:
    written: list[str] = []
    output = BuildOutput(written.append, terminal=False, width=200)
    for message in [
        {"stream": "Step 1/2 : FROM busybox"},
        {"stream": "\n"},
        {"stream": " ---> 1234567890ab\n"},
        {"stream": "Step 2/2 : RUN echo hi"},
        {"stream": "\n"},
        {"stream": " ---> Running in 0123456789ab\n"},
        {"stream": "hi\n"},
        {"aux": {"ID": IMAGE_ID}},
        {"stream": "Successfully built abababababab\n"},
        {"stream": "Successfully tagged hello:latest\n"},
    ]:
        output.feed(message)
    assert "".join(written) == (
        "Step 1/2 : FROM busybox\n ---> 1234567890ab\nStep 2/2 : RUN echo hi\n"
        " ---> Running in 0123456789ab\nhi\nSuccessfully built abababababab\n"
        "Successfully tagged hello:latest\n"
    )
    assert output.image_id == IMAGE_ID


def test_build_output_raises_on_error_with_code() -> None:
    output = BuildOutput(lambda _text: None, terminal=False, width=200)
    with pytest.raises(BuildFailed) as info:
        output.feed({"errorDetail": {"code": 3, "message": "returned a non-zero code: 3"}})
    assert (info.value.message, info.value.code) == ("returned a non-zero code: 3", 3)


def test_build_output_pull_progress_without_terminal_prints_statuses() -> None:
    written: list[str] = []
    output = BuildOutput(written.append, terminal=False, width=200)
    output.feed({"status": "Pulling from library/busybox", "id": "latest"})
    output.feed(
        {"status": "Downloading", "id": "abc", "progressDetail": {"current": 1, "total": 9}}
    )
    output.feed({"status": "Pull complete", "id": "abc", "progressDetail": {}})
    assert "".join(written) == "latest: Pulling from library/busybox\nabc: Pull complete\n"


# -- the command against a fake engine --------------------------------------------------------


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield from serve()


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "a.txt").write_text("a" * 7000)
    return root


SUCCESS = [
    {"stream": "Step 1/1 : FROM scratch"},
    {"stream": "\n"},
    {"stream": " ---> abc\n"},
    {"aux": {"ID": IMAGE_ID}},
    {"stream": "Successfully built abababababab\n"},
]
FAILURE = [
    {"stream": "Step 1/1 : RUN exit 3"},
    {"stream": "\n"},
    {
        "errorDetail": {
            "code": 3,
            "message": "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        },
        "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
    },
]


def test_cmd_build_prints_dockers_output_and_uploads_the_context(
    engine: FakeEngine, context: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", stream=SUCCESS)
    code = main(["-H", engine.host, "build", "-t", "hello", str(context)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    size = len(engine.only().body)
    assert captured.out == (
        sending_line(size) + "\r\n"
        "Step 1/1 : FROM scratch\n ---> abc\nSuccessfully built abababababab\n"
    )
    request = engine.only()
    assert request.query == {"t": ["hello"], "dockerfile": ["Dockerfile"], "version": ["1"]}
    assert request.headers["content-type"] == "application/x-tar"
    assert request.headers["x-registry-config"] == "e30="
    assert request.headers["transfer-encoding"] == "chunked"
    with tarfile.open(fileobj=io.BytesIO(request.body)) as tar:
        assert tar.getnames() == ["Dockerfile", "a.txt"]


def test_cmd_build_quiet_prints_only_the_id_and_writes_iidfile(
    engine: FakeEngine, context: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", stream=[{"aux": {"ID": IMAGE_ID}}, {"stream": IMAGE_ID + "\n"}])
    iid = tmp_path / "iid"
    code = main(["-H", engine.host, "build", "-q", "--iidfile", str(iid), str(context)])
    captured = capfd.readouterr()
    assert code == 0
    assert captured.out == IMAGE_ID + "\n"
    assert captured.err == ""
    assert iid.read_text() == IMAGE_ID + "\n"  # docker writes the printed line with -q
    assert engine.only().query["q"] == ["1"]


def test_cmd_build_iidfile_gets_the_aux_id(
    engine: FakeEngine, context: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", stream=SUCCESS)
    iid = tmp_path / "iid"
    assert main(["-H", engine.host, "build", "--iidfile", str(iid), str(context)]) == 0
    assert iid.read_text() == IMAGE_ID
    capfd.readouterr()


def test_cmd_build_failure_exits_with_the_run_code_and_removes_stale_iidfile(
    engine: FakeEngine, context: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", stream=FAILURE)
    iid = tmp_path / "iid"
    iid.write_text("stale")
    code = main(["-H", engine.host, "build", "--iidfile", str(iid), str(context)])
    captured = capfd.readouterr()
    assert code == 3
    assert captured.out.endswith("Step 1/1 : RUN exit 3\n")
    assert captured.err == "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"
    assert not iid.exists()


def test_cmd_build_quiet_failure_shows_the_held_back_output(
    engine: FakeEngine, context: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", stream=FAILURE)
    code = main(["-H", engine.host, "build", "-q", str(context)])
    captured = capfd.readouterr()
    assert code == 3
    assert captured.out == ""
    assert captured.err.startswith("Sending build context to Docker daemon")
    assert captured.err.endswith(
        "Step 1/1 : RUN exit 3\nThe command '/bin/sh -c exit 3' returned a non-zero code: 3\n"
    )


def test_cmd_build_http_error_is_an_error_response(
    engine: FakeEngine, context: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", status=500, json={"message": "no space left"})
    assert main(["-H", engine.host, "build", str(context)]) == 1
    assert capfd.readouterr().err == "Error response from daemon: no space left\n"


def test_cmd_build_no_id_cannot_write_iidfile(
    engine: FakeEngine, context: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/build", stream=[{"stream": "Step 1/1 : FROM scratch\n"}])
    iid = tmp_path / "iid"
    assert main(["-H", engine.host, "build", "--iidfile", str(iid), str(context)]) == 1
    assert capfd.readouterr().err == f"Server did not provide an image ID. Cannot write {iid}\n"


def test_cmd_build_context_error_sends_nothing(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["-H", engine.host, "build", str(tmp_path / "missing")])
    assert code == 1
    assert capfd.readouterr().err == (
        f'unable to prepare context: path "{tmp_path}/missing" not found\n'
    )
    assert engine.requests == []


def test_cmd_build_stdin_dockerfile(
    engine: FakeEngine,
    context: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine.on("POST", "/build", stream=SUCCESS)
    read, write = os.pipe()
    os.write(write, b"FROM piped\n")
    os.close(write)
    with os.fdopen(read, "rb") as stdin:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(stdin))
        assert main(["-H", engine.host, "build", "-"]) == 0
    request = engine.only()
    assert request.query["dockerfile"] == ["Dockerfile"]
    with tarfile.open(fileobj=io.BytesIO(request.body)) as tar:
        member = tar.extractfile("Dockerfile")
        assert member is not None
        assert member.read() == b"FROM piped\n"
    capfd.readouterr()
