"""top, stats, diff, update, system df and system prune through the real docker CLI and
docker-py against berthd."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.compat.test_docker_cli import docker
from tests.daemon import Daemon

pytestmark = [pytest.mark.root, pytest.mark.compat]

MIB = 1024 * 1024
# Some traffic on eth0 (to the gateway) and some CPU time, then idle.
PINGER = "ping -c 3 -i 0.2 $(ip route | awk '/default/ {print $3}') >/dev/null; exec sleep 300"


@pytest.fixture
def named(compat_daemon: Daemon) -> Iterator[list[str]]:
    """Container names a test creates; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        compat_daemon.client.request("DELETE", f"/containers/{name}", params={"force": 1})


def _running(d: Daemon, name: str) -> None:
    d.client.wait_for(name, lambda i: i["State"]["Running"])


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """A docker table split on its runs of 2+ spaces: (header, rows)."""
    lines = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]
    return lines[0], lines[1:]


# -- the docker CLI ------------------------------------------------------------------------


def test_docker_stats_no_stream_renders_every_column(
    compat_daemon: Daemon, docker_cli: str, named: list[str]
) -> None:
    named += ["ops-busy", "ops-net"]
    docker(
        compat_daemon,
        docker_cli,
        "run",
        "-d",
        "--name",
        "ops-busy",
        "--cpus",
        "0.5",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    )
    docker(
        compat_daemon, docker_cli, "run", "-d", "--name", "ops-net", "busybox", "sh", "-c", PINGER
    )
    _running(compat_daemon, "ops-busy")
    deadline = time.monotonic() + 20
    while not compat_daemon.client.inspect("ops-net")["State"]["Pid"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    out = docker(
        compat_daemon, docker_cli, "stats", "--no-stream", "ops-busy", "ops-net", timeout=60
    ).stdout
    header, rows = _table(out)
    assert header == [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    by_name = {row[1]: row for row in rows}
    busy = by_name["ops-busy"]
    assert float(busy[2].rstrip("%")) > 0.0  # a busy loop over the primed second
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / 64MiB", busy[3]), busy
    assert float(busy[4].rstrip("%")) > 0.0
    assert busy[7] == "1"
    net = by_name["ops-net"]
    assert re.fullmatch(r"[\d.]+[kMG]?B / [\d.]+[kMG]?B", net[5]), net
    assert re.fullmatch(r"[\d.]+[kMG]?B / [\d.]+[kMG]?B", net[6]), net
    deadline = time.monotonic() + 20
    while net[5].startswith("0B") or net[5].endswith("/ 0B"):  # the pings may not be out yet
        assert time.monotonic() < deadline, net
        fmt = "{{.NetIO}}"
        net[5] = docker(
            compat_daemon, docker_cli, "stats", "--no-stream", "--format", fmt, "ops-net"
        ).stdout.strip()
    assert not net[3].endswith(" 0B")  # limit: the machine's memory


def test_docker_top_diff_update(compat_daemon: Daemon, docker_cli: str, named: list[str]) -> None:
    named.append("ops-tdu")
    docker(
        compat_daemon,
        docker_cli,
        "run",
        "-d",
        "--name",
        "ops-tdu",
        "busybox",
        "sh",
        "-c",
        "echo x > /made && rm /etc/group && exec sleep 300",
    )
    _running(compat_daemon, "ops-tdu")
    header, rows = _table(docker(compat_daemon, docker_cli, "top", "ops-tdu").stdout)
    assert header[:2] == ["UID", "PID"] and header[-1] == "CMD"
    deadline = time.monotonic() + 10
    while not any(r[-1] == "sleep 300" for r in rows):
        assert time.monotonic() < deadline, rows
        rows = _table(docker(compat_daemon, docker_cli, "top", "ops-tdu").stdout)[1]
    header, rows = _table(
        docker(compat_daemon, docker_cli, "top", "ops-tdu", "-o", "pid,comm").stdout
    )
    assert header == ["PID", "COMMAND"] and [r[1] for r in rows] == ["sleep"]
    diff = docker(compat_daemon, docker_cli, "diff", "ops-tdu").stdout.splitlines()
    assert "A /made" in diff and "C /etc" in diff and "D /etc/group" in diff
    out = docker(
        compat_daemon,
        docker_cli,
        "update",
        "--memory",
        "48m",
        "--memory-swap",
        "96m",
        "--cpus",
        "0.25",
        "--pids-limit",
        "12",
        "--restart",
        "on-failure:2",
        "ops-tdu",
    ).stdout
    assert out == "ops-tdu\n"
    hc = compat_daemon.client.inspect("ops-tdu")["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == (
        48 * MIB,
        96 * MIB,
        250_000_000,
        12,
    )
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    bad = docker(compat_daemon, docker_cli, "update", "-m", "1k", "ops-tdu", check=False)
    assert bad.returncode != 0 and "Minimum memory limit allowed is 6MB" in bad.stderr


def test_docker_top_of_stopped_container_fails(
    compat_daemon: Daemon, docker_cli: str, named: list[str]
) -> None:
    named.append("ops-stopped")
    docker(compat_daemon, docker_cli, "create", "--name", "ops-stopped", "busybox", "true")
    r = docker(compat_daemon, docker_cli, "top", "ops-stopped", check=False)
    assert r.returncode != 0 and "is not running" in r.stderr


def test_docker_system_df_and_prune(
    compat_daemon: Daemon, docker_cli: str, named: list[str]
) -> None:
    named.append("ops-df")
    docker(
        compat_daemon,
        docker_cli,
        "run",
        "--name",
        "ops-df",
        "--label",
        "ops.compat=1",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /blob",
    )
    header, rows = _table(docker(compat_daemon, docker_cli, "system", "df").stdout)
    assert header == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [r[0] for r in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    containers = rows[1]
    assert int(containers[1]) >= 1 and re.search(r"\(\d+%\)$", containers[4])
    verbose = docker(compat_daemon, docker_cli, "system", "df", "-v").stdout
    assert "Images space usage:" in verbose and "ops-df" in verbose
    assert "Build cache usage: 0B" in verbose
    lines = docker(
        compat_daemon, docker_cli, "system", "df", "--format", "{{json .}}"
    ).stdout.splitlines()
    assert [json.loads(line)["Type"] for line in lines][:2] == ["Images", "Containers"]
    out = docker(
        compat_daemon, docker_cli, "system", "prune", "-f", "--filter", "label=ops.compat=1"
    ).stdout
    assert "Deleted Containers:" in out and "Total reclaimed space:" in out
    r = docker(compat_daemon, docker_cli, "inspect", "ops-df", check=False)
    assert r.returncode != 0
    named.remove("ops-df")


# -- docker-py ------------------------------------------------------------------------------


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[object]:
    dockerpy = pytest.importorskip("docker")
    c = dockerpy.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_docker_py_stats_top_diff_update(client, named: list[str]) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.run(
        "busybox",
        ["sh", "-c", "echo x > /made; exec sleep 300"],
        detach=True,
        name="ops-py",
        mem_limit="64m",
    )
    named.append("ops-py")
    s = c.stats(stream=False)
    assert s["id"] == c.id and s["name"] == "/ops-py"
    assert s["memory_stats"]["limit"] == 64 * MIB
    assert s["precpu_stats"]["system_cpu_usage"] > 0  # primed, as Docker does
    one = c.stats(stream=False, one_shot=True)
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    stream = c.stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["precpu_stats"] == first["cpu_stats"]
    top = c.top()
    assert "PID" in top["Titles"] and any("sleep" in " ".join(p) for p in top["Processes"])
    deadline = time.monotonic() + 10
    while {"Path": "/made", "Kind": 1} not in (c.diff() or []):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert c.update(mem_limit="48m", restart_policy={"Name": "always"}) == {"Warnings": []}
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 48 * MIB
    assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"


def test_docker_py_df(client) -> None:  # type: ignore[no-untyped-def]
    df = client.df()
    assert set(df) >= {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
    assert any("busybox:latest" in i["RepoTags"] for i in df["Images"])
