#!/usr/bin/env python3
"""``stats`` for many running containers: time and daemon CPU, berthd vs dockerd.

Prints figures; never asserts on timing.

How to run (as root; the project's virtualenv python, because berthd runs from it)::

    .venv/bin/python -m tests.bench.bench_ops
    .venv/bin/python -m tests.bench.bench_ops --containers 20 --runs 5 --skip-dockerd

Like bench_net.py (whose machinery it uses), everything runs inside a network namespace
made for the run: a private berthd and a private dockerd (with its default bridge, so
both engines' containers have an ``eth0`` whose counters ``stats`` reads), each given
``--containers`` idle containers (``busybox sleep 3600`` on the default network). Then,
for each engine:

1. ``docker stats --no-stream`` (the real docker CLI, every running container): wall
   time (median of ``--runs`` after one warm-up) and the engine's CPU time per command
   (berthd's own process; dockerd + its containerd + shims). Both engines prime each
   sample for a collector cycle (one second) before answering, so the wall time is
   mostly that wait; the CPU time is the cost.
2. ``berth stats --no-stream`` against berthd (the same, with berth's CLI).
3. ``GET /containers/{id}/stats?stream=0&one-shot=1`` for every container at once over
   raw sockets (no CLI, no priming): wall time and engine CPU per sample.
4. ``docker stats`` streaming for ``--stream-seconds``: the engine's CPU use (% of one
   CPU) while a dashboard watches every container.

CPU times come from ``/proc/<pid>/stat`` (clock ticks: 10 ms), summed over all runs and
divided, so short commands still get a figure. Clean-up as bench_net.py: containers
removed, daemons stopped, the namespace and work directory removed, also on Ctrl-C.

Standard library only (the daemons it starts need the virtualenv, the script does not).
"""

# A synchronous, stdlib-only script (no trio), like bench_run.py: time.sleep is fine here.

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a file rather than with -m
    sys.path.insert(0, str(REPO))

from tests.bench import bench_net as bn  # noqa: E402
from tests.bench import bench_run as br  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DOCKER = br.DOCKER
NAME_PREFIX = "bench-ops"
log = br.log


@dataclass
class Figure:
    engine: str
    case: str
    wall_ms: float | None = None  # median
    cpu_ms: float | None = None  # engine CPU per run (or per sample)
    extra: str = ""


def engine_pids(engine: bn.Engine) -> list[int]:
    """The processes doing the engine's work: berthd itself; dockerd, its containerd and
    shims (everything naming the private dockerd's directory)."""
    if engine.name == "berthd":
        return [engine.pid]
    return br.pids_mentioning(str(engine.log_path.parent)) or [engine.pid]


def cpu_of(pids: Sequence[int]) -> float:
    return sum(bn.cpu_seconds(p) for p in pids)


def measure(
    engine: bn.Engine, action: Callable[[], object], *, runs: int, warmup: int = 1
) -> tuple[float, float]:
    """(median wall ms, engine CPU ms per run) of ``action``."""
    for _ in range(warmup):
        action()
    pids = engine_pids(engine)
    walls: list[float] = []
    cpu_before = cpu_of(pids)
    for _ in range(runs):
        start = time.perf_counter()
        action()
        walls.append((time.perf_counter() - start) * 1000)
    cpu = (cpu_of(pids) - cpu_before) * 1000 / runs
    return statistics.median(walls), cpu


def cli(argv: Sequence[str], host: str) -> None:
    br.run_cli(list(argv), host, timeout=120)


def one_shot_all(host: str, ids: Sequence[str]) -> None:
    """Every container's one-shot stats at once, over raw sockets, answers read."""
    path = br.socket_path(host)
    socks = []
    try:
        for cid in ids:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            s.connect(path)
            s.sendall(
                f"GET /containers/{cid}/stats?stream=0&one-shot=1 HTTP/1.1\r\n"
                "Host: docker\r\nConnection: close\r\n\r\n".encode()
            )
            socks.append(s)
        for s in socks:
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            if b" 200 " not in data.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"stats failed: {data[:200]!r}")
    finally:
        for s in socks:
            s.close()


def streaming_cpu(engine: bn.Engine, seconds: float) -> float:
    """% of one CPU the engine spends while ``docker stats`` streams every container."""
    pids = engine_pids(engine)
    env = dict(os.environ, DOCKER_HOST=engine.host)
    proc = subprocess.Popen(
        [DOCKER, "stats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(2)  # the CLI lists the containers and opens its streams
        before, start = cpu_of(pids), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_of(pids) - before, time.monotonic() - start
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return used / elapsed * 100


def start_containers(engine: bn.Engine, count: int) -> list[str]:
    log(f"{engine.name}: starting {count} containers")
    ids = []
    for i in range(count):
        out = bn.docker(
            engine, "run", "-d", "--name", f"{NAME_PREFIX}-{i}", br.IMAGE, "sleep", "3600"
        )
        ids.append(out.strip())
    return ids


def attempt(
    figures: list[Figure], notes: list[str], engine: bn.Engine, case: str, run: Callable[[], Figure]
) -> None:
    """Run one case; a failure becomes a note and a row without figures."""
    try:
        figures.append(run())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        notes.append(f"{engine.name}: {case} failed: {exc}")
        figures.append(Figure(engine.name, case, extra="failed (see notes)"))


def bench_engine(engine: bn.Engine, args: argparse.Namespace, notes: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    ids = start_containers(engine, args.containers)
    n = len(ids)
    runs = args.runs

    def docker_no_stream() -> Figure:
        wall, cpu = measure(
            engine, lambda: cli([DOCKER, "stats", "--no-stream"], engine.host), runs=runs
        )
        return Figure(engine.name, f"docker stats --no-stream ({n} ctrs)", wall, cpu)

    def berth_no_stream(berth: str) -> Figure:
        wall, cpu = measure(
            engine, lambda: cli([berth, "stats", "--no-stream"], engine.host), runs=runs
        )
        return Figure(engine.name, f"berth stats --no-stream ({n} ctrs)", wall, cpu)

    def one_shot() -> Figure:
        wall, cpu = measure(engine, lambda: one_shot_all(engine.host, ids), runs=runs)
        per = f"{cpu / n * 1000:.0f} us CPU per sample"
        return Figure(engine.name, f"API one-shot stats x{n} (concurrent)", wall, cpu, per)

    def streaming() -> Figure:
        percent = streaming_cpu(engine, args.stream_seconds)
        return Figure(
            engine.name, f"docker stats streaming ({n} ctrs)", extra=f"{percent:.1f}% of a CPU"
        )

    attempt(figures, notes, engine, "docker stats --no-stream", docker_no_stream)
    berth = br.find_berth_cli()
    if engine.name == "berthd" and berth:
        attempt(figures, notes, engine, "berth stats --no-stream", lambda: berth_no_stream(berth))
    attempt(figures, notes, engine, "API one-shot stats", one_shot)
    attempt(figures, notes, engine, "docker stats streaming", streaming)
    return figures


def print_report(figures: Sequence[Figure], notes: Sequence[str]) -> None:
    width = max(len(f"{f.engine}: {f.case}") for f in figures) + 2
    print()
    print(f"{'case':<{width}}{'wall_ms':>9}{'cpu_ms':>9}   notes")
    for f in figures:
        wall = f"{f.wall_ms:.0f}" if f.wall_ms is not None else "-"
        cpu = f"{f.cpu_ms:.1f}" if f.cpu_ms is not None else "-"
        print(f"{f.engine + ': ' + f.case:<{width}}{wall:>9}{cpu:>9}   {f.extra}")
    print()
    for note in notes:
        print(f"note: {note}")


def run_inside(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, bn._interrupt)
    figures: list[Figure] = []
    notes: list[str] = [f"load average at start {bn.load_average()} on {os.cpu_count()} CPUs"]
    names = [f"{NAME_PREFIX}-{i}" for i in range(args.containers)]
    with contextlib.ExitStack() as stack:
        berth = bn.start_berthd(stack, Path(args.workdir))
        stack.callback(bn.remove_containers, berth, *names)
        figures += bench_engine(berth, args, notes)
        bn.remove_containers(berth, *names)
        if args.skip_dockerd:
            notes.append("dockerd skipped (--skip-dockerd)")
        else:
            started = bn.start_dockerd(stack, args)
            if isinstance(started, str):
                notes.append(f"no dockerd: {started}")
            else:
                stack.callback(bn.remove_containers, started, *names)
                figures += bench_engine(started, args, notes)
                bn.remove_containers(started, *names)
        notes.append(f"load average at the end {bn.load_average()}")
        print_report(figures, notes)
        sys.stdout.flush()
        log("cleaning up")
    return 0


def run_outside(argv: Sequence[str]) -> int:
    """bench_net.py's way: a namespace, this script inside it (``--inside``), clean-up."""
    if os.geteuid() != 0:
        log("run as root: network namespaces and both daemons need it")
        return 2
    args = parse_args(argv)
    if not (args.skip_dockerd or args.no_install or shutil.which("dockerd")):
        br.install_dockerd()
    signal.signal(signal.SIGTERM, bn._as_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with bn.bench_namespace() as (netns, workdir):
        child_argv = [
            "nsenter", f"--net={bn.NETNS_DIR / netns}", "--",
            sys.executable, "-m", "tests.bench.bench_ops",
            "--inside", "--workdir", str(workdir), *argv,
        ]  # fmt: skip
        log(f"network namespace {netns}; work directory {workdir}")
        child = subprocess.Popen(child_argv, cwd=REPO, start_new_session=True)
        try:
            return child.wait()
        except KeyboardInterrupt:
            log("interrupted: the benchmark cleans up (Ctrl-C again to kill it)")
            child.send_signal(signal.SIGTERM)
            try:
                child.wait()
            except KeyboardInterrupt:
                child.kill()
                child.wait()
            return 130


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per case")
    parser.add_argument("--stream-seconds", type=float, default=5.0)
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
        except KeyboardInterrupt:
            log("interrupted; cleaned up")
            return 130
    return run_outside(raw)


if __name__ == "__main__":
    sys.exit(main())
