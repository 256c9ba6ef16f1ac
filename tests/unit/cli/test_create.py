"""``build_create_body``: run/create flags to the POST /containers/create body."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.argspec import Parsed, parse_argv
from cli.create import build_create_body
from cli.units import InvalidArgument

ENV_FILES = {"app.env": b"# settings\nFROM_FILE=1\nHOME\n"}


def parsed(*argv: str) -> Parsed:
    result = parse_argv(list(argv))
    assert result is not None, argv
    return result


def body(*argv: str) -> dict[str, object]:
    def read_file(path: str) -> bytes:
        return ENV_FILES[path]

    return build_create_body(parsed(*argv), environ={"HOME": "/root"}, read_file=read_file)


def test_minimal_foreground_run_body_is_dockers() -> None:
    assert body("run", "busybox") == {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": [],
        "Cmd": None,
        "Image": "busybox",
        "WorkingDir": "",
        "Entrypoint": None,
        "Labels": {},
        "Volumes": {},
        "HostConfig": {
            "AutoRemove": False,
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
            "Memory": 0,
            "MemorySwap": 0,
            "NanoCpus": 0,
            "CpuShares": 0,
            "PidsLimit": None,
            "Init": None,
            "Privileged": False,
            "CapAdd": None,
            "CapDrop": None,
            "SecurityOpt": None,
            "Ulimits": None,
            "Sysctls": None,
            "ShmSize": 0,
            "OomScoreAdj": 0,
            "PidMode": "",
            "IpcMode": "",
            "UTSMode": "",
            "GroupAdd": None,
            "Devices": [],
            "CpusetCpus": "",
            "CpusetMems": "",
            "MemoryReservation": 0,
            "NetworkMode": "default",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "Binds": None,
            "VolumesFrom": None,
            "ReadonlyRootfs": False,
            "ExtraHosts": None,
            "Dns": [],
            "DnsSearch": [],
            "DnsOptions": [],
            "PortBindings": {},
            "PublishAllPorts": False,
        },
        "NetworkingConfig": {
            "EndpointsConfig": {
                "default": {
                    "IPAMConfig": None,
                    "Links": None,
                    "Aliases": None,
                    "MacAddress": "",
                    "DriverOpts": None,
                }
            }
        },
    }


def test_every_flag_lands_where_docker_puts_it() -> None:
    result = body(
        "run", "-d", "--rm", "--name", "web",
        "--env-file", "app.env", "-e", "A=1", "-e", "HOME",
        "-w", "/srv", "-u", "1000:1000", "--entrypoint", "/bin/sh",
        "-m", "64m", "--memory-swap", "-1", "--cpus", "0.5", "--cpu-shares", "512",
        "--pids-limit", "100", "--init", "-l", "team=infra", "-l", "tier",
        "--stop-timeout", "5", "--stop-signal", "SIGINT", "-h", "box", "--network", "none",
        "--log-opt", "max-size=10m", "-i", "-t",
        "busybox", "-c", "echo hi",
    )  # fmt: skip
    host = result["HostConfig"]
    assert isinstance(host, dict)
    assert result["Cmd"] == ["-c", "echo hi"]
    assert result["Entrypoint"] == ["/bin/sh"]
    assert result["Env"] == ["FROM_FILE=1", "HOME=/root", "A=1", "HOME=/root"]
    assert result["WorkingDir"] == "/srv"
    assert result["User"] == "1000:1000"
    assert result["Labels"] == {"team": "infra", "tier": ""}
    assert result["StopTimeout"] == 5
    assert result["StopSignal"] == "SIGINT"
    assert result["Hostname"] == "box"
    assert (result["Tty"], result["OpenStdin"]) == (True, True)
    # detached: nothing is attached
    assert (result["AttachStdin"], result["AttachStdout"], result["AttachStderr"]) == (
        False,
        False,
        False,
    )
    assert result["StdinOnce"] is False
    assert host["AutoRemove"] is True
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["MemorySwap"] == -1
    assert host["NanoCpus"] == 500_000_000
    assert host["CpuShares"] == 512
    assert host["PidsLimit"] == 100
    assert host["Init"] is True
    assert host["NetworkMode"] == "none"
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}


def test_entrypoint_empty_string_resets_to_list_with_empty_string() -> None:
    assert body("run", "--entrypoint", "", "busybox")["Entrypoint"] == [""]
    assert body("run", "--entrypoint=", "busybox")["Entrypoint"] == [""]


def test_interactive_foreground_attaches_stdin_once() -> None:
    result = body("run", "-i", "busybox", "cat")
    assert (result["AttachStdin"], result["OpenStdin"], result["StdinOnce"]) == (True, True, True)


def test_restart_policy_with_berth_backoff_in_nanoseconds() -> None:
    host = body(
        "run",
        "--restart",
        "on-failure:3",
        "--restart-delay",
        "500ms",
        "--restart-max-delay",
        "1m",
        "busybox",
    )["HostConfig"]
    assert isinstance(host, dict)
    assert host["RestartPolicy"] == {
        "Name": "on-failure",
        "MaximumRetryCount": 3,
        "Delay": 500_000_000,
        "MaxDelay": 60_000_000_000,
    }


def test_create_has_no_detach_and_attaches_output() -> None:
    result = body("create", "--name", "x", "busybox", "true")
    assert result["AttachStdout"] is True
    assert result["Cmd"] == ["true"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-m", "lots"], 'invalid argument "lots" for "-m, --memory" flag: invalid size: \'lots\''),
        (
            ["--cpus", "x"],
            'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number',
        ),
        (["--restart", "sometimes"], "invalid restart policy: unknown policy 'sometimes'"),
        (
            ["--restart-delay", "5"],
            'for "--restart-delay" flag: time: missing unit in duration "5"',
        ),
        (["--restart-delay", "-5s"], "must not be negative"),
        (
            ["--rm", "--restart", "always"],
            "conflicting options: cannot specify both --restart and --rm",
        ),
        (["-l", "=x"], "invalid label '=x': empty name"),
        (["-e", "=x"], "invalid environment variable: =x"),
    ],
)
def test_invalid_flags_raise_invalid_argument(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        body("run", *argv, "busybox")


# --- networking and storage: expectations recorded from docker 28.2.2 against a fake daemon


def test_network_port_dns_and_storage_flags_land_where_docker_puts_them() -> None:
    def read_file(path: str) -> bytes:
        raise AssertionError(path)

    argv = [
        "create",
        "-p", "8080:80", "-p", "127.0.0.1::53/udp", "-p", "9000-9001:90-91",
        "-p", "published=7000,target=70", "-P",
        "--expose", "100-101", "--expose", "5/udp",
        "--network-alias", "a", "--network", "net1", "--ip", "10.0.0.5",
        "--add-host", "h:1.2.3.4", "--add-host", "h6=[::1]",
        "--dns", "8.8.8.8", "--dns", "::0001", "--dns-search", "example.com",
        "--dns-option", "ndots:2", "-h", "host", "--domainname", "dom",
        "-v", "/data", "-v", "vol:/x:ro", "-v", "./rel:/y", "-v", "/a:/b:rshared,nocopy",
        "--mount", "type=bind,src=./m,dst=/m,ro,bind-propagation=rslave",
        "--mount",
        "type=volume,source=v,target=/v,volume-nocopy,volume-label=a=b,"
        "volume-driver=local,volume-opt=o=1",
        "--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770",
        "--tmpfs", "/run:rw,size=1m", "--tmpfs", "/tmp",
        "--volumes-from", "c1", "--volumes-from", "c2:ro", "--read-only",
        "busybox",
    ]  # fmt: skip
    result = build_create_body(parsed(*argv), environ={}, read_file=read_file, cwd="/tmp/oracle")
    host = result["HostConfig"]
    assert isinstance(host, dict)
    assert (result["Hostname"], result["Domainname"]) == ("host", "dom")
    assert result["ExposedPorts"] == {
        k: {}
        for k in ("100/tcp", "101/tcp", "5/udp", "53/udp", "70/tcp", "80/tcp", "90/tcp", "91/tcp")
    }
    assert result["Volumes"] == {"/data": {}}
    assert "MacAddress" not in result
    assert host["PortBindings"] == {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "70/tcp": [{"HostIp": "", "HostPort": "7000"}],
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "90/tcp": [{"HostIp": "", "HostPort": "9000"}],
        "91/tcp": [{"HostIp": "", "HostPort": "9001"}],
    }
    assert host["PublishAllPorts"] is True
    assert host["Binds"] == ["vol:/x:ro", "/tmp/oracle/rel:/y", "/a:/b:rshared,nocopy"]
    assert host["Dns"] == ["8.8.8.8", "::1"]
    assert host["DnsSearch"] == ["example.com"]
    assert host["DnsOptions"] == ["ndots:2"]
    assert host["ExtraHosts"] == ["h:1.2.3.4", "h6:::1"]
    assert host["Mounts"] == [
        {
            "Type": "bind",
            "Source": "/tmp/oracle/m",
            "Target": "/m",
            "ReadOnly": True,
            "BindOptions": {"Propagation": "rslave"},
        },
        {
            "Type": "volume",
            "Source": "v",
            "Target": "/v",
            "VolumeOptions": {
                "Labels": {"a": "b"},
                "DriverConfig": {"Name": "local", "Options": {"o": "1"}},
                "NoCopy": True,
            },
        },
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 0o1770}},
    ]
    assert host["NetworkMode"] == "net1"
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/run": "rw,size=1m", "/tmp": ""}
    assert host["VolumesFrom"] == ["c1", "c2:ro"]
    assert result["NetworkingConfig"] == {
        "EndpointsConfig": {
            "net1": {
                "IPAMConfig": {"IPv4Address": "10.0.0.5"},
                "Links": None,
                "Aliases": ["a"],
                "MacAddress": "",
                "DriverOpts": None,
            }
        }
    }


@pytest.mark.parametrize(
    ("argv", "mode", "endpoints"),
    [
        (["--network", "host"], "host", {}),
        (["--net", "none"], "none", {}),
        (["--network", "container:web"], "container:web", {}),
        (["--network", "appnet"], "appnet", {}),
        (
            ["--network", "name=appnet,alias=Web,ip=10.1.0.9"],
            "appnet",
            {
                "appnet": {
                    "IPAMConfig": {"IPv4Address": "10.1.0.9"},
                    "Links": None,
                    "Aliases": ["web"],  # docker lowercases long-syntax values
                    "MacAddress": "",
                    "DriverOpts": None,
                }
            },
        ),
        (
            ["--network", "a", "--network", "b"],
            "a",
            {
                name: {
                    "IPAMConfig": None,
                    "Links": None,
                    "Aliases": None,
                    "MacAddress": "",
                    "DriverOpts": None,
                }
                for name in ("a", "b")
            },
        ),
    ],
    ids=["host", "net-none", "container", "user-defined", "long-syntax", "two-networks"],
)
def test_network_mode_and_endpoints(
    argv: list[str], mode: str, endpoints: dict[str, object]
) -> None:
    result = body("run", *argv, "busybox")
    host = result["HostConfig"]
    assert isinstance(host, dict)
    assert host["NetworkMode"] == mode
    assert result["NetworkingConfig"] == {"EndpointsConfig": endpoints}


def test_mac_address_goes_to_the_endpoint_and_the_container_config() -> None:
    result = body("run", "--network", "appnet", "--mac-address", "02:42:ac:11:00:02", "busybox")
    assert result["MacAddress"] == "02:42:ac:11:00:02"
    config = result["NetworkingConfig"]
    assert isinstance(config, dict)
    assert config["EndpointsConfig"]["appnet"]["MacAddress"] == "02:42:ac:11:00:02"


def test_no_storage_flags_send_docker_defaults() -> None:
    result = body("run", "busybox")
    host = result["HostConfig"]
    assert isinstance(host, dict)
    assert "Mounts" not in host
    assert "Tmpfs" not in host
    assert "ExposedPorts" not in result


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "x"], "invalid containerPort: x"),
        (["-p", "80:x"], "invalid containerPort: x"),
        (["-p", "1.2.3:80:80"], "invalid IP address: 1.2.3"),
        (["-p", "80/xyz"], "invalid proto: xyz"),
        (["-p", "70000"], "invalid containerPort: 70000"),
        (
            ["-p", "published=8080,target"],
            "invalid publish opts format (should be name=value but got 'target')",
        ),
        (["--expose", "80:90"], "invalid port format for --expose: 80:90"),
        (
            ["--expose", "x"],
            'invalid range format for --expose: x, error: strconv.ParseUint: parsing "x": '
            "invalid syntax",
        ),
        (
            ["--mount", "type=foo"],
            'invalid argument "type=foo" for "--mount" flag: target is required',
        ),
        (
            ["--mount", "type=bind,source=/x,target=/a,bogus=1"],
            'invalid argument "type=bind,source=/x,target=/a,bogus=1" for "--mount" flag: '
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            ["--mount", 'a"b,dst=/x'],
            'invalid argument "a\\"b,dst=/x" for "--mount" flag: '
            'parse error on line 1, column 2: bare " in non-quoted-field',
        ),
        (["-v", ":/a"], "invalid spec: :/a: empty section between colons"),
        (
            ["--add-host", "foo"],
            'invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"',
        ),
        (
            ["--add-host", "foo:bar"],
            'invalid argument "foo:bar" for "--add-host" flag: invalid IP address in add-host: "bar"',
        ),
        (
            ["--dns", "x"],
            'invalid argument "x" for "--dns" flag: IP address is not correctly formatted: x',
        ),
        (
            ["--dns-search", "-x-"],
            'invalid argument "-x-" for "--dns-search" flag: -x- is not a valid domain',
        ),
        (["--mac-address", "zz"], "zz is not a valid mac address"),
        (
            ["--network-alias", "x"],
            "network-scoped aliases are only supported for user-defined networks",
        ),
        (
            ["--network", "host", "--network", "appnet"],
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
        ),
        (["--network", "a", "--network", "a"], 'network "a" is specified multiple times'),
        (
            ["--network", "name=x,alias=a,ip=1.2.3.4,bogus=1"],
            "invalid field key bogus",
        ),
        (["--network", "alias=a"], "network name/id is not specified"),
        (["--network", ""], "no name set for network"),
    ],
)
def test_invalid_network_and_storage_flags(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        body("run", *argv, "busybox")
    assert str(info.value) == message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789:/.-[]abtcpud=,x ", max_size=24), max_size=3))
def test_publish_values_fail_only_with_invalid_argument(values: list[str]) -> None:
    command = parsed("run", "busybox")
    command.opts["publish"] = values
    try:
        result = build_create_body(command, environ={}, read_file=bytes.fromhex)
    except InvalidArgument:
        return
    host = result["HostConfig"]
    assert isinstance(host, dict)
    bindings = host["PortBindings"]
    assert isinstance(bindings, dict)
    exposed = result.get("ExposedPorts", {})
    assert isinstance(exposed, dict)
    assert set(bindings) == set(exposed)  # docker exposes every port it publishes


# --- health checks: bodies recorded from docker 28.2.2 against a fake daemon


def test_health_flags_land_where_docker_puts_them() -> None:
    result = body(
        "run", "--health-cmd", "wget -q localhost", "--health-interval", "1s",
        "--health-timeout", "500ms", "--health-retries", "2", "--health-start-period", "3s",
        "--health-start-interval", "100ms", "busybox",
    )  # fmt: skip
    assert result["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost"],
        "Interval": 1_000_000_000,
        "Timeout": 500_000_000,
        "StartPeriod": 3_000_000_000,
        "StartInterval": 100_000_000,
        "Retries": 2,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--health-cmd", ""], None),
        (["--health-interval", "0s"], None),
        (["--no-healthcheck"], {"Test": ["NONE"]}),
        (["--no-healthcheck", "--health-interval", "0s"], {"Test": ["NONE"]}),
        (["--health-interval", "2s"], {"Interval": 2_000_000_000}),
        (["--health-retries", "4"], {"Retries": 4}),
    ],
    ids=[
        "none",
        "empty-cmd",
        "zero-interval",
        "no-healthcheck",
        "no-healthcheck-with-zero",
        "interval-only-keeps-image-test",
        "retries-only",
    ],
)
def test_health_flags_send_only_what_is_set(argv: list[str], expected: object) -> None:
    assert body("create", *argv, "busybox").get("Healthcheck") == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--no-healthcheck", "--health-retries", "1"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            ["--no-healthcheck", "--health-cmd", "true"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            ["--no-healthcheck", "--health-interval=-1s"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (["--health-interval=-1s"], "--health-interval cannot be negative"),
        (["--health-timeout=-1s"], "--health-timeout cannot be negative"),
        (["--health-retries=-1"], "--health-retries cannot be negative"),
        (["--health-start-period=-1s"], "--health-start-period cannot be negative"),
        (["--health-start-interval=-1s"], "--health-start-interval cannot be negative"),
        (
            ["--health-interval=-1s", "--health-retries=-1"],
            "--health-interval cannot be negative",
        ),
        (
            ["--health-interval", "abc"],
            'invalid argument "abc" for "--health-interval" flag: time: invalid duration "abc"',
        ),
    ],
    ids=[
        "conflict-retries",
        "conflict-cmd",
        "conflict-before-negative",
        "negative-interval",
        "negative-timeout",
        "negative-retries",
        "negative-start-period",
        "negative-start-interval",
        "docker-order",
        "bad-duration",
    ],
)
def test_invalid_health_flags_as_docker(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        body("run", *argv, "busybox")
    assert str(info.value) == message


def test_health_on_failure_goes_to_host_config() -> None:
    host = body("run", "--health-cmd", "true", "--health-on-failure", "restart", "busybox")[
        "HostConfig"
    ]
    assert isinstance(host, dict)
    assert host["HealthOnFailure"] == "restart"
    plain = body("run", "busybox")["HostConfig"]
    assert isinstance(plain, dict)
    assert "HealthOnFailure" not in plain
