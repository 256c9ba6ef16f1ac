"""A real berthd for integration and compatibility tests, with a tiny API client.

Each :class:`Daemon` has its own data root, exec root and socket under a fresh temporary
directory, so tests never touch /var/lib/berth or /run/berth.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BERTHD = [sys.executable, "-c", "from supervisor.daemon import main; main()"]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Client:
    """Just enough HTTP to drive berthd's API from tests."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = str(socket_path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        raw: bytes | None = None,
        timeout: float = 60,
    ) -> tuple[int, bytes]:
        if params:
            path += "?" + urllib.parse.urlencode(params, doseq=True)
        conn = UnixHTTPConnection(self.socket_path, timeout=timeout)
        headers = {}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        return resp.status, payload

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = self.request(method, path, body, **kw)
        if status >= 400:
            try:
                message = json.loads(payload)["message"]
            except (ValueError, KeyError):
                message = payload.decode(errors="replace")
            raise ApiError(status, message)
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError:
            return payload

    # conveniences
    def create(
        self,
        image: str = "busybox",
        cmd: list[str] | None = None,
        name: str | None = None,
        **config: Any,
    ) -> str:
        body = {"Image": image, **config}
        if cmd is not None:
            body["Cmd"] = cmd
        params = {"name": name} if name else None
        return str(self.call("POST", "/containers/create", body, params=params)["Id"])

    def run(self, cmd: list[str], **kw: Any) -> str:
        cid = self.create(cmd=cmd, **kw)
        self.call("POST", f"/containers/{cid}/start")
        return cid

    def inspect(self, ref: str) -> dict[str, Any]:
        result = self.call("GET", f"/containers/{ref}/json")
        assert isinstance(result, dict)
        return result

    def wait(self, ref: str, condition: str = "not-running", timeout: float = 60) -> int:
        result = self.call(
            "POST", f"/containers/{ref}/wait", params={"condition": condition}, timeout=timeout
        )
        return int(result["StatusCode"])

    def logs(self, ref: str, **params: Any) -> list[tuple[int, bytes]]:
        query = {"stdout": 1, "stderr": 1, **params}
        status, payload = self.request("GET", f"/containers/{ref}/logs", params=query)
        assert status == 200, payload
        return demux(payload)

    def events(self, **params: Any) -> list[dict[str, Any]]:
        status, payload = self.request("GET", "/events", params=params)
        assert status == 200, payload
        return [json.loads(line) for line in payload.splitlines() if line.strip()]

    def wait_for(self, ref: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.inspect(ref)
            if predicate(info):
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; last state: {info['State']}")
            time.sleep(0.05)


def demux(payload: bytes) -> list[tuple[int, bytes]]:
    frames = []
    buf = io.BytesIO(payload)
    while True:
        header = buf.read(8)
        if len(header) < 8:
            break
        size = int.from_bytes(header[4:8], "big")
        frames.append((header[0], buf.read(size)))
    return frames


class Daemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "exec" / "berth.sock"
        self.data_root = root / "data"
        self.exec_root = root / "exec"
        self.log_path = root / "berthd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Client(self.socket)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                *BERTHD,
                "-H",
                self.host,
                "--data-root",
                str(self.data_root),
                "--exec-root",
                str(self.exec_root),
                "--log-format",
                "json",
                "--log-level",
                "debug",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),
            cwd=REPO,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"berthd exited with {self.proc.returncode}:\n{self.log_path.read_text()[-4000:]}"
                )
            try:
                if self.client.request("GET", "/_ping", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("berthd did not answer /_ping within 30 s")

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def http_get(self, host: str, port: int, path: str = "/", timeout: float = 10) -> bytes:
        """An HTTP/1.0 GET; the whole response (status line, headers and body)."""
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def import_busybox(self, tag: str = "busybox:latest") -> str:
        sys.path.insert(0, str(REPO / "deploy"))
        from busybox_tar import write_busybox_tar

        buf = io.BytesIO()
        write_busybox_tar(buf)
        repo, _, t = tag.partition(":")
        status, payload = self.client.request(
            "POST",
            "/images/create",
            params={"fromSrc": "-", "repo": repo, "tag": t or "latest"},
            raw=buf.getvalue(),
        )
        assert status == 200, payload
        return str(json.loads(payload.splitlines()[-1])["status"])

    def leftovers(self) -> list[str]:
        """Mounts or runtime state this daemon left behind (should be none after stop)."""
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(str(self.root)):
                found.append(f"mount {point}")
        for cg in Path("/sys/fs/cgroup").glob("*/berth/*"):
            # Only ours: the container ids of this daemon are in its data root.
            if cg.is_dir() and (self.data_root / "containers" / cg.name).exists():
                found.append(f"cgroup {cg}")
        return found

    def cleanup(self) -> None:
        if self.proc is not None:
            try:
                self.stop(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            point = line.split()[4]
            if point.startswith(str(self.root)):
                subprocess.run(["umount", "-l", point], check=False)
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


def env_with_host(d: Daemon) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": d.host, "BERTH_HOST": d.host}


@contextlib.contextmanager
def running_daemon(prefix: str) -> Iterator[Daemon]:
    """A berthd on a fresh temporary root with busybox imported, cleaned up after."""
    d = Daemon(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        d.start()
        d.import_busybox()
        yield d
    finally:
        d.cleanup()
