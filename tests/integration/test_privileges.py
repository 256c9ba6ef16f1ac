"""--cap-add, --cap-drop and --privileged on real containers, through the docker CLI
and berth's own, with Docker's refusals for names the kernel does not know."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import ApiError, Daemon, env_with_host

pytestmark = pytest.mark.root

CAP_CHOWN = 1 << 0
CAP_NET_ADMIN = 1 << 12
CAP_SYS_ADMIN = 1 << 21


def run(d: Daemon, cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli, *args], env=env_with_host(d), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(params=["docker", "berth"])
def cli(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "docker":
        path = shutil.which("docker")
        if path is None:
            pytest.skip("no docker CLI on PATH")
        return [path]
    return [str(Path(sys.executable).with_name("berth"))]


def cap_eff(d: Daemon, cli: list[str], *flags: str) -> int:
    r = run(d, cli, "run", "--rm", "--network", "none", *flags, "busybox",
            "sh", "-c", "grep CapEff /proc/self/status")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1], 16)


def test_cap_add_and_drop(daemon: Daemon, cli: list[str]) -> None:
    default = cap_eff(daemon, cli)
    assert default & CAP_CHOWN and not default & CAP_NET_ADMIN
    added = cap_eff(daemon, cli, "--cap-add", "net_admin")
    assert added == default | CAP_NET_ADMIN
    assert cap_eff(daemon, cli, "--cap-drop", "CAP_CHOWN") == default & ~CAP_CHOWN
    assert cap_eff(daemon, cli, "--cap-drop", "ALL") == 0
    assert cap_eff(daemon, cli, "--cap-drop", "ALL", "--cap-add", "CHOWN") == CAP_CHOWN
    r = run(daemon, cli, "run", "--rm", "--network", "none", "--cap-add", "NET_ADMIN",
            "busybox", "ip", "link", "set", "lo", "down")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run(daemon, cli, "run", "--rm", "--network", "none", "busybox",
            "ip", "link", "set", "lo", "down")  # fmt: skip
    assert r.returncode != 0 and "not permitted" in r.stderr.lower()


def test_an_unknown_capability_is_refused_at_create(daemon: Daemon, cli: list[str]) -> None:
    r = run(daemon, cli, "run", "--rm", "--cap-add", "FOO", "busybox", "true")
    assert r.returncode == 125
    assert 'invalid CapAdd: unknown capability: "CAP_FOO"' in r.stderr
    with pytest.raises(ApiError) as refused:
        daemon.client.create("busybox", ["true"], HostConfig={"CapDrop": ["nope"]})
    assert refused.value.status == 400
    assert refused.value.message == 'invalid CapDrop: unknown capability: "CAP_NOPE"'


def test_privileged_mounts_and_sees_the_host_devices(daemon: Daemon, cli: list[str]) -> None:
    assert cap_eff(daemon, cli, "--privileged") & CAP_SYS_ADMIN
    # /proc/sys is read-only unless privileged; the write stays in the container's own
    # network namespace (--network none).
    script = (
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted; ls /dev/tty0;"
        " echo 1 > /proc/sys/net/ipv4/ip_forward && echo forwarding"
    )
    argv = ["run", "--rm", "--network", "none", "busybox", "sh", "-c", script]
    r = run(daemon, cli, *argv[:2], "--privileged", *argv[2:])
    assert r.stdout.split() == ["mounted", "/dev/tty0", "forwarding"], r.stderr
    r = run(daemon, cli, *argv)
    assert r.stdout == "" and "Read-only file system" in r.stderr
    cid = daemon.client.create(
        "busybox", ["true"], HostConfig={"Privileged": True, "CapAdd": ["NET_ADMIN"]}
    )
    host_config = daemon.client.inspect(cid)["HostConfig"]
    assert host_config["Privileged"] is True and host_config["CapAdd"] == ["NET_ADMIN"]
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_security_opt_ulimits_sysctls_shm_oom_and_host_namespaces(
    daemon: Daemon, cli: list[str]
) -> None:
    script = (
        "grep NoNewPrivs /proc/self/status; ulimit -n; ulimit -s; cat /proc/self/oom_score_adj;"
        " cat /proc/sys/net/ipv4/ip_forward; df -k /dev/shm | tail -1"
    )
    r = run(daemon, cli, "run", "--rm", "--network", "none",
            "--security-opt", "no-new-privileges", "--ulimit", "nofile=512:1024",
            "--ulimit", "stack=8388608:8388608", "--oom-score-adj", "500",
            "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "16m",
            "busybox", "sh", "-c", script)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:5] == ["NoNewPrivs:\t1", "512", "8192", "500", "1"]
    assert lines[5].split()[1] == str(16 * 1024)
    r = run(daemon, cli, "run", "--rm", "--uts", "host", "busybox", "hostname")
    assert r.stdout.strip() == socket.gethostname(), r.stderr
    r = run(
        daemon, cli, "run", "--rm", "--ulimit", "fsize=-1:-1", "busybox", "sh", "-c", "ulimit -f"
    )
    assert r.stdout.strip() == "unlimited", r.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--security-opt", "foo=bar"), 'invalid --security-opt 2: "foo=bar"'),
        (("--security-opt", "apparmor=strict"), "apparmor profiles are not supported by berth"),
        (("--security-opt", "seccomp=/nonexistent.json"), "opening seccomp profile"),
        (("--sysctl", "kernel.hostname=x"), "is not allowed"),  # the docker CLI's own check
        (
            ("--oom-score-adj", "1001"),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (("--ipc", "bogus"), "invalid IPC mode: bogus"),
    ],
)
def test_options_berth_cannot_honour_are_refused(
    daemon: Daemon, cli: list[str], flags: tuple[str, ...], message: str
) -> None:
    r = run(daemon, cli, "run", "--rm", *flags, "busybox", "true")
    assert r.returncode == 125 and message in r.stderr, r.stderr


def test_group_add_device_cpuset_and_memory_reservation(daemon: Daemon, cli: list[str]) -> None:
    script = "id -G; ls -l /dev/fuse /dev/net-null | cut -c1; cat /proc/self/status | grep Cpus_allowed_list; echo x > /dev/net-null && echo wrote"
    r = run(daemon, cli, "run", "--rm", "--network", "none", "--group-add", "www-data",
            "--group-add", "4242", "--device", "/dev/fuse", "--device", "/dev/null:/dev/net-null:rw",
            "--cpuset-cpus", "0", "--memory-reservation", "32m",
            "busybox", "sh", "-c", script)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert set(lines[0].split()) >= {"0", "33", "4242"}  # www-data is 33 in the test image
    assert lines[1:3] == ["c", "c"] and lines[3].split() == ["Cpus_allowed_list:", "0"]
    assert lines[4] == "wrote"
    r = run(daemon, cli, "run", "--rm", "--device", "/dev/nope", "busybox", "true")
    assert r.returncode != 0 and "error gathering device information" in r.stderr
    r = run(daemon, cli, "run", "--rm", "--group-add", "nogroup-here", "busybox", "true")
    assert r.returncode != 0 and "unable to find group nogroup-here" in r.stderr


def test_a_host_config_berth_cannot_apply_is_refused_not_dropped(daemon: Daemon) -> None:
    with pytest.raises(ApiError) as refused:
        daemon.client.create("busybox", ["true"], HostConfig={"MemorySwappiness": 10})
    assert refused.value.status == 400
    assert "HostConfig.MemorySwappiness is not supported by berth" in refused.value.message
    cid = daemon.client.create(  # the docker CLI's defaults for those fields are fine
        "busybox", ["true"], HostConfig={"MemorySwappiness": -1, "OomKillDisable": False}
    )
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_the_default_seccomp_filter(daemon: Daemon, cli: list[str]) -> None:
    """No user namespace (the way to every other capability), no mount without
    CAP_SYS_ADMIN; unconfined and privileged containers are not filtered."""
    status = "grep Seccomp: /proc/self/status"
    r = run(daemon, cli, "run", "--rm", "--network", "none", "busybox", "sh", "-c",
            f"{status}; unshare -U true && echo userns")  # fmt: skip
    assert r.stdout.split()[:2] == ["Seccomp:", "2"] and "userns" not in r.stdout
    assert "not permitted" in r.stderr.lower()
    for flags in (("--security-opt", "seccomp=unconfined"), ("--privileged",)):
        r = run(daemon, cli, "run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c",
                f"{status}; unshare -U true && echo userns")  # fmt: skip
        assert r.stdout.split() == ["Seccomp:", "0", "userns"], (flags, r.stderr)
    r = run(daemon, cli, "run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN",
            "busybox", "sh", "-c", "mkdir /tmp/m && mount -t tmpfs none /tmp/m && echo mounted")  # fmt: skip
    assert r.stdout.strip() == "mounted", r.stderr
    cid = daemon.client.run(["sleep", "60"])
    r = run(daemon, cli, "exec", cid, "sh", "-c", f"{status}; unshare -U true && echo userns")
    assert r.stdout.split()[:2] == ["Seccomp:", "2"] and "userns" not in r.stdout
    daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


def test_a_docker_seccomp_profile_replaces_the_default(
    daemon: Daemon, cli: list[str], tmp_path: Path
) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {
                "names": ["chmod"],
                "action": "SCMP_ACT_ERRNO",
                "includes": {"caps": ["CAP_SYS_ADMIN"]},
            },
        ],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    script = (
        "chmod 700 /tmp && echo chmod; unshare -U true && echo userns; mkdir /tmp/d && echo mkdir"
    )
    r = run(daemon, cli, "run", "--rm", "--network", "none", "--security-opt",
            f"seccomp={path}", "busybox", "sh", "-c", script)  # fmt: skip
    assert r.stdout.split() == ["chmod", "userns"], r.stderr  # the default filter is not there
    assert "not permitted" in r.stderr.lower()
    r = run(daemon, cli, "run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN",
            "--security-opt", f"seccomp={path}", "busybox", "sh", "-c", script)  # fmt: skip
    assert "chmod" not in r.stdout.split()  # the rule that includes CAP_SYS_ADMIN applies
