"""Network commands, ``port`` and ``inspect``'s fallback against a fake Engine API.

Every command runs in-process through ``cli.main.main``; the fake records
what the CLI sent.  The request bodies were compared with what the docker
28.2.2 CLI sends for the same command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.cli.fakeengine import FakeEngine, serve
from tests.unit.cli.test_image_commands import stdin_from

NET_ID = "7d3c0f4e5b2a" + "1" * 52
OTHER_ID = "0a1b2c3d4e5f" + "2" * 52


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield from serve()


def run(engine: FakeEngine, *argv: str) -> int:
    return main(["-H", engine.host, *argv])


# --- create -----------------------------------------------------------------------------


def test_network_create_minimal_body_and_id(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/networks/create", status=201, json={"Id": NET_ID, "Warning": ""})
    assert run(engine, "network", "create", "n1") == 0
    assert capfd.readouterr().out == NET_ID + "\n"
    request = engine.only()
    assert (request.method, request.path) == ("POST", "/networks/create")
    assert request.json() == {
        "Name": "n1",
        "CheckDuplicate": True,
        "Driver": "bridge",
        "Scope": "",
        "IPAM": {"Driver": "default", "Config": [], "Options": {}},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": {},
        "Labels": {},
    }


def test_network_create_every_flag(engine: FakeEngine) -> None:
    engine.on("POST", "/networks/create", status=201, json={"Id": NET_ID})
    argv = [
        "network", "create", "-d", "bridge", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.1",
        "--ip-range", "10.9.0.128/25", "--internal", "--label", "a=b", "--label", "c",
        "-o", "com.docker.network.bridge.name=br9", "-o", "x", "--attachable", "n2",
    ]  # fmt: skip
    assert run(engine, *argv) == 0
    assert engine.only().json() == {
        "Name": "n2",
        "CheckDuplicate": True,
        "Driver": "bridge",
        "Scope": "",
        "IPAM": {
            "Driver": "default",
            "Config": [
                {"Subnet": "10.9.0.0/24", "IPRange": "10.9.0.128/25", "Gateway": "10.9.0.1"}
            ],
            "Options": {},
        },
        "Internal": True,
        "Attachable": True,
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": {"com.docker.network.bridge.name": "br9", "x": ""},
        "Labels": {"a": "b", "c": ""},
    }


def test_network_create_comma_separated_subnets(engine: FakeEngine) -> None:
    engine.on("POST", "/networks/create", status=201, json={"Id": NET_ID})
    argv = ["network", "create", "--subnet", "10.0.0.0/8,192.168.0.0/16"]
    assert run(engine, *argv, "--gateway", "10.0.0.1,192.168.0.1", "n") == 0
    body = engine.only().json()
    assert isinstance(body, dict)
    assert body["IPAM"]["Config"] == [
        {"Subnet": "10.0.0.0/8", "Gateway": "10.0.0.1"},
        {"Subnet": "192.168.0.0/16", "Gateway": "192.168.0.1"},
    ]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["--subnet", "10.0.0.0/8", "--gateway", "11.0.0.1"],
            1,
            "no matching subnet for gateway 11.0.0.1",
        ),
        (
            ["--label", "a b=c"],
            2,
            'berth: invalid argument "a b=c" for "--label" flag: label \'a b\' contains '
            "whitespaces. See 'berth network create --help'.",
        ),
        (
            ["--label", "=c"],
            2,
            'berth: invalid argument "=c" for "--label" flag: invalid label \'=c\': empty name. '
            "See 'berth network create --help'.",
        ),
    ],
)
def test_network_create_bad_flags_send_nothing(
    engine: FakeEngine,
    capfd: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    assert run(engine, "network", "create", *argv, "n") == code
    assert capfd.readouterr().err == message + "\n"
    assert engine.requests == []


def test_network_create_daemon_error(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on(
        "POST",
        "/networks/create",
        status=409,
        json={"message": "network with name n1 already exists"},
    )
    assert run(engine, "network", "create", "n1") == 1
    assert (
        capfd.readouterr().err
        == "Error response from daemon: network with name n1 already exists\n"
    )


# --- ls ----------------------------------------------------------------------------------

NETWORKS = [
    {
        "Name": "net10",
        "Id": NET_ID,
        "Created": "2024-05-01T10:00:00.123456789Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": False,
        "Internal": True,
        "Labels": {"b": "2", "a": "1"},
    },
    {
        "Name": "net9",
        "Id": OTHER_ID,
        "Created": "2024-05-01T10:00:00Z",
        "Scope": "local",
        "Driver": "bridge",
    },
    {"Name": "bridge", "Id": "f" * 64, "Scope": "local", "Driver": "bridge", "Labels": {}},
    {"Name": "host", "Id": "e" * 64, "Scope": "local", "Driver": "host", "Labels": None},
]


def test_network_ls_table_in_natural_order(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks", json=NETWORKS)
    assert run(engine, "network", "ls") == 0
    assert capfd.readouterr().out == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "ffffffffffff   bridge    bridge    local\n"
        "eeeeeeeeeeee   host      host      local\n"
        "0a1b2c3d4e5f   net9      bridge    local\n"
        "7d3c0f4e5b2a   net10     bridge    local\n"
    )
    assert engine.only().query == {}


def test_network_ls_quiet_filters_and_no_trunc(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks", json=NETWORKS[:2])
    assert run(engine, "network", "list", "-q", "-f", "driver=bridge", "--filter", "name=net") == 0
    assert capfd.readouterr().out == "0a1b2c3d4e5f\n7d3c0f4e5b2a\n"
    assert json.loads(engine.only().query["filters"][0]) == {"driver": ["bridge"], "name": ["net"]}
    assert run(engine, "network", "ls", "-q", "--no-trunc") == 0
    assert capfd.readouterr().out == f"{OTHER_ID}\n{NET_ID}\n"


def test_network_ls_templates_and_json(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks", json=NETWORKS[:1])
    fmt = '{{.Name}} {{.Internal}} {{.IPv6}} {{.Labels}} {{.Label "b"}} {{.CreatedAt}}'
    assert run(engine, "network", "ls", "--format", fmt) == 0
    assert capfd.readouterr().out == (
        "net10 true false a=1,b=2 2 2024-05-01 10:00:00.123456789 +0000 UTC\n"
    )
    assert run(engine, "network", "ls", "--format", "json") == 0
    assert json.loads(capfd.readouterr().out) == {
        "CreatedAt": "2024-05-01 10:00:00.123456789 +0000 UTC",
        "Driver": "bridge",
        "ID": NET_ID[:12],
        "IPv4": "false",
        "IPv6": "false",
        "Internal": "true",
        "Labels": "a=1,b=2",
        "Name": "net10",
        "Scope": "local",
    }
    assert run(engine, "network", "ls", "--format", "table {{.Name}}\t{{.Internal}}") == 0
    assert capfd.readouterr().out == "NAME      INTERNAL\nnet10     true\n"


def test_network_ls_bad_template_asks_nothing(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run(engine, "network", "ls", "--format", "{{.Name") == 1
    assert capfd.readouterr().err.startswith("template parsing error:")
    assert engine.requests == []


# --- inspect -------------------------------------------------------------------------------


def test_network_inspect_json_then_errors(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks/n1", json={"Name": "n1", "Id": NET_ID})
    engine.on("GET", "/networks/nope", status=404, json={"message": "network nope not found"})
    assert run(engine, "network", "inspect", "n1", "nope") == 1
    out, err = capfd.readouterr()
    assert out == f'[\n    {{\n        "Name": "n1",\n        "Id": "{NET_ID}"\n    }}\n]\n'
    assert err == "Error response from daemon: network nope not found\n"


def test_network_inspect_format_and_verbose(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks/n1", json={"Name": "n1", "Driver": "bridge"})
    assert run(engine, "network", "inspect", "-f", "{{.Name}}/{{.Driver}}", "-v", "n1") == 0
    assert capfd.readouterr().out == "n1/bridge\n"
    assert engine.only().query == {"verbose": ["true"]}


# --- rm / prune ----------------------------------------------------------------------------


def test_network_rm_reports_each(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("DELETE", "/networks/a", status=204)
    engine.on(
        "DELETE",
        "/networks/busy",
        status=403,
        json={"message": "error while removing network: network busy id x has active endpoints"},
    )
    engine.on("DELETE", "/networks/gone", status=404, json={"message": "network gone not found"})
    assert run(engine, "network", "rm", "a", "busy", "gone") == 1
    assert capfd.readouterr() == (
        "a\n",
        "Error response from daemon: error while removing network: network busy id x has "
        "active endpoints\nError response from daemon: network gone not found\n",
    )
    assert run(engine, "network", "remove", "-f", "gone", "a") == 0
    assert capfd.readouterr() == ("a\n", "")


def test_network_prune_forced(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("POST", "/networks/prune", json={"NetworksDeleted": ["n1", "n2"]})
    assert run(engine, "network", "prune", "-f", "--filter", "until=1h", "--filter", "label=a") == 0
    assert capfd.readouterr().out == "Deleted Networks:\nn1\nn2\n\n"
    request = engine.only()
    assert json.loads(request.query["filters"][0]) == {"until": ["1h"], "label": ["a"]}
    engine.on("POST", "/networks/prune", json={"NetworksDeleted": None})
    assert run(engine, "network", "prune", "--force") == 0
    assert capfd.readouterr().out == ""
    assert engine.requests[1].query == {}


def test_network_prune_asks_first(
    engine: FakeEngine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    warning = (
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue? [y/N] "
    )
    with stdin_from(tmp_path, b"n\n"):
        assert run(engine, "network", "prune") == 0
    assert capfd.readouterr() == (warning, "")
    assert engine.requests == []
    engine.on("POST", "/networks/prune", json={"NetworksDeleted": ["n1"]})
    with stdin_from(tmp_path, b"y\n"):
        assert run(engine, "network", "prune") == 0
    assert capfd.readouterr().out == warning + "Deleted Networks:\nn1\n\n"


# --- connect / disconnect ---------------------------------------------------------------


def test_network_connect_bodies(engine: FakeEngine) -> None:
    engine.on("POST", "/networks/n/connect", status=200)
    argv = ["network", "connect", "--ip", "10.9.0.5", "--alias", "x", "--alias", "y,z", "n", "c"]
    assert run(engine, *argv) == 0
    assert run(engine, "network", "connect", "--driver-opt", "k=v", "n", "c") == 0
    first, second = (r.json() for r in engine.requests)
    assert first == {
        "Container": "c",
        "EndpointConfig": {
            "IPAMConfig": {"IPv4Address": "10.9.0.5"},
            "Links": None,
            "Aliases": ["x", "y", "z"],
            "MacAddress": "",
            "DriverOpts": {},
        },
    }
    assert second == {
        "Container": "c",
        "EndpointConfig": {
            "IPAMConfig": {},
            "Links": None,
            "Aliases": [],
            "MacAddress": "",
            "DriverOpts": {"k": "v"},
        },
    }


def test_network_connect_error(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("POST", "/networks/n/connect", status=404, json={"message": "No such container: c"})
    assert run(engine, "network", "connect", "n", "c") == 1
    assert capfd.readouterr() == ("", "Error response from daemon: No such container: c\n")


def test_network_disconnect_body(engine: FakeEngine) -> None:
    engine.on("POST", "/networks/n/disconnect", status=200)
    assert run(engine, "network", "disconnect", "-f", "n", "c") == 0
    assert run(engine, "network", "disconnect", "n", "c") == 0
    assert [r.json() for r in engine.requests] == [
        {"Container": "c", "Force": True},
        {"Container": "c", "Force": False},
    ]


# --- port --------------------------------------------------------------------------------

PORTS = {
    "NetworkSettings": {
        "Ports": {
            "80/tcp": [
                {"HostIp": "0.0.0.0", "HostPort": "8080"},
                {"HostIp": "::", "HostPort": "8080"},
            ],
            "443/tcp": None,
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "9/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
        }
    }
}


def test_port_lists_every_mapping_in_natural_order(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/containers/web/json", json=PORTS)
    assert run(engine, "port", "web") == 0
    assert capfd.readouterr().out == (
        "9/tcp -> 0.0.0.0:32768\n"
        "53/udp -> 127.0.0.1:5353\n"
        "80/tcp -> 0.0.0.0:8080\n"
        "80/tcp -> [::]:8080\n"
    )


def test_port_one_private_port(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/containers/web/json", json=PORTS)
    assert run(engine, "port", "web", "80") == 0
    assert capfd.readouterr().out == "0.0.0.0:8080\n[::]:8080\n"
    assert run(engine, "container", "port", "web", "53/udp") == 0
    assert capfd.readouterr().out == "127.0.0.1:5353\n"


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("443", "Error: No public port '443' published for web"),
        ("53", "Error: No public port '53' published for web"),
        ("80/TCP", "Error: No public port '80/TCP' published for web"),
        ("x", 'Error: invalid port (x): strconv.ParseUint: parsing "x": invalid syntax'),
        (
            "70000/tcp",
            'Error: invalid port (70000): strconv.ParseUint: parsing "70000": value out of range',
        ),
    ],
)
def test_port_errors(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str], port: str, message: str
) -> None:
    engine.on("GET", "/containers/web/json", json=PORTS)
    assert run(engine, "port", "web", port) == 1
    assert capfd.readouterr() == ("", message + "\n")


def test_port_without_mappings_prints_nothing(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/containers/web/json", json={"NetworkSettings": {"Ports": {}}})
    assert run(engine, "port", "web") == 0
    assert capfd.readouterr() == ("", "")


# --- inspect falls back: container, image, network, volume ------------------------------


def test_inspect_falls_back_to_networks_and_volumes(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks/n1", json={"Name": "n1"})
    engine.on("GET", "/volumes/v1", json={"Name": "v1", "Driver": "local"})
    assert run(engine, "inspect", "-f", "{{.Name}}", "n1", "v1", "nope") == 1
    assert capfd.readouterr() == ("n1\nv1\n", "Error: No such object: nope\n")
    paths = [r.path for r in engine.requests]
    assert paths[:4] == [
        "/containers/n1/json",
        "/images/n1/json",
        "/networks/n1",
        "/containers/v1/json",
    ]
    assert paths[-4:] == [
        "/containers/nope/json",
        "/images/nope/json",
        "/networks/nope",
        "/volumes/nope",
    ]


def test_inspect_type_network_and_volume(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks/x", json={"Name": "x", "Driver": "bridge"})
    engine.on("GET", "/volumes/x", json={"Name": "x", "Driver": "local"})
    assert run(engine, "inspect", "--type", "network", "-f", "{{.Driver}}", "x") == 0
    assert run(engine, "inspect", "--type=volume", "-f", "{{.Driver}}", "x") == 0
    assert capfd.readouterr().out == "bridge\nlocal\n"
    assert [r.path for r in engine.requests] == ["/networks/x", "/volumes/x"]
    assert run(engine, "inspect", "--type", "volume", "y") == 1
    assert capfd.readouterr() == ("[]\n", "Error: No such volume: y\n")


def test_inspect_size_warns_for_networks(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/networks/n1", json={"Name": "n1"})
    assert run(engine, "inspect", "-s", "-f", "{{.Name}}", "n1") == 0
    assert capfd.readouterr() == ("n1\n", "WARNING: --size ignored for network\n")


def test_inspect_unknown_type(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    assert run(engine, "inspect", "--type", "node", "x") == 1
    assert capfd.readouterr().err == (
        'unknown type: "node": must be one of "container", "image", "network", "volume"\n'
    )
