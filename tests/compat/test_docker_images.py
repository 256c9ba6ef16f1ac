"""The docker CLI and docker-py moving images through berthd and a real registry."""

from __future__ import annotations

import subprocess

import pytest

from tests.compat.test_docker_cli import docker
from tests.daemon import Daemon, env_with_host

pytestmark = [pytest.mark.root, pytest.mark.compat]


def test_docker_push_pull_run(compat_daemon: Daemon, docker_cli: str, registry: str) -> None:
    target = f"{registry}/compat/busybox:1"
    docker(compat_daemon, docker_cli, "tag", "busybox", target)
    out = docker(compat_daemon, docker_cli, "push", target).stdout
    assert "1: digest: sha256:" in out
    docker(compat_daemon, docker_cli, "rmi", target)
    out = docker(compat_daemon, docker_cli, "pull", target).stdout
    assert f"Status: Downloaded newer image for {target}" in out or "Image is up to date" in out
    assert docker(compat_daemon, docker_cli, "run", "--rm", target, "echo", "ok").stdout == "ok\n"
    digests = docker(
        compat_daemon,
        docker_cli,
        "images",
        "--digests",
        "--format",
        "{{.Digest}}",
        f"{registry}/compat/busybox",
    ).stdout
    assert digests.strip().startswith("sha256:")


def test_docker_pull_unknown_tag(compat_daemon: Daemon, docker_cli: str, registry: str) -> None:
    r = docker(compat_daemon, docker_cli, "pull", f"{registry}/compat/none:nope", check=False)
    assert r.returncode == 1
    assert "not found" in r.stderr


def test_docker_commit_and_history(compat_daemon: Daemon, docker_cli: str) -> None:
    docker(
        compat_daemon,
        docker_cli,
        "run",
        "--name",
        "cmt",
        "busybox",
        "sh",
        "-c",
        "echo v2 > /version",
    )
    out = docker(
        compat_daemon, docker_cli, "commit", "--author", "x <x@x>", "--message", "nginx",
        "-c", "CMD cat /version", "cmt", "cmt-image:v2",
    ).stdout  # fmt: skip
    assert out.strip().startswith("sha256:")
    assert docker(compat_daemon, docker_cli, "run", "--rm", "cmt-image:v2").stdout == "v2\n"
    hist = docker(
        compat_daemon, docker_cli, "history", "--format", "{{.Comment}}", "cmt-image:v2"
    ).stdout
    assert hist.splitlines()[0] == "nginx"
    docker(compat_daemon, docker_cli, "rm", "cmt")
    r = docker(compat_daemon, docker_cli, "run", "--name", "cmt-user", "cmt-image:v2")
    assert r.returncode == 0
    r = docker(compat_daemon, docker_cli, "rmi", "cmt-image:v2", check=False)
    assert r.returncode != 0  # a container uses it: Docker's conflict
    docker(compat_daemon, docker_cli, "rm", "cmt-user")
    docker(compat_daemon, docker_cli, "rmi", "cmt-image:v2")


def test_docker_save_load(compat_daemon: Daemon, docker_cli: str, tmp_path: object) -> None:
    docker(compat_daemon, docker_cli, "tag", "busybox", "saveme:1")
    archive = subprocess.run(
        [docker_cli, "save", "saveme:1"],
        env=env_with_host(compat_daemon),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    docker(compat_daemon, docker_cli, "rmi", "saveme:1")
    r = subprocess.run(
        [docker_cli, "load"],
        env=env_with_host(compat_daemon),
        input=archive,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert b"Loaded image: saveme:1" in r.stdout
    docker(compat_daemon, docker_cli, "rmi", "saveme:1")


def test_docker_image_prune(compat_daemon: Daemon, docker_cli: str) -> None:
    docker(compat_daemon, docker_cli, "run", "--name", "prn", "busybox", "touch", "/x")
    docker(compat_daemon, docker_cli, "commit", "prn")  # a dangling image
    docker(compat_daemon, docker_cli, "rm", "prn")
    out = docker(compat_daemon, docker_cli, "image", "prune", "-f").stdout
    assert "deleted: sha256:" in out and "Total reclaimed space" in out
    assert (
        docker(compat_daemon, docker_cli, "images", "-f", "dangling=true", "-q").stdout.strip()
        == ""
    )


def test_docker_py_pull_push(compat_daemon: Daemon, registry: str) -> None:
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    try:
        image = client.images.get("busybox")
        assert image.tag(f"{registry}/py/busybox", "7")
        for line in client.images.push(f"{registry}/py/busybox", "7", stream=True, decode=True):
            assert "error" not in line, line
        client.images.remove(f"{registry}/py/busybox:7")
        pulled = client.images.pull(f"{registry}/py/busybox", tag="7")
        assert f"{registry}/py/busybox:7" in pulled.tags
        assert client.containers.run(f"{registry}/py/busybox:7", "echo py", remove=True) == b"py\n"
    finally:
        client.close()


def test_docker_and_docker_py_search_a_private_registry(
    compat_daemon: Daemon, docker_cli: str, registry: str
) -> None:
    """Docker cannot search a plain distribution registry; berthd filters its _catalog,
    and both clients render the answer."""
    import uuid

    space = f"found-{uuid.uuid4().hex[:8]}"  # the session's registry is shared
    target = f"{registry}/{space}/busybox:1"
    docker(compat_daemon, docker_cli, "tag", "busybox", target)
    docker(compat_daemon, docker_cli, "push", target)
    out = docker(compat_daemon, docker_cli, "search", f"{registry}/{space}").stdout
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["NAME", "DESCRIPTION"]
    assert [row.split()[0] for row in rows] == [f"{registry}/{space}/busybox"]
    limited = docker(
        compat_daemon, docker_cli, "search", "--limit", "1", "--format", "{{.Name}}",
        f"{registry}/{space}",
    ).stdout  # fmt: skip
    assert limited.split() == [f"{registry}/{space}/busybox"]
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    try:
        found = client.images.search(f"{registry}/{space}")
        assert [r["name"] for r in found] == [f"{registry}/{space}/busybox"]
    finally:
        client.close()
    docker(compat_daemon, docker_cli, "rmi", target)
