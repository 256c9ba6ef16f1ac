"""Container statistics: raw cgroup and procfs text → Docker's stats JSON. Pure.

Theory of operation
-------------------
``GET /containers/{id}/stats`` answers one :class:`Reading` (or a stream of them, one a
second) in the shape of Docker's ``StatsResponse``. The I/O edge
(:mod:`supervisor.containers.sampler`) only reads files: the container's cgroup counter
files by name (:meth:`supervisor.runtime.cgroups.CgroupLayout.stats_files`),
``/proc/stat`` and ``/proc/<pid>/net/dev``. Everything else happens here:

* :func:`reading_from_files` parses cgroup v1 (``cpuacct.usage``, ``cpuacct.stat``,
  ``cpuacct.usage_percpu``, ``cpu.stat``, ``memory.usage_in_bytes``,
  ``memory.limit_in_bytes``, ``memory.stat``, ``pids.current``,
  ``blkio.throttle.io_service_bytes``...) or v2 (``cpu.stat``, ``memory.current``,
  ``memory.max``, ``memory.stat``, ``pids.current``, ``io.stat``) into a Reading.
* :func:`to_api` turns a Reading and the previous one into the JSON. Docker's rules:
  ``precpu_stats`` is the previous reading's ``cpu_stats`` (zeros for the first sample
  of a stream and for ``one-shot``), so a client computes CPU % as
  ``Δcontainer / Δsystem * online_cpus * 100`` (:func:`cpu_percent`, what the docker
  CLI does); ``system_cpu_usage`` is the sum of ``/proc/stat``'s first seven ``cpu``
  fields in nanoseconds; a memory limit above the machine's memory is reported as the
  machine's memory (moby ``stats_unix.go``), which is what ``MEM USAGE / LIMIT`` shows
  for an unlimited container; v2 reports no ``percpu_usage``, ``max_usage`` or
  ``failcnt`` and names block I/O operations ``read``/``write`` (v1: ``Read``...).
* A container that is not running gets Go's zero value (:func:`to_api` with no
  reading), as Docker answers ``stream=false`` for a stopped container.

Networks are the container's interfaces as ``/proc/<pid>/net/dev`` lists them inside its
namespace, without ``lo``; ``host`` and ``none`` networks report none (the key is left
out, as Docker's ``omitempty`` does).

Imports: standard library and attrs only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_NET_FIELDS = (
    "rx_bytes",
    "rx_packets",
    "rx_errors",
    "rx_dropped",
    "tx_bytes",
    "tx_packets",
    "tx_errors",
    "tx_dropped",
)
# /proc/net/dev columns after "iface:": 8 receive counters, then 8 transmit counters.
_NET_COLUMNS = {"rx_bytes": 0, "rx_packets": 1, "rx_errors": 2, "rx_dropped": 3}
_NET_COLUMNS |= {"tx_bytes": 8, "tx_packets": 9, "tx_errors": 10, "tx_dropped": 11}


@attrs.frozen
class CpuReading:
    total_ns: int = 0
    user_ns: int = 0
    kernel_ns: int = 0
    percpu_ns: tuple[int, ...] = ()  # cgroup v1 only
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@attrs.frozen
class MemoryReading:
    usage: int = 0
    limit: int = 0
    stats: Mapping[str, int] = attrs.field(factory=dict)
    max_usage: int | None = None  # cgroup v1 only
    failcnt: int | None = None  # cgroup v1 only


@attrs.frozen
class BlkioEntry:
    major: int
    minor: int
    op: str
    value: int

    def to_api(self) -> dict[str, Any]:
        return {"major": self.major, "minor": self.minor, "op": self.op, "value": self.value}


@attrs.frozen
class Reading:
    """One sample of a running container's counters."""

    time_ns: int
    system_ns: int
    online_cpus: int
    cpu: CpuReading
    memory: MemoryReading
    pids: int | None = None
    pids_limit: int | None = None
    io_bytes: tuple[BlkioEntry, ...] = ()
    io_ops: tuple[BlkioEntry, ...] = ()
    networks: Mapping[str, Mapping[str, int]] | None = None  # None: no networks to report


# -- parsers --------------------------------------------------------------------------


def _int(text: str | None, default: int = 0) -> int:
    if text is None:
        return default
    try:
        return int(text.strip())
    except ValueError:
        return default


def parse_limit(text: str | None) -> int | None:
    """A limit file's value: ``max`` (v2) or a missing file is None (unlimited)."""
    if text is None:
        return None
    value = text.strip()
    if value == "max" or not value.lstrip("-").isdecimal():
        return None
    return int(value)


def parse_flat_keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (``memory.stat``, ``cpu.stat``, ``cpuacct.stat``)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if key and value.lstrip("-").isdecimal():
            out[key] = int(value)
    return out


def parse_percpu(text: str | None) -> tuple[int, ...]:
    """``cpuacct.usage_percpu``: nanoseconds per CPU, space separated."""
    return tuple(int(v) for v in (text or "").split() if v.isdecimal())


def parse_blkio_v1(text: str | None) -> tuple[BlkioEntry, ...]:
    """``blkio.throttle.io_service_bytes``: ``8:0 Read 4096`` lines and a ``Total``."""
    out: list[BlkioEntry] = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue  # the "Total N" line
        major, _, minor = fields[0].partition(":")
        if major.isdecimal() and minor.isdecimal() and fields[2].isdecimal():
            out.append(BlkioEntry(int(major), int(minor), fields[1], int(fields[2])))
    return tuple(out)


def parse_io_stat_v2(text: str | None) -> tuple[tuple[BlkioEntry, ...], tuple[BlkioEntry, ...]]:
    """``io.stat`` (``8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...``): (bytes, operations),
    with the ``read``/``write`` op names moby uses for cgroup v2."""
    io_bytes: list[BlkioEntry] = []
    io_ops: list[BlkioEntry] = []
    for line in (text or "").splitlines():
        fields = line.split()
        if not fields or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        if not (major.isdecimal() and minor.isdecimal()):
            continue
        values = parse_flat_keyed("\n".join(f.replace("=", " ", 1) for f in fields[1:]))
        dev = (int(major), int(minor))
        io_bytes += [
            BlkioEntry(*dev, "read", values.get("rbytes", 0)),
            BlkioEntry(*dev, "write", values.get("wbytes", 0)),
        ]
        io_ops += [
            BlkioEntry(*dev, "read", values.get("rios", 0)),
            BlkioEntry(*dev, "write", values.get("wios", 0)),
        ]
    return tuple(io_bytes), tuple(io_ops)


def parse_proc_stat(text: str, *, clk_tck: int) -> int:
    """The host's total CPU time in ns: the first seven fields of ``/proc/stat``'s
    ``cpu`` line (user, nice, system, idle, iowait, irq, softirq), as moby sums them."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = sum(int(v) for v in fields[1:8] if v.isdecimal())
            return ticks * 1_000_000_000 // clk_tck
    return 0


def parse_net_dev(text: str | None) -> dict[str, dict[str, int]]:
    """``/proc/<pid>/net/dev``: counters per interface, ``lo`` left out."""
    out: dict[str, dict[str, int]] = {}
    for line in (text or "").splitlines():
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon or not name or name == "lo" or "|" in name:
            continue
        values = rest.split()
        if len(values) < 16 or not all(v.isdecimal() for v in values[:16]):
            continue
        out[name] = {key: int(values[i]) for key, i in _NET_COLUMNS.items()}
    return out


def cpu_v1(files: Mapping[str, str], *, clk_tck: int) -> CpuReading:
    ticks = parse_flat_keyed(files.get("cpuacct.stat"))
    throttle = parse_flat_keyed(files.get("cpu.stat"))
    tick_ns = 1_000_000_000 // clk_tck
    return CpuReading(
        total_ns=_int(files.get("cpuacct.usage")),
        user_ns=ticks.get("user", 0) * tick_ns,
        kernel_ns=ticks.get("system", 0) * tick_ns,
        percpu_ns=parse_percpu(files.get("cpuacct.usage_percpu")),
        periods=throttle.get("nr_periods", 0),
        throttled_periods=throttle.get("nr_throttled", 0),
        throttled_ns=throttle.get("throttled_time", 0),
    )


def cpu_v2(files: Mapping[str, str]) -> CpuReading:
    stat = parse_flat_keyed(files.get("cpu.stat"))
    return CpuReading(
        total_ns=stat.get("usage_usec", 0) * 1000,
        user_ns=stat.get("user_usec", 0) * 1000,
        kernel_ns=stat.get("system_usec", 0) * 1000,
        periods=stat.get("nr_periods", 0),
        throttled_periods=stat.get("nr_throttled", 0),
        throttled_ns=stat.get("throttled_usec", 0) * 1000,
    )


def _capped(limit: int | None, machine_memory: int) -> int:
    if limit is None or limit <= 0 or (machine_memory > 0 and limit > machine_memory):
        return machine_memory
    return limit


def memory_v1(files: Mapping[str, str], *, machine_memory: int) -> MemoryReading:
    return MemoryReading(
        usage=_int(files.get("memory.usage_in_bytes")),
        limit=_capped(parse_limit(files.get("memory.limit_in_bytes")), machine_memory),
        stats=parse_flat_keyed(files.get("memory.stat")),
        max_usage=_int(files.get("memory.max_usage_in_bytes")),
        failcnt=_int(files.get("memory.failcnt")),
    )


def memory_v2(files: Mapping[str, str], *, machine_memory: int) -> MemoryReading:
    return MemoryReading(
        usage=_int(files.get("memory.current")),
        limit=_capped(parse_limit(files.get("memory.max")), machine_memory),
        stats=parse_flat_keyed(files.get("memory.stat")),
    )


def reading_from_files(
    files: Mapping[str, str],
    *,
    v2: bool,
    time_ns: int,
    proc_stat: str,
    net_dev: str | None,
    clk_tck: int,
    online_cpus: int,
    machine_memory: int,
) -> Reading:
    """Parse one sample.

    Args:
        files: the cgroup counter files' text by file name (missing ones left out).
        v2: the unified hierarchy's names and units, else v1's.
        time_ns: when the files were read (wall clock).
        proc_stat: ``/proc/stat``.
        net_dev: the container's ``/proc/<pid>/net/dev``; None for no networks.
        clk_tck: ``USER_HZ``, the unit of ``/proc/stat`` and ``cpuacct.stat``.
        online_cpus: the host's online CPUs.
        machine_memory: the host's memory in bytes (the limit of an unlimited container).
    """
    if v2:
        cpu = cpu_v2(files)
        memory = memory_v2(files, machine_memory=machine_memory)
        io_bytes, io_ops = parse_io_stat_v2(files.get("io.stat"))
    else:
        cpu = cpu_v1(files, clk_tck=clk_tck)
        memory = memory_v1(files, machine_memory=machine_memory)
        io_bytes = parse_blkio_v1(files.get("blkio.throttle.io_service_bytes"))
        io_ops = parse_blkio_v1(files.get("blkio.throttle.io_serviced"))
    pids = files.get("pids.current")
    return Reading(
        time_ns=time_ns,
        system_ns=parse_proc_stat(proc_stat, clk_tck=clk_tck),
        online_cpus=online_cpus,
        cpu=cpu,
        memory=memory,
        pids=_int(pids) if pids is not None else None,
        pids_limit=parse_limit(files.get("pids.max")),
        io_bytes=io_bytes,
        io_ops=io_ops,
        networks=parse_net_dev(net_dev) if net_dev is not None else None,
    )


# -- the JSON -------------------------------------------------------------------------


def go_time(time_ns: int) -> str:
    """Go's ``time.Time`` JSON (RFC 3339 with nanoseconds, trailing zeros trimmed), UTC."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{frac}Z" if frac else f"{stamp}Z"


def _cpu_api(reading: Reading | None) -> dict[str, Any]:
    if reading is None:
        return {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }
    cpu = reading.cpu
    usage: dict[str, Any] = {"total_usage": cpu.total_ns}
    if cpu.percpu_ns:
        usage["percpu_usage"] = list(cpu.percpu_ns)
    usage["usage_in_kernelmode"] = cpu.kernel_ns
    usage["usage_in_usermode"] = cpu.user_ns
    return {
        "cpu_usage": usage,
        "system_cpu_usage": reading.system_ns,
        "online_cpus": reading.online_cpus,
        "throttling_data": {
            "periods": cpu.periods,
            "throttled_periods": cpu.throttled_periods,
            "throttled_time": cpu.throttled_ns,
        },
    }


def _blkio_api(reading: Reading | None) -> dict[str, Any]:
    keys = (
        "io_service_bytes_recursive",
        "io_serviced_recursive",
        "io_queue_recursive",
        "io_service_time_recursive",
        "io_wait_time_recursive",
        "io_merged_recursive",
        "io_time_recursive",
        "sectors_recursive",
    )
    out: dict[str, Any] = dict.fromkeys(keys)
    if reading is not None:
        out["io_service_bytes_recursive"] = [e.to_api() for e in reading.io_bytes]
        out["io_serviced_recursive"] = [e.to_api() for e in reading.io_ops]
    return out


def _memory_api(reading: Reading | None) -> dict[str, Any]:
    if reading is None:
        return {}
    mem = reading.memory
    out: dict[str, Any] = {"usage": mem.usage}
    if mem.max_usage is not None:
        out["max_usage"] = mem.max_usage
    out["stats"] = dict(mem.stats)
    if mem.failcnt is not None:
        out["failcnt"] = mem.failcnt
    out["limit"] = mem.limit
    return out


def _pids_api(reading: Reading | None) -> dict[str, Any]:
    if reading is None or reading.pids is None:
        return {}
    out = {"current": reading.pids}
    if reading.pids_limit is not None:
        out["limit"] = reading.pids_limit
    return out


def to_api(
    reading: Reading | None, previous: Reading | None, *, cid: str, name: str
) -> dict[str, Any]:
    """Docker's ``StatsResponse`` for ``reading`` (None: a container that is not
    running, Go's zero value), with ``previous`` as ``precpu_stats``/``preread``."""
    out: dict[str, Any] = {
        "read": go_time(reading.time_ns) if reading is not None else GO_ZERO_TIME,
        "preread": go_time(previous.time_ns) if previous is not None else GO_ZERO_TIME,
        "pids_stats": _pids_api(reading),
        "blkio_stats": _blkio_api(reading),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_api(reading),
        "precpu_stats": _cpu_api(previous),
        "memory_stats": _memory_api(reading),
        "name": "/" + name.lstrip("/"),
        "id": cid,
    }
    if reading is not None and reading.networks:
        out["networks"] = {
            ifname: {key: counters.get(key, 0) for key in _NET_FIELDS}
            for ifname, counters in sorted(reading.networks.items())
        }
    return out


def cpu_percent(current: Reading, previous: Reading) -> float:
    """The CPU % a client computes from two readings (docker CLI
    ``calculateCPUPercentUnix``): the container's share of the host's CPU time between
    them, times the online CPUs; 0 when either delta is not positive."""
    cpu_delta = current.cpu.total_ns - previous.cpu.total_ns
    system_delta = current.system_ns - previous.system_ns
    cpus = current.online_cpus or len(current.cpu.percpu_ns)
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * cpus * 100.0
