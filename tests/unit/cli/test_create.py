"""``build_create_body``: run/create flags to the POST /containers/create body."""

from __future__ import annotations

import pytest

from cli.argspec import Parsed, parse_argv
from cli.create import build_create_body
from cli.units import InvalidArgument

ENV_FILES = {"app.env": b"# settings\nFROM_FILE=1\nHOME\n"}


def parsed(*argv: str) -> Parsed:
    result = parse_argv(list(argv))
    assert result is not None, argv
    return result


def body(*argv: str) -> dict[str, object]:
    def read_file(path: str) -> bytes:
        return ENV_FILES[path]

    return build_create_body(parsed(*argv), environ={"HOME": "/root"}, read_file=read_file)


def test_minimal_foreground_run_body_is_dockers() -> None:
    assert body("run", "busybox") == {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": [],
        "Cmd": None,
        "Image": "busybox",
        "WorkingDir": "",
        "Entrypoint": None,
        "Labels": {},
        "HostConfig": {
            "AutoRemove": False,
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
            "Memory": 0,
            "MemorySwap": 0,
            "NanoCpus": 0,
            "CpuShares": 0,
            "PidsLimit": None,
            "Init": None,
            "NetworkMode": "default",
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
    }


def test_every_flag_lands_where_docker_puts_it() -> None:
    result = body(
        "run", "-d", "--rm", "--name", "web",
        "--env-file", "app.env", "-e", "A=1", "-e", "HOME",
        "-w", "/srv", "-u", "1000:1000", "--entrypoint", "/bin/sh",
        "-m", "64m", "--memory-swap", "-1", "--cpus", "0.5", "--cpu-shares", "512",
        "--pids-limit", "100", "--init", "-l", "team=infra", "-l", "tier",
        "--stop-timeout", "5", "--stop-signal", "SIGINT", "-h", "box", "--network", "none",
        "--log-opt", "max-size=10m", "-i", "-t",
        "busybox", "-c", "echo hi",
    )  # fmt: skip
    host = result["HostConfig"]
    assert isinstance(host, dict)
    assert result["Cmd"] == ["-c", "echo hi"]
    assert result["Entrypoint"] == ["/bin/sh"]
    assert result["Env"] == ["FROM_FILE=1", "HOME=/root", "A=1", "HOME=/root"]
    assert result["WorkingDir"] == "/srv"
    assert result["User"] == "1000:1000"
    assert result["Labels"] == {"team": "infra", "tier": ""}
    assert result["StopTimeout"] == 5
    assert result["StopSignal"] == "SIGINT"
    assert result["Hostname"] == "box"
    assert (result["Tty"], result["OpenStdin"]) == (True, True)
    # detached: nothing is attached
    assert (result["AttachStdin"], result["AttachStdout"], result["AttachStderr"]) == (
        False,
        False,
        False,
    )
    assert result["StdinOnce"] is False
    assert host["AutoRemove"] is True
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["MemorySwap"] == -1
    assert host["NanoCpus"] == 500_000_000
    assert host["CpuShares"] == 512
    assert host["PidsLimit"] == 100
    assert host["Init"] is True
    assert host["NetworkMode"] == "none"
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}


def test_entrypoint_empty_string_resets_to_list_with_empty_string() -> None:
    assert body("run", "--entrypoint", "", "busybox")["Entrypoint"] == [""]
    assert body("run", "--entrypoint=", "busybox")["Entrypoint"] == [""]


def test_interactive_foreground_attaches_stdin_once() -> None:
    result = body("run", "-i", "busybox", "cat")
    assert (result["AttachStdin"], result["OpenStdin"], result["StdinOnce"]) == (True, True, True)


def test_restart_policy_with_berth_backoff_in_nanoseconds() -> None:
    host = body(
        "run",
        "--restart",
        "on-failure:3",
        "--restart-delay",
        "500ms",
        "--restart-max-delay",
        "1m",
        "busybox",
    )["HostConfig"]
    assert isinstance(host, dict)
    assert host["RestartPolicy"] == {
        "Name": "on-failure",
        "MaximumRetryCount": 3,
        "Delay": 500_000_000,
        "MaxDelay": 60_000_000_000,
    }


def test_create_has_no_detach_and_attaches_output() -> None:
    result = body("create", "--name", "x", "busybox", "true")
    assert result["AttachStdout"] is True
    assert result["Cmd"] == ["true"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-m", "lots"], 'invalid argument "lots" for "-m, --memory" flag: invalid size: \'lots\''),
        (
            ["--cpus", "x"],
            'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number',
        ),
        (["--restart", "sometimes"], "invalid restart policy: unknown policy 'sometimes'"),
        (
            ["--restart-delay", "5"],
            'for "--restart-delay" flag: time: missing unit in duration "5"',
        ),
        (["--restart-delay", "-5s"], "must not be negative"),
        (
            ["--rm", "--restart", "always"],
            "conflicting options: cannot specify both --restart and --rm",
        ),
        (["-l", "=x"], "invalid label '=x': empty name"),
        (["-e", "=x"], "invalid environment variable: =x"),
    ],
)
def test_invalid_flags_raise_invalid_argument(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        body("run", *argv, "busybox")
