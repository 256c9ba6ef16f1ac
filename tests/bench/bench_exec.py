#!/usr/bin/env python3
"""Benchmark ``docker exec <ctr> true``: berthd vs dockerd, and the runtime alone.

Prints figures; never asserts on timing. Issue 5's target: berthd <= 0.5x dockerd.

How to run (as root, from the repository root, with the project's virtualenv)::

    .venv/bin/python -m tests.bench.bench_exec              # private berthd + dockerd
    .venv/bin/python -m tests.bench.bench_exec --runs 50 --skip-dockerd

A private berthd (tests/daemon.py, own roots) and a private dockerd (bench_run's, with
``--bridge=none --iptables=false``) each run one ``busybox sleep`` container with
``--network none``; the real docker CLI times ``exec <ctr> true`` against each. The
runtime floor is the runtime's own ``exec`` of ``true`` in berthd's container (crun or
runc, whichever berthd chose), timed directly.
"""

# A synchronous benchmark script (no trio): blocking calls and time.sleep are fine here.

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import bench_run as br
from tests.daemon import Daemon


def time_exec(host: str, cid: str, runs: int, warmup: int) -> list[float]:
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        br.run_cli([br.DOCKER, "exec", cid, "true"], host)
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def runtime_exec_floor(d: Daemon, cid: str, runs: int) -> tuple[str, list[float]]:
    """The runtime's own ``exec`` of ``true`` in the container berthd runs (no engine at
    all): crun or runc, whichever berthd chose."""
    name = next(n for n in ("crun", "runc") if (d.exec_root / "runtime" / n / cid).exists())
    root = d.exec_root / "runtime" / name
    bundle = d.exec_root / "containers" / cid / "config.json"
    process = {**json.loads(bundle.read_text())["process"], "args": ["true"]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(process, f)
    samples = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.run(
                [name, "--root", str(root), "exec", "--process", f.name, cid],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{name} exec failed: {proc.stderr.strip()}")
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        os.unlink(f.name)
    return name, samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-dockerd", action="store_true")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float | None]] = []
    d = Daemon(Path(tempfile.mkdtemp(prefix="bench-exec-", dir="/tmp")))
    try:
        d.start()
        br.ensure_image(d.host)
        cid = br.run_cli(
            [br.DOCKER, "run", "-d", "--network", "none", br.IMAGE, "sleep", "3600"], d.host
        ).stdout.strip()
        cid = cid.decode() if isinstance(cid, bytes) else cid
        berth = time_exec(d.host, cid, args.runs, args.warmup)
        rows.append(("docker exec -> berthd", statistics.median(berth)))
        runtime, floor = runtime_exec_floor(d, cid, args.runs)
        rows.append((f"{runtime} exec alone", statistics.median(floor)))
        br.run_cli([br.DOCKER, "rm", "-f", cid], d.host)
    finally:
        d.cleanup()
    dockerd_ms: float | None = None
    if not args.skip_dockerd:
        binary = br.install_dockerd()
        daemon = br.start_dockerd(binary, ["overlay2", "vfs"]) if binary else "no dockerd"
        if isinstance(daemon, str):
            br.log(f"dockerd unavailable: {daemon}")
        else:
            try:
                cid = br.run_cli(
                    [br.DOCKER, "run", "-d", "--network", "none", br.IMAGE, "sleep", "3600"],
                    daemon.host,
                ).stdout.strip()
                cid = cid.decode() if isinstance(cid, bytes) else cid
                dockerd_ms = statistics.median(time_exec(daemon.host, cid, args.runs, args.warmup))
                br.run_cli([br.DOCKER, "rm", "-f", cid], daemon.host)
            finally:
                daemon.stop()
    rows.append(("docker exec -> dockerd", dockerd_ms))
    print()
    print(f"{'case':28} {'median ms':>10}")
    for case, ms in rows:
        print(f"{case:28} {'-' if ms is None else f'{ms:10.1f}':>10}")
    if dockerd_ms:
        ratio = rows[0][1] / dockerd_ms if rows[0][1] else 0.0
        verdict = "met" if ratio <= 0.5 else "MISSED"
        print(f"berthd/dockerd: {ratio:.2f}x (target <= 0.5x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
