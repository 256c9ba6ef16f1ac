"""The real docker CLI and docker-py against berthd: run -p, port, network *, ps ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.daemon import Daemon, env_with_host

pytestmark = [pytest.mark.root, pytest.mark.compat]

HTTPD = "mkdir -p /www && echo compat-page > /www/index.html && exec httpd -f -p 80 -h /www"


def docker(d: Daemon, cli: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [cli, *args], env=env_with_host(d), capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(d: Daemon, port: int, timeout: float = 10) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = d.http_get("127.0.0.1", port)
            if reply:
                return reply
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answers on 127.0.0.1:{port}")
        time.sleep(0.05)


def test_docker_run_publish_port_and_ps(compat_daemon: Daemon, docker_cli: str) -> None:
    port = free_port()
    cid = docker(
        compat_daemon, docker_cli, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", HTTPD
    ).stdout.strip()
    try:
        assert b"compat-page" in fetch(compat_daemon, port)
        assert docker(compat_daemon, docker_cli, "port", cid).stdout.splitlines() == [
            f"80/tcp -> 0.0.0.0:{port}"
        ]
        assert docker(compat_daemon, docker_cli, "port", cid, "80").stdout.strip() == (
            f"0.0.0.0:{port}"
        )
        ps = docker(
            compat_daemon, docker_cli, "ps", "--filter", f"id={cid}", "--format", "{{.Ports}}"
        ).stdout.strip()
        assert ps == f"0.0.0.0:{port}->80/tcp"
        inspect = json.loads(docker(compat_daemon, docker_cli, "inspect", cid).stdout)[0]
        assert inspect["NetworkSettings"]["Ports"]["80/tcp"] == [
            {"HostIp": "0.0.0.0", "HostPort": str(port)}
        ]
    finally:
        docker(compat_daemon, docker_cli, "rm", "-f", cid)


def test_docker_run_port_already_allocated(compat_daemon: Daemon, docker_cli: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = docker(
            compat_daemon, docker_cli, "run", "--rm", "-p", f"{port}:80", "busybox", "true",
            check=False,
        )  # fmt: skip
    assert result.returncode == 125
    assert "port is already allocated" in result.stderr


def test_docker_network_commands(compat_daemon: Daemon, docker_cli: str) -> None:
    d = compat_daemon
    nid = docker(
        d, docker_cli, "network", "create", "--subnet", "10.98.5.0/24", "--label", "a=b", "cnet"
    ).stdout.strip()
    try:
        listed = docker(d, docker_cli, "network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout
        assert "cnet bridge" in listed.splitlines() and "bridge bridge" in listed.splitlines()
        assert docker(
            d, docker_cli, "network", "ls", "-q", "--filter", "label=a=b", "--no-trunc"
        ).stdout.split() == [nid]
        info = json.loads(docker(d, docker_cli, "network", "inspect", "cnet").stdout)[0]
        assert info["IPAM"]["Config"] == [{"Subnet": "10.98.5.0/24", "Gateway": "10.98.5.1"}]
        dup = docker(d, docker_cli, "network", "create", "cnet", check=False)
        assert dup.returncode != 0 and "already exists" in dup.stderr
        cid = docker(
            d, docker_cli, "run", "-d", "--network", "cnet", "--ip", "10.98.5.77", "--name",
            "cnet-web", "--network-alias", "www", "busybox", "sh", "-c", HTTPD,
        ).stdout.strip()  # fmt: skip
        out = docker(
            d, docker_cli, "run", "--rm", "--network", "cnet", "busybox", "nslookup", "www"
        ).stdout
        assert "10.98.5.77" in out
        other = docker(d, docker_cli, "run", "-d", "busybox", "sleep", "60").stdout.strip()
        docker(d, docker_cli, "network", "connect", "cnet", other)
        nets = json.loads(
            docker(
                d, docker_cli, "inspect", "-f", "{{json .NetworkSettings.Networks}}", other
            ).stdout
        )
        assert set(nets) == {"bridge", "cnet"}
        docker(d, docker_cli, "network", "disconnect", "cnet", other)
        busy = docker(d, docker_cli, "network", "rm", "cnet", check=False)
        assert busy.returncode != 0 and "active endpoints" in busy.stderr
        docker(d, docker_cli, "rm", "-f", cid, other)
    finally:
        docker(d, docker_cli, "network", "rm", "cnet", check=False)
    assert "cnet" not in docker(d, docker_cli, "network", "ls").stdout
    docker(d, docker_cli, "network", "create", "prunable")
    pruned = docker(d, docker_cli, "network", "prune", "-f").stdout
    assert "prunable" in pruned


docker_py = pytest.importorskip("docker")


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[object]:
    c = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_docker_py_ports_and_networks(client, compat_daemon: Daemon) -> None:  # type: ignore[no-untyped-def]
    net = client.networks.create("pynet", driver="bridge", labels={"k": "v"})
    try:
        port = free_port()
        web = client.containers.run(
            "busybox",
            ["sh", "-c", HTTPD],
            detach=True,
            ports={"80/tcp": ("127.0.0.1", port)},
            network="pynet",
            name="pyweb",
        )
        try:
            assert b"compat-page" in fetch(compat_daemon, port)
            web.reload()
            assert web.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
            assert web.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
            net.reload()
            assert [c.name for c in net.containers] == ["pyweb"]
            assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
        finally:
            web.remove(force=True)
    finally:
        net.remove()
    assert os.path.basename("x") == "x"
