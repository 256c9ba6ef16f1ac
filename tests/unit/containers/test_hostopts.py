"""containers/hostopts.py: what each option gives the spec, and Docker's refusals."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.containers.hostopts import DEFAULT_SHM_SIZE, HostOptions, parse
from supervisor.errors import InvalidArgument


def test_nothing_set_is_dockers_default() -> None:
    assert parse({}) == HostOptions()
    assert parse({"ShmSize": 0, "SecurityOpt": None, "PidMode": ""}).shm_size == DEFAULT_SHM_SIZE


def test_options_as_the_spec_wants_them() -> None:
    got = parse(
        {
            "SecurityOpt": ["no-new-privileges:true", "label=disable", "seccomp=unconfined"],
            "Ulimits": [
                {"Name": "nofile", "Soft": 10, "Hard": 20},
                {"Name": "core", "Soft": 0, "Hard": 0},
            ],
            "Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"},
            "ShmSize": 1 << 20,
            "OomScoreAdj": -500,
            "UTSMode": "host",
        }
    )
    assert got == HostOptions(
        no_new_privileges=True,
        seccomp=False,
        rlimits=(("RLIMIT_NOFILE", 10, 20), ("RLIMIT_CORE", 0, 0)),
        sysctls=(("kernel.shmmax", "1024"), ("net.ipv4.ip_forward", "1")),
        shm_size=1 << 20,
        oom_score_adj=-500,
        host_uts=True,
    )


def test_a_later_no_new_privileges_false_wins() -> None:
    assert not parse(
        {"SecurityOpt": ["no-new-privileges", "no-new-privileges=false"]}
    ).no_new_privileges


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"SecurityOpt": ["nonsense"]}, 'invalid --security-opt 1: "nonsense"'),
        ({"SecurityOpt": ["foo=bar"]}, 'invalid --security-opt 2: "foo=bar"'),
        (
            {"SecurityOpt": ["no-new-privileges=maybe"]},
            'invalid --security-opt 2: "no-new-privileges=maybe"',
        ),
        ({"SecurityOpt": ["seccomp={}"]}, "invalid defaultAction in seccomp profile"),
        ({"SecurityOpt": ["seccomp=/x.json"]}, "decoding seccomp profile failed"),
        ({"SecurityOpt": ["apparmor=strict"]}, "apparmor profiles are not supported by berth"),
        ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
        (
            {"Ulimits": [{"Name": "nofile", "Soft": 9, "Hard": 1}]},
            "soft limit must be less than or equal to hard limit: 9 > 1",
        ),
        ({"Sysctls": {"vm.swappiness": "1"}}, "sysctl 'vm.swappiness' is not allowed"),
        (
            {"Sysctls": {"net.core.somaxconn": "1"}, "NetworkMode": "host"},
            "host's network namespace",
        ),
        ({"Sysctls": {"kernel.sem": "1"}, "IpcMode": "host"}, "host's IPC namespace"),
        ({"ShmSize": -1}, "SHM size can not be less than 0"),
        ({"OomScoreAdj": -1001}, "Invalid value -1001, range for oom score adj is [-1000, 1000]"),
        ({"PidMode": "container:abc"}, "not supported by berth"),
        ({"PidMode": "host"}, "PidMode host is not supported by berth"),
        ({"UTSMode": "private"}, "invalid UTS mode: private"),
    ],
)
def test_refusals(hc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse(hc)
    assert message in str(refused.value)


def test_group_add_and_devices() -> None:
    got = parse(
        {
            "GroupAdd": ["audio", "42"],
            "Devices": [
                {"PathOnHost": "/dev/fuse", "PathInContainer": "", "CgroupPermissions": ""},
                {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rw"},
            ],
        }
    )
    assert got.group_add == ("audio", "42")
    assert [(d.path_on_host, d.path_in_container, d.permissions) for d in got.devices] == [
        ("/dev/fuse", "/dev/fuse", "rwm"),
        ("/dev/null", "/dev/x", "rw"),
    ]


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"Devices": [{"PathOnHost": "dev/x"}]}, "invalid device mapping"),
        ({"Devices": [{"PathOnHost": "/dev/x", "CgroupPermissions": "rwx"}]}, "permissions"),
        ({"MemorySwappiness": 0}, "HostConfig.MemorySwappiness is not supported by berth"),
        ({"CgroupParent": "/mine"}, "HostConfig.CgroupParent is not supported by berth"),
        ({"DeviceRequests": [{"Driver": "nvidia"}]}, "HostConfig.DeviceRequests"),
    ],
)
def test_more_refusals(hc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse(hc)
    assert message in str(refused.value)


def test_the_docker_clis_defaults_are_not_refused() -> None:
    parse({"MemorySwappiness": -1, "OomKillDisable": False, "BlkioWeight": 0, "Links": None,
           "UsernsMode": "", "VolumeDriver": "", "CpuCount": 0})  # fmt: skip


def test_a_stored_host_config_starts_with_the_defaults_of_what_is_now_refused() -> None:
    """A container an older berth accepted (it ignored these fields) still starts."""
    hc = {"Sysctls": {"vm.swappiness": "1"}, "MemorySwappiness": 10, "OomScoreAdj": 5}
    with pytest.raises(InvalidArgument):
        parse(hc)
    assert parse(hc, stored=True) == HostOptions(oom_score_adj=5)
