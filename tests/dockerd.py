"""A private dockerd for interoperability tests (Debian's ``docker.io``).

:func:`running_dockerd` starts ``dockerd`` with everything of its own under one temporary
directory: ``--data-root``, ``--exec-root``, ``--pidfile``, a ``daemon.json`` (so
/etc/docker/daemon.json is never read) and a unix socket for ``-H``; no networking of its
own (``--bridge=none --iptables=false --ip6tables=false --ip-masq=false``), so containers
run with ``--network none``. It waits for ``/_ping`` and, at the end, stops dockerd
(SIGTERM, SIGKILL after 45 s), signals whatever process still names the directory (its
managed containerd and shims), unmounts what is left below it and removes it, with the
host paths dockerd makes whatever its roots (``/run/docker``, ``/run/containerd``,
``/etc/docker/key.json``) when they were not there before::

    with running_dockerd() as dockerd:
        subprocess.run(["docker", "-H", dockerd.host, "version"], env=dockerd.env(), ...)

The storage driver is overlay2, or vfs when overlay2 does not work here. Only processes
this module started (or that name its directory) are ever signalled.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

START_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0
DRIVERS = ("overlay2", "vfs")
# Paths dockerd/containerd create whatever their roots are: /run/docker/plugins,
# /run/containerd/s (the shims' fixed socket directory in containerd 1.6).
HOST_DIRS = (Path("/run/docker"), Path("/run/containerd"))
KEY_JSON = Path("/etc/docker/key.json")  # dockerd 20.10 writes a libtrust key there


class DockerdUnavailable(Exception):
    """No dockerd on PATH, or it would not start (the message says why)."""


def dockerd_binary() -> str | None:
    return shutil.which("dockerd")


@attrs.frozen
class RunningDockerd:
    dir: Path
    host: str  # "unix:///tmp/berth-dockerd-xxx/docker.sock"
    storage_driver: str
    log_path: Path

    def env(self, config_dir: Path | None = None) -> dict[str, str]:
        """An environment for the docker CLI that talks to this dockerd only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(config_dir or self.dir / "cli-config")
        return env

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _ping(sock: Path) -> bool:
    conn = http.client.HTTPConnection("localhost", timeout=2)
    try:
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(2)
        raw.connect(str(sock))
        conn.sock = raw
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _pids_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _mounts_below(top: Path) -> list[str]:
    prefix = str(top) + "/"
    points = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 is a space
        if point.startswith(prefix):
            points.add(point)
    return sorted(points, key=len, reverse=True)


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):  # not empty: someone else's, keep it
            os.rmdir(dirpath)


def _stop(proc: subprocess.Popen[bytes], top: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Its managed containerd and shims, if any outlived it, name our directory.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        leftovers = _pids_naming(str(top))
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while leftovers and time.monotonic() < deadline:
            leftovers = [pid for pid in leftovers if Path(f"/proc/{pid}").exists()]
            time.sleep(0.05)
    for point in _mounts_below(top):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _start(binary: str, driver: str) -> tuple[subprocess.Popen[bytes], RunningDockerd]:
    # Short path: a unix socket path holds at most 107 bytes.
    top = Path(tempfile.mkdtemp(prefix="berth-dockerd-", dir="/tmp"))
    (top / "daemon.json").write_text("{}\n")
    info = RunningDockerd(
        dir=top,
        host=f"unix://{top}/docker.sock",
        storage_driver=driver,
        log_path=top / "dockerd.log",
    )
    argv = [
        binary,
        "--config-file", str(top / "daemon.json"),
        "--data-root", str(top / "data"),
        "--exec-root", str(top / "exec"),
        "--pidfile", str(top / "dockerd.pid"),
        "-H", info.host,
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        f"--storage-driver={driver}",
    ]  # fmt: skip
    with info.log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, info


@contextlib.contextmanager
def running_dockerd(drivers: Sequence[str] = DRIVERS) -> Iterator[RunningDockerd]:
    """Start a private dockerd, yield where it is, stop it and remove every trace.

    Raises:
        DockerdUnavailable: no dockerd on PATH, or none of ``drivers`` let it answer
            ``/_ping`` within 60 s (the message holds the end of its log).
    """
    binary = dockerd_binary()
    if binary is None:
        raise DockerdUnavailable("no dockerd on PATH (apt-get install docker.io)")
    new_host_dirs = [p for p in HOST_DIRS if not p.exists()]
    key_existed = KEY_JSON.exists()
    reasons = []
    try:
        for driver in drivers:
            proc, info = _start(binary, driver)
            try:
                sock = info.dir / "docker.sock"
                deadline = time.monotonic() + START_TIMEOUT
                while proc.poll() is None and time.monotonic() < deadline:
                    if _ping(sock):
                        break
                    time.sleep(0.05)
                else:
                    tail = "\n".join(info.log().splitlines()[-10:])
                    reasons.append(f"{driver}: exit {proc.poll()}:\n{tail}")
                    continue
                yield info
                return
            finally:
                _stop(proc, info.dir)
                shutil.rmtree(info.dir, ignore_errors=True)
        raise DockerdUnavailable("dockerd did not start: " + "\n".join(reasons))
    finally:
        if not key_existed:
            KEY_JSON.unlink(missing_ok=True)
        for path in new_host_dirs:
            _remove_empty_dirs(path)
