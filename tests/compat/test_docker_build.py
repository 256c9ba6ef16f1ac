"""``DOCKER_BUILDKIT=0 docker build`` (the real CLI's classic builder path) and docker-py's
``images.build`` against berthd; the built image pushed to the local registry, pulled
back and run."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.test_docker_cli import docker
from tests.daemon import Daemon, env_with_host

pytestmark = [pytest.mark.root, pytest.mark.compat]


def classic_build(
    d: Daemon, cli: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [cli, "build", *args],
        env={**env_with_host(d), "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker build exited {result.returncode}: {result.stdout}{result.stderr}"
        )
    return result


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nARG WHO=world\nRUN echo "hello $WHO" > /greeting\n'
        "COPY app.txt /app/\nWORKDIR /app\nCMD cat /greeting app.txt\n"
    )
    (tmp_path / "app.txt").write_text("app\n")
    (tmp_path / "ignored.txt").write_text("no\n")
    (tmp_path / ".dockerignore").write_text("ignored.txt\n")
    return tmp_path


def test_docker_build_classic_tags_and_runs(
    compat_daemon: Daemon, docker_cli: str, context: Path
) -> None:
    out = classic_build(
        compat_daemon,
        docker_cli,
        "-t",
        "cb:1",
        "-t",
        "cb:2",
        "--build-arg",
        "WHO=berth",
        str(context),
    ).stdout
    assert 'Step 3/6 : RUN echo "hello $WHO" > /greeting' in out
    assert "Successfully built " in out
    assert "Successfully tagged cb:1" in out
    assert "Successfully tagged cb:2" in out
    assert docker(compat_daemon, docker_cli, "run", "--rm", "cb:1").stdout == "hello berth\napp\n"
    again = classic_build(
        compat_daemon, docker_cli, "--build-arg", "WHO=berth", "-q", str(context)
    ).stdout
    inspect = docker(compat_daemon, docker_cli, "inspect", "--format", "{{.Id}}", "cb:1").stdout
    assert again.strip() == inspect.strip()


def test_docker_build_failure_exit_code(
    compat_daemon: Daemon, docker_cli: str, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
    r = classic_build(compat_daemon, docker_cli, "-t", "cb:fail", str(tmp_path), check=False)
    assert r.returncode != 0
    assert "returned a non-zero code: 7" in r.stderr + r.stdout


def test_docker_build_file_flag_and_stdin(
    compat_daemon: Daemon, docker_cli: str, context: Path
) -> None:
    other = context / "sub"
    other.mkdir()
    (other / "Alt.dockerfile").write_text("FROM busybox\nCOPY app.txt /alt\n")
    classic_build(
        compat_daemon, docker_cli, "-f", str(other / "Alt.dockerfile"), "-t", "cb:alt", str(context)
    )
    assert (
        docker(compat_daemon, docker_cli, "run", "--rm", "cb:alt", "cat", "/alt").stdout == "app\n"
    )
    r = subprocess.run(
        [docker_cli, "build", "-t", "cb:stdin", "-"],
        env={**env_with_host(compat_daemon), "DOCKER_BUILDKIT": "0"},
        input="FROM busybox\nCMD echo stdin\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert docker(compat_daemon, docker_cli, "run", "--rm", "cb:stdin").stdout == "stdin\n"


def test_docker_build_push_pull_run(
    compat_daemon: Daemon, docker_cli: str, context: Path, registry: str
) -> None:
    target = f"{registry}/compat/built:1"
    classic_build(compat_daemon, docker_cli, "-t", target, str(context))
    docker(compat_daemon, docker_cli, "push", target)
    docker(compat_daemon, docker_cli, "rmi", target)
    docker(compat_daemon, docker_cli, "pull", target)
    assert docker(compat_daemon, docker_cli, "run", "--rm", target).stdout == "hello world\napp\n"


@pytest.fixture
def py_client(compat_daemon: Daemon) -> Iterator[object]:
    docker_py = pytest.importorskip("docker")
    c = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_docker_py_images_build(py_client: object, context: Path) -> None:
    image, logs = py_client.images.build(  # type: ignore[attr-defined]
        path=str(context), tag="pyb:1", buildargs={"WHO": "py"}, rm=True
    )
    lines = "".join(chunk.get("stream", "") for chunk in logs)
    assert "Successfully built" in lines
    assert "pyb:1" in image.tags
    out = py_client.containers.run("pyb:1", remove=True)  # type: ignore[attr-defined]
    assert out == b"hello py\napp\n"
    fileobj = io.BytesIO(b"FROM busybox\nRUN false\n")
    docker_py = pytest.importorskip("docker")
    with pytest.raises(docker_py.errors.BuildError) as info:
        py_client.images.build(fileobj=fileobj)  # type: ignore[attr-defined]
    assert "returned a non-zero code: 1" in str(info.value)
    assert os.geteuid() == 0
