#!/usr/bin/env python3
"""Networking figures for issue 4: berthd's published ports and bridge vs dockerd's.

Prints figures next to their targets; never asserts on timing.

How to run (as root; the project's virtualenv python, because berthd runs from it)::

    make bench                                   # among the other benchmarks
    .venv/bin/python -m tests.bench.bench_net
    .venv/bin/python -m tests.bench.bench_net --rounds 3 --wrk-seconds 3 --skip-range-dockerd

Everything runs inside a network namespace made for the run (``ip netns add``): a private
berthd (own data root, exec root and socket under a temporary directory, as
tests/daemon.py starts it) and a private dockerd (bench_run.py's, but with its default
bridge, iptables and the userland proxy on, so published ports go through docker-proxy)
are started there through ``nsenter --net``, and every client (curl, wrk) runs there
too. A missing dockerd is first installed with ``apt-get install docker.io``
(bench_run.py's way; ``--no-install`` never does), before the namespace exists: there is
no way out of it. Clients connect to ``127.0.0.1:<published port>``: dockerd's DNAT rules skip loopback
destinations when the userland proxy is on, so that traffic really crosses docker-proxy,
and berth publishes only through its in-process proxies.

Cases (one container serving files with busybox httpd per engine, published on port
18080 by berthd and 18081 by dockerd):

1. bulk: ``curl`` of a 100 MiB file through berth's published port, through
   docker-proxy, and directly to the berth container's address (median of ``--rounds``
   after one warm-up round). Targets: >= 1.5x docker-proxy, >= 0.85x direct.
2. small requests: ``wrk`` on a 1 KiB file, requests/s through berth's published port vs
   docker-proxy (target >= 1x). Prints "wrk missing" and goes on if wrk is absent
   (``make setup`` installs it).
3. ``docker run -d -p 20000-20999:20000-20999 busybox sleep 3600``: time for the command
   to return and berthd's RSS increase (targets <= 2 s, <= 30 MiB); for dockerd the same
   time (capped by ``--range-timeout``) and the total RSS of its docker-proxy processes.
4. ``docker run --rm busybox true`` on the default bridge, berthd vs dockerd (target
   <= 0.25x), timed with bench_run.py's helpers.

Notes under the table give each path's spread, the forwarder's CPU per GB and per request
(berthd's or docker-proxy's: steadier than rates when other work shares the machine), the
sockets listening in the 1000-port range, berthd's runtime and any warnings in its log,
and the load average.

Clean-up, also on failure and on Ctrl-C/SIGTERM: containers removed, both daemons
stopped, mounts under the temporary directories unmounted, the directories removed,
leftover processes in the namespace killed and the namespace deleted. The work happens in
a child process (``nsenter ... python -m tests.bench.bench_net --inside``) in its own
session, so that a Ctrl-C reaches only the parent, which asks the child to clean up and
then removes the namespace whatever happened to the child.

Standard library only (the daemons it starts need the virtualenv, the script does not).
"""

# A synchronous, stdlib-only script (no trio), like bench_run.py: time.sleep is fine here.

from __future__ import annotations

import argparse
import contextlib
import enum
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a file rather than with -m
    sys.path.insert(0, str(REPO))

from tests.bench import bench_run as br  # noqa: E402
from tests.daemon import Daemon  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import FrameType

DOCKER = br.DOCKER
IMAGE = br.IMAGE
NETNS_DIR = Path("/run/netns")
BERTH_WEB_PORT = 18080
DOCKER_WEB_PORT = 18081
RANGE = (20000, 20999)
BIG_MIB = 100
BIG_BYTES = BIG_MIB << 20
SMALL_BYTES = 1024
DOCKER_CGROUPS = [Path(f"/sys/fs/cgroup/{c}/docker") for c in (
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd",
    "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc", "unified",
)]  # fmt: skip
WEB_NAME = "bench-net-web"
RANGE_NAME = "bench-net-range"
# The file server: both files written into the container's own /tmp, then busybox httpd.
WEB_CMD = [
    "sh", "-c",
    "mkdir -p /tmp/www && cd /tmp/www"
    f" && dd if=/dev/zero of=big bs=1048576 count={BIG_MIB} 2>/dev/null"
    f" && dd if=/dev/zero of=small bs={SMALL_BYTES} count=1 2>/dev/null"
    " && exec httpd -f -p 80 -h /tmp/www",
]  # fmt: skip

log = br.log


class BenchError(RuntimeError):
    """A case could not be measured (its row says why; the other cases go on)."""


# -- the table (pure) ---------------------------------------------------------------------


class Goal(enum.StrEnum):
    RATIO_AT_LEAST = "ratio>="  # berth / other >= value (more is better)
    RATIO_AT_MOST = "ratio<="  # berth / other <= value (less is better)
    AT_MOST = "<="  # berth <= value, whatever the other engine does


@dataclass(frozen=True)
class Target:
    goal: Goal
    value: float
    unit: str = ""  # for AT_MOST

    def __str__(self) -> str:
        if self.goal is Goal.AT_MOST:
            return f"<= {self.value:g} {self.unit}"
        return f"{'>=' if self.goal is Goal.RATIO_AT_LEAST else '<='} {self.value:g}x"

    def met(self, berth: float | None, other: float | None) -> bool | None:
        """None when it cannot be told (a figure is missing)."""
        if berth is None:
            return None
        if self.goal is Goal.AT_MOST:
            return berth <= self.value
        if not other:
            return None
        ratio = berth / other
        return ratio >= self.value if self.goal is Goal.RATIO_AT_LEAST else ratio <= self.value


@dataclass(frozen=True)
class Row:
    case: str
    unit: str
    other_label: str  # what berth is compared with: docker-proxy, direct, dockerd
    target: Target
    berth: float | None = None
    other: float | None = None
    why: str = ""  # why a figure is missing

    @property
    def ratio(self) -> float | None:
        return self.berth / self.other if self.berth is not None and self.other else None

    @property
    def verdict(self) -> str:
        met = self.target.met(self.berth, self.other)
        return "not measured" if met is None else "met" if met else "MISSED"


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def render_table(rows: Sequence[Row]) -> list[str]:
    header = ("case", "unit", "berth", "compared with", "other", "ratio", "target", "result")
    cells = [
        (
            r.case,
            r.unit,
            fmt(r.berth),
            r.other_label,
            fmt(r.other),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            str(r.target),
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    numeric = {2, 4, 5}
    lines = []
    for c in [header, *cells]:
        parts = [
            c[i].rjust(widths[i]) if i in numeric else c[i].ljust(widths[i])
            for i in range(len(header))
        ]
        lines.append("  ".join(parts).rstrip())
    lines[1:1] = ["  ".join("-" * w for w in widths)]
    for r in rows:
        if r.why:
            lines.append(f"  {r.case} ({r.other_label}): {r.why}")
    return lines


#: Every row of the table, unmeasured; each case fills in its own with ``replace``.
BULK = f"bulk {BIG_MIB} MiB, curl"
BULK_VS_PROXY = Row(BULK, "MB/s", "docker-proxy", Target(Goal.RATIO_AT_LEAST, 1.5))
BULK_VS_DIRECT = Row(BULK, "MB/s", "direct (container IP)", Target(Goal.RATIO_AT_LEAST, 0.85))
SMALL = Row(f"{SMALL_BYTES} B requests, wrk", "req/s", "docker-proxy",
            Target(Goal.RATIO_AT_LEAST, 1.0))  # fmt: skip
RANGE_TIME = Row("run -d -p 20000-20999 (1000 ports)", "s", "dockerd",
                 Target(Goal.AT_MOST, 2.0, "s"))  # fmt: skip
RANGE_RSS = Row("  RSS: berthd growth / docker-proxies", "MiB", "dockerd",
                Target(Goal.AT_MOST, 30.0, "MiB"))  # fmt: skip
RUN_RM = Row("run --rm busybox true (bridge)", "ms", "dockerd", Target(Goal.RATIO_AT_MOST, 0.25))


# -- /proc --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def my_netns() -> str:
    return os.readlink("/proc/self/ns/net")


def processes_named(comm: str) -> list[int]:
    """Processes called ``comm`` in this network namespace (so never the host's)."""
    mine = my_netns()
    found = []
    for pid in br.all_pids():
        try:
            if (
                Path(f"/proc/{pid}/comm").read_text().strip() == comm
                and os.readlink(f"/proc/{pid}/ns/net") == mine
            ):
                found.append(pid)
        except OSError:
            continue
    return found


def listening_ports(first: int, last: int) -> int:
    """TCP sockets listening on a port of ``[first, last]`` in this namespace."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "0A" and first <= port <= last:
                    count += 1
    return count


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def rss_mib(pids: Sequence[int], metric: str = "VmRSS") -> float:
    return sum(br.status_kib(pid, metric) for pid in pids) / 1024


# -- engines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    name: str  # berthd, dockerd
    host: str  # unix://...
    pid: int  # the daemon's own process
    log_path: Path


def docker(engine: Engine, *argv: str, timeout: float = 120) -> str:
    """Run the docker CLI against ``engine``; its stdout. Raises BenchError on failure."""
    try:
        proc = br.run_cli([DOCKER, *argv], engine.host, timeout=timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{engine.name}: {exc}") from exc
    return proc.stdout.decode(errors="replace").strip()


def remove_containers(engine: Engine, *names: str, timeout: float = 300) -> None:
    br.run_cli([DOCKER, "rm", "-f", *names], engine.host, check=False, timeout=timeout)


def start_berthd(stack: contextlib.ExitStack, workdir: Path) -> Engine:
    root = workdir / "berth"
    root.mkdir()
    daemon = Daemon(root)
    stack.callback(daemon.cleanup)  # SIGTERM (stops its containers), unmount, rmtree
    log(f"starting berthd under {root}")
    # tests/daemon.py asks for debug logs; a benchmark wants the daemon's normal level.
    daemon.start("--log-level", "info")
    assert daemon.proc is not None
    engine = Engine("berthd", daemon.host, daemon.proc.pid, daemon.log_path)
    br.ensure_image(engine.host)
    return engine


class NetDockerd(br.Dockerd):
    """bench_run.py's private dockerd with its default bridge, iptables and the userland
    proxy on: what a stock dockerd does with ``-p``."""

    def __init__(self, dockerd: str, storage_driver: str) -> None:
        super().__init__(dockerd, storage_driver)
        isolated = {"--iptables=false", "--ip6tables=false", "--bridge=none"}
        self.argv = [a for a in self.argv if a not in isolated]
        self.argv.append("--userland-proxy=true")
        # dockerd makes /sys/fs/cgroup/<controller>/docker whatever its roots are.
        self._new_cgroups = [p for p in DOCKER_CGROUPS if not p.exists()]

    def stop(self) -> None:
        super().stop()
        for path in self._new_cgroups:
            with contextlib.suppress(OSError):  # not empty: not ours alone, keep it
                path.rmdir()


def start_dockerd(stack: contextlib.ExitStack, args: argparse.Namespace) -> Engine | str:
    """A running dockerd (stopped by ``stack``) or why there is none."""
    binary = shutil.which("dockerd")
    if binary is None:  # the parent installs it (no way to the package mirror in here)
        return "dockerd not installed"
    drivers = ["overlay2", "vfs"] if args.storage_driver == "auto" else [args.storage_driver]
    reasons = []
    for driver in drivers:
        daemon = NetDockerd(binary, driver)
        try:
            daemon.start()
            br.ensure_image(daemon.host)
            # A storage driver can start yet fail to mount a rootfs: try one container.
            br.run_cli([DOCKER, "run", "--rm", IMAGE, "true"], daemon.host)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            reasons.append(f"{driver}: {exc}")
            log(f"dockerd with {driver} failed: {exc}")
            daemon.stop()
            continue
        stack.callback(daemon.stop)
        assert daemon.proc is not None
        log(f"dockerd {daemon.version()} with {driver}, bridge, iptables and docker-proxy")
        return Engine("dockerd", daemon.host, daemon.proc.pid, daemon.log_path)
    return "; ".join(reasons)


# -- clients ------------------------------------------------------------------------------


def http_status(host: str, port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
    except OSError:
        return None
    finally:
        conn.close()
    return resp.status


def wait_http(host: str, port: int, path: str, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while http_status(host, port, path) != 200:
        if time.monotonic() > deadline:
            raise BenchError(f"http://{host}:{port}{path} not serving after {timeout:.0f} s")
        time.sleep(0.1)


def curl_mbps(url: str, size: int) -> float:
    """Download ``url`` to /dev/null with curl; MB/s (10^6 bytes per second)."""
    argv = ["curl", "-s", "-o", "/dev/null", "--max-time", "120",
            "-w", "%{http_code} %{size_download} %{speed_download}", url]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=150, check=False)
    parts = proc.stdout.split()
    if proc.returncode != 0 or len(parts) != 3 or parts[0] != "200" or int(parts[1]) != size:
        raise BenchError(f"curl {url}: exit {proc.returncode}, got {proc.stdout!r}")
    return float(parts[2]) / 1e6


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    errors: str  # "" or wrk's "Socket errors" / "Non-2xx" lines


def wrk(url: str, *, seconds: int, threads: int, connections: int) -> WrkResult:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = re.search(r"Requests/sec:\s*([\d.]+)", proc.stdout)
    total = re.search(r"(\d+) requests in", proc.stdout)
    if proc.returncode != 0 or found is None or total is None:
        raise BenchError(f"wrk {url}: exit {proc.returncode}: {proc.stdout}{proc.stderr}")
    errors = [
        line.strip()
        for line in proc.stdout.splitlines()
        if line.strip().startswith(("Socket errors", "Non-2xx"))
    ]
    return WrkResult(float(found.group(1)), int(total.group(1)), "; ".join(errors))


# -- cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Web:
    """A busybox httpd container: where to reach it published and directly."""

    engine: Engine
    port: int  # published on 0.0.0.0 in the namespace
    ip: str  # the container's address on the engine's default bridge

    def url(self, path: str, *, direct: bool = False) -> str:
        return f"http://{self.ip}:80{path}" if direct else f"http://127.0.0.1:{self.port}{path}"


def start_web(engine: Engine, port: int) -> Web:
    docker(engine, "run", "-d", "--name", WEB_NAME, "-p", f"{port}:80", IMAGE, *WEB_CMD)
    ip = docker(
        engine,
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        WEB_NAME,
    ).split()
    if not ip:
        raise BenchError(f"{engine.name}: container {WEB_NAME} has no address")
    web = Web(engine, port, ip[0])
    wait_http(web.ip, 80, "/small")
    wait_http("127.0.0.1", web.port, "/small")
    log(f"{engine.name}: httpd at {web.ip}:80, published on 127.0.0.1:{port}")
    return web


def docker_proxy_for(port: int) -> list[int]:
    return [
        pid
        for pid in processes_named("docker-proxy")
        if str(port) in br.cmdline(pid)  # -host-port <port>
    ]


@dataclass(frozen=True)
class Route:
    """One way to reach a web container: through its published port, or direct."""

    name: str
    web: Web
    direct: bool

    def url(self, path: str) -> str:
        return self.web.url(path, direct=self.direct)

    def forwarders(self) -> list[int]:
        """The processes that carry this route's bytes: berthd, docker-proxy or none."""
        if self.direct:
            return []
        if self.web.engine.name == "berthd":
            return [self.web.engine.pid]
        return docker_proxy_for(self.web.port)


def routes(berth: Web, dockerd: Web | None, *, dockerd_direct: bool) -> list[Route]:
    found = [Route("berth published", berth, False), Route("direct", berth, True)]
    if dockerd is not None:
        found.append(Route("docker-proxy", dockerd, False))
        if dockerd_direct:
            found.append(Route("dockerd direct", dockerd, True))
    return found


def bench_bulk(berth: Web, dockerd: Web | None, *, rounds: int, notes: list[str]) -> list[Row]:
    paths = routes(berth, dockerd, dockerd_direct=True)
    speeds: dict[str, list[float]] = {r.name: [] for r in paths}
    cpu = dict.fromkeys(speeds, 0.0)
    log(f"bulk: {BIG_MIB} MiB per transfer, 1 warm-up + {rounds} rounds of {len(paths)} paths")
    for i in range(rounds + 1):
        for route in paths:  # interleaved: a slow phase of the machine hits every path
            pids = route.forwarders()
            before = sum(cpu_seconds(p) for p in pids)
            speed = curl_mbps(route.url("/big"), BIG_BYTES)
            if i > 0:
                speeds[route.name].append(speed)
                cpu[route.name] += sum(cpu_seconds(p) for p in pids) - before
    median = {name: statistics.median(v) for name, v in speeds.items()}
    gb = BIG_BYTES * rounds / 1e9
    for route in paths:
        values = speeds[route.name]
        spent = "" if route.direct else f"; forwarder CPU {cpu[route.name] / gb:.2f} s/GB"
        notes.append(
            f"bulk {route.name}: median {median[route.name]:.0f} MB/s, min {min(values):.0f}, "
            f"max {max(values):.0f} over {len(values)} rounds{spent}"
        )
    if dockerd is not None:
        notes.append(
            f"{len(docker_proxy_for(dockerd.port))} docker-proxy processes serve port "
            f"{dockerd.port}; their nonzero CPU shows the traffic really crossed them"
        )
    ours = median["berth published"]
    return [
        replace(BULK_VS_PROXY, berth=ours, other=median.get("docker-proxy"),
                why="" if dockerd else "no dockerd"),
        replace(BULK_VS_DIRECT, berth=ours, other=median["direct"]),
    ]  # fmt: skip


def bench_small(
    berth: Web, dockerd: Web | None, args: argparse.Namespace, notes: list[str]
) -> list[Row]:
    if shutil.which("wrk") is None:
        print("wrk missing", flush=True)
        return [replace(SMALL, why="wrk missing (apt-get install wrk; make setup installs it)")]
    paths = routes(berth, dockerd, dockerd_direct=False)
    rates: dict[str, list[float]] = {r.name: [] for r in paths}
    cpu = dict.fromkeys(rates, 0.0)
    requests = dict.fromkeys(rates, 0)
    log(f"small requests: wrk -t{args.wrk_threads} -c{args.wrk_connections} "
        f"-d{args.wrk_seconds}s, {args.wrk_rounds} rounds")  # fmt: skip
    for _ in range(args.wrk_rounds):
        for route in paths:
            pids = route.forwarders()
            before = sum(cpu_seconds(p) for p in pids)
            result = wrk(
                route.url("/small"),
                seconds=args.wrk_seconds,
                threads=args.wrk_threads,
                connections=args.wrk_connections,
            )
            cpu[route.name] += sum(cpu_seconds(p) for p in pids) - before
            requests[route.name] += result.requests
            rates[route.name].append(result.rps)
            if result.errors:
                notes.append(f"wrk {route.name}: {result.errors}")
    median = {name: statistics.median(v) for name, v in rates.items()}
    for route in paths:
        shown = ", ".join(f"{v:.0f}" for v in rates[route.name])
        per_request = cpu[route.name] * 1e6 / max(1, requests[route.name])
        spent = "" if route.direct else f"; forwarder CPU {per_request:.0f} us/request"
        notes.append(f"wrk {route.name}: median {median[route.name]:.0f} req/s ({shown}){spent}")
    return [replace(SMALL, berth=median["berth published"], other=median.get("docker-proxy"),
                    why="" if dockerd else "no dockerd")]  # fmt: skip


@dataclass(frozen=True)
class RangeFigures:
    seconds: float | None  # None: capped
    rss_mib: float  # the engine's growth (berthd) or the docker-proxies' total (dockerd)
    listening: int
    detail: str


def publish_range(engine: Engine, *, timeout: float) -> RangeFigures:
    first, last = RANGE
    spec = f"{first}-{last}:{first}-{last}"
    rss_before = rss_mib([engine.pid])
    log(f"{engine.name}: docker run -d -p {spec} (capped at {timeout:.0f} s)")
    start = time.perf_counter()
    seconds: float | None
    try:
        br.run_cli(
            [DOCKER, "run", "-d", "--name", RANGE_NAME, "-p", spec, IMAGE, "sleep", "3600"],
            engine.host,
            timeout=timeout,
        )
        seconds = time.perf_counter() - start
    except subprocess.TimeoutExpired:
        seconds = None
    except RuntimeError as exc:
        raise BenchError(f"{engine.name}: {exc}") from exc
    time.sleep(1)  # let the allocator settle before reading RSS
    grown = rss_mib([engine.pid]) - rss_before
    listening = listening_ports(first, last)
    if engine.name == "berthd":
        detail = f"berthd VmRSS {rss_before:.1f} -> {rss_before + grown:.1f} MiB"
        return RangeFigures(seconds, grown, listening, detail)
    proxies = processes_named("docker-proxy")
    total = rss_mib(proxies)
    detail = (
        f"{len(proxies)} docker-proxy processes, VmRSS total {total:.0f} MiB, Pss total "
        f"{rss_mib(proxies, 'Pss'):.0f} MiB; dockerd itself grew {grown:.1f} MiB"
    )
    return RangeFigures(seconds, total, listening, detail)


def bench_range(
    berth: Engine | None, dockerd: Engine | None, args: argparse.Namespace, notes: list[str]
) -> list[Row]:
    figures: dict[str, RangeFigures] = {}
    why = ""
    for engine in (berth, dockerd):
        if engine is None:
            continue
        if engine.name == "dockerd" and args.skip_range_dockerd:
            why = "dockerd skipped (--skip-range-dockerd)"
            continue
        try:
            figures[engine.name] = publish_range(engine, timeout=args.range_timeout)
        finally:
            start = time.perf_counter()
            remove_containers(engine, RANGE_NAME, timeout=max(300.0, args.range_timeout))
            log(f"{engine.name}: rm -f took {time.perf_counter() - start:.1f} s")
    for name, f in figures.items():
        shown = "capped" if f.seconds is None else f"{f.seconds:.2f} s"
        notes.append(f"1000-port run -d on {name}: {shown}, {f.listening} listening sockets "
                     f"in the range; {f.detail}")  # fmt: skip
    ours, theirs = figures.get("berthd"), figures.get("dockerd")
    if theirs is not None and theirs.seconds is None:
        why = f"dockerd capped at {args.range_timeout:.0f} s (--range-timeout)"
    return [
        replace(
            RANGE_TIME,
            berth=ours.seconds if ours else None,
            other=theirs.seconds if theirs else None,
            why=why,
        ),
        replace(
            RANGE_RSS,
            berth=ours.rss_mib if ours else None,
            other=theirs.rss_mib if theirs else None,
        ),
    ]


def bench_run_rm(
    berth: Engine | None, dockerd: Engine | None, args: argparse.Namespace
) -> list[Row]:
    argv = [DOCKER, "run", "--rm", IMAGE, "true"]
    timing = {"runs": args.runs, "warmup": args.warmup}
    results = {
        e.name: br.try_time(f"docker -> {e.name} (default bridge)", argv, e.host, **timing)
        for e in (berth, dockerd)
        if e is not None
    }
    medians = {name: r.median if r.samples_ms else None for name, r in results.items()}
    why = "; ".join(f"{name}: {r.skipped}" for name, r in results.items() if r.skipped)
    return [replace(RUN_RM, berth=medians.get("berthd"), other=medians.get("dockerd"), why=why)]


# -- the run inside the namespace -----------------------------------------------------------


def _attempt(
    case: str, run: Callable[[], list[Row]], blanks: Sequence[Row], notes: list[str]
) -> list[Row]:
    """The rows ``run`` measured, or ``blanks`` saying why it failed (the run goes on)."""
    try:
        return run()
    except (BenchError, RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        log(f"{case} failed: {exc}")
        notes.append(f"{case} failed: {exc}")
        return [replace(b, why=f"failed: {str(exc)[:200]}") for b in blanks]


def berthd_log_notes(path: Path) -> list[str]:
    """berthd's runtime, and its warnings and errors during the run (JSON log lines)."""
    notes = []
    problems: dict[str, int] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return [f"berthd log unreadable: {exc}"]
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "daemon.starting":
            notes.append(f"berthd runtime {entry.get('runtime')}, cgroup v"
                         f"{entry.get('cgroup_version')}")  # fmt: skip
        if entry.get("level") in ("warning", "error", "critical"):
            key = f"{entry.get('level')} {entry.get('event')}"
            problems[key] = problems.get(key, 0) + 1
    notes += [f"berthd log: {count} x {key}" for key, count in sorted(problems.items())]
    return notes


def _remove_all(engines: Sequence[Engine]) -> None:
    for engine in engines:
        remove_containers(engine, WEB_NAME, RANGE_NAME)


def run_inside(args: argparse.Namespace) -> int:
    """All cases, in the namespace this process was started in; prints the table."""
    signal.signal(signal.SIGTERM, _interrupt)
    rows: list[Row] = []
    notes: list[str] = []
    load_at_start = load_average()
    with contextlib.ExitStack() as stack:
        berth = start_berthd(stack, Path(args.workdir))
        started = "--skip-dockerd" if args.skip_dockerd else start_dockerd(stack, args)
        dockerd = started if isinstance(started, Engine) else None
        if dockerd is None:
            notes.append(f"no dockerd: {started}")
        engines = [berth] if dockerd is None else [berth, dockerd]
        stack.callback(_remove_all, engines)  # runs before the daemons stop

        webs: dict[str, Web] = {}
        for engine, port in ((berth, BERTH_WEB_PORT), (dockerd, DOCKER_WEB_PORT)):
            if engine is not None:
                try:
                    webs[engine.name] = start_web(engine, port)
                except BenchError as exc:
                    notes.append(f"web container on {engine.name}: {exc}")
        wb, wd = webs.get("berthd"), webs.get("dockerd")
        if wb is None:
            why = "no web container on berthd"
            rows += [replace(r, why=why) for r in (BULK_VS_PROXY, BULK_VS_DIRECT, SMALL)]
        else:
            rows += _attempt(
                "bulk",
                lambda: bench_bulk(wb, wd, rounds=args.rounds, notes=notes),
                (BULK_VS_PROXY, BULK_VS_DIRECT),
                notes,
            )
            rows += _attempt(
                "small requests", lambda: bench_small(wb, wd, args, notes), (SMALL,), notes
            )
        for engine in engines:
            remove_containers(engine, WEB_NAME)
        rows += _attempt(
            "port range",
            lambda: bench_range(berth, dockerd, args, notes),
            (RANGE_TIME, RANGE_RSS),
            notes,
        )
        rows += bench_run_rm(berth, dockerd, args)

        notes += berthd_log_notes(berth.log_path)
        notes.append(
            f"load average at start {load_at_start}, at the end {load_average()} on "
            f"{os.cpu_count()} CPUs (anything else running skews the figures)"
        )
        print()
        print("\n".join(render_table(rows)))
        print()
        for note in notes:
            print(f"note: {note}")
        sys.stdout.flush()
        log("cleaning up")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as Ctrl-C, once: a second one must not cut the clean-up short."""
    del frame
    signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


# -- the namespace (parent process) ---------------------------------------------------------


def run_ip(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)


def kill_namespace_processes(netns: str) -> None:
    """Anything still running in the namespace was started by this run: end it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in run_ip("netns", "pids", netns).stdout.split()]
        for pid in pids:
            log(f"leftover process {pid} {' '.join(br.cmdline(pid))[:100]}: {sig.name}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if not pids:
            return
        time.sleep(2)


def unmount_below(top: Path) -> None:
    prefix = f"{top}/"
    points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for point in sorted(set(points), key=len, reverse=True):
        log(f"unmounting leftover {point}")
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@contextlib.contextmanager
def bench_namespace() -> Iterator[tuple[str, Path]]:
    """A fresh network namespace (loopback up) and a work directory; both removed after,
    with whatever the child left in them."""
    netns = f"berth-bench-{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-net-", dir="/tmp"))  # short socket paths
    try:
        made = run_ip("netns", "add", netns)
        if made.returncode != 0:
            raise BenchError(f"ip netns add {netns}: {made.stderr.strip()}")
        run_ip("-n", netns, "link", "set", "lo", "up")
        yield netns, workdir
    finally:
        kill_namespace_processes(netns)
        if (NETNS_DIR / netns).exists():
            log(f"deleting network namespace {netns}")
            run_ip("netns", "del", netns)
        unmount_below(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def run_outside(argv: Sequence[str]) -> int:
    """Make the namespace, run this script inside it (``--inside``), clean up."""
    if os.geteuid() != 0:
        return _fail("run as root: network namespaces, iptables and both daemons need it")
    for tool in ("ip", "nsenter", "curl", DOCKER):
        if shutil.which(tool) is None:
            return _fail(f"{tool} is missing")
    if importlib.util.find_spec("trio") is None:
        return _fail("berthd needs the project's virtualenv: run with .venv/bin/python")
    args = parse_args(argv)
    if not (args.skip_dockerd or args.no_install or shutil.which("dockerd")):
        br.install_dockerd()  # here: the namespace has no way out to the package mirror
    signal.signal(signal.SIGTERM, _as_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    with bench_namespace() as (netns, workdir):
        child_argv = [
            "nsenter", f"--net={NETNS_DIR / netns}", "--",
            sys.executable, "-m", "tests.bench.bench_net",
            "--inside", "--workdir", str(workdir), *argv,
        ]  # fmt: skip
        log(f"network namespace {netns}; work directory {workdir}")
        # Its own session: a Ctrl-C in the terminal reaches only this process, which then
        # asks the child to clean up in order instead of every daemon dying at once.
        child = subprocess.Popen(child_argv, cwd=REPO, start_new_session=True)
        try:
            return child.wait()
        except KeyboardInterrupt:
            log("interrupted: the benchmark cleans up (Ctrl-C again to kill it)")
            child.send_signal(signal.SIGTERM)
            try:
                child.wait()
            except KeyboardInterrupt:
                log("killing the benchmark; its daemons' containers may be left running")
                child.kill()
                child.wait()
            return 130


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


def _fail(msg: str) -> int:
    log(msg)
    return 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="bulk transfers per path")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--wrk-rounds", type=int, default=3)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20, help="run --rm iterations")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured run --rm first")
    parser.add_argument(
        "--range-timeout", type=float, default=300, help="cap for dockerd's 1000-port run -d"
    )
    parser.add_argument("--skip-range-dockerd", action="store_true")
    parser.add_argument("--skip-dockerd", action="store_true", help="berthd figures only")
    parser.add_argument("--no-install", action="store_true", help="never apt-get docker.io")
    parser.add_argument("--storage-driver", choices=["auto", "overlay2", "vfs"], default="auto")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    if args.inside:
        try:
            return run_inside(args)
        except KeyboardInterrupt:  # the clean-up has run: the ExitStack unwound
            log("interrupted; cleaned up")
            return 130
    return run_outside(raw)


if __name__ == "__main__":
    sys.exit(main())
