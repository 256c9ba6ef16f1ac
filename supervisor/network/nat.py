"""Published ports in the kernel: DNAT rules beside the in-process proxies.

Why: a userland copy costs CPU per byte and per connection. On this 2-core host the
in-process splice proxy moves ~1.1 GB/s where a direct connection to the container
moves ~2.2 GB/s, and small requests cost ~0.8 ms of CPU each — docker-proxy's league.
With a DNAT rule the kernel forwards the connection itself, at the speed of a direct
connection. The proxy stays: it holds the port (a second container, or any program,
cannot take it, and a taken port fails the start with Docker's message), and it serves
whatever the rules do not catch — hairpin traffic from containers on the same bridge,
IPv6 addresses, a host without iptables.

Rules (one chain per daemon, ``BERTH-PORTS-<tag>`` in ``nat``, jumped to from PREROUTING
and OUTPUT for local destinations)::

    -A BERTH-PORTS-x [-d HOSTIP/32] ! -i BRIDGE -p tcp -m tcp --dport HP -j DNAT --to-destination CIP:CP

and per bridge, so that connections to 127.0.0.1 can be DNATed too (Docker does the same
with its userland proxy off): ``route_localnet`` on the bridge, MASQUERADE for locally
sourced packets leaving through it, an ACCEPT for DNATed connections in BERTH-FORWARD, and
a DROP in ``raw`` for packets *from* the bridge to 127.0.0.0/8 (containers must not reach
the host's loopback services through route_localnet: CVE-2020-8558).

Every function that touches the host is SYNCHRONOUS: call it through the NetlinkWorker.
:func:`dnat_rules` is pure.

Imports: the standard library, ``supervisor.errors``, ``supervisor.network.ports`` and
``netlink``'s iptables helpers.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path

import structlog

from supervisor.errors import BerthError
from supervisor.network import netlink
from supervisor.network.ports import PortBinding, Proto

log = structlog.get_logger()

CHAIN_PREFIX = "BERTH-PORTS-"
LOCAL_JUMP = ["-m", "addrtype", "--dst-type", "LOCAL"]

Rule = list[str]


def chain_name(exec_root: Path) -> str:
    """A chain per daemon (two daemons on one host never flush each other's rules)."""
    return CHAIN_PREFIX + hashlib.sha256(str(exec_root).encode()).hexdigest()[:8]


def dnat_rules(bindings: Sequence[PortBinding], container_ip: str, bridge: str) -> list[Rule]:
    """The DNAT rules for ``bindings`` as bound (real host ports). IPv6 host addresses
    and SCTP are left to the proxy."""
    rules: list[Rule] = []
    for b in bindings:
        if b.proto not in (Proto.TCP, Proto.UDP) or b.host_port <= 0:
            continue
        rule: Rule = []
        if b.host_ip:
            if ip_address(b.host_ip).version != 4:
                continue
            if b.host_ip != "0.0.0.0":
                rule += ["-d", f"{b.host_ip}/32"]
        proto = str(b.proto)
        rule += ["!", "-i", bridge, "-p", proto, "-m", proto, "--dport", str(b.host_port)]
        rule += ["-j", "DNAT", "--to-destination", f"{container_ip}:{b.container_port}"]
        rules.append(rule)
    return rules


def ensure_chain(chain: str) -> None:
    """Create (or empty) the daemon's chain and jump to it for local destinations."""
    if netlink._chain_exists("nat", chain):
        netlink._iptables("-t", "nat", "-F", chain)
    else:
        netlink._iptables("-t", "nat", "-N", chain)
    for hook in ("PREROUTING", "OUTPUT"):
        netlink._ensure_rule("nat", hook, [*LOCAL_JUMP, "-j", chain])


def remove_chain(chain: str) -> None:
    """Undo :func:`ensure_chain` (daemon shutdown). Missing pieces are fine."""
    for hook in ("PREROUTING", "OUTPUT"):
        netlink._delete_rule("nat", hook, [*LOCAL_JUMP, "-j", chain])
    if netlink._chain_exists("nat", chain):
        netlink._iptables("-t", "nat", "-F", chain)
        netlink._iptables("-t", "nat", "-X", chain)


def _bridge_rules(bridge: str) -> list[tuple[str, str, Rule]]:
    return [
        ("nat", "POSTROUTING", ["-o", bridge, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE"]),
        ("filter", netlink.FORWARD_CHAIN, ["-o", bridge, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"]),
        ("raw", "PREROUTING", ["-i", bridge, "-d", "127.0.0.0/8", "-j", "DROP"]),
    ]  # fmt: skip


def enable_bridge(bridge: str) -> None:
    """What DNAT to containers on ``bridge`` needs (see the module docstring)."""
    netlink.check_ifname(bridge)
    knob = Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
    if knob.exists() and knob.read_text().strip() != "1":
        knob.write_text("1\n")
    netlink._ensure_forward_chain()
    for table, chain, rule in _bridge_rules(bridge):
        netlink._ensure_rule(table, chain, rule)


def disable_bridge(bridge: str) -> None:
    netlink.check_ifname(bridge)
    for table, chain, rule in _bridge_rules(bridge):
        if chain != netlink.FORWARD_CHAIN or netlink._chain_exists(table, chain):
            netlink._delete_rule(table, chain, rule)


def add_rules(chain: str, rules: Sequence[Rule]) -> None:
    """Append ``rules`` to ``chain`` in one ``iptables-restore`` transaction (a
    1000-port range is one call, not a thousand)."""
    _restore(chain, "-A", rules)


def delete_rules(chain: str, rules: Sequence[Rule]) -> None:
    """Delete ``rules``; when the batch fails (one is already gone), one by one."""
    try:
        _restore(chain, "-D", rules)
    except BerthError:
        for rule in rules:
            netlink._delete_rule("nat", chain, rule)


def _restore(chain: str, op: str, rules: Sequence[Rule]) -> None:
    if not rules:
        return
    lines = ["*nat", *(" ".join([op, chain, *rule]) for rule in rules), "COMMIT", ""]
    binary = netlink._iptables_binary() + "-restore"
    proc = subprocess.run(
        [binary, "-w", "--noflush"],
        input="\n".join(lines),
        capture_output=True,
        text=True,
        env=dict(os.environ, LC_ALL="C"),
        check=False,
    )
    if proc.returncode != 0:
        raise BerthError(f"iptables-restore {op} {chain}: {proc.stderr.strip()}")
