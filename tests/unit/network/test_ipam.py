"""Tests for supervisor.network.ipam: subnets, gateways and address allocation."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import BerthError, Forbidden, InvalidArgument
from supervisor.network.ipam import (
    ADDRESS_IN_USE,
    DEFAULT_BRIDGE_SUBNET,
    DEFAULT_POOLS,
    NO_MORE_SUBNETS,
    POOL_OVERLAP,
    Pool,
    allocate,
    check_no_overlap,
    default_gateway,
    interface_cidr,
    mac_for,
    overlaps,
    parse_address,
    parse_gateway,
    parse_subnet,
    pick_subnet,
    validate_config,
)

NET = IPv4Network("10.213.5.0/24")
GW = IPv4Address("10.213.5.1")


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


# -- parse_subnet ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.213.0.0/16", "10.213.0.0/16"),
        ("192.168.1.0/24", "192.168.1.0/24"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.0.0.4/30", "10.0.0.4/30"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
    ids=["b16", "c24", "a8", "smallest", "everything"],
)
def test_parse_subnet_valid_returns_network(text: str, expected: str) -> None:
    assert parse_subnet(text) == IPv4Network(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foobar", "invalid subnet foobar: invalid CIDR block notation"),
        ("10.0.0.0", "invalid subnet 10.0.0.0: invalid CIDR block notation"),
        ("10.0.0.0/", "invalid subnet 10.0.0.0/: invalid CIDR block notation"),
        ("10.0.0.0/33", "invalid subnet 10.0.0.0/33: invalid CIDR block notation"),
        ("10.0.0.0/08", "invalid subnet 10.0.0.0/08: invalid CIDR block notation"),
        ("10.0.0.0/+8", "invalid subnet 10.0.0.0/+8: invalid CIDR block notation"),
        ("10.0.0.0/255.0.0.0", "invalid subnet 10.0.0.0/255.0.0.0: invalid CIDR block notation"),
        (" 10.0.0.0/8", "invalid subnet  10.0.0.0/8: invalid CIDR block notation"),
        ("10.0.0.256/24", "invalid subnet 10.0.0.256/24: invalid CIDR block notation"),
        ("10.10.10.0/8", "invalid subnet 10.10.10.0/8: it should be 10.0.0.0/8"),
        ("10.213.5.7/24", "invalid subnet 10.213.5.7/24: it should be 10.213.5.0/24"),
        ("2001:db8::/32", "invalid subnet 2001:db8::/32: IPv6 has not been enabled for this network"),
        ("2001:db8::/129", "invalid subnet 2001:db8::/129: invalid CIDR block notation"),
        ("10.0.0.0/31", "invalid subnet 10.0.0.0/31: a bridge network needs at least a /30"),
        ("10.0.0.1/32", "invalid subnet 10.0.0.1/32: a bridge network needs at least a /30"),
    ],
    ids=[
        "word", "no-bits", "empty-bits", "bits-too-big", "leading-zero", "signed", "netmask",
        "space", "bad-octet", "host-bits", "host-bits-24", "ipv6", "ipv6-bad-bits", "slash31",
        "slash32",
    ],
)  # fmt: skip
def test_parse_subnet_invalid_raises_moby_message(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_subnet(text)
    assert str(exc.value) == message
    assert exc.value.status == 400


@pytest.mark.slow
@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=30))
def test_parse_subnet_round_trips_canonical_networks(addr: IPv4Address, bits: int) -> None:
    network = IPv4Network((addr, bits), strict=False)
    assert parse_subnet(str(network)) == network


@given(st.text(alphabet="0123456789./:abcdef x", max_size=24))
def test_parse_subnet_never_raises_anything_but_invalid_argument(text: str) -> None:
    try:
        network = parse_subnet(text)
    except InvalidArgument:
        return
    assert str(network) == text


# -- gateways and config ---------------------------------------------------------------


def test_default_gateway_is_first_host() -> None:
    assert default_gateway(NET) == GW
    assert default_gateway(DEFAULT_BRIDGE_SUBNET) == ip("10.213.0.1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1001.10.5.3", "invalid gateway 1001.10.5.3: invalid address"),
        ("10.214.0.1", "invalid gateway 10.214.0.1: parent subnet 10.213.5.0/24 doesn't contain this address"),
        ("10.213.5.0", "invalid gateway 10.213.5.0: parent subnet 10.213.5.0/24 doesn't contain this address"),
        ("10.213.5.255", "invalid gateway 10.213.5.255: parent subnet 10.213.5.0/24 doesn't contain this address"),
        ("2001:db8::1", "invalid gateway 2001:db8::1: parent subnet is an IPv4 block"),
    ],
    ids=["garbage", "outside", "network-address", "broadcast", "ipv6"],
)  # fmt: skip
def test_parse_gateway_invalid_raises_moby_message(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{re.escape(message)}$"):
        parse_gateway(text, NET)


def test_parse_gateway_inside_subnet_is_accepted() -> None:
    assert parse_gateway("10.213.5.254", NET) == ip("10.213.5.254")


def test_validate_config_defaults_gateway() -> None:
    assert validate_config("10.213.5.0/24") == (NET, GW)
    assert validate_config("10.213.5.0/24", "10.213.5.9") == (NET, ip("10.213.5.9"))


@pytest.mark.parametrize(
    ("subnet", "gateway", "problem"),
    [
        ("foobar", None, "invalid subnet foobar: invalid CIDR block notation"),
        ("10.213.5.0/24", "10.0.0.1", "invalid gateway 10.0.0.1: parent subnet 10.213.5.0/24 doesn't contain this address"),
    ],
    ids=["subnet", "gateway"],
)  # fmt: skip
def test_validate_config_invalid_prefixes_invalid_network_config(
    subnet: str, gateway: str | None, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_config(subnet, gateway)
    assert str(exc.value) == f"invalid network config:\n{problem}"


def test_parse_address_valid_and_invalid() -> None:
    assert parse_address("10.213.5.7") == ip("10.213.5.7")
    for bad in ("10.213.5", "::1", "x"):
        with pytest.raises(InvalidArgument, match=f"^invalid IPv4 address: {re.escape(bad)}$"):
            parse_address(bad)


# -- allocate --------------------------------------------------------------------------


def test_allocate_first_address_follows_gateway() -> None:
    assert allocate(NET, used=set(), gateway=GW) == ip("10.213.5.2")


def test_allocate_skips_used_addresses() -> None:
    used = {ip("10.213.5.2"), ip("10.213.5.3"), ip("10.213.5.5")}
    assert allocate(NET, used=used, gateway=GW) == ip("10.213.5.4")


def test_allocate_reuses_released_address() -> None:
    used = {IPv4Address(int(ip("10.213.5.2")) + i) for i in range(50)} - {ip("10.213.5.10")}
    assert allocate(NET, used=used, gateway=GW) == ip("10.213.5.10")


def test_allocate_custom_gateway_leaves_first_host_free() -> None:
    # Docker's IPAM: the lowest free address of the subnet, whatever the gateway.
    assert allocate(NET, used=set(), gateway=ip("10.213.5.254")) == ip("10.213.5.1")


def test_allocate_requested_free_address_is_returned() -> None:
    got = allocate(NET, used={ip("10.213.5.2")}, gateway=GW, requested=ip("10.213.5.77"))
    assert got == ip("10.213.5.77")


@pytest.mark.parametrize(
    "requested",
    ["10.213.5.2", "10.213.5.1", "10.213.5.0", "10.213.5.255"],
    ids=["used", "gateway", "network", "broadcast"],
)
def test_allocate_requested_taken_raises_address_in_use(requested: str) -> None:
    with pytest.raises(Forbidden) as exc:
        allocate(NET, used={ip("10.213.5.2")}, gateway=GW, requested=ip(requested))
    assert str(exc.value) == ADDRESS_IN_USE == "Address already in use"
    assert exc.value.status == 403


def test_allocate_requested_outside_subnet_raises_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as exc:
        allocate(NET, used=set(), gateway=GW, requested=ip("10.9.9.9"))
    assert str(exc.value) == (
        "invalid address 10.9.9.9: It does not belong to any of this network's subnets"
    )


def test_allocate_exhausted_raises_with_network_name() -> None:
    tiny = IPv4Network("10.213.5.4/30")
    gateway = default_gateway(tiny)
    only = allocate(tiny, used=set(), gateway=gateway)
    assert only == ip("10.213.5.6")
    with pytest.raises(BerthError) as exc:
        allocate(tiny, used={only}, gateway=gateway, network="web (0123456789ab)")
    assert str(exc.value) == (
        "no available IPv4 addresses on this network's address pools: web (0123456789ab)"
    )
    assert exc.value.status == 500


def test_allocate_exhausted_without_name_has_no_suffix() -> None:
    tiny = IPv4Network("10.213.5.4/30")
    with pytest.raises(BerthError, match=r"address pools$"):
        allocate(tiny, used={ip("10.213.5.6")}, gateway=ip("10.213.5.5"))


@st.composite
def allocation_cases(draw: st.DrawFn) -> tuple[IPv4Network, set[IPv4Address], IPv4Address]:
    bits = draw(st.integers(min_value=26, max_value=30))
    base = draw(st.ip_addresses(v=4))
    net = IPv4Network((base, bits), strict=False)
    hosts = list(net.hosts())
    gateway = draw(st.sampled_from(hosts))
    used = set(draw(st.lists(st.sampled_from(hosts), max_size=len(hosts))))
    return net, used, gateway


@pytest.mark.slow
@given(allocation_cases())
def test_allocate_returns_lowest_free_host(
    case: tuple[IPv4Network, set[IPv4Address], IPv4Address],
) -> None:
    net, used, gateway = case
    free = [h for h in net.hosts() if h not in used and h != gateway]
    if not free:
        with pytest.raises(BerthError, match="no available IPv4 addresses"):
            allocate(net, used=used, gateway=gateway)
        return
    assert allocate(net, used=used, gateway=gateway) == free[0]


@pytest.mark.slow
@given(allocation_cases(), st.ip_addresses(v=4))
def test_allocate_requested_accepts_exactly_free_hosts(
    case: tuple[IPv4Network, set[IPv4Address], IPv4Address], requested: IPv4Address
) -> None:
    net, used, gateway = case
    if requested not in net:
        with pytest.raises(InvalidArgument):
            allocate(net, used=used, gateway=gateway, requested=requested)
    elif requested in used or requested in (gateway, net.network_address, net.broadcast_address):
        with pytest.raises(Forbidden):
            allocate(net, used=used, gateway=gateway, requested=requested)
    else:
        assert allocate(net, used=used, gateway=gateway, requested=requested) == requested


@given(st.integers(min_value=24, max_value=30))
def test_allocate_repeatedly_fills_subnet_without_duplicates(bits: int) -> None:
    net = IPv4Network(f"10.213.8.0/{bits}")
    gateway = default_gateway(net)
    used: set[IPv4Address] = set()
    while True:
        try:
            addr = allocate(net, used=used, gateway=gateway)
        except BerthError:
            break
        assert addr not in used
        used.add(addr)
    assert len(used) == net.num_addresses - 3  # network, gateway, broadcast


# -- subnets ---------------------------------------------------------------------------


def test_overlaps_and_check_no_overlap() -> None:
    a, b, c = IPv4Network("10.0.0.0/8"), IPv4Network("10.1.0.0/16"), IPv4Network("11.0.0.0/8")
    assert overlaps(a, b)
    assert overlaps(b, a)
    assert not overlaps(a, c)
    check_no_overlap(c, [a, b])
    with pytest.raises(Forbidden, match=f"^{re.escape(POOL_OVERLAP)}$"):
        check_no_overlap(b, [c, a])


def test_pick_subnet_empty_host_takes_first_pool_subnet() -> None:
    assert pick_subnet([]) == IPv4Network("10.213.0.0/24")


def test_pick_subnet_skips_default_bridge_and_used_subnets() -> None:
    existing = [
        DEFAULT_BRIDGE_SUBNET,
        IPv4Network("10.213.16.0/24"),
        IPv4Network("10.213.17.128/25"),
    ]
    assert pick_subnet(existing) == IPv4Network("10.213.18.0/24")


def test_pick_subnet_skips_host_routes_covering_pool() -> None:
    existing = [IPv4Network("10.213.0.0/17")]
    assert pick_subnet(existing) == IPv4Network("10.213.128.0/24")


def test_pick_subnet_exhausted_raises() -> None:
    with pytest.raises(InvalidArgument, match=f"^{re.escape(NO_MORE_SUBNETS)}$"):
        pick_subnet([IPv4Network("10.0.0.0/8")])


def test_pick_subnet_tries_pools_in_order() -> None:
    pools = [Pool(IPv4Network("10.213.0.0/23"), 24), Pool(IPv4Network("172.31.0.0/16"), 16)]
    existing = [IPv4Network("10.213.0.0/23")]
    assert pick_subnet(existing, pools) == IPv4Network("172.31.0.0/16")


def test_pool_with_size_not_smaller_than_base_yields_base() -> None:
    assert list(Pool(IPv4Network("10.213.0.0/24"), 16).subnets()) == [IPv4Network("10.213.0.0/24")]


@pytest.mark.slow
@given(st.lists(st.builds(lambda a, b: IPv4Network((a, b), strict=False),
                          st.ip_addresses(v=4), st.integers(min_value=8, max_value=30)),
                max_size=8))  # fmt: skip
def test_pick_subnet_never_overlaps_existing(existing: list[IPv4Network]) -> None:
    try:
        picked = pick_subnet(existing)
    except InvalidArgument:
        assert any(e.overlaps(DEFAULT_POOLS[0].base) for e in existing)
        return
    assert picked.prefixlen == 24
    assert picked.subnet_of(DEFAULT_POOLS[0].base)
    assert not any(picked.overlaps(e) for e in existing)


def test_default_bridge_subnet_lies_inside_default_pool() -> None:
    assert DEFAULT_BRIDGE_SUBNET.subnet_of(DEFAULT_POOLS[0].base)
    assert pick_subnet([DEFAULT_BRIDGE_SUBNET]) == IPv4Network("10.213.16.0/24")


# -- MAC and forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "mac"),
    [("10.213.0.2", "02:42:0a:d5:00:02"), ("172.17.0.2", "02:42:ac:11:00:02"), ("255.0.16.1", "02:42:ff:00:10:01")],
    ids=["berth0", "docker0", "high-bytes"],
)  # fmt: skip
def test_mac_for_is_dockers_0242_prefix_and_ip_bytes(addr: str, mac: str) -> None:
    assert mac_for(ip(addr)) == mac


@given(st.ip_addresses(v=4))
def test_mac_for_encodes_the_whole_address(addr: IPv4Address) -> None:
    mac = mac_for(addr)
    octets = mac.split(":")
    assert len(octets) == 6
    assert octets[:2] == ["02", "42"]
    assert bytes(int(o, 16) for o in octets[2:]) == addr.packed


def test_interface_cidr() -> None:
    assert interface_cidr(ip("10.213.5.2"), NET) == "10.213.5.2/24"
