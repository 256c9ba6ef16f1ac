"""supervisor.network.views: network JSON and the list/prune filters."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.model import Endpoint, Network
from supervisor.network import views

BRIDGE = Network(
    id="b" * 64, name="bridge", driver="bridge", created_ns=1, bridge="berth0",
    subnet="10.213.0.0/20", gateway="10.213.0.1", builtin=True,
)  # fmt: skip
APP = Network(
    id="a" * 64, name="appnet", driver="bridge", created_ns=2_000_000_000, bridge="berth-aaa",
    subnet="10.99.0.0/24", gateway="10.99.0.1", labels={"team": "a"},
)  # fmt: skip
HOST = Network(id="c" * 64, name="host", driver="host", created_ns=1, builtin=True)


def test_network_json_lists_running_endpoints() -> None:
    running = Endpoint("1" * 64, APP.id, "e" * 64, 0, ("web",), "", "", "10.99.0.2")
    stopped = Endpoint("2" * 64, APP.id, "f" * 64, 0)
    out = views.network_json(APP, [(running, "web"), (stopped, "idle")])
    assert out["IPAM"] == {
        "Driver": "default",
        "Options": {},
        "Config": [{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"}],
    }
    assert out["Containers"] == {
        "1" * 64: {
            "Name": "web",
            "EndpointID": "e" * 64,
            "MacAddress": "02:42:0a:63:00:02",
            "IPv4Address": "10.99.0.2/24",
            "IPv6Address": "",
        }
    }
    assert out["Labels"] == {"team": "a"} and out["Scope"] == "local"
    assert views.network_json(HOST, [])["IPAM"]["Config"] == []


def test_endpoint_settings_of_a_stopped_container_has_no_address() -> None:
    e = Endpoint("1" * 64, APP.id, "e" * 64, 0, ("web",), "10.99.0.9")
    out = views.endpoint_settings(APP, e)
    assert out["IPAddress"] == "" and out["EndpointID"] == "" and out["Gateway"] == ""
    assert out["Aliases"] == ["web"] and out["IPAMConfig"] == {"IPv4Address": "10.99.0.9"}
    running = views.endpoint_settings(APP, Endpoint("1" * 64, APP.id, "e" * 64, 0, ip="10.99.0.3"))
    assert running["IPPrefixLen"] == 24 and running["Gateway"] == "10.99.0.1"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["bridge", "appnet", "host"]),
        ({"driver": ["bridge"]}, ["bridge", "appnet"]),
        ({"type": ["custom"]}, ["appnet"]),
        ({"type": ["builtin"]}, ["bridge", "host"]),
        ({"name": ["^app"]}, ["appnet"]),
        ({"id": ["aaaa"]}, ["appnet"]),
        ({"label": ["team=a"]}, ["appnet"]),
        ({"label!": ["team"]}, ["bridge", "host"]),
        ({"dangling": ["true"]}, ["appnet"]),
        ({"dangling": ["false"]}, ["bridge", "host"]),
        ({"scope": ["swarm"]}, []),
    ],
)
def test_list_filters(filters: dict[str, list[str]], expected: list[str]) -> None:
    match = views.matcher(filters, in_use=lambda n: n.builtin)
    assert [n.name for n in (BRIDGE, APP, HOST) if match(n)] == expected


@pytest.mark.parametrize(
    "filters", [{"color": ["red"]}, {"type": ["weird"]}, {"dangling": ["maybe"]}]
)
def test_bad_filters_are_400(filters: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidArgument):
        views.matcher(filters, in_use=lambda n: False)


def test_prune_filters() -> None:
    keep = views.prune_matcher({"until": ["x"]}, parse_until=lambda v: 1_000_000_000)
    assert not keep(APP)  # created after "until"
    keep = views.prune_matcher({"label": ["team=a"]}, parse_until=lambda v: None)
    assert keep(APP) and not keep(BRIDGE)
    with pytest.raises(InvalidArgument):
        views.prune_matcher({"driver": ["bridge"]}, parse_until=lambda v: None)
