"""Health checks through the real docker CLI and docker-py: the flags docker sends,
``(healthy)`` in ``docker ps``, ``State.Health`` in inspect, the health filter and
``health_status`` events; berth's ``--health-on-failure`` through its label."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.compat.test_docker_cli import docker
from tests.daemon import Daemon, env_with_host

pytestmark = [pytest.mark.root, pytest.mark.compat]


def first_events(
    d: Daemon, cli: str, since: float, cid: str, wanted: list[str], *, timeout: float = 60
) -> list[str]:
    """``docker events`` for ``cid`` since ``since`` until every action in ``wanted``
    appeared (in order); the events' actions."""
    proc = subprocess.Popen(
        [cli, "events", "--since", f"{since:.9f}", "--filter", f"container={cid}",
         "--format", "{{.Action}}"],
        env=env_with_host(d),
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    got: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        pending = list(wanted)
        while pending:
            assert time.monotonic() < deadline, f"events so far: {got}"
            line = proc.stdout.readline()
            assert line, f"docker events ended; events so far: {got}"
            got.append(line.strip())
            if got[-1] == pending[0]:
                pending.pop(0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return got


def test_docker_cli_health_flags_ps_inspect_and_filter(
    compat_daemon: Daemon, docker_cli: str
) -> None:
    since = time.time()
    cid = docker(
        compat_daemon, docker_cli, "run", "-d", "--name", "cli-healthy",
        "--health-cmd", "echo ok", "--health-interval", "100ms", "--health-retries", "2",
        "busybox", "sleep", "300",
    ).stdout.strip()  # fmt: skip
    events = first_events(compat_daemon, docker_cli, since, cid, ["health_status: healthy"])
    assert "health_status: unhealthy" not in events
    ps = docker(
        compat_daemon, docker_cli, "ps", "--filter", "health=healthy", "--format",
        "{{.ID}} {{.Status}}",
    ).stdout  # fmt: skip
    (line,) = [row for row in ps.splitlines() if row.startswith(cid[:12])]
    assert line.endswith("(healthy)")
    fmt = "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{json .Config.Healthcheck}}"
    out = docker(compat_daemon, docker_cli, "inspect", "--format", fmt, "cli-healthy").stdout
    assert out.strip() == (
        'healthy 0 {"Test":["CMD-SHELL","echo ok"],"Interval":100000000,"Retries":2}'
    )
    none = docker(compat_daemon, docker_cli, "ps", "-q", "--filter", "health=none").stdout
    assert cid[:12] not in none
    docker(compat_daemon, docker_cli, "rm", "-f", "cli-healthy")


def test_docker_cli_health_on_failure_label_restarts(
    compat_daemon: Daemon, docker_cli: str
) -> None:
    since = time.time()
    cid = docker(
        compat_daemon, docker_cli, "run", "-d", "--stop-timeout", "1",
        "--label", "berth.health-on-failure=restart",
        "--health-cmd", "test -e /healthy", "--health-interval", "100ms", "--health-retries", "1",
        "busybox", "sh", "-c",
        "[ -e /ran-before ] && touch /healthy; touch /ran-before; exec sleep 300",
    ).stdout.strip()  # fmt: skip
    events = first_events(
        compat_daemon,
        docker_cli,
        since,
        cid,
        ["health_status: unhealthy", "die", "start", "health_status: healthy"],
    )
    assert "restart" in events
    out = docker(compat_daemon, docker_cli, "inspect", "--format", "{{.RestartCount}}", cid)
    assert out.stdout.strip() == "1"
    docker(compat_daemon, docker_cli, "rm", "-f", cid)


docker_py = pytest.importorskip("docker")


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[object]:
    c = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_docker_py_healthcheck_and_events(client) -> None:  # type: ignore[no-untyped-def]
    since = int(time.time()) - 1
    container = client.containers.run(
        "busybox",
        ["sleep", "300"],
        detach=True,
        healthcheck={"test": ["CMD", "false"], "interval": 100_000_000, "retries": 1},
    )
    try:
        stream = client.events(
            since=since,
            filters={"container": container.id, "event": "health_status"},
            decode=True,
        )
        event = next(iter(stream))
        stream.close()
        assert event["Action"] == "health_status: unhealthy"
        container.reload()
        assert container.health == "unhealthy"
        assert container.attrs["State"]["Health"]["Log"][-1]["ExitCode"] == 1
        ids = [c.id for c in client.containers.list(filters={"health": "unhealthy"})]
        assert container.id in ids
    finally:
        container.remove(force=True)
