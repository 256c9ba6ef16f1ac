"""Resource limits and OOM detection through real cgroups (v1 on this machine, v2 elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.daemon import Client

pytestmark = pytest.mark.root

V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()


def _cgroup_file(cid: str, controller: str, name: str) -> str:
    base = Path("/sys/fs/cgroup") / ("" if V2 else controller) / "berth" / cid
    return (base / name).read_text().strip()


def test_limits_are_applied(api: Client) -> None:
    cid = api.run(
        ["sleep", "30"],
        HostConfig={
            "Memory": 64 * 1024 * 1024,
            "NanoCpus": 500_000_000,
            "PidsLimit": 50,
            "CpuShares": 512,
        },
    )
    try:
        if V2:
            assert _cgroup_file(cid, "", "memory.max") == str(64 * 1024 * 1024)
            assert _cgroup_file(cid, "", "cpu.max") == "50000 100000"
            assert _cgroup_file(cid, "", "pids.max") == "50"
        else:
            assert _cgroup_file(cid, "memory", "memory.limit_in_bytes") == str(64 * 1024 * 1024)
            assert _cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "50000"
            assert _cgroup_file(cid, "cpu", "cpu.shares") == "512"
            assert _cgroup_file(cid, "pids", "pids.max") == "50"
        hc = api.inspect(cid)["HostConfig"]
        assert (
            hc["Memory"] == 64 * 1024 * 1024
            and hc["NanoCpus"] == 500_000_000
            and hc["PidsLimit"] == 50
        )
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    time.sleep(0.2)
    assert not (Path("/sys/fs/cgroup") / ("" if V2 else "memory") / "berth" / cid).exists()


def test_cpu_quota_and_period_are_applied(api: Client) -> None:
    cid = api.run(["sleep", "30"], HostConfig={"CpuQuota": 25_000, "CpuPeriod": 50_000})
    try:
        if V2:
            assert _cgroup_file(cid, "", "cpu.max") == "25000 50000"
        else:
            assert _cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "25000"
            assert _cgroup_file(cid, "cpu", "cpu.cfs_period_us") == "50000"
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_oom_kill_is_recorded_with_event(api: Client) -> None:
    since = time.time()
    # Allocate ~100 MB in a shell variable under a 16 MB limit (no swap beyond the limit).
    cid = api.run(
        ["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"],
        HostConfig={"Memory": 16 * 1024 * 1024, "MemorySwap": 16 * 1024 * 1024},
    )
    code = api.wait(cid, timeout=60)
    info = api.inspect(cid)
    assert info["State"]["OOMKilled"] is True, info["State"]
    assert code == 137
    events = api.events(
        since=int(since), until=int(time.time()) + 1, filters=f'{{"container": ["{cid}"]}}'
    )
    actions = [e["Action"] for e in events]
    assert "oom" in actions
    assert actions.index("oom") < actions.index("die")
    api.call("DELETE", f"/containers/{cid}")


def test_pids_limit_stops_fork_bomb(api: Client) -> None:
    cid = api.run(
        ["sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait; echo done"],
        HostConfig={"PidsLimit": 10},
    )
    code = api.wait(cid, timeout=60)
    logs = b"".join(p for _, p in api.logs(cid))
    assert b"can't fork" in logs or b"Resource temporarily unavailable" in logs or code != 0
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})
