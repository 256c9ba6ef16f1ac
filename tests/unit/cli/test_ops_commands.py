"""top, stats, diff, update, system df and system prune against a fake Engine API:
requests, output and the arithmetic the docker CLI does on stats.

The tables were compared with the docker 28.2.2 CLI's output against the same daemon.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.app import build_app, parse_with_cyclopts
from cli.argspec import Parsed, parse_argv
from cli.main import main
from cli.opscmds import (
    StatsRow,
    cpu_percent,
    df_summary,
    memory_usage,
    prune_warning,
    stats_row,
    top_text,
)
from supervisor.containers.stats import reading_from_files, to_api
from tests.unit.cli.fakeengine import FakeEngine, serve
from tests.unit.cli.test_image_commands import stdin_from

CID = "7e01a9038945" + "0" * 52
CID2 = "ea45fc2b30f0" + "1" * 52
GIB = 1024**3


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield from serve()


def run(engine: FakeEngine, *argv: str) -> int:
    return main(["-H", engine.host, *argv])


def sample(cid: str, name: str, **over: Any) -> dict[str, Any]:
    """A StatsResponse as berthd sends it for a v1 container."""
    out: dict[str, Any] = {
        "read": "2024-05-01T10:00:01Z",
        "preread": "2024-05-01T10:00:00Z",
        "pids_stats": {"current": 1},
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 2048},
                {"major": 8, "minor": 0, "op": "Total", "value": 6144},
            ]
        },
        "cpu_stats": {
            "cpu_usage": {"total_usage": 1_500_000_000, "percpu_usage": [1, 2]},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 1_000_000_000},
            "system_cpu_usage": 18_000_000_000,
        },
        "memory_stats": {
            "usage": 2 * 1024 * 1024,
            "stats": {"total_inactive_file": 1024 * 1024},
            "limit": 64 * 1024 * 1024,
        },
        "name": "/" + name,
        "id": cid,
        "networks": {"eth0": {"rx_bytes": 1050, "tx_bytes": 426}},
    }
    out.update(over)
    return out


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["top", "web"],
        ["top", "web", "-o", "pid,comm"],
        ["container", "top", "web", "aux"],
        ["stats"],
        ["stats", "--no-stream", "-a"],
        ["stats", "a", "--no-stream", "b", "--format", "{{.Name}}"],
        ["container", "stats", "--no-trunc", "web"],
        ["diff", "web"],
        ["container", "diff", "web"],
        ["update", "-m", "64m", "--cpus", "0.5", "--pids-limit", "-1", "a", "b"],
        ["container", "update", "--restart", "on-failure:3", "web"],
        ["system", "df", "-v"],
        ["system", "df", "--format", "{{.Type}}"],
        ["system", "prune", "-af", "--volumes", "--filter", "until=24h"],
    ],
)
def test_both_parsers_agree(argv: list[str]) -> None:
    fast = parse_argv(argv)
    assert fast is not None, argv
    assert parse_with_cyclopts(argv, app=build_app()) == fast


def test_top_passes_everything_after_the_container_to_ps() -> None:
    parsed = parse_argv(["top", "web", "-o", "pid", "--forest"])
    assert parsed == Parsed("top", ["web", "-o", "pid", "--forest"], {})


def test_stats_takes_zero_or_more_containers() -> None:
    parsed = parse_argv(["stats"])
    assert parsed is not None and parsed.args == []
    parsed = parse_argv(["stats", "a", "b"])
    assert parsed is not None and parsed.args == ["a", "b"]


# --- top / diff -----------------------------------------------------------------------------


def test_top_requests_ps_args_and_prints_a_wide_table(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "GET",
        "/containers/web/top",
        json={"Titles": ["PID", "COMMAND"], "Processes": [["357", "sleep"], ["12", "sh"]]},
    )
    assert run(engine, "top", "web", "-o", "pid,comm") == 0
    assert engine.only().query == {"ps_args": ["-o pid,comm"]}
    assert capfd.readouterr().out == (
        "PID                 COMMAND\n357                 sleep\n12                  sh\n"
    )


def test_top_without_ps_args_sends_none(engine: FakeEngine) -> None:
    engine.on("GET", "/containers/web/top", json={"Titles": ["PID"], "Processes": []})
    assert run(engine, "top", "web") == 0
    assert engine.only().query == {}


def test_top_of_a_stopped_container_reports_the_daemon(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "GET",
        "/containers/web/top",
        status=409,
        json={"message": f"Container {CID} is not running"},
    )
    assert run(engine, "top", "web") == 1
    assert capfd.readouterr().err == f"Error response from daemon: Container {CID} is not running\n"


def test_top_text_keeps_long_commands() -> None:
    text = top_text({"Titles": ["UID", "CMD"], "Processes": [["root", "sh -c sleep 1"]]})
    assert text == "UID                 CMD\nroot                sh -c sleep 1\n"


def test_diff_prints_kind_letters(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on(
        "GET",
        "/containers/web/changes",
        json=[
            {"Path": "/etc", "Kind": 0},
            {"Path": "/etc/x", "Kind": 1},
            {"Path": "/y", "Kind": 2},
        ],
    )
    assert run(engine, "diff", "web") == 0
    assert capfd.readouterr().out == "C /etc\nA /etc/x\nD /y\n"


# --- update ---------------------------------------------------------------------------------


def test_update_sends_dockers_body_and_prints_names(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("POST", "/containers/a/update", json={"Warnings": []})
    engine.on("POST", "/containers/b/update", json={"Warnings": ["careful"]})
    assert run(engine, "update", "-m", "64m", "--cpus", "0.5", "--pids-limit", "-1", "a", "b") == 0
    captured = capfd.readouterr()
    assert captured.out == "a\nb\n"
    assert captured.err == "careful\n"
    assert engine.requests[0].json() == {
        "BlkioWeight": 0,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpuShares": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Memory": 64 * 1024 * 1024,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "NanoCpus": 500_000_000,
        "PidsLimit": -1,
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    }


def test_update_restart_policy(engine: FakeEngine) -> None:
    engine.on("POST", "/containers/web/update", json={"Warnings": None})
    assert run(engine, "update", "--restart", "on-failure:3", "web") == 0
    body = engine.only().json()
    assert body["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert "PidsLimit" not in body


def test_update_needs_a_flag(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    assert run(engine, "update", "web") == 1
    assert capfd.readouterr().err == "you must provide one or more flags when using this command\n"
    assert engine.requests == []


def test_update_reports_errors_at_the_end(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "POST",
        "/containers/a/update",
        status=400,
        json={"message": "Minimum memory limit allowed is 6MB"},
    )
    engine.on("POST", "/containers/b/update", json={"Warnings": []})
    assert run(engine, "update", "-m", "1k", "a", "b") == 1
    captured = capfd.readouterr()
    assert captured.out == "b\n"
    assert captured.err == "Error response from daemon: Minimum memory limit allowed is 6MB\n"


def test_update_bad_size_is_a_usage_error(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run(engine, "update", "-m", "lots", "web") == 2
    assert "invalid size: 'lots'" in capfd.readouterr().err


# --- stats ----------------------------------------------------------------------------------


def test_stats_row_computes_like_the_docker_cli() -> None:
    row = stats_row(sample(CID, "web"))
    assert row == StatsRow(
        id=CID,
        name="web",
        cpu=50.0,  # 0.5 s of 2 s of host time, times 2 CPUs
        mem=1024 * 1024,  # usage less the inactive file cache
        limit=64 * 1024 * 1024,
        net_rx=1050,
        net_tx=426,
        blk_read=4096,
        blk_write=2048,
        pids=1,
    )
    assert row.mem_percent == pytest.approx(1 / 64 * 100)


def test_stats_row_uses_a_given_precpu_instead_of_the_samples() -> None:
    precpu = {"cpu_usage": {"total_usage": 1_400_000_000}, "system_cpu_usage": 19_000_000_000}
    assert stats_row(sample(CID, "web"), precpu).cpu == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("memory", "used"),
    [
        ({"usage": 100, "stats": {"total_inactive_file": 40}}, 60),
        ({"usage": 100, "stats": {"inactive_file": 30}}, 70),
        ({"usage": 100, "stats": {"total_inactive_file": 400}}, 100),
        ({"usage": 100}, 100),
        ({}, 0),
    ],
    ids=["v1", "v2", "cache-above-usage", "no-stats", "stopped"],
)
def test_memory_usage_leaves_out_the_inactive_file_cache(memory: object, used: int) -> None:
    assert memory_usage(memory) == used


def test_cpu_percent_online_cpus_fall_back_to_percpu_length() -> None:
    cpu = {
        "cpu_usage": {"total_usage": 200, "percpu_usage": [1, 1, 1, 1]},
        "system_cpu_usage": 1000,
    }
    assert cpu_percent(cpu, {}) == pytest.approx(200 / 1000 * 4 * 100)
    assert cpu_percent({}, {}) == 0.0


def test_stats_row_of_berthds_json_matches_its_counters() -> None:
    """berthd's JSON read back the docker CLI's way gives the counters it came from."""
    files = {
        "cpuacct.usage": "3000000000\n",
        "memory.usage_in_bytes": "10485760\n",
        "memory.limit_in_bytes": "67108864\n",
        "memory.stat": "total_inactive_file 1048576\n",
        "pids.current": "3\n",
        "blkio.throttle.io_service_bytes": "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
    }
    common: dict[str, Any] = {
        "v2": False,
        "net_dev": "  eth0: 1296 16 0 0 0 0 0 0 868 10 0 0 0 0 0 0\n",
        "clk_tck": 100,
        "online_cpus": 2,
        "machine_memory": 8 * GIB,
    }
    prev = reading_from_files(
        {**files, "cpuacct.usage": "2500000000\n"},
        time_ns=1,
        proc_stat="cpu  100 0 50 800 10 0 5\n",
        **common,
    )
    cur = reading_from_files(files, time_ns=2, proc_stat="cpu  150 0 50 800 10 0 5\n", **common)
    row = stats_row(to_api(cur, prev, cid=CID, name="web"))
    assert (row.mem, row.limit, row.pids) == (9 * 1024 * 1024, 64 * 1024 * 1024, 3)
    assert (row.net_rx, row.net_tx, row.blk_read, row.blk_write) == (1296, 868, 4096, 8192)
    assert row.cpu == pytest.approx(0.5 / 0.5 * 2 * 100)


def test_stats_no_stream_table(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/containers/json", json=[{"Id": CID}, {"Id": CID2}])
    engine.on("GET", f"/containers/{CID}/stats", json=sample(CID, "peek1"))
    engine.on(
        "GET",
        f"/containers/{CID2}/stats",
        json=sample(CID2, "peek2", memory_stats={"usage": 229376, "limit": 25 * GIB}),
    )
    assert run(engine, "stats", "--no-stream") == 0
    assert capfd.readouterr().out == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O         BLOCK I/O        PIDS\n"
        "7e01a9038945   peek1     50.00%    1MiB / 64MiB        1.56%     1.05kB / 426B   4.1kB / 2.05kB   1\n"
        "ea45fc2b30f0   peek2     50.00%    224KiB / 25GiB      0.00%     1.05kB / 426B   4.1kB / 2.05kB   1\n"
    )
    listing, *stats = engine.requests
    assert listing.query == {}
    assert [r.query for r in stats] == [{"stream": ["0"]}, {"stream": ["0"]}]


def test_stats_all_and_json_format(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/containers/json", json=[{"Id": CID}])
    engine.on("GET", f"/containers/{CID}/stats", json=sample(CID, "web"))
    assert run(engine, "stats", "-a", "--no-stream", "--format", "json") == 0
    line = capfd.readouterr().out
    assert list(json.loads(line)) == sorted(json.loads(line))  # docker's map order
    assert json.loads(line)["Container"] == CID and json.loads(line)["Name"] == "web"
    assert engine.requests[0].query == {"all": ["1"]}


def test_stats_named_containers_and_a_missing_one(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/containers/web/stats", json=sample(CID, "web"))
    engine.on(
        "GET", "/containers/gone/stats", status=404, json={"message": "No such container: gone"}
    )
    assert (
        run(
            engine, "stats", "--no-stream", "--format", "{{.Container}} {{.CPUPerc}}", "web", "gone"
        )
        == 1
    )
    captured = capfd.readouterr()
    assert captured.out == "web 50.00%\n"
    assert captured.err == "Error response from daemon: No such container: gone\n"


def test_stats_bad_format_fails_before_any_request(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run(engine, "stats", "--no-stream", "--format", "{{.Nope") == 1
    assert engine.requests == []


# --- system df ------------------------------------------------------------------------------

DF: dict[str, Any] = {
    "LayersSize": 1982479,
    "Images": [
        {
            "Id": "sha256:" + "f2" * 32,
            "RepoTags": ["busybox:latest"],
            "Created": 1700000000,
            "Size": 1982479,
            "SharedSize": 0,
            "Containers": 2,
        },
        {
            "Id": "sha256:" + "aa" * 32,
            "RepoTags": [],
            "Created": 1700000000,
            "Size": 1000,
            "SharedSize": 0,
            "Containers": 0,
        },
    ],
    "Containers": [
        {"Id": CID, "Names": ["/a"], "State": "running", "SizeRw": 3, "Created": 1700000000},
        {"Id": CID2, "Names": ["/b"], "State": "exited", "SizeRw": 97, "Created": 1700000000},
    ],
    "Volumes": [
        {"Name": "data", "UsageData": {"Size": 300, "RefCount": 1}},
        {"Name": "old", "UsageData": {"Size": 100, "RefCount": 0}},
    ],
    "BuildCache": [],
}


def test_df_summary_rows() -> None:
    rows = [dict(r) for r in df_summary(DF)]
    assert rows == [
        {
            "Type": "Images",
            "TotalCount": "2",
            "Active": "1",
            "Size": "1.982MB",
            "Reclaimable": "0B (0%)",
        },
        {
            "Type": "Containers",
            "TotalCount": "2",
            "Active": "1",
            "Size": "100B",
            "Reclaimable": "97B (97%)",
        },
        {
            "Type": "Local Volumes",
            "TotalCount": "2",
            "Active": "1",
            "Size": "400B",
            "Reclaimable": "100B (25%)",
        },
        {
            "Type": "Build Cache",
            "TotalCount": "0",
            "Active": "0",
            "Size": "0B",
            "Reclaimable": "0B",
        },
    ]


def test_system_df_table(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/system/df", json=DF)
    assert run(engine, "system", "df") == 0
    assert capfd.readouterr().out == (
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
        "Images          2         1         1.982MB   0B (0%)\n"
        "Containers      2         1         100B      97B (97%)\n"
        "Local Volumes   2         1         400B      100B (25%)\n"
        "Build Cache     0         0         0B        0B\n"
    )


def test_system_df_verbose_sections(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/system/df", json=DF)
    assert run(engine, "system", "df", "-v") == 0
    text = capfd.readouterr().out
    assert text.startswith("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID")
    assert (
        "busybox      latest    f2f2f2f2f2f2" in text
        and "1.98MB    0B            1.982MB       2" in text
    )
    assert "\nContainers space usage:\n\nCONTAINER ID   IMAGE" in text
    assert (
        "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\ndata          1         300B\n"
        in text
    )
    assert text.endswith(
        "\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"
    )


# --- system prune ---------------------------------------------------------------------------


def test_prune_warning_like_docker() -> None:
    assert prune_warning(all_images=False, volumes=False, filters={}) == (
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all networks not used by at least one container\n"
        "  - all dangling images\n"
        "  - unused build cache\n"
        "\n"
        "Are you sure you want to continue?"
    )
    text = prune_warning(all_images=True, volumes=True, filters={"until": ["24h"], "label": ["a"]})
    assert "  - all anonymous volumes not used by at least one container\n" in text
    assert "  - all images without at least one container associated to them\n" in text
    assert "  - all build cache\n" in text
    assert "\n  Items to be pruned will be filtered with:\n  - label=a\n  - until=24h\n" in text


def _prune_routes(engine: FakeEngine) -> None:
    engine.on(
        "POST", "/containers/prune", json={"ContainersDeleted": [CID], "SpaceReclaimed": 1000}
    )
    engine.on("POST", "/networks/prune", json={"NetworksDeleted": ["net1"]})
    engine.on("POST", "/volumes/prune", json={"VolumesDeleted": ["v1"], "SpaceReclaimed": 500})
    engine.on(
        "POST",
        "/images/prune",
        json={
            "ImagesDeleted": [{"Untagged": "x:1"}, {"Deleted": "sha256:ab"}],
            "SpaceReclaimed": 2000,
        },
    )
    engine.on("POST", "/build/prune", json={"CachesDeleted": None, "SpaceReclaimed": 0})


def test_system_prune_calls_every_prune_in_dockers_order(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    _prune_routes(engine)
    assert run(engine, "system", "prune", "-af", "--volumes", "--filter", "label=a") == 0
    assert [r.path for r in engine.requests] == [
        "/containers/prune",
        "/networks/prune",
        "/volumes/prune",
        "/images/prune",
        "/build/prune",
    ]
    assert json.loads(engine.requests[0].query["filters"][0]) == {"label": ["a"]}
    assert json.loads(engine.requests[3].query["filters"][0]) == {
        "label": ["a"],
        "dangling": ["false"],
    }
    assert capfd.readouterr().out == (
        f"Deleted Containers:\n{CID}\n\n"
        "Deleted Networks:\nnet1\n\n"
        "Deleted Volumes:\nv1\n\n"
        "Deleted Images:\nuntagged: x:1\ndeleted: sha256:ab\n\n"
        "Total reclaimed space: 3.5kB\n"
    )


def test_system_prune_default_skips_volumes_and_keeps_tagged_images(engine: FakeEngine) -> None:
    _prune_routes(engine)
    assert run(engine, "system", "prune", "--force") == 0
    assert "/volumes/prune" not in [r.path for r in engine.requests]
    images = next(r for r in engine.requests if r.path == "/images/prune")
    assert json.loads(images.query["filters"][0]) == {"dangling": ["true"]}


def test_system_prune_asks_first(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with stdin_from(tmp_path, b"n\n"):
        assert run(engine, "system", "prune") == 0
    assert capfd.readouterr().out.startswith("WARNING! This will remove:\n")
    assert engine.requests == []
