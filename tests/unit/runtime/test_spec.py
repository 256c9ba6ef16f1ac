"""Tests for supervisor.runtime.spec: the OCI config.json, feature by feature, against moby's
``oci/defaults.go`` and ``daemon/oci_linux.go``; plus Docker's command and env rules.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from supervisor.runtime.spec import (
    ALL_CAPABILITIES,
    CPU_PERIOD_US,
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    INIT_PATH,
    MASKED_PATHS,
    READONLY_PATHS,
    BindMount,
    CommandError,
    Resources,
    SpecInput,
    TmpfsMount,
    build_spec,
    capabilities_in_mask,
    exec_process,
    merge_env,
    process_args,
    resolve_command,
)

MiB = 1024 * 1024
BASE = SpecInput(
    container_id="c" * 64, args=("sh", "-c", "true"), env=("PATH=/bin", "A=1"), hostname="c0ffee"
)


def spec(**changes: Any) -> dict[str, Any]:
    return build_spec(attrs.evolve(BASE, **changes))


def linux(**changes: Any) -> dict[str, Any]:
    return spec(**changes)["linux"]  # type: ignore[no-any-return]


def mount(s: dict[str, Any], destination: str) -> dict[str, Any]:
    (found,) = [m for m in s["mounts"] if m["destination"] == destination]
    return found  # type: ignore[no-any-return]


# -- defaults -----------------------------------------------------------------------------------


def test_build_spec_top_level_keys_and_root() -> None:
    s = spec()
    assert s["ociVersion"] == "1.0.2"
    assert s["root"] == {"path": "rootfs", "readonly": False}
    assert s["hostname"] == "c0ffee"
    assert set(s) == {"ociVersion", "process", "root", "hostname", "mounts", "linux"}


def test_build_spec_process_defaults() -> None:
    process = spec()["process"]
    assert process["args"] == ["sh", "-c", "true"]
    assert process["env"] == ["PATH=/bin", "A=1"]
    assert process["cwd"] == "/"
    assert process["terminal"] is False
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["noNewPrivileges"] is False
    assert process["oomScoreAdj"] == 0
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]


def test_build_spec_default_capabilities_are_dockers_fourteen() -> None:
    caps = spec()["process"]["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for value in caps.values():
        assert value == list(DEFAULT_CAPABILITIES)
    assert len(DEFAULT_CAPABILITIES) == 14
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES
    assert "CAP_NET_ADMIN" not in DEFAULT_CAPABILITIES
    assert {"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_AUDIT_WRITE"} <= set(
        DEFAULT_CAPABILITIES
    )


def test_build_spec_masked_and_readonly_paths_are_dockers() -> None:
    lx = linux()
    assert lx["maskedPaths"] == list(MASKED_PATHS)
    assert lx["readonlyPaths"] == list(READONLY_PATHS)
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/scsi"):
        assert path in lx["maskedPaths"]
    assert lx["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]


def test_build_spec_default_mounts_are_dockers() -> None:
    s = spec()
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    assert mount(s, "/proc") == {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
        "options": ["nosuid", "noexec", "nodev"],
    }
    assert "ro" in mount(s, "/sys")["options"]
    assert "ro" in mount(s, "/sys/fs/cgroup")["options"]
    assert "size=67108864" in mount(s, "/dev/shm")["options"]  # Docker's 64 MiB shm
    assert "gid=5" in mount(s, "/dev/pts")["options"]


def test_build_spec_default_namespaces_include_a_new_network() -> None:
    assert linux()["namespaces"] == [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "network"},
    ]


def test_build_spec_default_resources_deny_all_devices_only() -> None:
    assert linux()["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "cgroupsPath" not in linux()


# -- process features --------------------------------------------------------------------------


def test_build_spec_init_runs_docker_init_with_separator() -> None:
    s = spec(init=True, init_source="/usr/libexec/tini")
    assert s["process"]["args"] == [INIT_PATH, "--", "sh", "-c", "true"]
    assert INIT_PATH == "/sbin/docker-init"
    assert mount(s, INIT_PATH) == {
        "destination": INIT_PATH,
        "type": "bind",
        "source": "/usr/libexec/tini",
        "options": ["rbind", "ro"],
    }


def test_build_spec_no_init_has_no_init_mount() -> None:
    assert all(m["destination"] != INIT_PATH for m in spec()["mounts"])


def test_build_spec_user_and_additional_gids() -> None:
    user = spec(uid=1000, gid=100, additional_gids=(10, 20))["process"]["user"]
    assert user == {"uid": 1000, "gid": 100, "additionalGids": [10, 20]}


@pytest.mark.parametrize(
    ("cwd", "expected"), [("/srv", "/srv"), ("", "/")], ids=["set", "empty-is-root"]
)
def test_build_spec_cwd(cwd: str, expected: str) -> None:
    assert spec(cwd=cwd)["process"]["cwd"] == expected


def test_build_spec_tty_sets_terminal() -> None:
    assert spec(tty=True)["process"]["terminal"] is True


def test_build_spec_nofile_passed_through() -> None:
    assert spec(nofile=(1024, 4096))["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}
    ]


def test_build_spec_rootfs_and_cgroups_path() -> None:
    s = spec(rootfs="/var/lib/berth/c/rootfs", cgroups_path="/berth/ccc")
    assert s["root"]["path"] == "/var/lib/berth/c/rootfs"
    assert s["linux"]["cgroupsPath"] == "/berth/ccc"


# -- network ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "network_ns"),
    [
        ("none", [{"type": "network"}]),
        ("host", []),
        ("/run/netns/berth-1", [{"type": "network", "path": "/run/netns/berth-1"}]),
    ],
    ids=["none-new-netns", "host-no-netns", "path-joins"],
)
def test_build_spec_network_mode_namespace(mode: str, network_ns: list[dict[str, str]]) -> None:
    namespaces = linux(network_mode=mode)["namespaces"]
    assert [ns for ns in namespaces if ns["type"] == "network"] == network_ns
    assert [ns["type"] for ns in namespaces if ns["type"] != "network"] == [
        "pid",
        "ipc",
        "uts",
        "mount",
    ]


# -- binds ----------------------------------------------------------------------------------


def test_build_spec_binds_follow_default_mounts_in_order() -> None:
    binds = (BindMount("/host/data", "/data"), BindMount("/host/conf", "/etc/app", readonly=True))
    s = spec(binds=binds, init=True)
    destinations = [m["destination"] for m in s["mounts"]]
    assert destinations[-3:] == [INIT_PATH, "/data", "/etc/app"]
    assert mount(s, "/data") == {
        "destination": "/data",
        "type": "bind",
        "source": "/host/data",
        "options": ["rbind", "rprivate", "rw"],
    }
    assert mount(s, "/etc/app")["options"] == ["rbind", "rprivate", "ro"]


def test_build_spec_user_bind_options_follow_moby() -> None:
    s = spec(
        mounts=(
            BindMount("/h/a", "/a", readonly=True, propagation="rshared"),
            BindMount("/h/b", "/b", recursive=False, propagation="slave"),
            BindMount("/h/c", "/c", propagation=""),
        )
    )
    assert mount(s, "/a") == {
        "destination": "/a",
        "type": "bind",
        "source": "/h/a",
        "options": ["rbind", "rshared", "ro"],
    }
    assert mount(s, "/b")["options"] == ["bind", "slave", "rw"]
    assert mount(s, "/c")["options"] == ["rbind", "rprivate", "rw"]  # empty: the default


def test_build_spec_tmpfs_mount_carries_its_options() -> None:
    s = spec(mounts=(TmpfsMount("/run", ("noexec", "nosuid", "size=65536k", "mode=1777")),))
    assert mount(s, "/run") == {
        "destination": "/run",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["noexec", "nosuid", "size=65536k", "mode=1777"],
    }
    assert TmpfsMount("/x").options == ("noexec", "nosuid", "nodev", "rprivate")


def test_build_spec_user_mount_replaces_default_and_own_bind() -> None:
    s = spec(
        binds=(BindMount("/own/hosts", "/etc/hosts"), BindMount("/own/hostname", "/etc/hostname")),
        mounts=(BindMount("/user/hosts", "/etc/hosts"), TmpfsMount("/dev/shm")),
    )
    assert mount(s, "/etc/hosts")["source"] == "/user/hosts"
    assert mount(s, "/etc/hostname")["source"] == "/own/hostname"
    assert mount(s, "/dev/shm")["type"] == "tmpfs"
    assert mount(s, "/dev/shm")["source"] == "tmpfs"  # the user's, not Docker's "shm"
    destinations = [m["destination"] for m in s["mounts"]]
    assert len(destinations) == len(set(destinations))


def test_build_spec_user_mount_on_dev_drops_default_dev_mounts() -> None:
    s = spec(mounts=(BindMount("/hostdev", "/dev"),))
    destinations = [m["destination"] for m in s["mounts"]]
    assert not [d for d in destinations if d.startswith("/dev/")]
    assert mount(s, "/dev")["source"] == "/hostdev"
    assert "/proc" in destinations and "/sys" in destinations


def test_build_spec_user_mounts_sorted_parents_first_with_own_binds() -> None:
    s = spec(
        binds=(BindMount("/own/hosts", "/etc/hosts"),),
        mounts=(
            BindMount("/h/deep", "/srv/a/b"),
            BindMount("/h/etc", "/etc"),
            BindMount("/h/srv", "/srv"),
            BindMount("/h/a", "/srv/a"),
        ),
    )
    destinations = [m["destination"] for m in s["mounts"]]
    tail = destinations[-5:]
    assert tail.index("/etc") < tail.index("/etc/hosts")
    assert tail.index("/srv") < tail.index("/srv/a") < tail.index("/srv/a/b")
    assert destinations[:7] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]


# -- resources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "swap_accounting", "memory"),
    [
        (Resources(memory=64 * MiB), True, {"limit": 64 * MiB, "swap": 128 * MiB}),
        (Resources(memory=64 * MiB, memory_swap=-1), True, {"limit": 64 * MiB, "swap": -1}),
        (
            Resources(memory=64 * MiB, memory_swap=96 * MiB),
            True,
            {"limit": 64 * MiB, "swap": 96 * MiB},
        ),
        (
            Resources(memory=64 * MiB, memory_swap=64 * MiB),
            True,
            {"limit": 64 * MiB, "swap": 64 * MiB},
        ),
        (Resources(memory=64 * MiB), False, {"limit": 64 * MiB}),
        (Resources(memory=64 * MiB, memory_swap=-1), False, {"limit": 64 * MiB}),
        (Resources(memory=0, memory_swap=-1), True, None),
    ],
    ids=[
        "default-swap-twice-memory",
        "unlimited-swap",
        "explicit-swap",
        "no-swap",
        "no-swap-accounting",
        "no-swap-accounting-unlimited",
        "no-memory-no-key",
    ],
)
def test_build_spec_memory_limit_and_swap(
    resources: Resources, swap_accounting: bool, memory: dict[str, int] | None
) -> None:
    res = linux(resources=resources, swap_accounting=swap_accounting)["resources"]
    assert res.get("memory") == memory


@pytest.mark.parametrize(
    ("nano_cpus", "quota"),
    [
        (1_000_000_000, 100_000),
        (500_000_000, 50_000),
        (1_500_000_000, 150_000),
        (10_000_000, 1_000),
        (2_000_000_000, 200_000),
    ],
    ids=["1-cpu", "half", "one-and-a-half", "0.01", "2-cpus"],
)
def test_build_spec_cpus_become_quota_over_100ms_period(nano_cpus: int, quota: int) -> None:
    cpu = linux(resources=Resources(nano_cpus=nano_cpus))["resources"]["cpu"]
    assert cpu == {"period": CPU_PERIOD_US, "quota": quota}
    assert CPU_PERIOD_US == 100_000


def test_build_spec_cpu_shares_alone() -> None:
    assert linux(resources=Resources(cpu_shares=512))["resources"]["cpu"] == {"shares": 512}


def test_build_spec_cpus_and_shares_together() -> None:
    cpu = linux(resources=Resources(nano_cpus=1_000_000_000, cpu_shares=2048))["resources"]["cpu"]
    assert cpu == {"period": 100_000, "quota": 100_000, "shares": 2048}


@pytest.mark.parametrize(
    ("limit", "pids"),
    [(100, {"limit": 100}), (0, None), (-1, None)],
    ids=["limit", "zero-unlimited", "negative-unlimited"],
)
def test_build_spec_pids_limit(limit: int, pids: dict[str, int] | None) -> None:
    assert linux(resources=Resources(pids_limit=limit))["resources"].get("pids") == pids


def test_build_spec_all_resources_together() -> None:
    res = linux(
        resources=Resources(
            memory=6 * MiB, memory_swap=-1, nano_cpus=250_000_000, cpu_shares=10, pids_limit=5
        )
    )["resources"]
    assert res == {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 6 * MiB, "swap": -1},
        "cpu": {"period": 100_000, "quota": 25_000, "shares": 10},
        "pids": {"limit": 5},
    }


def test_build_spec_is_plain_json_data() -> None:
    s = spec(
        init=True,
        binds=(BindMount("/a", "/b"),),
        resources=Resources(memory=8 * MiB, pids_limit=3),
        additional_gids=(1,),
    )
    assert json.loads(json.dumps(s)) == s


# -- resolve_command / process_args ------------------------------------------------------------


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "image_entrypoint", "image_cmd", "expected"),
    [
        (None, None, None, ["sh"], ([], ["sh"])),
        (None, ["echo"], None, ["sh"], ([], ["echo"])),
        (None, [], None, ["sh"], ([], ["sh"])),
        (None, None, ["/entry"], ["run"], (["/entry"], ["run"])),
        (None, ["x"], ["/entry"], ["run"], (["/entry"], ["x"])),
        (["top"], None, ["/entry"], ["run"], (["top"], [])),
        (["top"], ["-b"], ["/entry"], ["run"], (["top"], ["-b"])),
        ([""], None, ["/entry"], ["run"], ([], [])),
        ([""], ["ls"], ["/entry"], ["run"], ([], ["ls"])),
        ([], None, ["/entry"], ["run"], ([], ["run"])),
        ([], ["ls"], ["/entry"], ["run"], ([], ["ls"])),
        (None, None, [""], ["run"], ([], ["run"])),
        (None, None, None, None, ([], [])),
    ],
    ids=[
        "image-cmd",
        "cmd-replaces-image-cmd",
        "empty-cmd-is-unset",
        "image-entrypoint-and-cmd",
        "cmd-keeps-image-entrypoint",
        "entrypoint-drops-image-cmd",
        "entrypoint-and-cmd",
        "reset-entrypoint-drops-image-cmd",
        "reset-entrypoint-with-cmd",
        "empty-entrypoint-keeps-image-cmd",
        "empty-entrypoint-with-cmd",
        "image-reset-entrypoint",
        "nothing",
    ],
)
def test_resolve_command_follows_moby_merge(
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    image_entrypoint: list[str] | None,
    image_cmd: list[str] | None,
    expected: tuple[list[str], list[str]],
) -> None:
    assert (
        resolve_command(
            entrypoint=entrypoint, cmd=cmd, image_entrypoint=image_entrypoint, image_cmd=image_cmd
        )
        == expected
    )


def test_resolve_command_returns_copies() -> None:
    image_cmd = ["sh"]
    _, cmd = resolve_command(entrypoint=None, cmd=None, image_entrypoint=None, image_cmd=image_cmd)
    cmd.append("-x")
    assert image_cmd == ["sh"]


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "args"),
    [
        (["/e"], ["a", "b"], ["/e", "a", "b"]),
        ([], ["sh"], ["sh"]),
        (["/e"], [], ["/e"]),
        (["/e", ""], [""], ["/e", "", ""]),
    ],
    ids=["both", "cmd-only", "entrypoint-only", "empty-args-kept"],
)
def test_process_args_concatenates(entrypoint: list[str], cmd: list[str], args: list[str]) -> None:
    assert process_args(entrypoint, cmd) == args


@pytest.mark.parametrize(
    ("entrypoint", "cmd"),
    [([], []), ([""], []), ([], ["", "x"])],
    ids=["empty", "empty-string", "empty-program"],
)
def test_process_args_no_program_raises_command_error(
    entrypoint: list[str], cmd: list[str]
) -> None:
    with pytest.raises(CommandError, match=r"^No command specified$"):
        process_args(entrypoint, cmd)


# -- merge_env ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_env", "env", "expected"),
    [
        (["PATH=/x"], [], ["PATH=/x"]),
        ([], [], [f"PATH={DEFAULT_PATH}"]),
        (["A=1"], [], [f"PATH={DEFAULT_PATH}", "A=1"]),
        (["PATH=/x", "A=1"], ["B=2"], ["B=2", "PATH=/x", "A=1"]),
        (["PATH=/x", "A=1"], ["A=2"], ["A=2", "PATH=/x"]),
        (["PATH=/x"], ["PATH=/y"], ["PATH=/y"]),
        (["PATH=/x"], ["A=1", "A=2"], ["A=2", "PATH=/x"]),
        (["PATH=/x", "A=1", "A=2"], [], ["PATH=/x", "A=2"]),
        (["PATH=/x", "A=1"], ["A"], ["A", "PATH=/x"]),
        (["PATH=/x"], ["A="], ["A=", "PATH=/x"]),
        (["PATH=/x"], ["A=b=c"], ["A=b=c", "PATH=/x"]),
        (["PATH=/x"], ["path=/y"], ["path=/y", "PATH=/x"]),
    ],
    ids=[
        "image-only",
        "nothing-default-path",
        "default-path-first",
        "container-first",
        "container-overrides-image",
        "container-path",
        "last-value-first-place",
        "image-duplicates",
        "bare-key-overrides",
        "empty-value",
        "value-with-equals",
        "case-sensitive",
    ],
)
def test_merge_env_follows_docker(
    image_env: list[str], env: list[str], expected: list[str]
) -> None:
    assert merge_env(image_env, env) == expected


def test_merge_env_keys_are_unique() -> None:
    merged = merge_env(["PATH=/x", "A=1", "B=1"], ["B=2", "C=3", "A=4"])
    keys = [item.split("=", 1)[0] for item in merged]
    assert len(keys) == len(set(keys))
    assert set(merged) == {"PATH=/x", "A=4", "B=2", "C=3"}


def test_build_spec_domainname_and_read_only_root() -> None:
    s = spec(domainname="example.org", readonly_rootfs=True)
    assert s["domainname"] == "example.org"
    assert s["linux"]["sysctl"] == {"kernel.domainname": "example.org"}
    assert s["root"]["readonly"] is True
    plain = spec()
    assert "domainname" not in plain and "sysctl" not in plain["linux"]
    assert plain["root"]["readonly"] is False


def test_build_spec_cpu_quota_and_period_unless_nano_cpus() -> None:
    from supervisor.runtime.spec import Resources

    s = spec(resources=Resources(cpu_quota=50_000, cpu_period=200_000))
    assert s["linux"]["resources"]["cpu"] == {"quota": 50_000, "period": 200_000}
    s = spec(resources=Resources(nano_cpus=500_000_000, cpu_quota=1, cpu_period=2))
    assert s["linux"]["resources"]["cpu"] == {"period": 100_000, "quota": 50_000}


# --- exec processes ------------------------------------------------------------------------


def test_exec_process_takes_the_container_process_and_replaces_the_command() -> None:
    base = spec()["process"]
    p = exec_process(
        base, args=["ls", "-l"], env=["A=2", "B=3"], cwd="", user=(65534, 65534, (5,)),
        tty=True, privileged=False,
    )  # fmt: skip
    assert p["args"] == ["ls", "-l"]
    assert sorted(p["env"]) == ["A=2", "B=3", "PATH=/bin"]
    assert p["cwd"] == "/"
    assert p["user"] == {"uid": 65534, "gid": 65534, "additionalGids": [5]}
    assert p["terminal"] is True
    assert p["capabilities"] == base["capabilities"]
    with pytest.raises(CommandError):
        exec_process(base, args=[], env=[], cwd="", user=None, tty=False, privileged=False)


def test_privileged_exec_gets_every_capability_the_daemon_can_grant() -> None:
    base = spec()["process"]
    everything = exec_process(
        base, args=["sh"], env=[], cwd="/", user=None, tty=False, privileged=True
    )
    assert everything["capabilities"]["bounding"] == list(ALL_CAPABILITIES)
    grantable = capabilities_in_mask(0x1FFFEFFFFFF)  # this host: no CAP_SYS_RESOURCE
    bounded = exec_process(
        base, args=["sh"], env=[], cwd="/", user=None, tty=False, privileged=True,
        grantable=grantable,
    )  # fmt: skip
    for key in ("bounding", "effective", "permitted"):
        assert "CAP_SYS_RESOURCE" not in bounded["capabilities"][key]
        assert "CAP_SYS_ADMIN" in bounded["capabilities"][key]


def test_capabilities_in_mask() -> None:
    assert capabilities_in_mask(0) == frozenset()
    assert capabilities_in_mask(1) == {"CAP_CHOWN"}
    assert capabilities_in_mask(1 << 21 | 1 << 37) == {"CAP_SYS_ADMIN", "CAP_AUDIT_READ"}


def test_all_capabilities_are_dockers_defaults_then_the_rest_in_kernel_order() -> None:
    assert len(ALL_CAPABILITIES) == len(set(ALL_CAPABILITIES)) == 38  # up to CAP_AUDIT_READ
    assert ALL_CAPABILITIES[: len(DEFAULT_CAPABILITIES)] == tuple(DEFAULT_CAPABILITIES)
    rest = ALL_CAPABILITIES[len(DEFAULT_CAPABILITIES) :]
    assert rest[:3] == ("CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST")
    assert rest[-1] == "CAP_AUDIT_READ"
    assert capabilities_in_mask((1 << 38) - 1) == set(ALL_CAPABILITIES)
