"""supervisor.network.nat: the DNAT rules for published ports (pure part)."""

from __future__ import annotations

from pathlib import Path

from supervisor.network.nat import chain_name, dnat_rules
from supervisor.network.ports import PortBinding, Proto


def test_dnat_rules_per_binding() -> None:
    rules = dnat_rules(
        [
            PortBinding("", 8080, 80, Proto.TCP),
            PortBinding("127.0.0.1", 5353, 53, Proto.UDP),
            PortBinding("::1", 9000, 90, Proto.TCP),  # IPv6: the proxy's
            PortBinding("", 7000, 70, Proto.SCTP),  # not forwarded by berth
        ],
        "10.213.0.2",
        "berth0",
    )
    assert rules == [
        ["!", "-i", "berth0", "-p", "tcp", "-m", "tcp", "--dport", "8080",
         "-j", "DNAT", "--to-destination", "10.213.0.2:80"],
        ["-d", "127.0.0.1/32", "!", "-i", "berth0", "-p", "udp", "-m", "udp", "--dport", "5353",
         "-j", "DNAT", "--to-destination", "10.213.0.2:53"],
    ]  # fmt: skip


def test_chain_name_is_per_daemon_and_short() -> None:
    a, b = chain_name(Path("/run/berth")), chain_name(Path("/tmp/other"))
    assert a != b and a.startswith("BERTH-PORTS-") and len(a) <= 28
