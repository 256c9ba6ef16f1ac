"""The Bearer token flow for real: ``berth login``/``push``/``pull`` through berthd against
distribution 2.8 configured with ``auth: token:``, whose tokens come from a token server
in this process that checks Basic credentials and signs JWTs the registry verifies
(tests/token_issuer.py).

The error texts are what dockerd 20.10 prints against the same registry and token server.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon
from tests.integration.test_cli_images import DIGEST, Cli
from tests.token_issuer import READER, WRITER, TokenRegistry, token_registry_or_skip

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def token_registry() -> Iterator[TokenRegistry]:
    yield from token_registry_or_skip()


@pytest.fixture(scope="module")
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def cli(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(daemon, tmp_path_factory.mktemp("berth-config"))


def login(cli: Cli, address: str, account: tuple[str, str], config: Path) -> None:
    user, password = account
    proc = cli(
        "login", "-u", user, "--password-stdin", address,
        stdin=f"{password}\n".encode(), config=config,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, "Login Succeeded\n"), proc.stderr


@pytest.fixture(scope="module")
def pushed(
    cli: Cli,
    daemon: Daemon,
    token_registry: TokenRegistry,
    uid: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """busybox pushed by the writer after ``berth login``: (reference, push output)."""
    config = tmp_path_factory.mktemp("writer-config")
    ref = f"{token_registry.address}/tok-{uid}/busybox:v1"
    cli.ok("tag", "busybox", ref)
    login(cli, token_registry.address, WRITER, config)
    out = cli.ok("push", ref, config=config)
    yield ref, out
    daemon.client.request("DELETE", f"/images/{ref}", params={"force": 1})


def test_push_after_login_gets_a_token_for_the_repository(
    pushed: tuple[str, str], token_registry: TokenRegistry, uid: str
) -> None:
    _ref, out = pushed
    assert re.search(rf"^v1: digest: {DIGEST} size: \d+$", out, re.M), out
    seen = token_registry.issuer.seen()
    repo_scope = f"repository:tok-{uid}/busybox:pull,push"
    asked = [s for s in seen if s.account == WRITER[0] and s.status == 200]
    assert any(repo_scope in s.scopes for s in asked), seen
    assert all(s.service == token_registry.issuer.service for s in seen)


def test_reader_pulls_and_runs_what_the_writer_pushed(
    cli: Cli, pushed: tuple[str, str], token_registry: TokenRegistry, tmp_path: Path
) -> None:
    ref, _out = pushed
    cli.ok("rmi", ref)
    login(cli, token_registry.address, READER, tmp_path)
    out = cli.ok("pull", ref, config=tmp_path)
    assert re.search(rf"^Digest: {DIGEST}$", out, re.M), out
    assert f"Status: Downloaded newer image for {ref}" in out
    assert cli.ok("run", "--rm", ref, "echo", "pulled") == "pulled\n"


def test_reader_push_is_denied(
    cli: Cli, pushed: tuple[str, str], token_registry: TokenRegistry, tmp_path: Path, uid: str
) -> None:
    login(cli, token_registry.address, READER, tmp_path)
    ref = f"{token_registry.address}/tok-{uid}/reader-push:v1"
    cli.ok("tag", "busybox", ref)
    try:
        assert cli.fails("push", ref, config=tmp_path).endswith(
            "denied: requested access to the resource is denied"
        )
    finally:
        cli.ok("rmi", ref)


def test_login_wrong_password_is_unauthorized_and_stores_nothing(
    cli: Cli, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    address = token_registry.address
    proc = cli(
        "login", "-u", WRITER[0], "--password-stdin", address, stdin=b"wrong\n", config=tmp_path
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f'Error response from daemon: Get "http://{address}/v2/": '
        "unauthorized: incorrect username or password\n"
    )
    assert not (tmp_path / "config.json").exists()


def test_login_stores_the_credentials(
    cli: Cli, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    login(cli, token_registry.address, WRITER, tmp_path)
    auths = json.loads((tmp_path / "config.json").read_text())["auths"]
    assert list(auths) == [token_registry.address]


def test_pull_without_credentials_is_denied(
    cli: Cli, pushed: tuple[str, str], token_registry: TokenRegistry, tmp_path: Path
) -> None:
    ref, _out = pushed
    name = ref.rsplit(":", 1)[0]
    assert cli.fails("pull", ref, config=tmp_path) == (
        f"Error response from daemon: pull access denied for {name}, repository does not "
        "exist or may require 'docker login': denied: requested access to the resource is denied"
    )


def test_push_without_credentials_is_denied(
    cli: Cli, token_registry: TokenRegistry, tmp_path: Path, uid: str
) -> None:
    ref = f"{token_registry.address}/tok-{uid}/anonymous:v1"
    cli.ok("tag", "busybox", ref)
    try:
        assert cli.fails("push", ref, config=tmp_path).endswith(
            "denied: requested access to the resource is denied"
        )
    finally:
        cli.ok("rmi", ref)
