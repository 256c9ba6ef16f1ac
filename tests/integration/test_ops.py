"""top, stats, diff (changes), update, system df and system prune against a real berthd,
through the API and the berth CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import ApiError, Client, Daemon, UnixHTTPConnection, env_with_host

pytestmark = pytest.mark.root

V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
BERTH = str(Path(sys.executable).with_name("berth"))
MIB = 1024 * 1024


def berth(d: Daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [BERTH, *args],
        env=env_with_host(d),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"berth {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def sleeper(api: Client) -> Iterator[str]:
    """A running container whose processes are ``sh`` and a ``sleep``."""
    cid = api.run(["sh", "-c", "sleep 300 & wait"], name=None)
    yield cid
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


# -- top ----------------------------------------------------------------------------------


def test_top_lists_the_containers_processes_only(api: Client, sleeper: str) -> None:
    info = api.inspect(sleeper)
    top = api.call("GET", f"/containers/{sleeper}/top")
    assert "PID" in top["Titles"] and "CMD" in top["Titles"]
    pid_at = top["Titles"].index("PID")
    pids = {int(row[pid_at]) for row in top["Processes"]}
    assert info["State"]["Pid"] in pids
    commands = [row[-1] for row in top["Processes"]]
    assert any(c.startswith("sleep 300") for c in commands), commands
    assert all(len(row) == len(top["Titles"]) for row in top["Processes"])
    assert len(pids) == 2  # sh and sleep; nothing of the host


def test_top_takes_ps_args(api: Client, sleeper: str) -> None:
    top = api.call("GET", f"/containers/{sleeper}/top", params={"ps_args": "-o pid,comm"})
    assert top["Titles"] == ["PID", "COMMAND"]
    assert sorted(row[1] for row in top["Processes"]) == ["sh", "sleep"]


def test_top_refuses_renaming_a_column_to_pid(api: Client, sleeper: str) -> None:
    with pytest.raises(ApiError) as err:
        api.call("GET", f"/containers/{sleeper}/top", params={"ps_args": "-o user=PID"})
    assert err.value.status == 400


def test_top_of_a_stopped_container_is_409(api: Client) -> None:
    cid = api.create(cmd=["true"])
    try:
        with pytest.raises(ApiError) as err:
            api.call("GET", f"/containers/{cid}/top")
        assert err.value.status == 409
        assert err.value.message == f"Container {cid} is not running"
    finally:
        api.call("DELETE", f"/containers/{cid}")


def test_top_of_a_missing_container_is_404(api: Client) -> None:
    with pytest.raises(ApiError) as err:
        api.call("GET", "/containers/no-such-thing/top")
    assert err.value.status == 404


# -- stats ---------------------------------------------------------------------------------


def test_stats_one_shot_has_dockers_shape(api: Client) -> None:
    cid = api.run(["sleep", "300"], HostConfig={"Memory": 64 * MIB, "PidsLimit": 20})
    try:
        s = api.call("GET", f"/containers/{cid}/stats", params={"stream": 0, "one-shot": 1})
        assert s["id"] == cid and s["name"] == "/" + api.inspect(cid)["Name"].lstrip("/")
        assert s["preread"] == "0001-01-01T00:00:00Z"
        assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert s["cpu_stats"]["system_cpu_usage"] > 0 and s["cpu_stats"]["online_cpus"] >= 1
        assert s["precpu_stats"]["cpu_usage"]["total_usage"] == 0
        assert 0 < s["memory_stats"]["usage"] <= 64 * MIB
        assert s["memory_stats"]["limit"] == 64 * MIB
        assert s["pids_stats"]["current"] == 1 and s["pids_stats"]["limit"] == 20
        assert set(s["networks"]) == {"eth0"}
        assert s["networks"]["eth0"]["rx_bytes"] >= 0
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_stats_no_stream_primes_precpu(api: Client, sleeper: str) -> None:
    s = api.call("GET", f"/containers/{sleeper}/stats", params={"stream": 0})
    assert s["preread"] != "0001-01-01T00:00:00Z"
    assert s["precpu_stats"]["system_cpu_usage"] < s["cpu_stats"]["system_cpu_usage"]


def test_stats_stream_chains_precpu_from_the_previous_object(api: Client, sleeper: str) -> None:
    conn = UnixHTTPConnection(api.socket_path, timeout=30)
    try:
        conn.request("GET", f"/containers/{sleeper}/stats")
        resp = conn.getresponse()
        assert resp.status == 200
        first = json.loads(resp.readline())
        second = json.loads(resp.readline())
    finally:
        conn.close()
    assert first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert second["precpu_stats"] == first["cpu_stats"]
    assert second["preread"] == first["read"]


def test_stats_host_network_reports_no_networks(api: Client) -> None:
    cid = api.run(["sleep", "300"], HostConfig={"NetworkMode": "host"})
    try:
        s = api.call("GET", f"/containers/{cid}/stats", params={"stream": 0, "one-shot": 1})
        assert "networks" not in s
        assert s["memory_stats"]["usage"] > 0
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_stats_of_a_stopped_container_is_empty(api: Client) -> None:
    cid = api.create(cmd=["true"])
    try:
        s = api.call("GET", f"/containers/{cid}/stats", params={"stream": 0})
        assert s["read"] == "0001-01-01T00:00:00Z" and s["memory_stats"] == {}
        assert s["id"] == cid
    finally:
        api.call("DELETE", f"/containers/{cid}")


def test_stats_stream_and_one_shot_conflict(api: Client, sleeper: str) -> None:
    with pytest.raises(ApiError) as err:
        api.call("GET", f"/containers/{sleeper}/stats", params={"stream": 1, "one-shot": 1})
    assert err.value.status == 400


# -- changes --------------------------------------------------------------------------------


def test_changes_reports_added_changed_and_deleted(api: Client) -> None:
    cid = api.run(
        [
            "sh",
            "-c",
            "mkdir -p /srv/new && echo x > /srv/new/file && echo y >> /etc/passwd"
            " && rm /etc/group && rm -rf /home && mkdir /home && touch /home/only",
        ]
    )
    try:
        assert api.wait(cid) == 0
        changes = api.call("GET", f"/containers/{cid}/changes")
        got = {c["Path"]: c["Kind"] for c in changes}
        assert got.get("/srv") in (0, 1)
        assert got["/srv/new"] == 1 and got["/srv/new/file"] == 1
        assert got["/etc"] == 0 and got["/etc/passwd"] == 0
        assert got["/etc/group"] == 2
        assert "/etc/hosts" not in got and "/proc" not in got and "/dev" not in got
        paths = [c["Path"] for c in changes]
        assert paths.index("/etc") < paths.index("/etc/group") < paths.index("/etc/passwd")
    finally:
        api.call("DELETE", f"/containers/{cid}")


def test_changes_of_a_never_started_container_is_empty(api: Client) -> None:
    cid = api.create(cmd=["true"])
    try:
        assert api.call("GET", f"/containers/{cid}/changes") == []
    finally:
        api.call("DELETE", f"/containers/{cid}")


# -- update ---------------------------------------------------------------------------------


def _cgroup(cid: str, controller: str, name: str) -> str:
    base = Path("/sys/fs/cgroup") / ("" if V2 else controller) / "berth" / cid
    return (base / name).read_text().strip()


def test_update_applies_to_a_running_container_and_is_stored(api: Client, sleeper: str) -> None:
    result = api.call(
        "POST",
        f"/containers/{sleeper}/update",
        {
            "Memory": 48 * MIB,
            "NanoCpus": 250_000_000,
            "PidsLimit": 30,
            "CpuShares": 256,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
        },
    )
    assert result == {"Warnings": []}
    if V2:
        assert _cgroup(sleeper, "", "memory.max") == str(48 * MIB)
        assert _cgroup(sleeper, "", "cpu.max") == "25000 100000"
        assert _cgroup(sleeper, "", "pids.max") == "30"
    else:
        assert _cgroup(sleeper, "memory", "memory.limit_in_bytes") == str(48 * MIB)
        assert _cgroup(sleeper, "cpu", "cpu.cfs_quota_us") == "25000"
        assert _cgroup(sleeper, "cpu", "cpu.shares") == "256"
        assert _cgroup(sleeper, "pids", "pids.max") == "30"
    hc = api.inspect(sleeper)["HostConfig"]
    assert hc["Memory"] == 48 * MIB and hc["NanoCpus"] == 250_000_000
    assert hc["PidsLimit"] == 30 and hc["CpuShares"] == 256
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    s = api.call("GET", f"/containers/{sleeper}/stats", params={"stream": 0, "one-shot": 1})
    assert s["memory_stats"]["limit"] == 48 * MIB


def test_update_of_a_stopped_container_applies_at_next_start(api: Client) -> None:
    cid = api.create(cmd=["sleep", "300"])
    try:
        api.call("POST", f"/containers/{cid}/update", {"Memory": 32 * MIB, "PidsLimit": 7})
        api.call("POST", f"/containers/{cid}/start")
        if V2:
            assert _cgroup(cid, "", "memory.max") == str(32 * MIB)
        else:
            assert _cgroup(cid, "memory", "memory.limit_in_bytes") == str(32 * MIB)
            assert _cgroup(cid, "pids", "pids.max") == "7"
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
        ({"Memory": 64 * MIB, "MemorySwap": 32 * MIB}, "Minimum memoryswap limit"),
        ({"NanoCpus": 10**15}, "Range of CPUs"),
        ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy"),
        ({"PidsLimit": "x"}, "cannot unmarshal"),
    ],
    ids=["tiny-memory", "swap-below-memory", "too-many-cpus", "bad-policy", "bad-type"],
)
def test_update_bad_input_is_400_and_changes_nothing(
    api: Client, sleeper: str, body: dict[str, object], message: str
) -> None:
    before = api.inspect(sleeper)["HostConfig"]
    with pytest.raises(ApiError) as err:
        api.call("POST", f"/containers/{sleeper}/update", body)
    assert err.value.status == 400 and message in err.value.message
    assert api.inspect(sleeper)["HostConfig"] == before


def test_update_restart_policy_of_autoremove_container_is_refused(api: Client) -> None:
    cid = api.create(cmd=["true"], HostConfig={"AutoRemove": True})
    try:
        with pytest.raises(ApiError) as err:
            api.call("POST", f"/containers/{cid}/update", {"RestartPolicy": {"Name": "always"}})
        assert err.value.status == 400
        assert "AutoRemove is enabled" in err.value.message
    finally:
        api.call("DELETE", f"/containers/{cid}")


def test_update_emits_an_event(api: Client, sleeper: str) -> None:
    since = time.time()
    api.call("POST", f"/containers/{sleeper}/update", {"CpuShares": 100})
    events = api.events(
        since=int(since), until=int(time.time()) + 1, filters=json.dumps({"container": [sleeper]})
    )
    assert "update" in [e["Action"] for e in events]


# -- system df ------------------------------------------------------------------------------


def test_system_df_counts_images_containers_and_volumes(api: Client) -> None:
    cid = api.run(
        ["sh", "-c", "head -c 5000 /dev/zero > /big && head -c 300 /dev/zero > /data/v"],
        HostConfig={"Binds": ["df-vol:/data"]},
    )
    try:
        assert api.wait(cid) == 0
        df = api.call("GET", "/system/df")
        assert df["LayersSize"] > 0 and df["BuildCache"] == []
        busybox = next(i for i in df["Images"] if "busybox:latest" in i["RepoTags"])
        assert busybox["Containers"] >= 1 and busybox["Size"] > 0
        mine = next(c for c in df["Containers"] if c["Id"] == cid)
        assert mine["SizeRw"] >= 5000
        assert mine["SizeRootFs"] == mine["SizeRw"] + busybox["Size"]
        vol = next(v for v in df["Volumes"] if v["Name"] == "df-vol")
        assert vol["UsageData"] == {"Size": 300, "RefCount": 1}
        only = api.call("GET", "/system/df", params={"type": "volume"})
        assert set(only) == {"Volumes"}
    finally:
        api.call("DELETE", f"/containers/{cid}")
        api.call("DELETE", "/volumes/df-vol")


def test_system_df_unknown_type_is_400(api: Client) -> None:
    with pytest.raises(ApiError) as err:
        api.call("GET", "/system/df", params={"type": "bogus"})
    assert err.value.status == 400


# -- the berth CLI ----------------------------------------------------------------------------


def test_cli_top_diff_update(daemon: Daemon) -> None:
    api = daemon.client
    cid = api.run(["sh", "-c", "echo hi > /made; exec sleep 300"], name="ops-cli")
    try:
        api.wait_for(cid, lambda i: i["State"]["Running"])
        top = berth(daemon, "top", "ops-cli", "-o", "pid,comm").stdout.splitlines()
        assert top[0].split() == ["PID", "COMMAND"]
        assert [line.split()[1] for line in top[1:]] == ["sleep"]
        deadline = time.monotonic() + 10
        while "A /made" not in berth(daemon, "diff", "ops-cli").stdout:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (
            berth(daemon, "update", "-m", "48m", "--pids-limit", "9", "ops-cli").stdout
            == "ops-cli\n"
        )
        hc = api.inspect(cid)["HostConfig"]
        assert (hc["Memory"], hc["PidsLimit"]) == (48 * MIB, 9)
        bad = berth(daemon, "update", "-m", "1k", "ops-cli", check=False)
        assert bad.returncode == 1
        assert bad.stderr == "Error response from daemon: Minimum memory limit allowed is 6MB\n"
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_cli_stats_no_stream_for_named_and_running_containers(daemon: Daemon) -> None:
    api = daemon.client
    cid = api.run(["sleep", "300"], name="ops-stats", HostConfig={"Memory": 64 * MIB})
    try:
        lines = berth(daemon, "stats", "--no-stream").stdout.splitlines()
        assert lines[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
        row = next(line for line in lines if "ops-stats" in line)
        assert row.startswith(cid[:12]) and "/ 64MiB" in row
        out = berth(daemon, "stats", "--no-stream", "--format", "{{json .}}", "ops-stats").stdout
        fields = json.loads(out)
        assert fields["Name"] == "ops-stats" and fields["MemUsage"].endswith("/ 64MiB")
        assert fields["PIDs"] == "1"
        missing = berth(daemon, "stats", "--no-stream", "no-such-ctr", check=False)
        assert missing.returncode == 1 and "No such container: no-such-ctr" in missing.stderr
    finally:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_cli_stats_streams_until_interrupted(daemon: Daemon) -> None:
    api = daemon.client
    cid = api.run(["sleep", "300"], name="ops-stream")
    proc = subprocess.Popen(
        [BERTH, "stats", "--format", "{{.Name}} {{.CPUPerc}}", "ops-stream"],
        env=env_with_host(daemon),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        rows = [proc.stdout.readline(), proc.stdout.readline()]  # two refreshes
        assert all(r.startswith("ops-stream ") and r.rstrip().endswith("%") for r in rows)
    finally:
        proc.kill()
        proc.communicate()
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_cli_system_df_and_prune(daemon: Daemon) -> None:
    api = daemon.client
    keep = api.run(["sleep", "300"], name="ops-keep")
    # Labelled: the prune below is filtered to this test's objects (the daemon is shared).
    done = api.run(
        ["sh", "-c", "head -c 2000 /dev/zero > /blob"], name="ops-done", Labels={"ops.prune": "1"}
    )
    try:
        assert api.wait(done) == 0
        df = berth(daemon, "system", "df").stdout.splitlines()
        assert [line.split()[0] for line in df] == [
            "TYPE",
            "Images",
            "Containers",
            "Local",
            "Build",
        ]
        verbose = berth(daemon, "system", "df", "-v").stdout
        assert "Containers space usage:" in verbose and "ops-done" in verbose
        pruned = berth(daemon, "system", "prune", "-f", "--filter", "label=ops.prune=1").stdout
        assert "Deleted Containers:\n" in pruned and done in pruned
        assert pruned.splitlines()[-1].startswith("Total reclaimed space: ")
        names = [c["Names"][0] for c in api.call("GET", "/containers/json", params={"all": 1})]
        assert "/ops-keep" in names and "/ops-done" not in names
    finally:
        api.call("DELETE", f"/containers/{keep}", params={"force": 1})


def test_stats_stream_of_a_stopped_container_sends_zero_values(api: Client) -> None:
    cid = api.create(cmd=["true"])
    conn = UnixHTTPConnection(api.socket_path, timeout=30)
    try:
        conn.request("GET", f"/containers/{cid}/stats")
        resp = conn.getresponse()
        first = json.loads(resp.readline())
    finally:
        conn.close()
        api.call("DELETE", f"/containers/{cid}")
    assert first["id"] == cid and first["read"] == "0001-01-01T00:00:00Z"
    assert first["memory_stats"] == {}
