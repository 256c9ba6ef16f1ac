"""Tests for supervisor.containers.config: ``POST /containers/create`` validation and moby's
``merge`` of the container config with the image config.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from supervisor.containers.config import (
    MIN_MEMORY,
    CreateResult,
    parse_create,
    parse_host_config,
    parse_size,
    resources_of,
)
from supervisor.errors import InvalidArgument
from supervisor.runtime.spec import DEFAULT_PATH, Resources

CID = "0123456789ab" + "c" * 52
IMAGE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = {"Env": [IMAGE_PATH], "Cmd": ["sh"]}
NGINX = {
    "Env": [IMAGE_PATH, "NGINX_VERSION=1.25"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "ExposedPorts": {"80/tcp": {}},
    "Labels": {"maintainer": "NGINX", "tier": "web"},
    "StopSignal": "SIGQUIT",
    "WorkingDir": "/srv",
    "User": "nginx",
    "Volumes": {"/var/cache/nginx": {}},
}
NCPU = os.cpu_count() or 1


def create(body: dict[str, Any], image: dict[str, Any] | None = None) -> CreateResult:
    return parse_create(
        {"Image": "busybox", **body},
        image_ref="busybox",
        image_config=BUSYBOX if image is None else image,
        container_id=CID,
    )


def argv(result: CreateResult) -> list[str]:
    return [result.path, *result.args]


# -- entrypoint and cmd (moby daemon/commit.go merge + mergeAndVerifyConfig) ----------------


@pytest.mark.parametrize(
    ("body", "image", "expected_argv", "entrypoint", "cmd"),
    [
        ({}, BUSYBOX, ["sh"], None, ["sh"]),
        ({"Cmd": ["echo", "hi"]}, BUSYBOX, ["echo", "hi"], None, ["echo", "hi"]),
        ({"Cmd": "echo"}, BUSYBOX, ["echo"], None, ["echo"]),
        ({"Cmd": []}, BUSYBOX, ["sh"], None, ["sh"]),
        ({"Cmd": None}, BUSYBOX, ["sh"], None, ["sh"]),
        (
            {},
            NGINX,
            ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"],
            ["/docker-entrypoint.sh"],
            ["nginx", "-g", "daemon off;"],
        ),
        (
            {"Cmd": ["bash"]},
            NGINX,
            ["/docker-entrypoint.sh", "bash"],
            ["/docker-entrypoint.sh"],
            ["bash"],
        ),
        ({"Entrypoint": ["top"]}, NGINX, ["top"], ["top"], None),
        ({"Entrypoint": "top"}, NGINX, ["top"], ["top"], None),
        ({"Entrypoint": ["top"], "Cmd": ["-b"]}, NGINX, ["top", "-b"], ["top"], ["-b"]),
        ({"Entrypoint": [""], "Cmd": ["ls", "/"]}, NGINX, ["ls", "/"], None, ["ls", "/"]),
        ({"Entrypoint": "", "Cmd": ["ls"]}, NGINX, ["ls"], None, ["ls"]),
        ({"Entrypoint": [], "Cmd": ["ls"]}, NGINX, ["ls"], None, ["ls"]),
        (
            {"Entrypoint": []},
            NGINX,
            ["nginx", "-g", "daemon off;"],
            None,
            ["nginx", "-g", "daemon off;"],
        ),
        (
            {"Entrypoint": ["sh", "-c"], "Cmd": "echo a"},
            BUSYBOX,
            ["sh", "-c", "echo a"],
            ["sh", "-c"],
            ["echo a"],
        ),
    ],
    ids=[
        "image-cmd",
        "cmd-replaces",
        "string-cmd",
        "empty-cmd-keeps-image",
        "null-cmd-keeps-image",
        "image-entrypoint-and-cmd",
        "cmd-keeps-entrypoint",
        "entrypoint-drops-image-cmd",
        "string-entrypoint",
        "entrypoint-and-cmd",
        "empty-string-entrypoint-clears",
        "string-empty-entrypoint-clears",
        "empty-list-entrypoint-clears",
        "empty-list-entrypoint-keeps-image-cmd",
        "shell-form",
    ],
)
def test_parse_create_entrypoint_cmd_follow_docker_merge(
    body: dict[str, Any],
    image: dict[str, Any],
    expected_argv: list[str],
    entrypoint: list[str] | None,
    cmd: list[str] | None,
) -> None:
    result = create(body, image)
    assert argv(result) == expected_argv
    assert result.config["Entrypoint"] == entrypoint
    assert result.config["Cmd"] == cmd


@pytest.mark.parametrize(
    ("body", "image"),
    [
        ({"Entrypoint": [""]}, BUSYBOX),
        ({"Entrypoint": ""}, NGINX),
        ({}, {}),
        ({"Cmd": []}, {"Cmd": None}),
        ({"Cmd": [""]}, {}),
    ],
    ids=[
        "cleared-entrypoint-no-cmd",
        "cleared-nginx-no-cmd",
        "no-image-command",
        "empty-everything",
        "empty-string-cmd",
    ],
)
def test_parse_create_no_command_raises_no_command_specified(
    body: dict[str, Any], image: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument, match=r"^No command specified$"):
        create(body, image)


# -- type errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"Cmd": 1},
        {"Cmd": ["a", 1]},
        {"Cmd": {"a": "b"}},
        {"Entrypoint": 5},
        {"Env": "A=1"},
        {"Env": [1]},
        {"Labels": ["a=b"]},
        {"Labels": {"a": 1}},
        {"Hostname": 5},
        {"User": ["root"]},
        {"WorkingDir": 1},
        {"Tty": "true"},
        {"OpenStdin": 1},
        {"AttachStdout": "yes"},
        {"StopSignal": 15},
        {"StopTimeout": "10"},
        {"StopTimeout": True},
        {"ExposedPorts": ["80/tcp"]},
        {"Volumes": "/data"},
        {"HostConfig": []},
        {"HostConfig": {"Memory": "1g"}},
        {"HostConfig": {"Memory": 1.5}},
        {"HostConfig": {"Memory": True}},
        {"HostConfig": {"MemorySwap": "x"}},
        {"HostConfig": {"NanoCpus": "1"}},
        {"HostConfig": {"CpuShares": 1.0}},
        {"HostConfig": {"PidsLimit": "10"}},
        {"HostConfig": {"PidsLimit": False}},
        {"HostConfig": {"AutoRemove": "true"}},
        {"HostConfig": {"NetworkMode": 1}},
        {"HostConfig": {"LogConfig": "json-file"}},
        {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-file": 3}}}},
        {"HostConfig": {"RestartPolicy": "always"}},
    ],
    ids=[
        "cmd-int",
        "cmd-list-int",
        "cmd-object",
        "entrypoint-int",
        "env-string",
        "env-int",
        "labels-list",
        "labels-int-value",
        "hostname-int",
        "user-list",
        "workingdir-int",
        "tty-string",
        "openstdin-int",
        "attach-string",
        "stopsignal-int",
        "stoptimeout-string",
        "stoptimeout-bool",
        "exposedports-list",
        "volumes-string",
        "hostconfig-list",
        "memory-string",
        "memory-float",
        "memory-bool",
        "swap-string",
        "nanocpus-string",
        "shares-float",
        "pids-string",
        "pids-bool",
        "autoremove-string",
        "networkmode-int",
        "logconfig-string",
        "logopt-int",
        "restartpolicy-string",
    ],
)
def test_parse_create_wrong_json_type_raises_invalid_argument(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as info:
        create(body)
    assert info.value.status == 400


@pytest.mark.parametrize("body", [None, [], "x", 1], ids=["null", "list", "string", "int"])
def test_parse_create_body_not_object_raises_invalid_argument(body: object) -> None:
    with pytest.raises(InvalidArgument, match="expected an object"):
        parse_create(body, image_ref="busybox", image_config=BUSYBOX, container_id=CID)


# -- config fields --------------------------------------------------------------------------


def test_parse_create_defaults_give_docker_config() -> None:
    result = create({})
    assert result.config == {
        "Hostname": CID[:12],
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": None,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": [IMAGE_PATH],
        "Cmd": ["sh"],
        "Image": "busybox",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": {},
    }
    assert (result.path, result.args) == ("sh", ())


def test_parse_create_image_fields_fill_unset_config() -> None:
    config = create({}, NGINX).config
    assert config["User"] == "nginx"
    assert config["WorkingDir"] == "/srv"
    assert config["StopSignal"] == "SIGQUIT"
    assert config["ExposedPorts"] == {"80/tcp": {}}
    assert config["Volumes"] == {"/var/cache/nginx": {}}
    assert config["Labels"] == {"maintainer": "NGINX", "tier": "web"}


def test_parse_create_container_fields_override_image() -> None:
    body = {
        "User": "1000:1000",
        "WorkingDir": "/tmp",
        "StopSignal": "SIGTERM",
        "Hostname": "web",
        "Domainname": "example.com",
        "Tty": True,
        "OpenStdin": True,
        "StopTimeout": 3,
    }
    config = create(body, NGINX).config
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/tmp"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Hostname"] == "web"
    assert config["Domainname"] == "example.com"
    assert config["Tty"] is True
    assert config["OpenStdin"] is True
    assert config["StopTimeout"] == 3


def test_parse_create_labels_merge_container_wins() -> None:
    config = create({"Labels": {"tier": "db", "team": "x"}}, NGINX).config
    assert config["Labels"] == {"maintainer": "NGINX", "tier": "db", "team": "x"}


def test_parse_create_exposed_ports_and_volumes_union_with_image() -> None:
    body = {"ExposedPorts": {"443/tcp": {}}, "Volumes": {"/data": {}}}
    config = create(body, NGINX).config
    assert config["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert config["Volumes"] == {"/var/cache/nginx": {}, "/data": {}}


def test_parse_create_env_puts_container_first_then_image() -> None:
    config = create({"Env": ["NGINX_VERSION=2", "DEBUG=1"]}, NGINX).config
    assert config["Env"] == ["NGINX_VERSION=2", "DEBUG=1", IMAGE_PATH]


def test_parse_create_image_without_path_gets_default_path() -> None:
    config = create({"Env": ["A=1"]}, {"Cmd": ["x"]}).config
    assert config["Env"] == [f"PATH={DEFAULT_PATH}", "A=1"]


@pytest.mark.parametrize(
    "item", ["=x", "", "=", "=A=B"], ids=["no-key", "empty", "only-equals", "no-key-2"]
)
def test_parse_create_env_without_key_raises_invalid(item: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid environment variable: "):
        create({"Env": [item]})


def test_parse_create_no_stop_signal_omits_key() -> None:
    assert "StopSignal" not in create({}).config
    assert "StopTimeout" not in create({}).config


@pytest.mark.parametrize(
    ("hostname", "ok"), [("a" * 64, True), ("a" * 65, False)], ids=["64-chars", "65-chars"]
)
def test_parse_create_hostname_length_limit_is_64(hostname: str, ok: bool) -> None:
    if ok:
        assert create({"Hostname": hostname}).config["Hostname"] == hostname
    else:
        with pytest.raises(InvalidArgument, match="hostname is too long"):
            create({"Hostname": hostname})


@pytest.mark.parametrize("workdir", ["tmp", "./x", "~/x"], ids=["bare", "dot", "tilde"])
def test_parse_create_relative_working_dir_raises_invalid(workdir: str) -> None:
    with pytest.raises(InvalidArgument, match="it needs to be an absolute path"):
        create({"WorkingDir": workdir})


# -- HostConfig -----------------------------------------------------------------------------


def test_parse_host_config_empty_gives_defaults() -> None:
    assert parse_host_config(None) == {
        "NetworkMode": "default",
        "PortBindings": None,
        "PublishAllPorts": False,
        "Dns": [],
        "DnsSearch": [],
        "DnsOptions": [],
        "ExtraHosts": None,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False,
        "LogConfig": {"Type": "json-file", "Config": {}},
        "Memory": 0,
        "MemorySwap": 0,
        "NanoCpus": 0,
        "CpuShares": 0,
        "PidsLimit": None,
    }


def test_parse_host_config_unknown_keys_are_kept() -> None:
    hc = parse_host_config({"Binds": ["/a:/b"], "Privileged": False})
    assert hc["Binds"] == ["/a:/b"]
    assert hc["Privileged"] is False


@pytest.mark.parametrize(
    ("memory", "swap", "message"),
    [
        (1, 0, "Minimum memory limit allowed is 6MB"),
        (MIN_MEMORY - 1, 0, "Minimum memory limit allowed is 6MB"),
        (-1, 0, "Minimum memory limit allowed is 6MB"),
        (
            MIN_MEMORY * 2,
            MIN_MEMORY,
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            0,
            MIN_MEMORY,
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
    ],
    ids=["1-byte", "just-under-6mb", "negative", "swap-below-memory", "swap-without-memory"],
)
def test_parse_host_config_memory_rules_raise_docker_message(
    memory: int, swap: int, message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_host_config({"Memory": memory, "MemorySwap": swap})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("memory", "swap"),
    [
        (MIN_MEMORY, 0),
        (MIN_MEMORY, -1),
        (MIN_MEMORY, MIN_MEMORY),
        (MIN_MEMORY, 2 * MIN_MEMORY),
        (0, -1),
        (0, 0),
    ],
    ids=[
        "exactly-6mb",
        "unlimited-swap",
        "swap-equals-memory",
        "swap-above",
        "no-memory-swap-minus-1",
        "none",
    ],
)
def test_parse_host_config_memory_valid_is_kept(memory: int, swap: int) -> None:
    hc = parse_host_config({"Memory": memory, "MemorySwap": swap})
    assert (hc["Memory"], hc["MemorySwap"]) == (memory, swap)


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        (
            {"NanoCpus": NCPU * 1_000_000_000 + 1},
            f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available",
        ),
        (
            {"NanoCpus": -1},
            f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available",
        ),
        (
            {"NanoCpus": 500_000_000, "CpuQuota": 50_000},
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            {"NanoCpus": 500_000_000, "CpuPeriod": 100_000},
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        ({"CpuShares": -2}, "invalid CpuShares: must be non-negative"),
    ],
    ids=["more-than-host", "negative", "with-quota", "with-period", "negative-shares"],
)
def test_parse_host_config_cpu_rules_raise_docker_message(hc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_host_config(hc)
    assert str(info.value) == message


def test_parse_host_config_all_host_cpus_accepted() -> None:
    assert parse_host_config({"NanoCpus": NCPU * 1_000_000_000})["NanoCpus"] == NCPU * 1_000_000_000


@pytest.mark.parametrize(
    "name",
    ["always", "unless-stopped", "on-failure"],
    ids=["always", "unless-stopped", "on-failure"],
)
def test_parse_host_config_auto_remove_with_restart_policy_conflicts(name: str) -> None:
    with pytest.raises(
        InvalidArgument, match=r"^can't create 'AutoRemove' container with restart policy$"
    ):
        parse_host_config({"AutoRemove": True, "RestartPolicy": {"Name": name}})


@pytest.mark.parametrize("name", ["", "no"], ids=["empty", "no"])
def test_parse_host_config_auto_remove_with_no_policy_accepted(name: str) -> None:
    hc = parse_host_config({"AutoRemove": True, "RestartPolicy": {"Name": name}})
    assert hc["AutoRemove"] is True
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_parse_host_config_restart_policy_normalised_for_inspect() -> None:
    hc = parse_host_config({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


@pytest.mark.parametrize(
    ("mode", "stored"),
    [
        (None, "default"),
        ("", "default"),
        ("default", "default"),
        ("bridge", "bridge"),
        ("none", "none"),
        ("host", "host"),
        ("mynet", "mynet"),  # the container manager checks that it exists (404)
    ],
    ids=["missing", "empty", "default", "bridge", "none", "host", "user-network"],
)
def test_parse_host_config_network_mode_normalised(mode: str | None, stored: str) -> None:
    assert parse_host_config({"NetworkMode": mode})["NetworkMode"] == stored


def test_parse_host_config_checks_ports_hosts_and_dns() -> None:
    hc = parse_host_config(
        {
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": None},
            "ExtraHosts": ["db:192.0.2.1"],
            "Dns": ["1.1.1.1"],
        }
    )
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    with pytest.raises(InvalidArgument, match="invalid port specification"):
        parse_host_config({"PortBindings": {"http/tcp": []}})
    with pytest.raises(InvalidArgument, match="invalid IP address in add-host"):
        parse_host_config({"ExtraHosts": ["db:nowhere"]})
    with pytest.raises(InvalidArgument, match="is not an ip address"):
        parse_host_config({"Dns": ["dns.example"]})


@pytest.mark.parametrize(
    "opts",
    [
        {"max-size": "10m", "max-file": "3"},
        {"compress": "true"},
        {"labels": "a,b", "labels-regex": "^a", "env": "A", "env-regex": "^A", "tag": "{{.Name}}"},
        {"mode": "non-blocking", "max-buffer-size": "4m"},
    ],
    ids=["rotation", "compress", "attributes", "generic-opts"],
)
def test_parse_host_config_json_file_opts_accepted(opts: dict[str, str]) -> None:
    hc = parse_host_config({"LogConfig": {"Type": "json-file", "Config": opts}})
    assert hc["LogConfig"] == {"Type": "json-file", "Config": opts}


def test_parse_host_config_none_driver_takes_any_opt() -> None:
    hc = parse_host_config({"LogConfig": {"Type": "none", "Config": {"whatever": "x"}}})
    assert hc["LogConfig"]["Type"] == "none"


@pytest.mark.parametrize(
    ("log_config", "message"),
    [
        (
            {"Type": "syslog"},
            "failed to create logger: logger: no log driver named 'syslog' is registered",
        ),
        ({"Config": {"max-age": "1"}}, "unknown log opt 'max-age' for json-file log driver"),
        ({"Config": {"max-size": "big"}}, "invalid size: 'big'"),
        ({"Config": {"max-file": "three"}}, "invalid value for max-file"),
        ({"Config": {"max-file": "-1"}}, "invalid value for max-file"),
    ],
    ids=["unknown-driver", "unknown-opt", "bad-max-size", "word-max-file", "negative-max-file"],
)
def test_parse_host_config_bad_log_config_raises_message(
    log_config: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_host_config({"LogConfig": log_config})
    assert str(info.value) == message


def test_parse_host_config_log_driver_defaults_to_json_file() -> None:
    assert parse_host_config({"LogConfig": {"Type": ""}})["LogConfig"]["Type"] == "json-file"


def test_resources_of_host_config_reads_limits() -> None:
    hc = parse_host_config(
        {
            "Memory": MIN_MEMORY,
            "MemorySwap": -1,
            "NanoCpus": 1_000_000_000,
            "CpuShares": 512,
            "PidsLimit": 100,
        }
    )
    assert resources_of(hc) == Resources(
        memory=MIN_MEMORY, memory_swap=-1, nano_cpus=1_000_000_000, cpu_shares=512, pids_limit=100
    )


def test_resources_of_null_pids_limit_is_unlimited() -> None:
    assert resources_of(parse_host_config({})) == Resources()


# -- parse_size ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("100", 100),
        ("100b", 100),
        ("100B", 100),
        ("1k", 1024),
        ("1K", 1024),
        ("1kb", 1024),
        ("1KiB", 1024),
        ("1 k", 1024),
        (" 5m ", 5 * 1024**2),
        ("64m", 64 * 1024**2),
        ("1.5k", 1536),
        ("1g", 1024**3),
        ("2t", 2 * 1024**4),
        ("1p", 1024**5),
    ],
    ids=[
        "zero",
        "bytes",
        "b",
        "upper-b",
        "k",
        "upper-k",
        "kb",
        "kib",
        "space",
        "padded",
        "64m",
        "fraction",
        "g",
        "t",
        "p",
    ],
)
def test_parse_size_valid_gives_bytes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text",
    ["", "abc", "-1", "1x", "1.2.3", "k", "1ki", "1kbb", "1e3", "0x10"],
    ids=[
        "empty",
        "word",
        "negative",
        "unknown-unit",
        "two-dots",
        "unit-only",
        "ki",
        "kbb",
        "exponent",
        "hex",
    ],
)
def test_parse_size_invalid_raises_invalid_size(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid size: "):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1k", 1000), ("10m", 10_000_000), ("1.5g", 1_500_000_000), ("100", 100), ("2kb", 2000)],
    ids=["k", "m", "fraction", "bare", "kb"],
)
def test_parse_human_size_is_decimal_like_json_file(text: str, size: int) -> None:
    from supervisor.containers.config import parse_human_size

    assert parse_human_size(text) == size


def test_parse_human_size_rejects_garbage() -> None:
    from supervisor.containers.config import parse_human_size
    from supervisor.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        parse_human_size("ten")


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"CpuPeriod": 999}, "CPU cfs period can not be less than 1ms"),
        ({"CpuPeriod": 1_000_001}, "CPU cfs period can not be less than 1ms"),
        ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms"),
    ],
)
def test_parse_host_config_cpu_cfs_bounds(hc: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_host_config(hc)
    assert parse_host_config({"CpuPeriod": 50_000, "CpuQuota": 25_000})["CpuQuota"] == 25_000
