"""``cli.netopts``: docker 28's network flag validators, endpoints, ports and IPAM.

The error messages in the tables were recorded from the docker 28.2.2 CLI.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.netopts import (
    check_dns_search,
    check_extra_host,
    check_ip,
    check_mac,
    endpoints,
    expose,
    ipam_config,
    is_user_defined,
    parse_network,
    publish,
)
from cli.units import InvalidArgument


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("8.8.8.8", "8.8.8.8"),
        (" 1.1.1.1 ", "1.1.1.1"),
        ("::0001", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
    ],
)
def test_check_ip_canonical_form(value: str, canonical: str) -> None:
    assert check_ip(value) == canonical


@pytest.mark.parametrize("value", ["x", "1.2.3", "010.1.1.1", "fe80::1%eth0", "[::1]", ""])
def test_check_ip_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_ip(value)
    assert str(info.value) == f"IP address is not correctly formatted: {value}"


@pytest.mark.parametrize(
    ("value", "result"),
    [
        (".", "."),
        ("example.com", "example.com"),
        ("example.com.", "example.com"),
        (" a-b.c ", "a-b.c"),
        ("x1", "x1"),
    ],
)
def test_check_dns_search(value: str, result: str) -> None:
    assert check_dns_search(value) == result


@pytest.mark.parametrize("value", ["-x-", "123", "a..b", "a_b", "x" * 255])
def test_check_dns_search_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a valid domain"):
        check_dns_search(value)


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("h:1.2.3.4", "h:1.2.3.4"),
        ("h=1.2.3.4", "h:1.2.3.4"),
        ("h6=[::1]", "h6:::1"),
        ("h6:::1", "h6:::1"),
        ("gw:host-gateway", "gw:host-gateway"),
        ("a=[1.2.3.4]", "a:1.2.3.4"),
    ],
)
def test_check_extra_host(value: str, result: str) -> None:
    assert check_extra_host(value) == result


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("foo", 'bad format for add-host: "foo"'),
        (":1.2.3.4", 'bad format for add-host: ":1.2.3.4"'),
        ("foo:bar", 'invalid IP address in add-host: "bar"'),
        ("foo=[bar]", 'invalid IP address in add-host: "bar"'),
    ],
)
def test_check_extra_host_rejects(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_extra_host(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "value",
    [
        "02:42:ac:11:00:02",
        "02-42-AC-11-00-02",
        "0242.ac11.0002",
        "00:00:00:00:fe:80:00:00",
        ":".join(["00"] * 20),
    ],
)
def test_check_mac_accepts_gos_formats(value: str) -> None:
    assert check_mac(value) == value


@pytest.mark.parametrize("value", ["zz", "02:42:ac:11:00", "02:42:ac:11:00:0g", "0242ac110002"])
def test_check_mac_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_mac(value)
    assert str(info.value) == f"{value} is not a valid mac address"


def test_user_defined_networks() -> None:
    assert [is_user_defined(m) for m in ("default", "bridge", "host", "none")] == [False] * 4
    assert not is_user_defined("container:web")
    assert is_user_defined("appnet")


def test_parse_network_long_syntax() -> None:
    attachment = parse_network(
        "name=App,alias=Web,alias=db,ip=10.0.0.2,mac-address=02:42:AC:11:00:02,"
        "driver-opt=Com.x=Y,gw-priority=5"
    )
    assert attachment.target == "app"  # docker lowercases the whole field
    assert attachment.aliases == ["web", "db"]
    assert attachment.ipv4 == "10.0.0.2"
    assert attachment.mac == "02:42:ac:11:00:02"
    assert attachment.driver_opts == {"com.x": "y"}
    assert attachment.gw_priority == 5
    assert parse_network("container:abc").target == "container:abc"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("name=x,bogus=1", "invalid field key bogus"),
        ("name=x,alias", "invalid field alias"),
        ("alias=a", "network name/id is not specified"),
        ("name=x,driver-opt=v", "invalid key value pair format in driver options"),
        ("name=x,gw-priority=high", "invalid gw-priority (high): invalid syntax"),
    ],
)
def test_parse_network_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_network(value)
    assert str(info.value) == message


EMPTY = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None}


def test_endpoints_default_is_always_sent() -> None:
    assert endpoints([]) == ("default", {"default": EMPTY})
    assert endpoints([], ip="172.17.0.9") == (
        "default",
        {"default": {**EMPTY, "IPAMConfig": {"IPv4Address": "172.17.0.9"}}},
    )


def test_endpoints_options_apply_to_the_first_network_only() -> None:
    mode, result = endpoints(["a", "b"], aliases=["x"], ip="10.0.0.3", mac="02:42:ac:11:00:02")
    assert mode == "a"
    assert result == {
        "a": {
            "IPAMConfig": {"IPv4Address": "10.0.0.3"},
            "Links": None,
            "Aliases": ["x"],
            "MacAddress": "02:42:ac:11:00:02",
            "DriverOpts": None,
        },
        "b": EMPTY,
    }


@pytest.mark.parametrize(
    ("networks", "kwargs", "message"),
    [
        (
            ["name=a,alias=x"],
            {"aliases": ["y"]},
            "conflicting options: cannot specify both --network-alias and per-network alias",
        ),
        (
            ["name=a,ip=10.0.0.1"],
            {"ip": "10.0.0.2"},
            "conflicting options: cannot specify both --ip and per-network IPv4 address",
        ),
        (
            ["name=a,mac-address=02:42:ac:11:00:02"],
            {"mac": "02:42:ac:11:00:03"},
            "conflicting options: cannot specify both --mac-address and per-network MAC address",
        ),
        (["bridge"], {"aliases": ["x"]}, "network-scoped aliases are only supported for "
         "user-defined networks"),
        (["name=a,mac-address=zz"], {}, "zz is not a valid mac address"),
    ],
)  # fmt: skip
def test_endpoints_conflicts(networks: list[str], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        endpoints(networks, **kwargs)  # type: ignore[arg-type]  # the table's keyword values
    assert str(info.value) == message


def test_publish_long_and_short_syntax() -> None:
    exposed, bindings = publish(["published=8080,target=80,protocol=udp", "[::1]:9000:90"])
    assert exposed == ["80/udp", "90/tcp"]
    assert bindings == {
        "80/udp": [{"HostIp": "", "HostPort": "8080"}],
        "90/tcp": [{"HostIp": "::1", "HostPort": "9000"}],
    }
    assert publish([]) == ([], {})
    assert publish(["8000-8010:80"])[1] == {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}


@pytest.mark.parametrize(
    ("values", "keys"),
    [
        (["80"], ["80/tcp"]),
        (["80/udp"], ["80/udp"]),
        (["80/"], ["80/tcp"]),
        (["1-3/sctp"], ["1/sctp", "2/sctp", "3/sctp"]),
        (["5-6-9"], ["5/tcp", "6/tcp"]),  # go-connections ignores a third part
        (["007"], ["7/tcp"]),
    ],
)
def test_expose(values: list[str], keys: list[str]) -> None:
    assert expose(values) == keys


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("80:90", "invalid port format for --expose: 80:90"),
        (
            "x",
            'invalid range format for --expose: x, error: strconv.ParseUint: parsing "x": '
            "invalid syntax",
        ),
        (
            "70000",
            'invalid range format for --expose: 70000, error: strconv.ParseUint: parsing "70000": '
            "value out of range",
        ),
        (
            "/tcp",
            "invalid range format for --expose: /tcp, error: empty string specified for ports",
        ),
        (
            "9-3",
            "invalid range format for --expose: 9-3, error: invalid range specified for port: 9-3",
        ),
    ],
)
def test_expose_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        expose([value])
    assert str(info.value) == message


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-/:udptcx", max_size=12))
def test_expose_fails_only_with_invalid_argument(value: str) -> None:
    try:
        keys = expose([value])
    except InvalidArgument:
        return
    assert keys


# --- network create: IPAM ---------------------------------------------------------------


def test_ipam_config_pairs_ranges_and_gateways_with_their_subnet() -> None:
    assert ipam_config(
        ["10.0.0.0/8", "192.168.0.0/16"], ["10.1.0.0/16"], ["192.168.0.1", "10.0.0.1"]
    ) == [
        {"Subnet": "10.0.0.0/8", "IPRange": "10.1.0.0/16", "Gateway": "10.0.0.1"},
        {"Subnet": "192.168.0.0/16", "Gateway": "192.168.0.1"},
    ]
    assert ipam_config([], [], []) == []
    assert ipam_config(["x"], [], []) == [{"Subnet": "x"}]  # the daemon judges a lone subnet


@pytest.mark.parametrize(
    ("subnets", "ranges", "gateways", "message"),
    [
        (["10.0.0.0/8"], [], ["11.0.0.1"], "no matching subnet for gateway 11.0.0.1"),
        ([], [], ["10.0.0.1"], "every ip-range or gateway must have a corresponding subnet"),
        (
            ["10.0.0.0/8", "10.1.0.0/16"],
            [],
            [],
            "multiple overlapping subnet configuration is not supported",
        ),
        (["10.0.0.0/8"], ["x"], [], "invalid CIDR address: x"),
        (["x", "10.0.0.0/8"], [], [], "invalid subnet: invalid CIDR address: x"),
        (["10.0.0.0/8", "x"], [], [], "invalid subnet: invalid CIDR address: x"),
        (["10.0.0.0/8"], ["11.0.0.0/16"], [], "no matching subnet for range 11.0.0.0/16"),
        (["10.0.0.0/8"], [], ["x"], "no matching subnet for gateway x"),
        (
            ["10.0.0.0/8", "11.0.0.0/8"],
            ["10.1.0.0/16", "10.2.0.0/16"],
            [],
            "cannot configure multiple ranges (10.2.0.0/16, 10.1.0.0/16) on the same subnet "
            "(10.0.0.0/8)",
        ),
        (
            ["10.0.0.0/8", "11.0.0.0/8"],
            [],
            ["10.0.0.1", "10.0.0.2"],
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet "
            "(10.0.0.0/8)",
        ),
    ],
)
def test_ipam_config_errors(
    subnets: list[str], ranges: list[str], gateways: list[str], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        ipam_config(subnets, ranges, gateways)
    assert str(info.value) == message


def test_ipam_config_ipv6_does_not_match_ipv4() -> None:
    assert ipam_config(["fd00::/64", "10.0.0.0/8"], [], ["fd00::1"]) == [
        {"Subnet": "fd00::/64", "Gateway": "fd00::1"},
        {"Subnet": "10.0.0.0/8"},
    ]
