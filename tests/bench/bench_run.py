#!/usr/bin/env python3
"""Benchmark `run --rm busybox true` latency and per-container memory: berthd vs dockerd.

Prints figures; never asserts on timing (targets are printed next to the figures).

How to run (as root, on a host with runc and Debian's busybox-static)::

    # berthd running on its default socket; dockerd is started (and stopped) by the script,
    # after `apt-get install docker.io` if no dockerd is on PATH:
    python3 tests/bench/bench_run.py
    python3 tests/bench/bench_run.py --runs 50 --berth-host unix:///run/berth/berth.sock
    python3 tests/bench/bench_run.py --skip-dockerd          # berth only
    python3 tests/bench/bench_run.py --skip-berth            # dockerd (and runc) only

Cases, each timed over ``--runs`` iterations after ``--warmup`` unmeasured ones:

(a) ``docker run --rm busybox true`` with the real docker CLI (/usr/local/bin/docker) against
    berthd (``DOCKER_HOST=<--berth-host>``), with ``--network none`` and with the default
    network. ``busybox:latest`` is imported from deploy/busybox_tar.py first if missing.
(b) the same against a private dockerd started here: own data-root, exec-root, socket and
    config file in a temporary directory, ``--bridge=none --iptables=false`` (so it never
    touches the host's network), overlay2 storage with a fallback to vfs. It is stopped
    afterwards, leftover mounts under its directory are unmounted and the directory removed.
(c) ``berth run --rm busybox true`` (``berth`` from PATH or the repo's .venv/bin), with
    ``BERTH_HOST`` and ``DOCKER_HOST`` set to the berth socket.
(d) ``runc run`` of the same rootfs, no engine at all: the floor under every engine.
(e) memory: berthd's RSS idle and after ``--containers`` idle containers
    (``docker run -d busybox sleep 3600``), as MiB per container; the same for dockerd's
    engine processes (dockerd + containerd + shims), which are then removed.

Standard library only (it must run before the project's virtualenv exists).
"""

# This is a synchronous, stdlib-only script (no trio): time.sleep is the right tool here.

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
DOCKER = "/usr/local/bin/docker"
IMAGE = "busybox:latest"
BENCH_LABEL = "berth.bench=1"

TARGET_RATIO = 0.25  # berthd <= 0.25x dockerd (docker CLI, run --rm true)
TARGET_CLI_MS = 150.0  # berth CLI, run --rm true
TARGET_MIB_PER_CONTAINER = 1.0
TARGET_IDLE_MB = 60.0


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# -- helpers ---------------------------------------------------------------------------------


def load_busybox_tar() -> ModuleType:
    spec = importlib.util.spec_from_file_location("busybox_tar", REPO / "deploy" / "busybox_tar.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load deploy/busybox_tar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TAR_CACHE: list[bytes] = []


def busybox_tar_bytes() -> bytes:
    if not _TAR_CACHE:
        module = load_busybox_tar()
        buf = io.BytesIO()
        module.write_busybox_tar(buf, busybox=module.find_busybox())
        _TAR_CACHE.append(buf.getvalue())
    return _TAR_CACHE[0]


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise SystemExit(f"only unix:// hosts are supported, not {host!r}")
    return host.removeprefix("unix://")


def ping(host: str, *, timeout: float = 2.0) -> bool:
    """GET /_ping over the unix socket; True on 200."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path(host))
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            data = b""
            while len(data) < 64 and (chunk := sock.recv(4096)):
                data += chunk
    except OSError:
        return False
    status_line = data.split(b"\r\n", 1)[0].split()
    return len(status_line) >= 2 and status_line[1] == b"200"


def run_cli(
    argv: Sequence[str],
    host: str,
    *,
    stdin: bytes | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, DOCKER_HOST=host, BERTH_HOST=host)
    proc = subprocess.run(
        list(argv), env=env, input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        )
    return proc


def ensure_image(host: str) -> None:
    if run_cli([DOCKER, "image", "inspect", IMAGE], host, check=False).returncode == 0:
        return
    log(f"importing {IMAGE} into {host} from deploy/busybox_tar.py")
    run_cli([DOCKER, "import", "-", IMAGE], host, stdin=busybox_tar_bytes())


@dataclass
class Result:
    case: str
    samples_ms: list[float] = field(default_factory=list)
    skipped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank


def time_command(case: str, argv: Sequence[str], host: str, *, runs: int, warmup: int) -> Result:
    log(f"timing {case}: {' '.join(argv)} ({warmup} warm-up + {runs} runs)")
    result = Result(case)
    for i in range(warmup + runs):
        start = time.perf_counter()
        run_cli(argv, host)
        elapsed = (time.perf_counter() - start) * 1000
        if i >= warmup:
            result.samples_ms.append(elapsed)
    return result


def skipped(case: str, reason: str) -> Result:
    log(f"skipping {case}: {reason}")
    return Result(case, skipped=reason)


def try_time(case: str, argv: Sequence[str], host: str, *, runs: int, warmup: int) -> Result:
    try:
        return time_command(case, argv, host, runs=runs, warmup=warmup)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        return skipped(case, f"failed: {exc}".strip())


# -- /proc -----------------------------------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def all_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS) or smaps_rollup (Pss); 0 if gone."""
    source = "smaps_rollup" if key == "Pss" else "status"
    try:
        text = Path(f"/proc/{pid}/{source}").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def find_berthd() -> int | None:
    me = os.getpid()
    for pid in all_pids():
        args = cmdline(pid)
        if pid == me or not args or any("bench_run" in a for a in args):
            continue
        # "berthd ..." or "python .../bin/berthd ..." (console-script wrapper)
        if any(Path(a).name == "berthd" for a in args[:2]):
            return pid
    return None


def pids_mentioning(text: str) -> list[int]:
    return [pid for pid in all_pids() if any(text in a for a in cmdline(pid))]


# -- memory ----------------------------------------------------------------------------------


@dataclass
class Memory:
    engine: str
    idle_kib: int
    loaded_kib: int
    containers: int
    metric: str

    @property
    def per_container_mib(self) -> float:
        return (self.loaded_kib - self.idle_kib) / 1024 / self.containers


def measure_memory(
    engine: str,
    host: str,
    engine_pids: Callable[[], list[int]],
    *,
    count: int,
    metrics: Sequence[str] = ("VmRSS",),
) -> list[Memory]:
    def total(metric: str) -> int:
        return sum(status_kib(pid, metric) for pid in engine_pids())

    idle = {metric: total(metric) for metric in metrics}
    names = [f"bench-mem-{os.getpid()}-{i}" for i in range(count)]
    log(f"{engine}: starting {count} idle containers")
    try:
        for name in names:
            run_cli(
                [DOCKER, "run", "-d", "--network", "none", "--name", name,
                 "--label", BENCH_LABEL, IMAGE, "sleep", "3600"],
                host,
            )  # fmt: skip
        time.sleep(2)  # let per-container tasks settle (log readers, OOM watchers)
        loaded = {metric: total(metric) for metric in metrics}
    finally:
        log(f"{engine}: removing the containers")
        run_cli([DOCKER, "rm", "-f", *names], host, check=False)
    return [Memory(engine, idle[m], loaded[m], count, m) for m in metrics]


# -- dockerd ---------------------------------------------------------------------------------


def install_dockerd() -> str | None:
    """apt-get install docker.io (the client at /usr/local/bin/docker stays first on PATH)."""
    log("dockerd not on PATH: apt-get install docker.io")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "docker.io"]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, check=False)
        if proc.returncode != 0:
            log(proc.stderr.decode(errors="replace")[-2000:])
            return None
    # The package enables docker.service/docker.socket/containerd.service; this benchmark
    # wants neither a boot-time dockerd nor one racing it for /var/run/docker.sock.
    if shutil.which("systemctl"):
        subprocess.run(
            ["systemctl", "disable", "docker.service", "docker.socket", "containerd.service"],
            capture_output=True,
            check=False,
        )
    return shutil.which("dockerd")


# /run/docker/plugins (dockerd) and /run/containerd/s (shim sockets: a fixed path in
# containerd 1.6) are created even with private --exec-root/--data-root.
HOST_DIRS = (Path("/run/docker"), Path("/run/containerd"))


def remove_empty_dirs(top: Path) -> None:
    """Remove ``top`` if it holds nothing but empty directories."""
    if not top.is_dir() or top.is_symlink():
        return
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):  # not empty: someone else uses it, keep it
            os.rmdir(dirpath)


class Dockerd:
    """A private dockerd in a temporary directory. Use as a context manager."""

    def __init__(self, dockerd: str, storage_driver: str) -> None:
        # Short path: unix socket paths are limited to 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="bench-dockerd-", dir="/tmp"))
        self.host = f"unix://{self.dir}/docker.sock"
        self.storage_driver = storage_driver
        self.log_path = self.dir / "dockerd.log"
        # Host paths dockerd/containerd create whatever their roots are; removed again on
        # stop if they were not there before (and are still empty / ours).
        self._key_json = Path("/etc/docker/key.json")
        self._key_json_existed = self._key_json.exists()
        self._host_dirs = [p for p in HOST_DIRS if not p.exists()]
        (self.dir / "daemon.json").write_text("{}\n")  # never read /etc/docker/daemon.json
        self.argv = [
            dockerd,
            "--config-file", str(self.dir / "daemon.json"),
            "--data-root", str(self.dir / "docker"),
            "--exec-root", str(self.dir / "exec"),
            "--pidfile", str(self.dir / "dockerd.pid"),
            "-H", self.host,
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--storage-driver={storage_driver}",
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Dockerd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, timeout: float = 60) -> None:
        log(f"starting {' '.join(self.argv)}")
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if ping(self.host):
                return
            time.sleep(0.1)
        raise RuntimeError(f"dockerd did not answer /_ping within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def version(self) -> str:
        proc = run_cli([DOCKER, "version", "--format", "{{json .Server}}"], self.host, check=False)
        try:
            server = json.loads(proc.stdout)
        except ValueError:
            return "?"
        return f"{server.get('Version', '?')} (API {server.get('ApiVersion', '?')})"

    def engine_pids(self) -> list[int]:
        """dockerd, its managed containerd and the shims: all mention our directory."""
        return pids_mentioning(str(self.dir))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            log("stopping dockerd (SIGTERM)")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                log("dockerd did not stop: SIGKILL")
                self.proc.kill()
                self.proc.wait()
        # Anything we started that survived (managed containerd, shims) names our directory.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            leftovers = pids_mentioning(str(self.dir))
            for pid in leftovers:
                log(f"leftover process {pid} {' '.join(cmdline(pid))[:100]}: signal {sig.name}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if leftovers:
                time.sleep(2)
        self._unmount_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            log(f"could not remove {self.dir} completely")
        if not self._key_json_existed and self._key_json.exists():
            self._key_json.unlink()  # dockerd 20.10 may write a libtrust key there
        for path in self._host_dirs:
            remove_empty_dirs(path)

    def _mounts_below(self) -> list[str]:
        prefix = str(self.dir) + "/"
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")  # \040 -> space
            if point.startswith(prefix):
                found.append(point)
        return sorted(set(found), key=len, reverse=True)

    def _unmount_all(self) -> None:
        for point in self._mounts_below():
            log(f"unmounting leftover {point}")
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def start_dockerd(dockerd: str, drivers: Sequence[str]) -> Dockerd | str:
    """Start a working dockerd (first driver that works); return it or why it failed."""
    reasons = []
    for driver in drivers:
        daemon = Dockerd(dockerd, driver)
        try:
            daemon.start()
            ensure_image(daemon.host)
            # A storage driver can start yet fail to mount a rootfs: try one container.
            run_cli([DOCKER, "run", "--rm", "--network", "none", IMAGE, "true"], daemon.host)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            reasons.append(f"{driver}: {exc}")
            log(f"dockerd with {driver} failed: {exc}")
            daemon.stop()
            continue
        return daemon
    return "; ".join(reasons)


# -- runc baseline ---------------------------------------------------------------------------


def runc_baseline(runs: int, warmup: int) -> Result:
    case = "runc run (no engine)"
    runc = shutil.which("runc")
    if runc is None:
        return skipped(case, "runc not on PATH")
    base = Path(tempfile.mkdtemp(prefix="bench-runc-", dir="/tmp"))
    try:
        bundle = base / "bundle"
        (bundle / "rootfs").mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(busybox_tar_bytes())) as tar:
            tar.extractall(bundle / "rootfs", filter="tar")  # our own tar, not a layer
        subprocess.run([runc, "spec"], cwd=bundle, check=True, capture_output=True)
        spec_path = bundle / "config.json"
        spec = json.loads(spec_path.read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["true"]
        spec_path.write_text(json.dumps(spec))
        root = base / "state"
        log(f"timing {case} ({warmup} warm-up + {runs} runs)")
        result = Result(case)
        for i in range(warmup + runs):
            argv = [runc, "--root", str(root), "run", "--bundle", str(bundle), f"bench-{i}"]
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False)
            elapsed = (time.perf_counter() - start) * 1000
            if proc.returncode != 0:
                return skipped(case, f"runc failed: {proc.stderr.decode(errors='replace')}")
            if i >= warmup:
                result.samples_ms.append(elapsed)
        return result
    except (OSError, subprocess.CalledProcessError, tarfile.TarError, KeyError) as exc:
        return skipped(case, f"failed: {exc}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- berth -----------------------------------------------------------------------------------


def find_berth_cli() -> str | None:
    return shutil.which("berth") or next(
        (str(p) for p in [REPO / ".venv" / "bin" / "berth"] if os.access(p, os.X_OK)), None
    )


# -- report ----------------------------------------------------------------------------------


def print_report(
    results: list[Result],
    dockerd_case: str,
    memories: list[Memory],
    notes: list[str],
    *,
    berth_idle_kib: int | None,
) -> None:
    base = next((r for r in results if r.case == dockerd_case and r.samples_ms), None)
    mem_labels = [f"{m.engine} ({m.metric}, {m.containers} ctrs)" for m in memories]
    width = max(len(label) for label in [*(r.case for r in results), *mem_labels]) + 2
    print()
    print(f"{'case':<{width}}{'median_ms':>10}{'p90_ms':>9}{'ratio_vs_dockerd':>18}")
    for r in results:
        if not r.samples_ms:
            print(f"{r.case:<{width}}{'-':>10}{'-':>9}{'-':>18}   skipped: {r.skipped[:120]}")
            continue
        ratio = f"{r.median / base.median:.2f}x" if base else "-"
        print(f"{r.case:<{width}}{r.median:>10.1f}{r.p90:>9.1f}{ratio:>18}")
    if memories:
        print()
        print(f"{'memory':<{width}}{'idle_MiB':>10}{'loaded_MiB':>12}{'MiB/container':>15}")
        for m, label in zip(memories, mem_labels, strict=True):
            print(
                f"{label:<{width}}{m.idle_kib / 1024:>10.1f}{m.loaded_kib / 1024:>12.1f}"
                f"{m.per_container_mib:>15.2f}"
            )
    print()
    print("targets (printed, not asserted):")
    by_case = {r.case: r for r in results if r.samples_ms}
    berth_docker = by_case.get("docker -> berthd (--network none)")
    if berth_docker and base:
        speed = berth_docker.median / base.median
        print(
            f"  berthd <= {TARGET_RATIO}x dockerd: {speed:.2f}x  {verdict(speed <= TARGET_RATIO)}"
        )
    else:
        print(f"  berthd <= {TARGET_RATIO}x dockerd: not measured")
    cli = by_case.get("berth -> berthd (--network none)")
    if cli:
        print(f"  berth CLI <= {TARGET_CLI_MS:.0f} ms: {cli.median:.1f} ms  "
              f"{verdict(cli.median <= TARGET_CLI_MS)}")  # fmt: skip
    else:
        print(f"  berth CLI <= {TARGET_CLI_MS:.0f} ms: not measured")
    berth_mem = next((m for m in memories if m.engine == "berthd"), None)
    if berth_mem:
        per = berth_mem.per_container_mib
        print(f"  <= {TARGET_MIB_PER_CONTAINER} MiB/container: {per:.2f} MiB  "
              f"{verdict(per <= TARGET_MIB_PER_CONTAINER)}")  # fmt: skip
    else:
        print(f"  <= {TARGET_MIB_PER_CONTAINER} MiB/container: not measured")
    if berth_idle_kib:
        idle_mb = berth_idle_kib * 1024 / 1e6
        print(f"  berthd idle RSS <= {TARGET_IDLE_MB:.0f} MB: {idle_mb:.1f} MB  "
              f"{verdict(idle_mb <= TARGET_IDLE_MB)}")  # fmt: skip
    else:
        print(f"  berthd idle RSS <= {TARGET_IDLE_MB:.0f} MB: not measured")
    for note in notes:
        print(f"note: {note}")


def verdict(ok: bool) -> str:
    return "(met)" if ok else "(MISSED)"


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20, help="measured iterations per case")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured iterations first")
    parser.add_argument("--berth-host", default="unix:///run/berth/berth.sock")
    parser.add_argument("--berthd-pid", type=int, help="default: found in /proc")
    parser.add_argument("--containers", type=int, default=20, help="for the memory figures")
    parser.add_argument("--skip-berth", action="store_true")
    parser.add_argument("--skip-dockerd", action="store_true")
    parser.add_argument("--skip-runc", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="never apt-get docker.io")
    parser.add_argument(
        "--storage-driver",
        choices=["auto", "overlay2", "vfs"],
        default="auto",
        help="dockerd's storage driver (auto: overlay2, falling back to vfs)",
    )
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        log("warning: not root; dockerd and runc need root")
    if not os.access(DOCKER, os.X_OK):
        return _fail(f"{DOCKER} (the docker CLI) is missing")

    results: list[Result] = []
    memories: list[Memory] = []
    notes: list[str] = []
    berth_idle: int | None = None
    dockerd_case = "docker -> dockerd (--network none)"
    timing = {"runs": args.runs, "warmup": args.warmup}

    # (a), (c), (e): berthd
    berth_cases = [
        "docker -> berthd (--network none)",
        "docker -> berthd (default network)",
        "berth -> berthd (--network none)",
    ]
    host = args.berth_host
    if args.skip_berth:
        results += [skipped(c, "--skip-berth") for c in berth_cases]
    elif not ping(host):
        results += [skipped(c, f"berthd not answering on {host}") for c in berth_cases]
    else:
        try:
            ensure_image(host)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"cannot import {IMAGE} into berthd: {exc}")
        run_none = [DOCKER, "run", "--rm", "--network", "none", IMAGE, "true"]
        results.append(try_time(berth_cases[0], run_none, host, **timing))
        results.append(
            try_time(berth_cases[1], [DOCKER, "run", "--rm", IMAGE, "true"], host, **timing)
        )
        berth = find_berth_cli()
        if berth is None:
            results.append(skipped(berth_cases[2], "no berth CLI on PATH or in .venv/bin"))
        else:
            berth_run = [berth, "run", "--rm", "--network", "none", IMAGE, "true"]
            results.append(try_time(berth_cases[2], berth_run, host, **timing))
        pid = args.berthd_pid or find_berthd()
        if args.skip_memory:
            pass
        elif pid is None:
            notes.append("berthd pid not found (use --berthd-pid): no memory figures")
        else:
            berth_idle = status_kib(pid, "VmRSS")
            try:
                memories += measure_memory("berthd", host, lambda: [pid], count=args.containers)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                notes.append(f"berthd memory not measured: {exc}")

    # (b): dockerd
    if args.skip_dockerd:
        results.append(skipped(dockerd_case, "--skip-dockerd"))
    else:
        dockerd = shutil.which("dockerd")
        if dockerd is None and not args.no_install:
            dockerd = install_dockerd()
        drivers = ["overlay2", "vfs"] if args.storage_driver == "auto" else [args.storage_driver]
        started = start_dockerd(dockerd, drivers) if dockerd else "dockerd not installed"
        if isinstance(started, str):
            results.append(skipped(dockerd_case, f"dockerd could not start: {started}"))
        else:
            with started as daemon:
                notes.append(
                    f"dockerd {daemon.version()}, storage driver {daemon.storage_driver}, "
                    "--bridge=none (so --network none)"
                )
                run_none = [DOCKER, "run", "--rm", "--network", "none", IMAGE, "true"]
                results.append(try_time(dockerd_case, run_none, daemon.host, **timing))
                if not args.skip_memory:
                    try:
                        memories += measure_memory(
                            "dockerd+containerd+shims",
                            daemon.host,
                            daemon.engine_pids,
                            count=args.containers,
                            metrics=("VmRSS", "Pss"),
                        )
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        notes.append(f"dockerd memory not measured: {exc}")

    # (d): runc alone
    if not args.skip_runc:
        results.append(runc_baseline(args.runs, args.warmup))

    print_report(results, dockerd_case, memories, notes, berth_idle_kib=berth_idle)
    return 0


def _fail(msg: str) -> int:
    log(msg)
    return 2


if __name__ == "__main__":
    sys.exit(main())
