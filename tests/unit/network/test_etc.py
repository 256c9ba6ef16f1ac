"""supervisor.network.etc: /etc/hosts and /etc/resolv.conf as Docker writes them."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument
from supervisor.network import etc

HOST = """# generated
nameserver 127.0.0.53
nameserver 192.0.2.1 # office
nameserver fe80::1%eth0
search corp.example lab.example
options edns0 trust-ad
"""


def test_resolv_conf_drops_loopback_servers_and_keeps_search_and_options() -> None:
    assert etc.resolv_conf(HOST) == (
        "nameserver 192.0.2.1\nnameserver fe80::1\n"
        "search corp.example lab.example\noptions edns0 trust-ad\n"
    )


def test_resolv_conf_falls_back_to_public_resolvers_when_only_loopback() -> None:
    assert etc.resolv_conf("nameserver 127.0.0.53\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert etc.resolv_conf("") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_user_options_replace_the_hosts() -> None:
    text = etc.resolv_conf(HOST, dns=["1.1.1.1"], dns_search=["x.test"], dns_options=["ndots:2"])
    assert text == "nameserver 1.1.1.1\nsearch x.test\noptions ndots:2\n"


def test_resolv_conf_embedded_dns_is_the_only_server() -> None:
    text = etc.resolv_conf(HOST, dns=["1.1.1.1"], embedded_dns="10.213.16.1")
    assert text.startswith("nameserver 10.213.16.1\nsearch corp.example")
    assert "1.1.1.1" not in text


def test_resolv_conf_search_dot_means_none() -> None:
    assert "search" not in etc.resolv_conf(HOST, dns_search=["."])


def test_upstreams_keep_loopback_servers() -> None:
    assert etc.upstream_servers(HOST) == ["127.0.0.53", "192.0.2.1", "fe80::1"]
    assert etc.upstream_servers(HOST, ["9.9.9.9"]) == ["9.9.9.9"]


def test_hosts_file_lists_own_addresses_and_extra_hosts() -> None:
    text = etc.hosts_file(
        hostname="abc",
        domainname="example.org",
        addresses=["10.213.0.2", "10.99.0.5"],
        extra_hosts=[("db", "192.0.2.9")],
    )
    assert text.startswith(etc.LOCALHOST_LINES)
    assert text.endswith(
        "10.213.0.2\tabc.example.org\tabc\n10.99.0.5\tabc.example.org\tabc\n192.0.2.9\tdb\n"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("db:192.0.2.9", ("db", "192.0.2.9")),
        ("db=192.0.2.9", ("db", "192.0.2.9")),
        ("v6:::1", ("v6", "::1")),
        ("v6=[2001:db8::1]", ("v6", "2001:db8::1")),
        ("gw:host-gateway", ("gw", "host-gateway")),
    ],
)
def test_parse_extra_host(entry: str, expected: tuple[str, str]) -> None:
    assert etc.parse_extra_host(entry) == expected


@pytest.mark.parametrize("entry", ["db", "db:", ":1.2.3.4", "db:not-an-ip"])
def test_parse_extra_host_refuses_bad_entries(entry: str) -> None:
    with pytest.raises(InvalidArgument):
        etc.parse_extra_host(entry)


def test_check_dns() -> None:
    assert etc.check_dns(["1.1.1.1", "2001:db8::1"]) == ["1.1.1.1", "2001:db8::1"]
    with pytest.raises(InvalidArgument, match="is not an ip address"):
        etc.check_dns(["dns.example"])


@given(st.text())
def test_parsers_only_raise_invalid_argument(text: str) -> None:
    etc.parse_resolv_conf(text)
    with contextlib.suppress(InvalidArgument):
        etc.parse_extra_host(text)
