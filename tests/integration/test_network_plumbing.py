"""supervisor.network.netlink against the real kernel: bridges, namespaces, veths, NAT.

Every test works on a bridge named ``bt<4 hex>`` (unique per test), namespaces and
veths with the same prefix and /24 subnets from 10.213.240.0/20 that the host does not
reach yet. Traffic goes only between the host and namespaces the test created. The
``plumbing`` fixture removes every link, namespace and iptables rule it made, whether
the test passed or not, and the last test checks that nothing was left behind.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from supervisor.errors import BerthError
from supervisor.network import netlink
from supervisor.network.ipam import Pool, allocate, default_gateway, interface_cidr, mac_for

pytestmark = pytest.mark.root

TEST_POOL = Pool(IPv4Network("10.213.240.0/20"), 24)
TIMEOUT_S = 2.0


class Plumbing:
    """What one test creates, and its clean-up."""

    def __init__(self) -> None:
        self.tag = "bt" + secrets.token_hex(2)
        self.bridges: dict[str, IPv4Network] = {}
        self.namespaces: list[str] = []
        self.veths: list[str] = []
        self.used: dict[str, set[IPv4Address]] = {}

    def bridge(self, suffix: str = "") -> tuple[str, IPv4Network]:
        name = self.tag + suffix
        taken = [*netlink.host_networks(), *self.bridges.values()]
        free = [s for s in TEST_POOL.subnets() if not any(s.overlaps(t) for t in taken)]
        subnet = free[secrets.randbelow(len(free))]  # concurrent runs rarely collide
        self.bridges[name] = subnet
        self.used[name] = set()
        netlink.ensure_bridge(name, interface_cidr(default_gateway(subnet), subnet))
        return name, subnet

    def container(self, bridge: str, suffix: str) -> tuple[str, IPv4Address]:
        """A namespace attached to ``bridge``: its name and address."""
        subnet = self.bridges[bridge]
        gateway = default_gateway(subnet)
        ns = f"{self.tag}-{suffix}"
        netlink.create_netns(ns)
        self.namespaces.append(ns)
        ip = allocate(subnet, used=self.used[bridge], gateway=gateway)
        self.used[bridge].add(ip)
        veth = self.tag + suffix
        self.veths.append(veth)
        netlink.attach_container(
            ns,
            bridge=bridge,
            host_ifname=veth,
            address_cidr=interface_cidr(ip, subnet),
            gateway=gateway,
            mac=mac_for(ip),
        )
        return ns, ip

    def cleanup(self) -> None:
        for veth in self.veths:
            with contextlib.suppress(BerthError):
                netlink.detach(veth)
        for ns in self.namespaces:
            with contextlib.suppress(BerthError):
                netlink.delete_netns(ns)
        for bridge, subnet in self.bridges.items():
            with contextlib.suppress(BerthError):
                netlink.remove_masquerade(subnet, bridge)
                netlink.set_bridge_isolation(bridge, internal=False)
            with contextlib.suppress(BerthError):
                netlink.delete_bridge(bridge)


@pytest.fixture
def plumbing() -> Iterator[Plumbing]:
    p = Plumbing()
    try:
        yield p
    finally:
        p.cleanup()


# -- helpers ---------------------------------------------------------------------------


def ns_socket(ns: str | None) -> socket.socket:
    if ns is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    else:
        sock = netlink.netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    return sock


def tcp_exchange(
    server_ns: str | None, server_ip: IPv4Address, client_ns: str | None, payload: bytes = b"ping"
) -> str:
    """Connect from ``client_ns`` to a listener in ``server_ns``; check the bytes cross
    both ways. Returns the client address the server saw."""
    with ns_socket(server_ns) as server, ns_socket(client_ns) as client:
        server.bind((str(server_ip), 0))
        server.listen()
        client.connect(server.getsockname())
        conn, peer = server.accept()
        with conn:
            conn.settimeout(TIMEOUT_S)
            client.sendall(payload)
            assert recv_exactly(conn, len(payload)) == payload
            conn.sendall(payload[::-1])
            assert recv_exactly(client, len(payload)) == payload[::-1]
        return str(peer[0])


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return bytes(data)


def ip_json(ns: str | None, *args: str) -> list[Any]:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    out = subprocess.run([*prefix, "ip", "-j", *args], check=True, capture_output=True, text=True)
    parsed: list[Any] = json.loads(out.stdout or "[]")  # iproute2's JSON, as is
    return parsed


def host_links(prefix: str) -> list[str]:
    """Names of the host's interfaces starting with ``prefix``."""
    names = (str(link["ifname"]) for link in ip_json(None, "link"))
    return sorted(n for n in names if n.startswith(prefix))


def iptables_dump() -> str:
    nat = subprocess.run(
        ["iptables", "-w", "-t", "nat", "-S"], check=True, capture_output=True, text=True
    )
    flt = subprocess.run(["iptables", "-w", "-S"], check=True, capture_output=True, text=True)
    return nat.stdout + flt.stdout


# -- bridges, namespaces, veths --------------------------------------------------------


def test_two_containers_reach_each_other(plumbing: Plumbing) -> None:
    bridge, _ = plumbing.bridge()
    a, ip_a = plumbing.container(bridge, "a")
    b, ip_b = plumbing.container(bridge, "b")
    ping = subprocess.run(
        ["ip", "netns", "exec", a, "busybox", "ping", "-c", "1", "-W", "2", str(ip_b)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert tcp_exchange(b, ip_b, a) == str(ip_a)
    assert tcp_exchange(a, ip_a, b) == str(ip_b)


def test_host_reaches_container_through_bridge(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    a, ip_a = plumbing.container(bridge, "a")
    assert tcp_exchange(a, ip_a, None) == str(default_gateway(subnet))


def test_container_reaches_host_via_gateway(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    a, ip_a = plumbing.container(bridge, "a")
    assert tcp_exchange(None, default_gateway(subnet), a) == str(ip_a)


def test_container_interface_is_configured(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    a, ip_a = plumbing.container(bridge, "a")
    links = {str(link["ifname"]): link for link in ip_json(a, "link")}
    assert set(links) == {"lo", "eth0"}
    assert links["eth0"]["address"] == mac_for(ip_a)
    assert "UP" in links["eth0"]["flags"]
    assert "UP" in links["lo"]["flags"]
    addrs = ip_json(a, "-4", "addr", "show", "eth0")[0]["addr_info"]
    assert [(x["local"], x["prefixlen"]) for x in addrs] == [(str(ip_a), subnet.prefixlen)]
    routes = ip_json(a, "route", "show", "default")
    assert [(r["dst"], r["gateway"], r["dev"]) for r in routes] == [
        ("default", str(default_gateway(subnet)), "eth0")
    ]
    host_end = ip_json(None, "link", "show", plumbing.tag + "a")[0]
    assert host_end["master"] == bridge
    assert "UP" in host_end["flags"]


def test_attach_without_gateway_adds_no_default_route(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    ns = plumbing.tag + "-n"
    netlink.create_netns(ns)
    plumbing.namespaces.append(ns)
    plumbing.veths.append(plumbing.tag + "n")
    ip = default_gateway(subnet) + 9
    netlink.attach_container(
        ns,
        bridge=bridge,
        host_ifname=plumbing.tag + "n",
        address_cidr=interface_cidr(ip, subnet),
        gateway=None,
        mac=mac_for(ip),
        ifname="eth1",
        mtu=1400,
    )
    assert ip_json(ns, "route", "show", "default") == []
    eth1 = ip_json(ns, "link", "show", "eth1")[0]
    assert eth1["mtu"] == 1400


def test_ensure_bridge_is_idempotent_and_converges(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    gateway = default_gateway(subnet)
    index = netlink.ensure_bridge(bridge, interface_cidr(gateway, subnet))
    subprocess.run(
        ["ip", "addr", "add", f"{gateway + 5}/{subnet.prefixlen}", "dev", bridge], check=True
    )
    assert netlink.ensure_bridge(bridge, interface_cidr(gateway, subnet)) == index
    link = ip_json(None, "-4", "addr", "show", bridge)[0]
    assert [(x["local"], x["prefixlen"]) for x in link["addr_info"]] == [
        (str(gateway), subnet.prefixlen)
    ]
    assert "UP" in link["flags"]
    assert ip_json(None, "link", "show", bridge)[0]["address"] == mac_for(gateway)
    assert ip_json(None, "-d", "link", "show", bridge)[0]["linkinfo"]["info_kind"] == "bridge"


def test_ensure_bridge_refuses_a_link_that_is_not_a_bridge(plumbing: Plumbing) -> None:
    name = plumbing.tag + "d"
    plumbing.veths.append(name)  # cleaned up as a link
    subprocess.run(
        ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True
    )
    with pytest.raises(BerthError, match="is not a bridge"):
        netlink.ensure_bridge(name, "10.213.255.1/24")


def test_attach_failures_leave_no_veth(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    ns, _ = plumbing.container(bridge, "a")
    ip = default_gateway(subnet) + 20
    plumbing.veths += [plumbing.tag + "x", plumbing.tag + "y"]
    cidr, mac = interface_cidr(ip, subnet), mac_for(ip)
    with pytest.raises(BerthError, match="no such bridge"):
        netlink.attach_container(
            ns,
            bridge=plumbing.tag + "zz",
            host_ifname=plumbing.tag + "x",
            gateway=None,
            address_cidr=cidr,
            mac=mac,
        )
    with pytest.raises(BerthError, match="create veth"):  # eth0 already exists in ns
        netlink.attach_container(
            ns,
            bridge=bridge,
            host_ifname=plumbing.tag + "y",
            gateway=None,
            address_cidr=cidr,
            mac=mac,
        )
    assert host_links(plumbing.tag) == sorted([bridge, plumbing.tag + "a"])


def test_attach_inside_failure_removes_the_veth(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    _, ip_a = plumbing.container(bridge, "a")
    other = plumbing.tag + "-o"
    netlink.create_netns(other)
    plumbing.namespaces.append(other)
    plumbing.veths.append(plumbing.tag + "o")
    with pytest.raises(BerthError):  # a gateway outside the subnet: no route to it
        netlink.attach_container(
            other,
            bridge=bridge,
            host_ifname=plumbing.tag + "o",
            address_cidr=interface_cidr(ip_a + 1, subnet),
            gateway="192.0.2.77",
            mac=mac_for(ip_a + 1),
        )
    assert plumbing.tag + "o" not in host_links(plumbing.tag)
    assert [link["ifname"] for link in ip_json(other, "link")] == ["lo"]


def test_netns_lifecycle_is_idempotent(plumbing: Plumbing) -> None:
    ns = plumbing.tag + "-n"
    plumbing.namespaces.append(ns)
    path = netlink.create_netns(ns)
    assert path == Path("/run/netns") / ns
    assert netlink.create_netns(ns) == path
    assert (
        ns
        in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert netlink.list_netns(plumbing.tag) == [ns]
    netlink.delete_netns(ns)
    netlink.delete_netns(ns)
    assert not path.exists()
    assert netlink.list_netns(plumbing.tag) == []


def test_loopback_up_for_network_none(plumbing: Plumbing) -> None:
    ns = plumbing.tag + "-l"
    plumbing.namespaces.append(ns)
    netlink.create_netns(ns)
    netlink.loopback_up(ns)
    netlink.loopback_up(ns)
    (lo,) = ip_json(ns, "link")
    assert lo["ifname"] == "lo"
    assert "UP" in lo["flags"]
    assert tcp_exchange(ns, IPv4Address("127.0.0.1"), ns) == "127.0.0.1"


def test_create_netns_replaces_a_stale_placeholder(plumbing: Plumbing) -> None:
    ns = plumbing.tag + "-s"
    plumbing.namespaces.append(ns)
    Path("/run/netns").mkdir(exist_ok=True)
    (Path("/run/netns") / ns).touch()
    netlink.create_netns(ns)
    with netlink.netns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM):
        pass
    assert [link["ifname"] for link in ip_json(ns, "link")] == ["lo"]


def test_deleting_missing_things_is_fine(plumbing: Plumbing) -> None:
    netlink.detach(plumbing.tag + "q")
    netlink.delete_bridge(plumbing.tag + "q")
    netlink.delete_netns(plumbing.tag + "-q")
    netlink.remove_masquerade("10.213.254.0/24", plumbing.tag + "q")
    netlink.set_bridge_isolation(plumbing.tag + "q", internal=False)


def test_detach_removes_both_ends(plumbing: Plumbing) -> None:
    bridge, _ = plumbing.bridge()
    a, _ = plumbing.container(bridge, "a")
    netlink.detach(plumbing.tag + "a")
    assert host_links(plumbing.tag) == [bridge]
    assert [link["ifname"] for link in ip_json(a, "link")] == ["lo"]


def test_host_networks_include_the_bridge_subnet(plumbing: Plumbing) -> None:
    _, subnet = plumbing.bridge()
    networks = netlink.host_networks()
    assert subnet in networks
    assert IPv4Network("0.0.0.0/0") not in networks


# -- NAT and isolation -----------------------------------------------------------------


def test_masquerade_rules_are_idempotent_and_removable(plumbing: Plumbing) -> None:
    bridge, subnet = plumbing.bridge()
    netlink.ensure_masquerade(subnet, bridge)
    netlink.ensure_masquerade(str(subnet), bridge)
    dump = iptables_dump()
    assert dump.count(f"-A POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE") == 1
    assert dump.count(f"-A {netlink.FORWARD_CHAIN} -i {bridge} -j ACCEPT") == 1
    assert dump.count(f"-A {netlink.FORWARD_CHAIN} -o {bridge} -m conntrack") == 1
    assert dump.count(f"-A FORWARD -j {netlink.FORWARD_CHAIN}") == 1
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    netlink.remove_masquerade(subnet, bridge)
    netlink.remove_masquerade(subnet, bridge)
    assert bridge not in iptables_dump()


@pytest.mark.slow
def test_masquerade_rewrites_the_source_of_outbound_traffic(plumbing: Plumbing) -> None:
    inner, _ = plumbing.bridge()
    outer, outer_subnet = plumbing.bridge("x")
    a, ip_a = plumbing.container(inner, "a")
    out, ip_out = plumbing.container(outer, "o")  # stands for the outside world
    assert tcp_exchange(out, ip_out, a) == str(ip_a)  # routed, not translated
    netlink.ensure_masquerade(plumbing.bridges[inner], inner)
    assert tcp_exchange(out, ip_out, a) == str(default_gateway(outer_subnet))


@pytest.mark.slow
def test_internal_bridge_drops_forwarding_but_not_local_traffic(plumbing: Plumbing) -> None:
    inner, inner_subnet = plumbing.bridge()
    outer, _ = plumbing.bridge("x")
    a, ip_a = plumbing.container(inner, "a")
    b, ip_b = plumbing.container(inner, "b")
    out, ip_out = plumbing.container(outer, "o")
    netlink.set_bridge_isolation(inner, internal=True)
    netlink.set_bridge_isolation(inner, internal=True)
    assert iptables_dump().count(f"-i {inner} ! -o {inner} -j DROP") == 1
    with pytest.raises(OSError), ns_socket(a) as client:  # noqa: PT012 - the connect is the call
        client.settimeout(0.3)
        client.connect((str(ip_out), 9))
    assert tcp_exchange(b, ip_b, a) == str(ip_a)  # between the bridge's own ports
    assert tcp_exchange(a, ip_a, None) == str(default_gateway(inner_subnet))  # host is local
    netlink.set_bridge_isolation(inner, internal=False)
    assert inner not in iptables_dump()
    assert tcp_exchange(out, ip_out, a) == str(ip_a)


@pytest.mark.slow
def test_cleanup_leaves_nothing_behind() -> None:
    p = Plumbing()
    try:
        bridge, subnet = p.bridge()
        p.container(bridge, "a")
        p.container(bridge, "b")
        netlink.ensure_masquerade(subnet, bridge)
        netlink.set_bridge_isolation(bridge, internal=True)
    finally:
        p.cleanup()
    assert host_links(p.tag) == []
    assert netlink.list_netns(p.tag) == []
    dump = iptables_dump()
    assert p.tag not in dump
    assert str(subnet) not in dump
