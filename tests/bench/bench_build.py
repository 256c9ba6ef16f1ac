#!/usr/bin/env python3
"""Benchmark a 3-step classic build: berthd vs dockerd's legacy builder, in one run.

The Dockerfile is ``FROM busybox`` / ``RUN echo hi > /x`` / ``COPY file /file``, built with
the real docker CLI and ``DOCKER_BUILDKIT=0`` against each engine:

- cold: ``docker build --no-cache`` (every step runs: a RUN container, a COPY layer);
- cached: the same build again with the cache (every step a hit).

Both engines build with ``--network none`` (bench_run.py's private dockerd has no bridge);
berthd is also timed with its default bridge network. Targets (issue 6): cold <= 0.5x
dockerd, cached <= 1x dockerd. Figures are printed next to the targets, never asserted.

How to run (as root)::

    python3 tests/bench/bench_build.py                 # private berthd and dockerd
    python3 tests/bench/bench_build.py --runs 20
    python3 tests/bench/bench_build.py --skip-dockerd

Standard library only; the dockerd helpers come from bench_run.py.
"""

# A synchronous, stdlib-only script (no trio), like bench_run.py.

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a file rather than with -m
    sys.path.insert(0, str(REPO))

from tests.bench import bench_run as br  # noqa: E402
from tests.daemon import Daemon  # noqa: E402

DOCKER = br.DOCKER
log = br.log
DOCKERFILE = "FROM busybox\nRUN echo hi > /x\nCOPY file /file\n"
COLD_TARGET = 0.5
CACHED_TARGET = 1.0


def make_context() -> Path:
    ctx = Path(tempfile.mkdtemp(prefix="bench-build-ctx-", dir="/tmp"))
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "file").write_text("payload\n" * 100)
    return ctx


def time_build(host: str, ctx: Path, extra: list[str], *, runs: int, warmup: int) -> list[float]:
    argv = [DOCKER, "build", "-q", "-t", "bench-build:latest", *extra, str(ctx)]
    samples = []
    env_host = host
    for i in range(warmup + runs):
        start = time.perf_counter()
        proc = br.run_cli(argv, env_host, check=False)
        elapsed = (time.perf_counter() - start) * 1000
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.decode(errors="replace"))
        if i >= warmup:
            samples.append(elapsed)
    return samples


def measure(
    host: str, ctx: Path, network: list[str], runs: int, warmup: int
) -> tuple[float, float]:
    cold = time_build(host, ctx, ["--no-cache", *network], runs=runs, warmup=warmup)
    time_build(host, ctx, network, runs=1, warmup=0)  # fill the cache
    cached = time_build(host, ctx, network, runs=runs, warmup=warmup)
    return statistics.median(cold), statistics.median(cached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--skip-dockerd", action="store_true")
    args = parser.parse_args(argv)
    import os

    if os.geteuid() != 0:
        log("run as root")
        return 2
    os.environ["DOCKER_BUILDKIT"] = "0"
    ctx = make_context()
    rows: list[tuple[str, float | None, float | None]] = []
    daemon = Daemon(Path(tempfile.mkdtemp(prefix="bench-berth-", dir="/tmp")))
    try:
        daemon.start("--log-level", "info")
        br.ensure_image(daemon.host)
        rows.append(
            (
                "berthd --network none",
                *measure(daemon.host, ctx, ["--network", "none"], args.runs, args.warmup),
            )
        )
        rows.append(
            ("berthd default network", *measure(daemon.host, ctx, [], args.runs, args.warmup))
        )
    finally:
        daemon.cleanup()
    dockerd_row: tuple[str, float | None, float | None] = ("dockerd --network none", None, None)
    if not args.skip_dockerd:
        binary = shutil.which("dockerd") or br.install_dockerd()
        if binary is None:
            log("no dockerd: berthd only")
        else:
            started = br.start_dockerd(binary, ["overlay2", "vfs"])
            if isinstance(started, str):
                log(f"dockerd failed: {started}")
            else:
                with started:
                    log(f"dockerd {started.version()}")
                    dockerd_row = (
                        "dockerd --network none",
                        *measure(started.host, ctx, ["--network", "none"], args.runs, args.warmup),
                    )
    rows.append(dockerd_row)
    shutil.rmtree(ctx, ignore_errors=True)
    print(f"\n3-step classic build (median of {args.runs} runs, docker CLI, DOCKER_BUILDKIT=0)")
    print(f"{'engine':<26}{'cold ms':>10}{'cached ms':>11}")
    for name, cold, cached in rows:
        c = f"{cold:.0f}" if cold is not None else "-"
        k = f"{cached:.0f}" if cached is not None else "-"
        print(f"{name:<26}{c:>10}{k:>11}")
    _, d_cold, d_cached = dockerd_row
    _, b_cold, b_cached = rows[0]
    if d_cold and d_cached and b_cold is not None and b_cached is not None:
        cold_ratio, cached_ratio = b_cold / d_cold, b_cached / d_cached
        print(
            f"\ncold   berthd/dockerd = {cold_ratio:.2f}x (target <= {COLD_TARGET}x): {br.verdict(cold_ratio <= COLD_TARGET)}"
        )
        print(
            f"cached berthd/dockerd = {cached_ratio:.2f}x (target <= {CACHED_TARGET}x): {br.verdict(cached_ratio <= CACHED_TARGET)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
