"""Tests for supervisor.network.ports: -p specs, the API's port maps, ps/port rendering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument
from supervisor.network.ports import (
    PortBinding,
    Proto,
    container_ports,
    displayable_ports,
    exposed_ports,
    format_port_spec,
    from_port_bindings,
    is_ipv6,
    network_settings_ports,
    parse_exposed_ports,
    parse_port_key,
    parse_port_spec,
    parse_port_specs,
    port_lines,
    publish_all,
    to_port_bindings,
)

TCP, UDP, SCTP = Proto.TCP, Proto.UDP, Proto.SCTP


def pb(
    host_ip: str = "",
    host_port: int = 0,
    container_port: int = 80,
    proto: Proto = TCP,
    end: int = 0,
) -> PortBinding:
    return PortBinding(host_ip, host_port, container_port, proto, end)


# -- parse_port_spec -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [pb()]),
        ("80/tcp", [pb()]),
        ("80/", [pb()]),
        ("80/UDP", [pb(proto=UDP)]),
        ("53/udp", [pb(container_port=53, proto=UDP)]),
        ("9/sctp", [pb(container_port=9, proto=SCTP)]),
        ("8080:80", [pb(host_port=8080)]),
        ("0:80", [pb()]),
        ("127.0.0.1:8080:80/udp", [pb("127.0.0.1", 8080, 80, UDP)]),
        ("127.0.0.1::80", [pb("127.0.0.1")]),
        ("0.0.0.0:80:80", [pb("0.0.0.0", 80)]),
        ("[::1]:80:80", [pb("::1", 80)]),
        ("[::]::80", [pb("::")]),
        ("::1:80:80", [pb("::1", 80)]),
        ("[127.0.0.1]:80:80", [pb("127.0.0.1", 80)]),
        ("0080:080", [pb(host_port=80)]),
        ("80-82", [pb(container_port=80), pb(container_port=81), pb(container_port=82)]),
        ("8000-8001:80-81", [pb(host_port=8000, container_port=80), pb(host_port=8001, container_port=81)]),
        ("8000-8010:80", [pb(host_port=8000, end=8010)]),
        ("8000-8000:80", [pb(host_port=8000)]),
        ("1.2.3.4:8000-8010:80/udp", [pb("1.2.3.4", 8000, 80, UDP, 8010)]),
        ("65535:65535", [pb(host_port=65535, container_port=65535)]),
    ],
    ids=[
        "container-only", "tcp", "empty-proto", "upper-proto", "udp", "sctp", "host-port",
        "host-port-zero", "ip-host-udp", "ip-ephemeral", "any-ip", "ipv6-brackets",
        "ipv6-any-ephemeral", "ipv6-bare", "ipv4-brackets", "leading-zeros", "container-range",
        "pairwise-ranges", "dynamic-host-range", "degenerate-range", "ip-dynamic-udp", "max-port",
    ],
)  # fmt: skip
def test_parse_port_spec_valid(spec: str, expected: list[PortBinding]) -> None:
    assert parse_port_spec(spec) == expected


def test_parse_port_spec_big_range_publishes_each_port() -> None:
    bindings = parse_port_spec("8000-8100:8000-8100")
    assert len(bindings) == 101
    assert all(b.host_port == b.container_port for b in bindings)
    assert bindings[0] == pb(host_port=8000, container_port=8000)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no port specified: <empty>"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("/tcp", "no port specified: /tcp<empty>"),
        ("abc", "invalid containerPort: abc"),
        ("8080:abc", "invalid containerPort: abc"),
        ("0", "invalid containerPort: 0"),
        ("70000", "invalid containerPort: 70000"),
        ("-80", "invalid containerPort: -80"),
        ("+80", "invalid containerPort: +80"),
        ("82-80", "invalid containerPort: 82-80"),
        ("80-", "invalid containerPort: 80-"),
        ("abc:80", "invalid hostPort: abc"),
        ("70000:80", "invalid hostPort: 70000"),
        ("0-10:80", "invalid hostPort: 0-10"),
        ("8010-8000:80", "invalid hostPort: 8010-8000"),
        ("80/foo", "invalid proto: foo"),
        ("80/FOO", "invalid proto: foo"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("localhost:80:80", "invalid IP address: localhost"),
        ("[::1:80:80", "invalid IP address [::1: missing ']' in address"),
        ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
        ("8000:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000"),
    ],
    ids=[
        "empty", "no-container-port", "only-proto", "word", "word-after-host", "zero", "too-big",
        "negative", "signed", "reversed-range", "open-range", "host-word", "host-too-big",
        "host-range-from-zero", "host-reversed", "bad-proto", "bad-proto-upper", "bad-ip",
        "hostname", "unclosed-bracket", "range-size-mismatch", "range-vs-single-host",
    ],
)  # fmt: skip
def test_parse_port_spec_invalid_raises_docker_message(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_port_spec(spec)
    assert str(exc.value) == message
    assert exc.value.status == 400


def test_parse_port_specs_keeps_order() -> None:
    assert parse_port_specs(["53/udp", "8080:80"]) == [
        pb(container_port=53, proto=UDP),
        pb(host_port=8080),
    ]


ports = st.integers(min_value=1, max_value=65535)
host_ips = st.one_of(st.just(""), st.ip_addresses().map(str))


@st.composite
def bindings(draw: st.DrawFn) -> PortBinding:
    host_port = draw(st.one_of(st.just(0), ports))
    end = 0
    if host_port and host_port < 65535 and draw(st.booleans()):
        end = draw(st.integers(min_value=host_port + 1, max_value=65535))
    return PortBinding(draw(host_ips), host_port, draw(ports), draw(st.sampled_from(Proto)), end)


@pytest.mark.slow
@given(bindings())
def test_format_then_parse_port_spec_round_trips(binding: PortBinding) -> None:
    assert parse_port_spec(format_port_spec(binding)) == [binding]


@given(st.text(alphabet="0123456789:-/[].abcdeftpu", max_size=30))
def test_parse_port_spec_never_raises_anything_but_invalid_argument(spec: str) -> None:
    try:
        result = parse_port_spec(spec)
    except InvalidArgument:
        return
    assert result
    assert all(1 <= b.container_port <= 65535 for b in result)


def test_format_port_spec_examples() -> None:
    assert format_port_spec(pb()) == "80/tcp"
    assert format_port_spec(pb(host_port=8080)) == "8080:80/tcp"
    assert format_port_spec(pb("127.0.0.1")) == "127.0.0.1::80/tcp"
    assert format_port_spec(pb("::1", 80, 80, UDP)) == "[::1]:80:80/udp"
    assert format_port_spec(pb(host_port=8000, end=8010)) == "8000-8010:80/tcp"


# -- the API's maps --------------------------------------------------------------------


def test_to_port_bindings_groups_by_container_port() -> None:
    got = to_port_bindings(
        [pb(host_port=8080), pb("127.0.0.1", 8081), pb(container_port=53, proto=UDP)]
    )
    assert got == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }


def test_to_port_bindings_dynamic_range() -> None:
    assert to_port_bindings([pb(host_port=8000, end=8010)]) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]
    }


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        (None, []),
        ({}, []),
        ({"80/tcp": None}, []),
        ({"80/tcp": []}, []),
        ({"80": [{"HostPort": ""}]}, [pb()]),
        ({"80/tcp": [{}]}, [pb()]),
        ({"80/tcp": [{"HostIp": None, "HostPort": None}]}, [pb()]),
        ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, [pb(host_port=8080)]),
        ({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}, [pb("127.0.0.1", 5353, 53, UDP)]),
        ({"80/tcp": [{"HostIp": "::1", "HostPort": "0"}]}, [pb("::1")]),
        ({"80/tcp": [{"HostPort": "8000-8010"}]}, [pb(host_port=8000, end=8010)]),
        ({"80/tcp": [{"HostPort": "8000-8000"}]}, [pb(host_port=8000)]),
        ({"80/tcp": [{"HostPort": "8080"}, {"HostPort": "8081"}]}, [pb(host_port=8080), pb(host_port=8081)]),
    ],
    ids=[
        "null", "empty", "null-list", "empty-list", "no-proto", "empty-entry", "null-fields",
        "host-port", "udp-ip", "ipv6-zero", "dynamic-range", "degenerate-range", "two-bindings",
    ],
)  # fmt: skip
def test_from_port_bindings_valid(api: object, expected: list[PortBinding]) -> None:
    assert from_port_bindings(api) == expected


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ([], "invalid PortBindings: expected an object"),
        ({"abc/tcp": []}, 'invalid port specification: "abc"'),
        ({"0/tcp": []}, 'invalid port specification: "0"'),
        ({"80-81/tcp": []}, 'invalid port specification: "80-81"'),
        ({"80/icmp": []}, "invalid proto: icmp"),
        ({"80/tcp": "8080"}, 'invalid port specification: "80/tcp"'),
        ({"80/tcp": ["8080"]}, 'invalid port specification: "80/tcp"'),
        ({"80/tcp": [{"HostPort": "x"}]}, 'invalid port specification: "x"'),
        ({"80/tcp": [{"HostPort": "70000"}]}, 'invalid port specification: "70000"'),
        ({"80/tcp": [{"HostPort": "0-5"}]}, 'invalid port specification: "0-5"'),
        ({"80/tcp": [{"HostIp": "bad", "HostPort": "1"}]}, "invalid IP address: bad"),
    ],
    ids=[
        "not-object", "word-key", "zero-key", "range-key", "bad-proto", "entries-not-list",
        "entry-not-object", "bad-host-port", "host-port-too-big", "range-from-zero", "bad-ip",
    ],
)  # fmt: skip
def test_from_port_bindings_invalid_raises_moby_message(api: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{re.escape(message)}$"):
        from_port_bindings(api)


@pytest.mark.slow
@given(st.lists(bindings(), max_size=6))
def test_to_then_from_port_bindings_round_trips(items: list[PortBinding]) -> None:
    assert sorted(from_port_bindings(to_port_bindings(items))) == sorted(items)


api_entries = st.dictionaries(
    st.sampled_from(["HostIp", "HostPort"]), st.text(alphabet="0123456789.:-ab", max_size=8)
)


@pytest.mark.slow
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.lists(api_entries))))
def test_from_port_bindings_never_raises_anything_but_invalid_argument(api: object) -> None:
    try:
        result = from_port_bindings(api)
    except InvalidArgument:
        return
    assert all(isinstance(b, PortBinding) for b in result)


def test_parse_port_key() -> None:
    assert parse_port_key("80/tcp") == (80, TCP)
    assert parse_port_key("53/udp") == (53, UDP)
    assert parse_port_key("443") == (443, TCP)


def test_parse_exposed_ports_sorts_and_expands_ranges() -> None:
    got = parse_exposed_ports({"443/tcp": {}, "53/udp": {}, "80": {}, "8000-8002/tcp": {}})
    assert got == [(53, UDP), (80, TCP), (443, TCP), (8000, TCP), (8001, TCP), (8002, TCP)]
    assert parse_exposed_ports(None) == []


@pytest.mark.parametrize(
    ("api", "message"),
    [
        (["80/tcp"], "invalid ExposedPorts: expected an object"),
        ({"x/tcp": {}}, 'invalid port specification: "x"'),
        ({"0/tcp": {}}, 'invalid port specification: "0"'),
        ({"80/gre": {}}, "invalid proto: gre"),
    ],
    ids=["not-object", "word", "zero", "bad-proto"],
)
def test_parse_exposed_ports_invalid(api: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{re.escape(message)}$"):
        parse_exposed_ports(api)


def test_exposed_ports_from_bindings() -> None:
    got = exposed_ports([pb(host_port=8080), pb(container_port=53, proto=UDP), pb("::1", 8081)])
    assert got == {"53/udp": {}, "80/tcp": {}}


def test_publish_all_adds_ephemeral_bindings_for_unpublished_exposed_ports() -> None:
    exposed = [(443, TCP), (80, TCP), (53, UDP)]
    got = publish_all(exposed, [pb(host_port=8080)])
    assert got == [pb(host_port=8080), pb(container_port=53, proto=UDP), pb(container_port=443)]


def test_publish_all_without_exposed_ports_keeps_bindings() -> None:
    assert publish_all([], [pb(host_port=1)]) == [pb(host_port=1)]


# -- inspect, ps, port -----------------------------------------------------------------

BOUND = [pb(host_port=8080), pb("127.0.0.1", 5353, 53, UDP), pb("::1", 9000, 9000)]
EXPOSED = [(80, TCP), (443, TCP), (53, UDP)]


def test_network_settings_ports_lists_unpublished_as_null() -> None:
    got = network_settings_ports(EXPOSED, BOUND)
    assert got == {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
        "443/tcp": None,
        "9000/tcp": [{"HostIp": "::1", "HostPort": "9000"}],
    }
    assert list(got) == ["53/udp", "80/tcp", "443/tcp", "9000/tcp"]


def test_network_settings_ports_lists_every_binding_of_a_port() -> None:
    got = network_settings_ports([], [pb(host_port=8080), pb("::1", 8081)])
    assert got == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "8081"}]
    }


def test_container_ports_published_then_exposed() -> None:
    assert container_ports(EXPOSED, BOUND) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"IP": "::1", "PrivatePort": 9000, "PublicPort": 9000, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]


def test_ps_column_of_a_published_container() -> None:
    assert displayable_ports(container_ports(EXPOSED, BOUND)) == (
        "443/tcp, [::1]:9000->9000/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp"
    )


def test_ps_column_groups_a_published_range() -> None:
    bound = parse_port_spec("8000-8100:8000-8100")
    assert displayable_ports(container_ports([], bound)) == "0.0.0.0:8000-8100->8000-8100/tcp"


def P(ip: str = "", private: int = 0, public: int = 0, kind: str = "tcp") -> dict[str, object]:
    out: dict[str, object] = {"PrivatePort": private, "Type": kind}
    if ip:
        out["IP"] = ip
    if public:
        out["PublicPort"] = public
    return out


# The expected strings are docker/cli's (cli/command/formatter/container_test.go).
@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([P(private=9988)], "9988/tcp"),
        ([P(private=9988, kind="udp")], "9988/udp"),
        ([P("0.0.0.0", 9988)], "0.0.0.0:0->9988/tcp"),
        ([P("::", 9988)], "[::]:0->9988/tcp"),
        ([P(private=9988, public=8899)], "9988/tcp"),
        ([P("4.3.2.1", 9988, 8899)], "4.3.2.1:8899->9988/tcp"),
        ([P("::1", 9988, 8899)], "[::1]:8899->9988/tcp"),
        ([P("4.3.2.1", 9988, 9988)], "4.3.2.1:9988->9988/tcp"),
        ([P("::1", 9988, 9988)], "[::1]:9988->9988/tcp"),
        ([P(private=9988, kind="udp"), P(private=9988, kind="udp")], "9988/udp, 9988/udp"),
        ([P("1.2.3.4", 9998, 9998, "udp"), P("1.2.3.4", 9999, 9999, "udp")], "1.2.3.4:9998-9999->9998-9999/udp"),
        ([P("::1", 9998, 9998, "udp"), P("::1", 9999, 9999, "udp")], "[::1]:9998-9999->9998-9999/udp"),
        ([P("1.2.3.4", 9998, 8887, "udp"), P("1.2.3.4", 9999, 8888, "udp")], "1.2.3.4:8887->9998/udp, 1.2.3.4:8888->9999/udp"),
        ([P(private=9998, kind="udp"), P(private=9999, kind="udp")], "9998-9999/udp"),
        ([P("1.2.3.4", 6677, 7766), P(private=9988, public=8899, kind="udp")], "9988/udp, 1.2.3.4:7766->6677/tcp"),
        (
            [P("1.2.3.4", 9988, 8899, "udp"), P("1.2.3.4", 9988, 8899), P("4.3.2.1", 2233, 3322), P("::1", 2233, 3322)],
            "4.3.2.1:3322->2233/tcp, [::1]:3322->2233/tcp, 1.2.3.4:8899->9988/tcp, 1.2.3.4:8899->9988/udp",
        ),
        (
            [P(private=9988, public=8899, kind="udp"), P("1.2.3.4", 6677, 7766), P("4.3.2.1", 2233, 3322)],
            "9988/udp, 4.3.2.1:3322->2233/tcp, 1.2.3.4:7766->6677/tcp",
        ),
        (
            [
                P(private=80), P(private=1024), P(private=80, kind="udp"), P(private=1024, kind="udp"),
                P("1.1.1.1", 1024, 80), P("1.1.1.1", 1024, 80, "udp"), P("1.1.1.1", 80, 1024),
                P("1.1.1.1", 80, 1024, "udp"), P("2.1.1.1", 1024, 80), P("2.1.1.1", 1024, 80, "udp"),
                P("2.1.1.1", 80, 1024), P("2.1.1.1", 80, 1024, "udp"), P(private=12345, kind="sctp"),
            ],
            "80/tcp, 80/udp, 1024/tcp, 1024/udp, 12345/sctp, 1.1.1.1:1024->80/tcp, "
            "1.1.1.1:1024->80/udp, 2.1.1.1:1024->80/tcp, 2.1.1.1:1024->80/udp, "
            "1.1.1.1:80->1024/tcp, 1.1.1.1:80->1024/udp, 2.1.1.1:80->1024/tcp, 2.1.1.1:80->1024/udp",
        ),
        ([], ""),
        ([{"IP": "not-an-ip", "PrivatePort": "7", "PublicPort": True}], "not-an-ip:0->7/tcp"),
    ],
    ids=[
        "tcp", "udp", "any-ip-no-public", "ipv6-any-no-public", "public-without-ip", "mapping",
        "ipv6-mapping", "same-port", "ipv6-same-port", "duplicates", "range", "ipv6-range",
        "two-mappings", "unpublished-range", "mixed", "sort-by-ip", "unpublished-first", "docker-big",
        "none", "odd-values",
    ],
)  # fmt: skip
def test_displayable_ports_matches_docker_cli(
    ports: list[dict[str, object]], expected: str
) -> None:
    assert displayable_ports(ports) == expected


def test_port_lines_all_and_one() -> None:
    settings = network_settings_ports(EXPOSED, BOUND)
    assert port_lines(settings) == [
        "53/udp -> 127.0.0.1:5353",
        "80/tcp -> 0.0.0.0:8080",
        "9000/tcp -> [::1]:9000",
    ]
    assert port_lines(settings, "80") == ["0.0.0.0:8080"]
    assert port_lines(settings, "80/udp") == []
    assert port_lines(settings, "443/tcp") == []


def test_port_lines_ignores_malformed_entries() -> None:
    assert port_lines({"x": [{"HostIp": "1.1.1.1", "HostPort": "1"}], "80/tcp": ["bad"]}) == [
        "x -> 1.1.1.1:1"
    ]


def test_port_lines_bad_private_port_raises() -> None:
    with pytest.raises(InvalidArgument):
        port_lines({}, "http")


def test_port_binding_key_and_shown_ip() -> None:
    assert pb(container_port=53, proto=UDP).key == "53/udp"
    assert pb().shown_ip == "0.0.0.0"
    assert pb("127.0.0.1").shown_ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("host_ip", "expected"),
    [("", False), ("127.0.0.1", False), ("::", True), ("::1", True), ("bogus", False)],
)
def test_is_ipv6(host_ip: str, expected: bool) -> None:
    assert is_ipv6(host_ip) is expected
