"""Tests for supervisor.containers.stats: cgroup v1/v2 text → Docker's stats JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.stats import (
    GO_ZERO_TIME,
    BlkioEntry,
    CpuReading,
    MemoryReading,
    Reading,
    cpu_percent,
    go_time,
    parse_blkio_v1,
    parse_flat_keyed,
    parse_io_stat_v2,
    parse_limit,
    parse_net_dev,
    parse_proc_stat,
    reading_from_files,
    to_api,
)

GIB = 1024**3
MACHINE = 8 * GIB

V1_FILES = {
    "cpuacct.usage": "2500000000\n",
    "cpuacct.stat": "user 150\nsystem 70\n",
    "cpuacct.usage_percpu": "1500000000 1000000000 \n",
    "cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 3000\n",
    "memory.usage_in_bytes": "10485760\n",
    "memory.limit_in_bytes": "9223372036854771712\n",
    "memory.max_usage_in_bytes": "12582912\n",
    "memory.failcnt": "0\n",
    "memory.stat": "cache 4096\nrss 8192\ntotal_inactive_file 1048576\n",
    "pids.current": "3\n",
    "pids.max": "max\n",
    "blkio.throttle.io_service_bytes": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\nTotal 12288\n",
    "blkio.throttle.io_serviced": "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
}
V2_FILES = {
    "cpu.stat": (
        "usage_usec 2500000\nuser_usec 1500000\nsystem_usec 700000\n"
        "nr_periods 4\nnr_throttled 1\nthrottled_usec 20\n"
    ),
    "memory.current": "20971520\n",
    "memory.max": "67108864\n",
    "memory.stat": "anon 8192\nfile 4096\ninactive_file 2097152\n",
    "pids.current": "5\n",
    "pids.max": "100\n",
    "io.stat": "8:0 rbytes=4096 wbytes=1024 rios=2 wios=1 dbytes=0 dios=0\n",
}
PROC_STAT = "cpu  100 0 50 800 10 0 5 7 0 0\ncpu0 50 0 25 400 5 0 2 3 0 0\n"
NET_DEV = (
    "Inter-|   Receive |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes ...\n"
    "    lo:  100  1 0 0 0 0 0 0  100  1 0 0 0 0 0 0\n"
    "  eth0: 1296  16 1 2 0 0 0 0  868  10 3 4 0 0 0 0\n"
)
CID = "ab" * 32


def v1_reading(**overrides: object) -> Reading:
    kwargs: dict[str, object] = {
        "v2": False,
        "time_ns": 1_700_000_000_123_000_000,
        "proc_stat": PROC_STAT,
        "net_dev": NET_DEV,
        "clk_tck": 100,
        "online_cpus": 2,
        "machine_memory": MACHINE,
    }
    kwargs.update(overrides)
    return reading_from_files(V1_FILES, **kwargs)  # type: ignore[arg-type]  # test kwargs


def test_reading_from_files_v1_parses_every_counter() -> None:
    r = v1_reading()
    assert r.cpu == CpuReading(
        total_ns=2_500_000_000,
        user_ns=1_500_000_000,
        kernel_ns=700_000_000,
        percpu_ns=(1_500_000_000, 1_000_000_000),
        periods=10,
        throttled_periods=2,
        throttled_ns=3000,
    )
    # /proc/stat: user+nice+system+idle+iowait+irq+softirq = 965 ticks, steal left out
    assert r.system_ns == 965 * 10_000_000
    assert r.memory.usage == 10 * 1024**2
    assert r.memory.limit == MACHINE  # unlimited: the machine's memory, as moby reports
    assert r.memory.max_usage == 12 * 1024**2
    assert r.memory.stats["total_inactive_file"] == 1048576
    assert (r.pids, r.pids_limit) == (3, None)
    assert r.io_bytes == (
        BlkioEntry(8, 0, "Read", 4096),
        BlkioEntry(8, 0, "Write", 8192),
        BlkioEntry(8, 0, "Sync", 0),
    )
    assert r.networks == {
        "eth0": {
            "rx_bytes": 1296,
            "rx_packets": 16,
            "rx_errors": 1,
            "rx_dropped": 2,
            "tx_bytes": 868,
            "tx_packets": 10,
            "tx_errors": 3,
            "tx_dropped": 4,
        }
    }


def test_reading_from_files_v2_uses_unified_names_and_units() -> None:
    r = reading_from_files(
        V2_FILES,
        v2=True,
        time_ns=1,
        proc_stat=PROC_STAT,
        net_dev=None,
        clk_tck=100,
        online_cpus=4,
        machine_memory=MACHINE,
    )
    assert r.cpu == CpuReading(
        total_ns=2_500_000_000,
        user_ns=1_500_000_000,
        kernel_ns=700_000_000,
        periods=4,
        throttled_periods=1,
        throttled_ns=20_000,
    )
    assert (r.memory.usage, r.memory.limit) == (20 * 1024**2, 64 * 1024**2)
    assert r.memory.max_usage is None and r.memory.failcnt is None
    assert (r.pids, r.pids_limit) == (5, 100)
    assert r.io_bytes == (BlkioEntry(8, 0, "read", 4096), BlkioEntry(8, 0, "write", 1024))
    assert r.io_ops == (BlkioEntry(8, 0, "read", 2), BlkioEntry(8, 0, "write", 1))
    assert r.networks is None


def test_to_api_v1_has_dockers_shape() -> None:
    prev = v1_reading(time_ns=1_700_000_000_000_000_000)
    out = to_api(v1_reading(), prev, cid=CID, name="web")
    assert out["read"] == "2023-11-14T22:13:20.123Z"
    assert out["preread"] == "2023-11-14T22:13:20Z"
    assert out["name"] == "/web" and out["id"] == CID
    assert out["cpu_stats"] == {
        "cpu_usage": {
            "total_usage": 2_500_000_000,
            "percpu_usage": [1_500_000_000, 1_000_000_000],
            "usage_in_kernelmode": 700_000_000,
            "usage_in_usermode": 1_500_000_000,
        },
        "system_cpu_usage": 9_650_000_000,
        "online_cpus": 2,
        "throttling_data": {"periods": 10, "throttled_periods": 2, "throttled_time": 3000},
    }
    assert out["precpu_stats"] == out["cpu_stats"]
    assert out["memory_stats"] == {
        "usage": 10485760,
        "max_usage": 12582912,
        "stats": {"cache": 4096, "rss": 8192, "total_inactive_file": 1048576},
        "failcnt": 0,
        "limit": MACHINE,
    }
    assert out["pids_stats"] == {"current": 3}
    assert out["blkio_stats"]["io_service_bytes_recursive"][0] == {
        "major": 8,
        "minor": 0,
        "op": "Read",
        "value": 4096,
    }
    assert out["blkio_stats"]["io_queue_recursive"] is None
    assert set(out["networks"]) == {"eth0"}
    json.dumps(out)  # serialisable as is


def test_to_api_first_sample_has_empty_precpu_like_docker() -> None:
    out = to_api(v1_reading(), None, cid=CID, name="/web")
    assert out["name"] == "/web"
    assert out["preread"] == GO_ZERO_TIME
    assert out["precpu_stats"] == {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def test_to_api_not_running_is_gos_zero_value() -> None:
    out = to_api(None, None, cid=CID, name="idle")
    assert out["read"] == GO_ZERO_TIME
    assert out["memory_stats"] == {} and out["pids_stats"] == {}
    assert out["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert "networks" not in out
    assert all(v is None for v in out["blkio_stats"].values())


def test_to_api_without_networks_leaves_the_key_out() -> None:
    out = to_api(v1_reading(net_dev=None), None, cid=CID, name="x")
    assert "networks" not in out


def test_cpu_percent_is_share_of_host_times_cpus() -> None:
    prev = Reading(1, 10_000_000_000, 2, CpuReading(total_ns=1_000_000_000), MemoryReading())
    cur = Reading(2, 12_000_000_000, 2, CpuReading(total_ns=1_500_000_000), MemoryReading())
    # half a second of CPU over two seconds of host time on two CPUs: 50 %
    assert cpu_percent(cur, prev) == pytest.approx(50.0)
    assert cpu_percent(prev, cur) == 0.0  # negative deltas: 0, as the docker CLI


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max\n", None), ("100\n", 100), ("", None), (None, None), ("-1", -1)],
    ids=["max", "number", "empty", "missing", "negative"],
)
def test_parse_limit(text: str | None, expected: int | None) -> None:
    assert parse_limit(text) == expected


def test_parse_flat_keyed_skips_junk() -> None:
    assert parse_flat_keyed("a 1\nb x\n\nc  -2\n") == {"a": 1, "c": -2}


def test_parse_blkio_v1_skips_total_and_bad_lines() -> None:
    assert parse_blkio_v1("Total 0\n") == ()
    assert parse_blkio_v1("8:a Read 1\n8:0 Read 2\n") == (BlkioEntry(8, 0, "Read", 2),)


def test_parse_io_stat_v2_one_device_gives_read_and_write() -> None:
    io_bytes, io_ops = parse_io_stat_v2("253:1 rbytes=7 wbytes=9\nbad\n")
    assert io_bytes == (BlkioEntry(253, 1, "read", 7), BlkioEntry(253, 1, "write", 9))
    assert io_ops == (BlkioEntry(253, 1, "read", 0), BlkioEntry(253, 1, "write", 0))


def test_parse_proc_stat_without_cpu_line_is_zero() -> None:
    assert parse_proc_stat("intr 1 2\n", clk_tck=100) == 0


def test_parse_net_dev_leaves_out_loopback_and_headers() -> None:
    assert set(parse_net_dev(NET_DEV)) == {"eth0"}
    assert parse_net_dev(None) == {}


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_500_000_000, "1970-01-01T00:00:01.5Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
    ],
    ids=["epoch", "half", "nano"],
)
def test_go_time_trims_fraction_like_rfc3339nano(ns: int, text: str) -> None:
    assert go_time(ns) == text


@given(
    st.dictionaries(
        st.sampled_from(sorted(V1_FILES) + sorted(V2_FILES)), st.text(max_size=80), max_size=12
    ),
    st.booleans(),
    st.text(max_size=120),
)
def test_reading_from_files_never_raises_on_garbage(
    files: dict[str, str], v2: bool, proc_stat: str
) -> None:
    r = reading_from_files(
        files,
        v2=v2,
        time_ns=0,
        proc_stat=proc_stat,
        net_dev=proc_stat,
        clk_tck=100,
        online_cpus=1,
        machine_memory=MACHINE,
    )
    json.dumps(to_api(r, r, cid=CID, name="g"))
