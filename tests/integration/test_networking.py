"""Container networking through a real berthd: the default bridge, user-defined
networks, published ports (TCP, UDP, ranges, -P), name resolution, clean-up.

The whole session runs in a network namespace of its own (tests/conftest.py), so the
bridges, veths and iptables rules berthd makes here never touch the host's interfaces;
traffic goes only to loopback and to container addresses inside it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import ApiError, Daemon, running_daemon

pytestmark = pytest.mark.root

HTTPD = [
    "sh",
    "-c",
    "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www",
]


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with running_daemon("berth-net-") as d:
        yield d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dnat_rules(d: Daemon) -> list[str]:
    """The daemon's kernel port-forwarding rules."""
    from supervisor.network.nat import chain_name

    out = subprocess.run(
        ["iptables", "-t", "nat", "-S", chain_name(d.exec_root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def get_with_retry(d: Daemon, host: str, port: int, path: str = "/", timeout: float = 10) -> bytes:
    """httpd in the container may not listen yet when start returns."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = d.http_get(host, port, path)
            if reply:
                return reply
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no HTTP answer from {host}:{port}")
        time.sleep(0.05)


def test_default_bridge_gives_an_address_and_a_route(daemon: Daemon) -> None:
    cid = daemon.client.run(["sh", "-c", "ip addr show eth0; ip route"])
    assert daemon.client.wait(cid) == 0
    out = b"".join(data for _, data in daemon.client.logs(cid, stdout=1, stderr=1)).decode()
    info = daemon.client.inspect(cid)
    net = info["NetworkSettings"]["Networks"]["bridge"]
    assert info["HostConfig"]["NetworkMode"] == "default"
    assert net["NetworkID"]
    assert "inet 10.213." in out
    assert "default via 10.213.0.1" in out
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_published_port_serves_http_and_inspect_shows_it(daemon: Daemon) -> None:
    port = free_port()
    cid = daemon.client.create(
        cmd=HTTPD,
        HostConfig={"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}},
        ExposedPorts={"80/tcp": {}},
    )
    daemon.client.call("POST", f"/containers/{cid}/start")
    try:
        reply = get_with_retry(daemon, "127.0.0.1", port)
        assert b"200 OK" in reply and b"hello-from-" in reply
        info = daemon.client.inspect(cid)
        assert info["NetworkSettings"]["Ports"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        }
        ip = info["NetworkSettings"]["IPAddress"]
        assert ip.startswith("10.213.")
        assert b"hello-from-" in get_with_retry(daemon, ip, 80)  # direct to the container
        rules = dnat_rules(daemon)
        assert any(f"--dport {port}" in r and f"{ip}:80" in r for r in rules), rules
        listed = next(c for c in daemon.client.call("GET", "/containers/json") if c["Id"] == cid)
        assert listed["Ports"] == [
            {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": port, "Type": "tcp"}
        ]
    finally:
        daemon.client.call("POST", f"/containers/{cid}/stop", params={"t": "1"})
    with pytest.raises(OSError):
        daemon.http_get("127.0.0.1", port)  # the proxy went with the container
    deadline = time.monotonic() + 10  # the rules go with the run's clean-up
    while any(f"--dport {port} " in r for r in dnat_rules(daemon)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert daemon.client.inspect(cid)["NetworkSettings"]["Ports"] == {}
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_port_in_use_fails_start_and_leaves_nothing(daemon: Daemon) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cid = daemon.client.create(
            cmd=["sleep", "30"], HostConfig={"PortBindings": {"80/tcp": [{"HostPort": str(port)}]}}
        )
        with pytest.raises(ApiError) as info:
            daemon.client.call("POST", f"/containers/{cid}/start")
        assert info.value.status in (409, 500)
        assert (
            f"0.0.0.0:{port}" in info.value.message
            and "port is already allocated" in info.value.message
        )
    state = daemon.client.inspect(cid)["State"]
    assert not state["Running"]
    assert not [
        p for p in (daemon.exec_root / "netns").iterdir() if not p.name.startswith("spare-")
    ]
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_publish_all_uses_ephemeral_ports(daemon: Daemon) -> None:
    cid = daemon.client.create(
        cmd=HTTPD, ExposedPorts={"80/tcp": {}}, HostConfig={"PublishAllPorts": True}
    )
    daemon.client.call("POST", f"/containers/{cid}/start")
    try:
        ports = daemon.client.inspect(cid)["NetworkSettings"]["Ports"]["80/tcp"]
        assert ports[0]["HostIp"] == "0.0.0.0"
        assert b"hello-from-" in get_with_retry(daemon, "127.0.0.1", int(ports[0]["HostPort"]))
    finally:
        daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


def test_network_none_has_only_loopback_and_host_shares_the_host(daemon: Daemon) -> None:
    cid = daemon.client.run(["ip", "-o", "link"], HostConfig={"NetworkMode": "none"})
    assert daemon.client.wait(cid) == 0
    links = b"".join(d for _, d in daemon.client.logs(cid, stdout=1)).decode()
    assert "lo:" in links and "eth0" not in links
    assert daemon.client.inspect(cid)["NetworkSettings"]["Networks"].keys() == {"none"}
    hid = daemon.client.run(["ip", "-o", "link"], HostConfig={"NetworkMode": "host"})
    assert daemon.client.wait(hid) == 0
    host_links = b"".join(d for _, d in daemon.client.logs(hid, stdout=1)).decode()
    assert "berth0" in host_links  # the daemon's own namespace
    for c in (cid, hid):
        daemon.client.call("DELETE", f"/containers/{c}")


def test_user_network_lifecycle_and_errors(daemon: Daemon) -> None:
    created = daemon.client.call(
        "POST",
        "/networks/create",
        {
            "Name": "appnet",
            "Labels": {"team": "a"},
            "IPAM": {"Config": [{"Subnet": "10.99.7.0/24"}]},
        },
    )
    nid = created["Id"]
    try:
        with pytest.raises(ApiError) as dup:
            daemon.client.call("POST", "/networks/create", {"Name": "appnet"})
        assert dup.value.status == 409
        with pytest.raises(ApiError) as overlap:
            daemon.client.call(
                "POST",
                "/networks/create",
                {"Name": "other", "IPAM": {"Config": [{"Subnet": "10.99.7.128/25"}]}},
            )
        assert overlap.value.status == 403
        info = daemon.client.call("GET", "/networks/appnet")
        assert info["Id"] == nid and info["IPAM"]["Config"] == [
            {"Subnet": "10.99.7.0/24", "Gateway": "10.99.7.1"}
        ]
        names = {n["Name"] for n in daemon.client.call("GET", "/networks")}
        assert {"bridge", "host", "none", "appnet"} <= names
        filtered = daemon.client.call(
            "GET", "/networks", params={"filters": json.dumps({"label": ["team=a"]})}
        )
        assert [n["Name"] for n in filtered] == ["appnet"]
        cid = daemon.client.create(
            cmd=["sleep", "60"],
            HostConfig={"NetworkMode": "appnet"},
            NetworkingConfig={
                "EndpointsConfig": {"appnet": {"IPAMConfig": {"IPv4Address": "10.99.7.50"}}}
            },
        )
        daemon.client.call("POST", f"/containers/{cid}/start")
        info = daemon.client.call("GET", "/networks/appnet")
        assert info["Containers"][cid]["IPv4Address"] == "10.99.7.50/24"
        with pytest.raises(ApiError) as busy:
            daemon.client.call("DELETE", "/networks/appnet")
        assert busy.value.status == 403 and "active endpoints" in busy.value.message
        daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})
        with pytest.raises(ApiError) as builtin:
            daemon.client.call("DELETE", "/networks/bridge")
        assert builtin.value.status == 403
    finally:
        daemon.client.call("DELETE", f"/networks/{nid}")
    with pytest.raises(ApiError) as gone:
        daemon.client.call("GET", f"/networks/{nid}")
    assert gone.value.status == 404
    assert (
        b"berth-" + nid[:9].encode()
        not in subprocess.run(["ip", "-o", "link"], capture_output=True, check=True).stdout
    )


def test_unknown_network_is_404(daemon: Daemon) -> None:
    with pytest.raises(ApiError) as info:
        daemon.client.create(cmd=["true"], HostConfig={"NetworkMode": "nope"})
    assert info.value.status == 404 and info.value.message == "network nope not found"


def test_containers_reach_each_other_by_name_on_a_user_network(daemon: Daemon) -> None:
    daemon.client.call("POST", "/networks/create", {"Name": "dnsnet"})
    try:
        web = daemon.client.create(
            cmd=HTTPD,
            name="web",
            HostConfig={"NetworkMode": "dnsnet"},
            NetworkingConfig={"EndpointsConfig": {"dnsnet": {"Aliases": ["site"]}}},
        )
        daemon.client.call("POST", f"/containers/{web}/start")
        web_ip = daemon.client.inspect(web)["NetworkSettings"]["Networks"]["dnsnet"]["IPAddress"]
        get_with_retry(daemon, web_ip, 80)
        script = (
            "nslookup web; nslookup site; "
            "ip=$(nslookup web | awk '/^Address/ && !/#53/ {a=$NF} END {print a}'); "
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc $ip 80"
        )
        cid = daemon.client.run(["sh", "-c", script], HostConfig={"NetworkMode": "dnsnet"})
        assert daemon.client.wait(cid) == 0
        out = b"".join(d for _, d in daemon.client.logs(cid, stdout=1, stderr=1)).decode()
        assert out.count(web_ip) >= 2, out
        assert "hello-from-" in out
        daemon.client.call("DELETE", f"/containers/{cid}")
    finally:
        for c in daemon.client.call("GET", "/containers/json", params={"all": "1"}):
            if "dnsnet" in c["NetworkSettings"]["Networks"]:
                daemon.client.call("DELETE", f"/containers/{c['Id']}", params={"force": "1"})
        daemon.client.call("DELETE", "/networks/dnsnet")


def test_hundred_port_range_is_published_and_reachable(daemon: Daemon) -> None:
    base = 31000
    script = (
        "mkdir -p /www && echo range > /www/index.html; "
        f"for p in $(seq {base} {base + 99}); do httpd -p $p -h /www; done; exec sleep 600"
    )
    cid = daemon.client.create(
        cmd=["sh", "-c", script],
        HostConfig={
            "PortBindings": {
                f"{p}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(p)}]
                for p in range(base, base + 100)
            }
        },
    )
    daemon.client.call("POST", f"/containers/{cid}/start")
    try:
        ports = daemon.client.inspect(cid)["NetworkSettings"]["Ports"]
        assert len(ports) == 100
        for p in range(base, base + 100):
            assert b"range" in get_with_retry(daemon, "127.0.0.1", p)
    finally:
        daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


def test_connect_and_disconnect_a_running_container(daemon: Daemon) -> None:
    daemon.client.call("POST", "/networks/create", {"Name": "extra"})
    cid = daemon.client.run(HTTPD)
    try:
        daemon.client.call(
            "POST", "/networks/extra/connect", {"Container": cid, "EndpointConfig": {}}
        )
        nets = daemon.client.inspect(cid)["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge", "extra"}
        ip = nets["extra"]["IPAddress"]
        assert ip
        assert b"hello-from-" in get_with_retry(daemon, ip, 80)  # through the new bridge
        with pytest.raises(ApiError) as twice:
            daemon.client.call("POST", "/networks/extra/connect", {"Container": cid})
        assert twice.value.status == 403
        daemon.client.call("POST", "/networks/extra/disconnect", {"Container": cid})
        assert set(daemon.client.inspect(cid)["NetworkSettings"]["Networks"]) == {"bridge"}
        with pytest.raises(OSError):
            daemon.http_get(ip, 80, timeout=1)
    finally:
        daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})
        daemon.client.call("DELETE", "/networks/extra")


def test_internal_network_has_no_route_out(daemon: Daemon) -> None:
    daemon.client.call("POST", "/networks/create", {"Name": "sealed", "Internal": True})
    try:
        cid = daemon.client.run(["sleep", "60"], HostConfig={"NetworkMode": "sealed"})
        info = daemon.client.inspect(cid)["NetworkSettings"]["Networks"]["sealed"]
        assert info["IPAddress"]
        daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})
        rules = subprocess.run(
            ["iptables", "-S", "BERTH-FORWARD"], capture_output=True, text=True, check=True
        ).stdout
        bridge = daemon.client.call("GET", "/networks/sealed")["Options"]
        assert "DROP" in rules, (rules, bridge)
    finally:
        daemon.client.call("DELETE", "/networks/sealed")


def test_addresses_ports_and_networks_survive_a_daemon_restart() -> None:
    with running_daemon("berth-netrs-") as d:
        d.client.call("POST", "/networks/create", {"Name": "keep"})
        port = free_port()
        cid = d.client.create(
            cmd=HTTPD,
            StopTimeout=1,  # httpd as pid 1 ignores SIGTERM
            HostConfig={
                "NetworkMode": "keep",
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
                "RestartPolicy": {"Name": "always"},
            },
        )
        d.client.call("POST", f"/containers/{cid}/start")
        get_with_retry(d, "127.0.0.1", port)
        before = d.client.inspect(cid)["NetworkSettings"]
        d.kill9()  # a crash: the container outlives berthd
        d.start()
        after = d.client.inspect(cid)["NetworkSettings"]
        assert after["Networks"]["keep"]["IPAddress"] == before["Networks"]["keep"]["IPAddress"]
        assert after["Ports"] == before["Ports"]
        assert b"hello-from-" in get_with_retry(d, "127.0.0.1", port)  # proxies are back
        other = d.client.run(["sleep", "30"], StopTimeout=1, HostConfig={"NetworkMode": "keep"})
        other_ip = d.client.inspect(other)["NetworkSettings"]["Networks"]["keep"]["IPAddress"]
        assert other_ip != after["Networks"]["keep"]["IPAddress"]  # no duplicate address
        assert d.stop() == 0
        assert not list((d.exec_root / "netns").glob("*"))  # spares included
        d.start()
        assert {n["Name"] for n in d.client.call("GET", "/networks")} >= {"keep", "bridge"}
        get_with_retry(d, "127.0.0.1", port)  # restarted by its policy, ports again


UDP_ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('0.0.0.0', 5353))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(65535)\n"
    "    s.sendto(b'echo:' + data, peer)\n"
)


def test_udp_echo_through_a_published_port(daemon: Daemon) -> None:
    """busybox has no UDP server: the host's python3 runs inside, /usr and /lib bound
    read-only."""
    port = free_port()
    binds = [f"{p}:{p}:ro" for p in ("/usr", "/lib", "/lib64") if Path(p).exists()]
    cid = daemon.client.create(
        cmd=["/usr/bin/python3", "-c", UDP_ECHO],
        HostConfig={
            "Binds": binds,
            "PortBindings": {"5353/udp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
        },
    )
    daemon.client.call("POST", f"/containers/{cid}/start")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            reply = b""
            deadline = time.monotonic() + 15
            while not reply and time.monotonic() < deadline:
                s.sendto(b"ping", ("127.0.0.1", port))
                try:
                    reply = s.recv(100)
                except TimeoutError:
                    continue
            assert reply == b"echo:ping"
            for i in range(20):  # the flow stays up for more datagrams
                s.sendto(f"n{i}".encode(), ("127.0.0.1", port))
                assert s.recv(100) == f"echo:n{i}".encode()
    finally:
        daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


def test_etc_files_follow_hostname_add_host_and_dns(daemon: Daemon) -> None:
    cid = daemon.client.run(
        ["sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf"],
        Hostname="box",
        Domainname="example.org",
        HostConfig={
            "ExtraHosts": ["db:192.0.2.7", "gw:host-gateway"],
            "Dns": ["192.0.2.53"],
            "DnsSearch": ["corp.test"],
        },
    )
    assert daemon.client.wait(cid) == 0
    out = b"".join(d for _, d in daemon.client.logs(cid, stdout=1)).decode()
    ip = daemon.client.inspect(cid)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert out.startswith("box\n")
    assert "box.example.org\tbox" in out and "192.0.2.7\tdb\n" in out
    assert "10.213.0.1\tgw\n" in out  # host-gateway: the bridge's address
    assert "nameserver 192.0.2.53\nsearch corp.test\n" in out
    assert ip == ""  # stopped: the address went back to the pool
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_container_network_mode_shares_the_peers_namespace(daemon: Daemon) -> None:
    web = daemon.client.run(HTTPD)
    try:
        idle = daemon.client.create(cmd=["true"])
        joiner = daemon.client.create(cmd=["true"], HostConfig={"NetworkMode": f"container:{idle}"})
        with pytest.raises(ApiError) as stopped_peer:
            daemon.client.call("POST", f"/containers/{joiner}/start")
        assert stopped_peer.value.status == 409
        for c in (joiner, idle):
            daemon.client.call("DELETE", f"/containers/{c}")
        cid = daemon.client.run(
            ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80"],
            HostConfig={"NetworkMode": f"container:{web}"},
        )
        assert daemon.client.wait(cid) == 0
        out = b"".join(d for _, d in daemon.client.logs(cid, stdout=1)).decode()
        assert "hello-from-" in out  # the peer's loopback
        assert daemon.client.inspect(cid)["HostConfig"]["NetworkMode"] == f"container:{web}"
        daemon.client.call("DELETE", f"/containers/{cid}")
    finally:
        daemon.client.call("DELETE", f"/containers/{web}", params={"force": "1"})
