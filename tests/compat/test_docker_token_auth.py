"""The docker CLI and docker-py log in, push and pull through berthd against a registry
behind real Bearer token auth (distribution 2.8 ``auth: token:``, tokens signed by
tests/token_issuer.py). Expected texts are dockerd 20.10's against the same set-up."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker as docker_py
import pytest

from tests.daemon import Daemon, env_with_host
from tests.token_issuer import READER, WRITER, TokenRegistry, token_registry_or_skip

pytestmark = [pytest.mark.root, pytest.mark.compat]

DENIED = "denied: requested access to the resource is denied"


@pytest.fixture(scope="module")
def token_registry() -> Iterator[TokenRegistry]:
    yield from token_registry_or_skip()


class DockerCli:
    """The docker CLI against berthd, with a ``DOCKER_CONFIG`` of its own per call."""

    def __init__(self, daemon: Daemon, binary: str) -> None:
        self.env = env_with_host(daemon)
        self.binary = binary

    def __call__(
        self, *args: str, config: Path, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            env={**self.env, "DOCKER_CONFIG": str(config)},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, config: Path, stdin: str = "") -> str:
        proc = self(*args, config=config, stdin=stdin)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def login(self, address: str, account: tuple[str, str], config: Path) -> None:
        user, password = account
        out = self.ok(
            "login", "-u", user, "--password-stdin", address, config=config, stdin=password
        )
        assert out.startswith("Login Succeeded"), out


@pytest.fixture(scope="module")
def dcli(compat_daemon: Daemon, docker_cli: str) -> DockerCli:
    return DockerCli(compat_daemon, docker_cli)


@pytest.fixture(scope="module")
def pushed(
    dcli: DockerCli,
    compat_daemon: Daemon,
    token_registry: TokenRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """busybox pushed by ``docker push`` after ``docker login`` as the writer, then
    removed locally: its reference."""
    config = tmp_path_factory.mktemp("docker-writer")
    ref = f"{token_registry.address}/dtok-{uuid.uuid4().hex[:10]}/busybox:v1"
    dcli.ok("tag", "busybox", ref, config=config)
    dcli.login(token_registry.address, WRITER, config)
    out = dcli.ok("push", ref, config=config)
    assert "v1: digest: sha256:" in out, out
    dcli.ok("rmi", ref, config=config)
    yield ref
    compat_daemon.client.request("DELETE", f"/images/{ref}", params={"force": 1})


def test_docker_login_as_reader_then_pull_and_run(
    dcli: DockerCli, pushed: str, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    dcli.login(token_registry.address, READER, tmp_path)
    out = dcli.ok("pull", pushed, config=tmp_path)
    assert f"Status: Downloaded newer image for {pushed}" in out, out
    assert dcli.ok("run", "--rm", pushed, "echo", "via-token", config=tmp_path) == "via-token\n"
    dcli.ok("rmi", pushed, config=tmp_path)
    accounts = {s.account for s in token_registry.issuer.seen() if s.status == 200}
    assert {WRITER[0], READER[0]} <= accounts


def test_docker_login_wrong_password(
    dcli: DockerCli, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    address = token_registry.address
    proc = dcli(
        "login", "-u", WRITER[0], "--password-stdin", address, config=tmp_path, stdin="nope"
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        f'Error response from daemon: Get "http://{address}/v2/": '
        "unauthorized: incorrect username or password\n"
    )
    assert not (tmp_path / "config.json").exists()


def test_docker_push_as_reader_is_denied(
    dcli: DockerCli, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    ref = f"{token_registry.address}/dtok-{uuid.uuid4().hex[:10]}/reader:v1"
    dcli.ok("tag", "busybox", ref, config=tmp_path)
    try:
        dcli.login(token_registry.address, READER, tmp_path)
        proc = dcli("push", ref, config=tmp_path)
        assert proc.returncode == 1
        assert proc.stderr.strip().endswith(DENIED), proc.stderr
    finally:
        dcli.ok("rmi", ref, config=tmp_path)


def test_docker_pull_without_login_is_denied(dcli: DockerCli, pushed: str, tmp_path: Path) -> None:
    proc = dcli("pull", pushed, config=tmp_path)
    assert proc.returncode == 1
    name = pushed.rsplit(":", 1)[0]
    assert proc.stderr == (
        f"Error response from daemon: pull access denied for {name}, repository does not "
        f"exist or may require 'docker login': {DENIED}\n"
    )


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[docker_py.DockerClient]:
    c = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_docker_py_pull_with_auth_config(client: docker_py.DockerClient, pushed: str) -> None:
    repo, tag = pushed.rsplit(":", 1)
    auth = {"username": READER[0], "password": READER[1]}
    image = client.images.pull(repo, tag=tag, auth_config=auth)
    try:
        assert pushed in image.tags
        out = client.containers.run(pushed, ["echo", "py-token"], remove=True)
        assert out == b"py-token\n"
    finally:
        client.images.remove(pushed)


def test_docker_py_pull_wrong_password_unauthorized(
    client: docker_py.DockerClient, pushed: str
) -> None:
    repo, tag = pushed.rsplit(":", 1)
    with pytest.raises(docker_py.errors.APIError) as info:
        client.images.pull(repo, tag=tag, auth_config={"username": READER[0], "password": "x"})
    assert "unauthorized: incorrect username or password" in str(info.value.explanation)


def test_docker_py_push_as_reader_reports_denied(
    client: docker_py.DockerClient, token_registry: TokenRegistry
) -> None:
    repo = f"{token_registry.address}/dtok-{uuid.uuid4().hex[:10]}/py-reader"
    client.images.get("busybox").tag(repo, "v1")
    try:
        auth = {"username": READER[0], "password": READER[1]}
        lines = list(client.images.push(repo, tag="v1", auth_config=auth, stream=True, decode=True))
        errors = [line["error"] for line in lines if "error" in line]
        assert errors == [DENIED], lines
    finally:
        client.images.remove(f"{repo}:v1")
