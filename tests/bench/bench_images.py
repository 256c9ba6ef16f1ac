#!/usr/bin/env python3
"""Benchmark image pull, push and commit: berthd vs dockerd, side by side in one run.

Prints figures; never asserts on timing (the targets are printed next to the figures).

How to run (as root on Debian 12, from the repository root, with the project's virtualenv,
docker-registry installed; dockerd is started here, after ``apt-get install docker.io`` if
none is on PATH)::

    .venv/bin/python tests/bench/bench_images.py
    .venv/bin/python tests/bench/bench_images.py --runs 5 --size-mb 100
    .venv/bin/python tests/bench/bench_images.py --skip-dockerd      # berthd only
    .venv/bin/python tests/bench/bench_images.py --cases busybox --runs 5 --via cli

Everything is private and removed at the end: a berthd on a temporary data root
(tests/daemon.py), a dockerd started exactly as tests/bench/bench_run.py does (own
data-root, exec-root, socket and config, ``--bridge=none --iptables=false``, overlay2 with a
fallback to vfs), and one local registry per run (Debian's docker-registry on 127.0.0.1,
tests/registry.py), so every push really uploads and nothing is mounted from an earlier run.

Cases, each engine driven through the same Docker Engine API calls over its unix socket:

* push of a ~100 MB single-layer image (``--size-mb``: one file of base64 text of random
  bytes, which gzip shrinks to about 77 %: poorly compressible, not incompressible) and of
  the ~2 MB busybox image (deploy/busybox_tar.py). Each run imports the image (untimed),
  tags it for a fresh registry and times ``POST /images/{name}/push`` to the end of its
  progress stream: compression included, as neither engine has the compressed blob yet.
* pull of the same images: every local image holding the layer is removed first, then
  ``POST /images/create?fromImage=`` is timed. Both engines pull the *same* manifest (the
  one dockerd pushed; berthd's when dockerd is skipped).
* commit of a small change (a file and a directory written by ``sh -c``): ``POST /commit``
  of one stopped container, 1 warm-up then ``--commits`` timed (median).

``--cases`` picks some of ``big``, ``busybox`` and ``commit`` (all by default). ``--via cli``
times pull and push as ``docker -H unix://<engine socket> pull|push`` (the docker CLI, as a
user sees it: its own start-up and progress rendering included, the same for both engines)
instead of the raw API calls.

MB/s is the uncompressed layer size (10^6 bytes) over the seconds; the ratio column is
berthd/dockerd (of MB/s for pull and push, of seconds for commit). Medians over ``--runs``.
"""

# A synchronous benchmark script (no trio): time.sleep and blocking I/O are the right tools.

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench import bench_run  # noqa: E402
from tests.daemon import Daemon, UnixHTTPConnection  # noqa: E402
from tests.registry import RegistryUnavailable, running_registry  # noqa: E402

TARGET_PULL = 1.5  # berthd MB/s >= 1.5x dockerd's
TARGET_PUSH = 2.0  # berthd MB/s >= 2x dockerd's
TARGET_COMMIT = 1.0  # berthd commit time <= dockerd's
ANONYMOUS = "e30="
CLI_CONFIG = "/nonexistent/bench-docker-config"  # the docker CLI: no stored credentials
CHANGE = "echo bench > /root/changed && mkdir -p /opt/bench && echo y > /opt/bench/y"

log = bench_run.log


class EngineError(RuntimeError):
    pass


class Engine:
    """One engine (berthd or dockerd) spoken to over its unix socket."""

    def __init__(self, name: str, host: str, *, via_cli: bool = False) -> None:
        self.name = name
        self.host = host
        self.socket = bench_run.socket_path(host)
        self.via_cli = via_cli

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        raw: bytes | None = None,
        timeout: float = 900,
    ) -> tuple[int, bytes]:
        if params:
            path += "?" + urllib.parse.urlencode(params)
        conn = UnixHTTPConnection(self.socket, timeout=timeout)
        headers = {"X-Registry-Auth": ANONYMOUS}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif raw is not None:
            headers["Content-Type"] = "application/x-tar"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        status, payload = self.request(method, path, **kw)
        if status >= 400:
            raise EngineError(f"{self.name}: {method} {path}: {status} {payload[:300]!r}")
        return json.loads(payload) if payload.strip() else None

    def stream(self, method: str, path: str, **kw: Any) -> list[dict[str, Any]]:
        """A progress stream to its end; raises on an error status or an in-band error."""
        status, payload = self.request(method, path, **kw)
        if status >= 400:
            raise EngineError(f"{self.name}: {method} {path}: {status} {payload[:300]!r}")
        msgs = [json.loads(line) for line in payload.splitlines() if line.strip()]
        for m in msgs:
            if "error" in m:
                raise EngineError(f"{self.name}: {method} {path}: {m['error']}")
        return msgs

    # -- operations ------------------------------------------------------------------------

    def import_tar(self, tar: bytes, repo: str, tag: str) -> None:
        self.stream(
            "POST", "/images/create", params={"fromSrc": "-", "repo": repo, "tag": tag}, raw=tar
        )

    def tag(self, source: str, repo: str, tag: str) -> None:
        status, payload = self.request(
            "POST", f"/images/{source}/tag", params={"repo": repo, "tag": tag}
        )
        if status != 201:
            raise EngineError(f"{self.name}: tag {source}: {status} {payload[:300]!r}")

    def cli(self, *args: str) -> tuple[float, str]:
        """``docker -H <engine> args...`` to its exit: seconds and its output."""
        start = time.perf_counter()
        proc = subprocess.run(
            [bench_run.DOCKER, "-H", self.host, *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DOCKER_CONFIG": CLI_CONFIG},
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise EngineError(f"{self.name}: docker {' '.join(args)}: {proc.stderr.strip()[:300]}")
        return elapsed, proc.stdout

    def push(self, repo: str, tag: str) -> float:
        if self.via_cli:
            elapsed, out = self.cli("push", f"{repo}:{tag}")
            if "Mounted from" in out or "Layer already exists" in out:
                log(f"warning: {self.name} push of {repo}:{tag} skipped an upload")
            return elapsed
        start = time.perf_counter()
        msgs = self.stream("POST", f"/images/{repo}/push", params={"tag": tag})
        elapsed = time.perf_counter() - start
        if any(str(m.get("status", "")).startswith("Mounted from") for m in msgs) or any(
            m.get("status") == "Layer already exists" for m in msgs
        ):
            log(f"warning: {self.name} push of {repo}:{tag} skipped an upload")
        return elapsed

    def pull(self, repo: str, tag: str) -> float:
        if self.via_cli:
            elapsed, out = self.cli("pull", f"{repo}:{tag}")
            if "Already exists" in out:
                log(f"warning: {self.name} already had a layer of {repo}:{tag}")
            return elapsed
        start = time.perf_counter()
        msgs = self.stream("POST", "/images/create", params={"fromImage": repo, "tag": tag})
        elapsed = time.perf_counter() - start
        if any(m.get("status") == "Already exists" for m in msgs):
            log(f"warning: {self.name} already had a layer of {repo}:{tag}")
        return elapsed

    def rmi(self, *names: str) -> None:
        for name in names:
            status, payload = self.request("DELETE", f"/images/{name}", params={"force": 1})
            if status not in (200, 404):
                raise EngineError(f"{self.name}: rmi {name}: {status} {payload[:300]!r}")

    def run_to_exit(self, image: str, cmd: list[str]) -> str:
        cid = str(
            self.call(
                "POST",
                "/containers/create",
                body={"Image": image, "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}},
            )["Id"]
        )
        self.call("POST", f"/containers/{cid}/start")
        code = self.call("POST", f"/containers/{cid}/wait", timeout=120)["StatusCode"]
        if code != 0:
            raise EngineError(f"{self.name}: {cmd} exited {code}")
        return cid

    def commit(self, cid: str, repo: str, tag: str) -> float:
        start = time.perf_counter()
        status, payload = self.request(
            "POST", "/commit", params={"container": cid, "repo": repo, "tag": tag}, body={}
        )
        elapsed = time.perf_counter() - start
        if status != 201:
            raise EngineError(f"{self.name}: commit: {status} {payload[:300]!r}")
        return elapsed


# -- images ------------------------------------------------------------------------------------


def big_tar(size: int) -> bytes:
    """One file of ``size`` bytes of base64 text of random bytes, as a rootfs tar."""
    text = base64.b64encode(os.urandom(size * 3 // 4 + 3))[:size]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("payload")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        info = tarfile.TarInfo("payload/data.b64")
        info.size = len(text)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(text))
    return buf.getvalue()


def blob_size(registry: str, repo: str, tag: str) -> int:
    conn = http.client.HTTPConnection(registry, timeout=30)
    try:
        conn.request(
            "GET",
            f"/v2/{repo}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        resp = conn.getresponse()
        manifest = json.loads(resp.read())
    finally:
        conn.close()
    return sum(int(layer["size"]) for layer in manifest["layers"])


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    size: int  # uncompressed bytes moved, 0 for commit
    samples: dict[str, list[float]] = field(default_factory=dict)  # engine -> seconds
    failed: dict[str, str] = field(default_factory=dict)

    def median(self, engine: str) -> float | None:
        values = self.samples.get(engine)
        return statistics.median(values) if values else None


def attempt(case: Case, engine: Engine, measure: Callable[[], float]) -> None:
    if engine.name in case.failed:
        return
    try:
        case.samples.setdefault(engine.name, []).append(measure())
    except (EngineError, OSError) as exc:
        log(f"{case.label} on {engine.name} failed: {exc}")
        case.failed[engine.name] = str(exc)[:150]


def transfer_runs(
    engines: list[Engine],
    kind: str,
    tar: bytes,
    runs: int,
    push: Case,
    pull: Case,
    notes: list[str],
) -> None:
    for i in range(runs):
        order = engines if i % 2 == 0 else list(reversed(engines))
        with fresh_registry() as registry:
            log(f"{kind}: run {i + 1}/{runs} against {registry}")
            one_run(order, kind, tar, registry, str(i), push, pull, notes if i == 0 else None)


@contextlib.contextmanager
def fresh_registry() -> Iterator[str]:
    try:
        cm = running_registry()
        reg = cm.__enter__()
    except RegistryUnavailable as exc:
        raise SystemExit(f"no registry: {exc}") from None
    try:
        yield reg.address
    finally:
        cm.__exit__(None, None, None)


def one_run(
    order: list[Engine],
    kind: str,
    tar: bytes,
    registry: str,
    tag: str,
    push: Case,
    pull: Case,
    notes: list[str] | None,
) -> None:
    pushed: dict[str, str] = {}
    for e in order:
        repo = f"{registry}/bench/{kind}-{e.name}"
        try:
            e.import_tar(tar, f"bench/{kind}", "src")
            e.tag(f"bench/{kind}:src", repo, tag)
        except EngineError as exc:
            push.failed.setdefault(e.name, str(exc)[:150])
            continue
        attempt(push, e, functools.partial(e.push, repo, tag))
        if e.name not in push.failed:
            pushed[e.name] = repo
        e.rmi(f"bench/{kind}:src", f"{repo}:{tag}")
    source = pushed.get("dockerd") or pushed.get("berthd")
    if source is None:
        return
    if notes is not None:
        size = blob_size(registry, source.split("/", 1)[1], tag)
        notes.append(
            f"{kind}: layer tar {len(tar) / 1e6:.1f} MB, pulled blob (gzip by "
            f"{source.rsplit('-', 1)[1]}) {size / 1e6:.1f} MB"
        )
    for e in order:
        attempt(pull, e, functools.partial(e.pull, source, tag))
        e.rmi(f"{source}:{tag}")


def commit_runs(engines: list[Engine], busybox: bytes, commits: int, case: Case) -> None:
    for e in engines:
        cid = None
        tags: list[str] = []
        try:
            e.import_tar(busybox, "bench/busybox", "commit")
            cid = e.run_to_exit("bench/busybox:commit", ["sh", "-c", CHANGE])
            for j in range(commits + 1):
                tags.append(f"bench/committed:{j}")
                seconds = e.commit(cid, "bench/committed", str(j))
                if j:  # the first is a warm-up
                    case.samples.setdefault(e.name, []).append(seconds)
        except (EngineError, OSError) as exc:
            log(f"commit on {e.name} failed: {exc}")
            case.failed[e.name] = str(exc)[:150]
        finally:
            if cid is not None:
                with contextlib.suppress(EngineError, OSError):
                    e.request("DELETE", f"/containers/{cid}", params={"force": 1})
            with contextlib.suppress(EngineError, OSError):
                e.rmi(*tags, "bench/busybox:commit")


# -- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "(met)" if ok else "(MISSED)"


def report(cases: list[tuple[Case, str, float]], notes: list[str]) -> None:
    """cases: (case, "rate" | "time", target)."""
    width = max(len(c.label) for c, _, _ in cases) + 2
    print()
    print(
        f"{'case':<{width}}{'berthd':>22}{'dockerd':>22}"
        f"{'berthd/dockerd':>16}   target (printed, not asserted)"
    )

    def cell(case: Case, engine: str) -> str:
        seconds = case.median(engine)
        if seconds is None:
            return "failed" if engine in case.failed else "-"
        if case.size:
            return f"{seconds:7.2f} s {case.size / 1e6 / seconds:6.1f} MB/s"
        return f"{seconds * 1000:8.1f} ms"

    for case, kind, target in cases:
        b, d = case.median("berthd"), case.median("dockerd")
        if kind == "rate":
            ratio = d / b if b and d else None  # MB/s ratio = inverse time ratio
            ratio_text = f"{ratio:.2f}x MB/s" if ratio else "-"
            goal = f">= {target}x MB/s"
            met = ratio is not None and ratio >= target
        else:
            ratio = b / d if b and d else None
            ratio_text = f"{ratio:.2f}x time" if ratio else "-"
            goal = f"<= {target}x time"
            met = ratio is not None and ratio <= target
        print(
            f"{case.label:<{width}}{cell(case, 'berthd'):>22}{cell(case, 'dockerd'):>22}"
            f"{ratio_text:>16}   {goal} {verdict(met) if ratio else 'not measured'}"
        )
    for case, _, _ in cases:
        for engine, why in case.failed.items():
            print(f"failed: {case.label} on {engine}: {why}")
    for note in notes:
        print(f"note: {note}")


# -- main --------------------------------------------------------------------------------------


@contextlib.contextmanager
def berthd() -> Iterator[Daemon]:
    root = Path(tempfile.mkdtemp(prefix="bench-berth-", dir="/tmp"))
    daemon = Daemon(root)
    try:
        daemon.start("--log-level", "info")
        yield daemon
    finally:
        daemon.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="push/pull runs per image")
    parser.add_argument("--commits", type=int, default=10, help="timed commits per engine")
    parser.add_argument("--size-mb", type=int, default=100, help="the big image's layer")
    parser.add_argument("--skip-dockerd", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="never apt-get docker.io")
    parser.add_argument("--storage-driver", choices=["auto", "overlay2", "vfs"], default="auto")
    parser.add_argument(
        "--cases",
        default="big,busybox,commit",
        help="comma-separated: big, busybox, commit (default: all)",
    )
    parser.add_argument(
        "--via",
        choices=["api", "cli"],
        default="api",
        help="time pull/push through the Engine API (default) or the docker CLI",
    )
    args = parser.parse_args(argv)
    wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
    if not wanted <= {"big", "busybox", "commit"}:
        parser.error(f"unknown case in --cases: {', '.join(sorted(wanted))}")
    via_cli = args.via == "cli"
    if os.geteuid() != 0:
        log("warning: not root; berthd and dockerd need root")

    size = args.size_mb * 1_000_000
    big = b""
    if "big" in wanted:
        log(f"building the {args.size_mb} MB image")
        big = big_tar(size)
    busybox = bench_run.busybox_tar_bytes()
    cases = [
        (Case(f"pull {args.size_mb} MB image (1 layer)", len(big)), "rate", TARGET_PULL),
        (Case(f"push {args.size_mb} MB image (1 layer)", len(big)), "rate", TARGET_PUSH),
        (Case(f"pull busybox ({len(busybox) / 1e6:.1f} MB)", len(busybox)), "rate", TARGET_PULL),
        (Case(f"push busybox ({len(busybox) / 1e6:.1f} MB)", len(busybox)), "rate", TARGET_PUSH),
        (Case(f"commit small change (median of {args.commits})", 0), "time", TARGET_COMMIT),
    ]
    pull_big, push_big, pull_bb, push_bb, commit = (c for c, _, _ in cases)
    notes: list[str] = []

    with contextlib.ExitStack() as stack:
        berth = stack.enter_context(berthd())
        engines = [Engine("berthd", berth.host, via_cli=via_cli)]
        if args.skip_dockerd:
            notes.append("dockerd skipped (--skip-dockerd)")
        else:
            dockerd_bin = shutil.which("dockerd")
            if dockerd_bin is None and not args.no_install:
                dockerd_bin = bench_run.install_dockerd()
            drivers = (
                ["overlay2", "vfs"] if args.storage_driver == "auto" else [args.storage_driver]
            )
            started = (
                bench_run.start_dockerd(dockerd_bin, drivers)
                if dockerd_bin
                else "dockerd not installed"
            )
            if isinstance(started, str):
                notes.append(f"dockerd could not start: {started}")
            else:
                docker = stack.enter_context(started)
                notes.append(f"dockerd {docker.version()}, storage driver {docker.storage_driver}")
                engine = Engine("dockerd", docker.host, via_cli=via_cli)
                # start_dockerd imported busybox: it would hold the busybox layer a pull needs.
                engine.rmi(bench_run.IMAGE)
                engines.append(engine)
        if "big" in wanted:
            transfer_runs(engines, "big", big, args.runs, push_big, pull_big, notes)
        if "busybox" in wanted:
            transfer_runs(engines, "busybox", busybox, args.runs, push_bb, pull_bb, notes)
        if "commit" in wanted:
            commit_runs(engines, busybox, args.commits, commit)
    notes.append(
        f"medians of {args.runs} runs (pull, push), engines alternating first; "
        "MB = 10^6 bytes of uncompressed layer; "
        + ("pull/push timed through the docker CLI" if via_cli else "timed through the Engine API")
    )
    kinds = ["big", "big", "busybox", "busybox", "commit"]  # of the cases, in order
    report([c for c, kind in zip(cases, kinds, strict=True) if kind in wanted], notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
