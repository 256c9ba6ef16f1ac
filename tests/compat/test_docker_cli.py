"""The real docker CLI against berthd (DOCKER_HOST at berthd's socket)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pytest

from tests.daemon import REPO, Daemon, env_with_host

pytestmark = [pytest.mark.root, pytest.mark.compat]


def docker(
    d: Daemon,
    cli: str,
    *args: str,
    input_: bytes | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [cli, *args],
        env=env_with_host(d),
        input=input_.decode("latin-1") if input_ else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        encoding="latin-1",
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def test_version_reports_berth(compat_daemon: Daemon, docker_cli: str) -> None:
    out = docker(
        compat_daemon, docker_cli, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"
    ).stdout
    assert out.strip() == "1.43 linux"


def test_import_images_tag_rmi(compat_daemon: Daemon, docker_cli: str) -> None:
    sys.path.insert(0, str(REPO / "deploy"))
    from busybox_tar import write_busybox_tar

    buf = io.BytesIO()
    write_busybox_tar(buf)
    r = subprocess.run(
        [docker_cli, "import", "-c", 'CMD ["echo", "from-cmd"]', "-", "cli-import:v1"],
        env=env_with_host(compat_daemon),
        input=buf.getvalue(),
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip().startswith("sha256:")
    images = docker(
        compat_daemon, docker_cli, "images", "--format", "{{.Repository}}:{{.Tag}}"
    ).stdout.split()
    assert "cli-import:v1" in images
    out = docker(compat_daemon, docker_cli, "run", "--rm", "cli-import:v1").stdout
    assert out == "from-cmd\n"
    docker(compat_daemon, docker_cli, "tag", "cli-import:v1", "cli-import:v2")
    out = docker(compat_daemon, docker_cli, "rmi", "cli-import:v1").stdout
    assert "Untagged: cli-import:v1" in out
    out = docker(compat_daemon, docker_cli, "rmi", "cli-import:v2").stdout
    assert "Deleted: sha256:" in out
    r = docker(compat_daemon, docker_cli, "rmi", "cli-import:v2", check=False)
    assert r.returncode != 0 and "No such image" in r.stderr


def test_run_foreground_output_and_exit_code(compat_daemon: Daemon, docker_cli: str) -> None:
    r = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
        check=False,
    )
    assert r.returncode == 7
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_run_missing_command_exits_127(compat_daemon: Daemon, docker_cli: str) -> None:
    r = docker(compat_daemon, docker_cli, "run", "--rm", "busybox", "/nope", check=False)
    assert r.returncode == 127, r.stderr
    assert "/nope" in r.stderr


def test_detached_ps_logs_stop_rm(compat_daemon: Daemon, docker_cli: str) -> None:
    cid = docker(
        compat_daemon,
        docker_cli,
        "run",
        "-d",
        "--name",
        "cli-web",
        "--restart",
        "always",
        "-l",
        "app=web",
        "busybox",
        "sh",
        "-c",
        "echo ready; sleep 300",
    ).stdout.strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 10
    while "ready" not in docker(compat_daemon, docker_cli, "logs", "cli-web").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ps = docker(
        compat_daemon,
        docker_cli,
        "ps",
        "--filter",
        "label=app=web",
        "--format",
        "{{.ID}} {{.Names}} {{.Status}}",
    ).stdout
    assert ps.startswith(cid[:12] + " cli-web Up")
    fmt = docker(
        compat_daemon,
        docker_cli,
        "inspect",
        "--format",
        "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}} {{.Name}}",
        "cli-web",
    ).stdout
    assert fmt.strip() == "running always /cli-web"
    docker(compat_daemon, docker_cli, "stop", "-t", "1", "cli-web")
    assert docker(compat_daemon, docker_cli, "ps", "-q").stdout.strip() == ""
    assert cid[:12] in docker(compat_daemon, docker_cli, "ps", "-aq").stdout
    docker(compat_daemon, docker_cli, "rm", "cli-web")
    r = docker(compat_daemon, docker_cli, "inspect", "cli-web", check=False)
    assert r.returncode != 0 and "No such" in r.stderr


def test_errors_are_docker_shaped(compat_daemon: Daemon, docker_cli: str) -> None:
    docker(compat_daemon, docker_cli, "create", "--name", "cli-dup", "busybox", "true")
    r = docker(
        compat_daemon, docker_cli, "run", "--name", "cli-dup", "busybox", "true", check=False
    )
    assert r.returncode == 125 and "is already in use" in r.stderr
    r = docker(
        compat_daemon, docker_cli, "run", "--restart", "sometimes", "busybox", "true", check=False
    )
    assert r.returncode == 125
    r = docker(compat_daemon, docker_cli, "start", "nosuch", check=False)
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    docker(compat_daemon, docker_cli, "rm", "cli-dup")


def test_events_since_until(compat_daemon: Daemon, docker_cli: str) -> None:
    since = str(int(time.time()) - 1)
    docker(compat_daemon, docker_cli, "run", "--rm", "--name", "cli-ev", "busybox", "true")
    until = str(int(time.time()) + 1)
    out = docker(
        compat_daemon,
        docker_cli,
        "events",
        "--since",
        since,
        "--until",
        until,
        "--filter",
        "container=cli-ev",
        "--format",
        "{{json .}}",
    ).stdout
    actions = [json.loads(line)["Action"] for line in out.splitlines()]
    assert actions[:2] == ["create", "attach"] or actions[0] == "create"
    assert "start" in actions and "die" in actions and "destroy" in actions


def test_memory_limit_and_oom_visible(compat_daemon: Daemon, docker_cli: str) -> None:
    r = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--name",
        "cli-oom",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a)",
        check=False,
    )
    assert r.returncode == 137
    out = docker(
        compat_daemon,
        docker_cli,
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.HostConfig.Memory}}",
        "cli-oom",
    ).stdout
    assert out.strip() == f"true {16 * 1024 * 1024}"
    docker(compat_daemon, docker_cli, "rm", "cli-oom")
