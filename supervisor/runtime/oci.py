"""The OCI runtime (crun or runc) driven through its command line.

berth gives the runtime a private ``--root`` state directory and a ``--log`` file in JSON
so the runtime's own errors never mix with the container's output (ARCHITECTURE.md §3).
``create`` gets berth's pipe ends as the container's stdio; nothing is captured, because
the container inherits those descriptors and a capture would never see EOF.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import structlog
import trio

from supervisor.errors import InvalidArgument, RuntimeFailed
from supervisor.runtime import spawn

log = structlog.get_logger()


class ExecNotFound(InvalidArgument):
    """The container's command does not exist (Docker: 400, exit code 127)."""


class ExecNotPermitted(InvalidArgument):
    """The container's command is not executable (Docker: 400, exit code 126)."""


# crun 1.8 refuses to *create* a container while a cgroup2 hierarchy with controllers is
# mounted beside the v1 ones ("cgroups in hybrid mode not supported"). Run that one
# command in a private mount namespace (``unshare`` makes every mount private first, so
# nothing propagates back to the host) where the v2 mount is detached: crun then sees a
# plain v1 host. The container's own namespaces are created from that copy, which has
# the same rootfs, netns and volume mounts as the host. Every other crun command works
# on a hybrid host as it is.
# Not "&&": when the v2 mount is already gone crun needs no help, and when it cannot be
# detached crun says why itself. Nothing may reach stderr: it is the container's.
_UMOUNT_THEN_EXEC = 'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'
HIDE_UNIFIED = ("unshare", "--mount", "--propagation", "private", "sh", "-c", _UMOUNT_THEN_EXEC)
# The same with busybox's applets (Debian's busybox-static, which berth installs anyway):
# static binaries skip the dynamic loader, 2.4 ms for the three steps against 6 ms.
HIDE_UNIFIED_BUSYBOX = (
    "busybox", "unshare", "--mount", "--propagation", "private",
    "busybox", "sh", "-c", "busybox " + _UMOUNT_THEN_EXEC,
)  # fmt: skip


def hide_unified_prefix(name: str) -> tuple[str, ...]:
    """The command prefix that runs runtime ``name``'s ``create`` without the v2 mount:
    only crun on a hybrid host needs one (empty otherwise, or when nothing can do it)."""
    if name != "crun" or not hybrid_cgroups():
        return ()
    if shutil.which("busybox"):
        return HIDE_UNIFIED_BUSYBOX
    return HIDE_UNIFIED if shutil.which("unshare") else ()


class PinnedBinary:
    """The runtime's binary as a sealed memfd that berthd holds, executed through a
    symlink to ``/proc/<berthd>/fd/<n>`` named like the runtime (so ``ps`` still shows
    ``crun``).

    runc and crun refuse to run from a file that a container could overwrite
    (CVE-2019-5736): unless their own executable is already a sealed memfd, every call
    first copies itself into one and re-executes, about 2.5 ms of each ``exec``,
    ``create`` and ``delete`` here. Handing them a sealed copy skips that. The copy is
    made again whenever the file on disk changes (a package upgrade), so an upgraded
    runtime is used from its next call on, as when it is run from its path.
    """

    def __init__(self, binary: str, link: Path) -> None:
        self.binary = binary
        self.link = link
        self._fd = -1
        self._stamp: tuple[int, int, int] | None = None
        self._refresh()

    def path(self) -> str:
        try:
            st = os.stat(self.binary)
        except OSError:
            return self.binary
        if (st.st_dev, st.st_ino, st.st_mtime_ns) != self._stamp:
            self._refresh()
        return str(self.link) if self._fd >= 0 else self.binary

    def _refresh(self) -> None:
        try:
            with open(self.binary, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
            fd = os.memfd_create(Path(self.binary).name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except OSError as exc:
            log.warning("runtime.pin_failed", binary=self.binary, error=str(exc))
            self._stamp = None
            return
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            os.fchmod(fd, 0o500)
            self.link.parent.mkdir(parents=True, exist_ok=True)
            staged = self.link.with_name(f".{self.link.name}.{fd}")
            staged.unlink(missing_ok=True)
            staged.symlink_to(f"/proc/{os.getpid()}/fd/{fd}")
            staged.replace(self.link)
        except OSError as exc:
            os.close(fd)
            log.warning("runtime.pin_failed", binary=self.binary, error=str(exc))
            return
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._stamp = (st.st_dev, st.st_ino, st.st_mtime_ns)


class OciRuntime:
    def __init__(
        self,
        binary: str,
        *,
        state_root: Path,
        name: str,
        create_prefix: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.name = name
        self.state_root = state_root
        self.create_prefix = create_prefix
        self._pinned: PinnedBinary | None = None
        self.running: set[int] = set()  # pids of the runtime commands under way
        self.busy = 0  # ``list`` commands under way (trio.run_process: pid unknown)

    def pin(self) -> None:
        """Run the runtime from a sealed in-memory copy of its binary from now on (see
        :class:`PinnedBinary`)."""
        self._pinned = PinnedBinary(self.binary, self.state_root.parent / "bin" / self.name)

    @property
    def description(self) -> str:
        """How ``info`` and the logs name it: ``crun (v2 mount hidden at create)``."""
        return f"{self.name} (v2 mount hidden at create)" if self.create_prefix else self.name

    def _base(self, log_path: Path | None = None) -> list[str]:
        binary = self._pinned.path() if self._pinned is not None else self.binary
        cmd = [binary, "--root", str(self.state_root)]
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
        prefix: tuple[str, ...] = (),
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        if log_path.exists():
            log_path.unlink()
        code = await spawn.run(
            [*prefix, *self._base(log_path), *args],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=pass_fds,
            running=self.running,
        )
        if code != 0:
            message = last_error(log_path) or f"{self.name} {what} exited with {code}"
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
            prefix=self.create_prefix,
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
        pass_fds: tuple[int, ...] = (),
    ) -> int:
        """Start ``process`` (an OCI process JSON file) in the running container,
        detached: the runtime exits once it runs, the process is re-parented to berthd
        (the subreaper). Returns its pid. ``pass_fds`` are inherited by the runtime
        (``process`` may be ``/proc/self/fd/N`` of a pipe among them)."""
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
            pass_fds=pass_fds,
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
        self.busy += 1
        try:
            result = await trio.run_process(
                [*self._base(), "list", "--format", "json"],
                capture_stdout=True,
                check=False,
                stderr=subprocess.DEVNULL,
            )
        finally:
            self.busy -= 1
        if result.returncode != 0 or not result.stdout.strip():
            return []
        return [str(item["id"]) for item in json.loads(result.stdout) or []]


def _classify(message: str) -> RuntimeFailed | InvalidArgument:
    message = runc_wording(message)
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return ExecNotFound(message)
    if "permission denied" in lowered:
        return ExecNotPermitted(message)
    return RuntimeFailed(message)


_CRUN_NOT_FOUND = re.compile(
    r"executable file `(?P<name>[^`]*)` not found in \$PATH(: No such file or directory)?"
)
_CRUN_NOT_EXECUTABLE = re.compile(r"open executable: (Permission denied|Operation not permitted)")


def runc_wording(message: str) -> str:
    """crun's messages for a command that cannot run, worded as runc's (and so moby's):
    the docker CLI picks exit code 127 or 126 by matching that wording."""
    found = _CRUN_NOT_FOUND.search(message)
    if found:
        name = found["name"]
        detail = (
            f"stat {name}: no such file or directory"
            if "/" in name
            else "executable file not found in $PATH"
        )
        return f'{message[: found.start()]}exec: "{name}": {detail}{message[found.end() :]}'
    return _CRUN_NOT_EXECUTABLE.sub("exec: permission denied", message)


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
        name = Path(path).name
        chosen = OciRuntime(
            path, state_root=state_root / name, name=name, create_prefix=hide_unified_prefix(name)
        )
        chosen.pin()
        return chosen
    reasons: list[str] = []
    for name in ("crun", "runc"):
        found = shutil.which(name)
        if not found:
            reasons.append(f"{name}: not installed")
            continue
        for candidate in _candidates(found, name, state_root):
            error = await _try_create(candidate)
            if error is None:
                candidate.pin()
                return candidate
            reasons.append(f"{candidate.description}: {error}")
            log.info("runtime.probe_failed", runtime=candidate.description, reason=error)
    raise RuntimeFailed("no usable OCI runtime: " + "; ".join(reasons))


def _candidates(binary: str, name: str, state_root: Path) -> list[OciRuntime]:
    """How to try ``name``: as it is, and for crun on a hybrid host also with the v2
    mount hidden at create."""
    prefixes = dict.fromkeys(((), hide_unified_prefix(name)))  # one try when they agree
    return [
        OciRuntime(binary, state_root=state_root / name, name=name, create_prefix=prefix)
        for prefix in prefixes
    ]


def hybrid_cgroups(mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """Whether a cgroup2 hierarchy is mounted at /sys/fs/cgroup/unified beside v1 ones."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return False
    return any(
        _mount_point_and_type(line) == ("/sys/fs/cgroup/unified", "cgroup2") for line in lines
    )


def _mount_point_and_type(line: str) -> tuple[str, str]:
    """Mount point and filesystem type of one /proc/self/mountinfo line."""
    fields = line.split()
    if "-" not in fields:
        return ("", "")
    dash = fields.index("-")
    if len(fields) < 5 or dash + 1 >= len(fields):
        return ("", "")
    return (fields[4], fields[dash + 1])


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


def bounding_capabilities(status: Path = Path("/proc/self/status")) -> frozenset[str] | None:
    """The daemon's capability bounding set (``CapBnd``): more cannot be granted to a
    container's process. None when it cannot be read."""
    from supervisor.runtime.spec import capabilities_in_mask

    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapBnd:"):
                return capabilities_in_mask(int(line.split()[1], 16))
    except (OSError, ValueError, IndexError):
        pass
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
