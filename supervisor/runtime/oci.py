"""The OCI runtime (crun or runc) driven through its command line.

berth gives the runtime a private ``--root`` state directory and a ``--log`` file in JSON
so the runtime's own errors never mix with the container's output (ARCHITECTURE.md §3).
``create`` gets berth's pipe ends as the container's stdio; nothing is captured, because
the container inherits those descriptors and a capture would never see EOF.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import structlog
import trio

from supervisor.errors import InvalidArgument, RuntimeFailed

log = structlog.get_logger()


class ExecNotFound(InvalidArgument):
    """The container's command does not exist (Docker: 400, exit code 127)."""


class ExecNotPermitted(InvalidArgument):
    """The container's command is not executable (Docker: 400, exit code 126)."""


class OciRuntime:
    def __init__(self, binary: str, *, state_root: Path, name: str) -> None:
        self.binary = binary
        self.name = name
        self.state_root = state_root

    def _base(self, log_path: Path | None = None) -> list[str]:
        cmd = [self.binary, "--root", str(self.state_root)]
        if log_path is not None:
            cmd += ["--log", str(log_path), "--log-format", "json"]
        return cmd

    async def _run(
        self,
        args: list[str],
        *,
        log_path: Path,
        what: str,
        stdin: int = subprocess.DEVNULL,
        stdout: int = subprocess.DEVNULL,
        stderr: int = subprocess.DEVNULL,
    ) -> None:
        if log_path.exists():
            log_path.unlink()
        result = await trio.run_process(
            [*self._base(log_path), *args],
            check=False,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )
        if result.returncode != 0:
            message = last_error(log_path) or f"{self.name} {what} exited with {result.returncode}"
            raise _classify(f"OCI runtime {what} failed: {message}")

    async def create(
        self,
        cid: str,
        *,
        bundle: Path,
        pid_file: Path,
        stdin: int,
        stdout: int,
        stderr: int,
        console_socket: Path | None = None,
    ) -> int:
        """Create the container (its init waits for ``start``); return the init's pid.
        With ``console_socket`` the spec's terminal's master is sent there."""
        console = ["--console-socket", str(console_socket)] if console_socket else []
        await self._run(
            ["create", "--bundle", str(bundle), "--pid-file", str(pid_file), *console, cid],
            log_path=bundle / "runtime.log",
            what="create",
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )
        return int(pid_file.read_text().strip())

    async def exec(
        self,
        cid: str,
        *,
        process: Path,
        pid_file: Path,
        log_path: Path,
        stdin: int = subprocess.DEVNULL,
        stdout: int = subprocess.DEVNULL,
        stderr: int = subprocess.DEVNULL,
        console_socket: Path | None = None,
    ) -> int:
        """Start ``process`` (an OCI process JSON file) in the running container,
        detached: the runtime exits once it runs, the process is re-parented to berthd
        (the subreaper). Returns its pid."""
        console = ["--console-socket", str(console_socket)] if console_socket else []
        await self._run(
            [
                "exec",
                "--detach",
                "--process",
                str(process),
                "--pid-file",
                str(pid_file),
                *console,
                cid,
            ],
            log_path=log_path,
            what="exec",
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )
        return int(pid_file.read_text().strip())

    async def start(self, cid: str, *, bundle: Path) -> None:
        await self._run(["start", cid], log_path=bundle / "runtime.log", what="start")

    async def delete(self, cid: str, bundle: Path, force: bool = False) -> None:
        """Remove the runtime's state (and the container's cgroup); missing is fine."""
        if not (self.state_root / cid).exists():
            return  # never created, or already deleted: both runc and crun keep state there
        args = ["delete", *(["--force"] if force else []), cid]
        bundle.mkdir(parents=True, exist_ok=True)
        try:
            await self._run(args, log_path=bundle / "runtime-delete.log", what="delete")
        except RuntimeFailed as exc:
            if "does not exist" not in str(exc) and "not exist" not in str(exc):
                raise

    async def pause(self, cid: str, *, bundle: Path) -> None:
        """Freeze every process of the container (cgroup freezer, v1 or v2)."""
        await self._run(["pause", cid], log_path=bundle / "runtime.log", what="pause")

    async def resume(self, cid: str, *, bundle: Path) -> None:
        await self._run(["resume", cid], log_path=bundle / "runtime.log", what="resume")

    async def update(self, cid: str, resources: dict[str, object], *, bundle: Path) -> None:
        """Change a running container's cgroup limits (``update --resources``): an OCI
        ``LinuxResources`` object whose zero or missing fields the runtime leaves alone."""
        path = bundle / "update.json"
        path.write_text(json.dumps(resources))
        await self._run(
            ["update", "--resources", str(path), cid],
            log_path=bundle / "runtime.log",
            what="update",
        )

    async def kill(self, cid: str, sig: int, *, bundle: Path) -> None:
        await self._run(["kill", cid, str(sig)], log_path=bundle / "runtime.log", what="kill")

    async def list_ids(self) -> list[str]:
        result = await trio.run_process(
            [*self._base(), "list", "--format", "json"],
            capture_stdout=True,
            check=False,
            stderr=subprocess.DEVNULL,
        )
        if result.returncode != 0 or not result.stdout.strip():
            return []
        return [str(item["id"]) for item in json.loads(result.stdout) or []]


def _classify(message: str) -> RuntimeFailed | InvalidArgument:
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return ExecNotFound(message)
    if "permission denied" in lowered:
        return ExecNotPermitted(message)
    return RuntimeFailed(message)


def last_error(log_path: Path) -> str:
    """The last error-level message in a runtime's JSON log file."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    message = ""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            message = line.strip() or message
            continue
        if entry.get("level") in ("error", "fatal") and entry.get("msg"):
            message = str(entry["msg"])
    return message


async def probe(choice: str, *, state_root: Path) -> OciRuntime:
    """Pick the runtime: an explicit name/path, or ``auto`` (crun if it can create a
    container on this host, else runc). On this machine crun 1.8.1 refuses hybrid cgroups.
    """
    if choice not in ("auto", ""):
        path = shutil.which(choice) or choice
        if not os.access(path, os.X_OK):
            raise RuntimeFailed(f"OCI runtime {choice!r} not found")
        return OciRuntime(path, state_root=state_root / Path(path).name, name=Path(path).name)
    reasons: list[str] = []
    for name in ("crun", "runc"):
        found = shutil.which(name)
        if not found:
            reasons.append(f"{name}: not installed")
            continue
        candidate = OciRuntime(found, state_root=state_root / name, name=name)
        error = await _try_create(candidate)
        if error is None:
            return candidate
        reasons.append(f"{name}: {error}")
        log.info("runtime.probe_failed", runtime=name, reason=error)
    raise RuntimeFailed("no usable OCI runtime: " + "; ".join(reasons))


async def _try_create(rt: OciRuntime) -> str | None:
    """Create (never start) a container on an empty rootfs; None when that works."""
    from supervisor.runtime.spec import SpecInput, build_spec

    cid = f"berth-probe-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="berth-probe-") as tmp:
        bundle = Path(tmp)
        (bundle / "rootfs").mkdir()
        spec = build_spec(
            SpecInput(container_id=cid, args=("/probe",), env=(), nofile=nofile_cap())
        )
        (bundle / "config.json").write_text(json.dumps(spec))
        pidfd = -1
        try:
            pid = await rt.create(
                cid,
                bundle=bundle,
                pid_file=bundle / "pid",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            pidfd = os.pidfd_open(pid)
        except ExecNotFound:
            return None  # runc checks the command at create: it got as far as we need
        except (RuntimeFailed, InvalidArgument, OSError) as exc:
            return str(exc)
        finally:
            with trio.CancelScope(shield=True):
                with contextlib.suppress(RuntimeFailed, OSError):
                    await rt.delete(cid, bundle=bundle, force=True)
                if pidfd >= 0:
                    # berthd is the subreaper: the probe's init is our child; reap it.
                    await trio.lowlevel.wait_readable(pidfd)
                    os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
                    os.close(pidfd)
    return None


def nofile_cap() -> tuple[int, int]:
    """RLIMIT_NOFILE for containers: Docker's 1048576, capped to the daemon's own hard
    limit (root here lacks CAP_SYS_RESOURCE, so asking for more fails with EPERM)."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = 1048576 if hard == resource.RLIM_INFINITY else min(hard, 1048576)
    return (cap, cap)


def signal_number(name: str | int | None, default: int = signal.SIGTERM) -> int:
    """Parse ``SIGTERM``, ``TERM``, ``15`` as Docker does. Raises InvalidArgument."""
    if name is None or name == "":
        return int(default)
    if isinstance(name, int):
        return name
    text = name.strip().upper()
    if text.isdigit():
        number = int(text)
        if not 0 < number < 65:
            raise InvalidArgument(f"Invalid signal: {name}")
        return number
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {name}") from None
