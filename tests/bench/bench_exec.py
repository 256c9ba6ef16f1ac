#!/usr/bin/env python3
"""Benchmark ``docker exec <ctr> true``: berthd vs dockerd, and the runtime alone.

Prints figures; never asserts on timing. Issue 5's target: berthd <= 0.5x dockerd.

How to run (as root, from the repository root, with the project's virtualenv)::

    .venv/bin/python -m tests.bench.bench_exec              # private berthd + dockerd
    .venv/bin/python -m tests.bench.bench_exec --runs 50 --skip-dockerd

A private berthd (tests/daemon.py, own roots) and a private dockerd (bench_run's, with
``--bridge=none --iptables=false``) each run one ``busybox sleep`` container with
``--network none``; the real docker CLI times ``exec <ctr> true`` against each, and
against a canned engine that answers at once (the CLI's own cost). The three are timed
in turns, one call each per round, so a machine whose speed drifts over the minutes of
a run (this VM's does, by +-10%) weighs on all three alike. The runtime floor is the
runtime's own ``exec`` of ``true`` in berthd's container (crun or runc, whichever
berthd chose), timed directly.
"""

# A synchronous benchmark script (no trio): blocking calls and time.sleep are fine here.

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import bench_run as br
from tests.daemon import Daemon


def time_in_turns(
    targets: dict[str, tuple[str, str]], runs: int, warmup: int
) -> dict[str, list[float]]:
    """``docker exec <ctr> true`` against each (host, container) in turn, ``runs`` rounds
    after ``warmup``; the samples of each, in ms."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(warmup + runs):
        for name, (host, cid) in targets.items():
            start = time.perf_counter()
            br.run_cli([br.DOCKER, "exec", cid, "true"], host)
            if i >= warmup:
                samples[name].append((time.perf_counter() - start) * 1000)
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


# -- the docker CLI's own floor ----------------------------------------------------------------

_CANNED = {
    "HEAD /_ping": b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\n",
    "GET /containers": b'{"Id":"c","State":{"Running":true},"Config":{"Tty":false}}',
    "POST /containers": b'{"Id":"e"}',
    "GET /exec": b'{"ExitCode":0,"Running":false,"Pid":1}',
}


def _answer(conn: socket.socket) -> None:
    """One connection of the canned engine: answers at once, exec start ends at once."""
    with conn:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path = lines[0].split()[:2]
            length = next(
                (int(v) for k, _, v in (x.partition(":") for x in lines[1:])
                 if k.lower() == "content-length"), 0,
            )  # fmt: skip
            while len(buf) < length:
                buf += conn.recv(65536)
            buf = buf[length:]
            route = (
                f"{method} /{path.split('/')[2] if path.startswith('/v') else path.split('/')[1]}"
            )
            if route == "POST /exec":  # start: upgrade, then end of stream (true printed nothing)
                conn.sendall(
                    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream"
                    b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                )
                return
            if route == "HEAD /_ping":
                conn.sendall(_CANNED[route])
                continue
            body = _CANNED[route]
            code = b"201 Created" if route == "POST /containers" else b"200 OK"
            conn.sendall(
                b"HTTP/1.1 " + code + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )


@contextlib.contextmanager
def canned_engine() -> Iterator[str]:
    """An engine that answers every request of ``docker exec c true`` at once; yields
    its host. What the docker CLI costs by itself (start, four requests, exit)."""
    path = Path(tempfile.mkdtemp(prefix="bench-cli-floor-")) / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        stop.set()
        thread.join()
        server.close()
        path.unlink(missing_ok=True)
        path.parent.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-dockerd", action="store_true")
    args = parser.parse_args(argv)
    run_sleep = [br.DOCKER, "run", "-d", "--network", "none", br.IMAGE, "sleep", "3600"]
    with contextlib.ExitStack() as stack:
        d = Daemon(Path(tempfile.mkdtemp(prefix="bench-exec-", dir="/tmp")))
        stack.callback(d.cleanup)
        d.start("--log-level", "info")  # the operator default, not the tests' debug
        br.ensure_image(d.host)
        cid = br.run_cli(run_sleep, d.host).stdout.decode().strip()
        targets = {"docker exec -> berthd": (d.host, cid)}
        if not args.skip_dockerd:
            binary = br.install_dockerd()
            daemon = br.start_dockerd(binary, ["overlay2", "vfs"]) if binary else "no dockerd"
            if isinstance(daemon, str):
                br.log(f"dockerd unavailable: {daemon}")
            else:
                stack.callback(daemon.stop)
                dcid = br.run_cli(run_sleep, daemon.host).stdout.decode().strip()
                targets["docker exec -> dockerd"] = (daemon.host, dcid)
        targets["docker CLI alone (canned)"] = (stack.enter_context(canned_engine()), "c")
        samples = time_in_turns(targets, args.runs, args.warmup)
        runtime, floor = runtime_exec_floor(d, cid, args.runs)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    medians[f"{runtime} exec alone"] = statistics.median(floor)
    print()
    print(f"{'case':28} {'median ms':>10}")
    for case, ms in medians.items():
        print(f"{case:28} {ms:10.1f}")
    berthd, dockerd = medians["docker exec -> berthd"], medians.get("docker exec -> dockerd")
    if dockerd:
        verdict = "met" if berthd / dockerd <= 0.5 else "MISSED"
        print(f"berthd/dockerd: {berthd / dockerd:.2f}x (target <= 0.5x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
