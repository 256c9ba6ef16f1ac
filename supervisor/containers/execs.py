"""Exec instances: processes started in a running container (``docker exec``).

Theory of operation: ``POST /containers/{id}/exec`` records an :class:`Exec` (nothing
runs yet); ``POST /exec/{id}/start`` writes an OCI process file from the container's
own ``config.json`` process (``spec.exec_process``) and runs ``runtime exec --detach``.
The runtime exits once the process runs; the process is re-parented to berthd (the
subreaper), which pins it with a pidfd and supervises it like a container's init: one
task in the service's nursery copies its output to the exec's hub, waits for it, and
records the exit code. An attached client only subscribes to the hub and writes stdin,
so a client that goes away never stops the process, and the exit code is known before
the client's stream ends (the docker CLI inspects the exec right after).

Exec instances live in memory (Docker's too) and go with their container.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from supervisor.containers.logs import LogEntry, OutputHub
from supervisor.containers.manager import ContainerManager, Handle
from supervisor.containers.monitor import wait_exit
from supervisor.containers.prelaunch import Prelaunch
from supervisor.containers.state import Status
from supervisor.errors import BerthError, Conflict, InvalidArgument, NotFound
from supervisor.runtime import rootfs as rootfs_mod
from supervisor.runtime.console import set_window_size, with_console
from supervisor.runtime.oci import ExecNotFound, ExecNotPermitted, bounding_capabilities
from supervisor.runtime.orphans import reap_orphans
from supervisor.runtime.pipes import PipeEnds, read_chunk, with_pipes
from supervisor.runtime.spec import CommandError, exec_process
from supervisor.runtime.users import UnknownUser, resolve_user

log = structlog.get_logger()

OUTPUT_DRAIN_S = 2.0
PROBE_OUTPUT_LIMIT = 4096
ORPHAN_SWEEP_S = 10.0  # safety net for orphans a failed exec's own sweeps missed
# Execs created but not started yet that may hold a waiting runtime each (~2 MB): a
# client that creates many at once gets the rest launched at start, as before.
MAX_PRELAUNCHED = 16


@attrs.define(eq=False)
class Exec:
    id: str
    container_id: str
    argv: list[str]
    env: list[str]
    user: str
    workdir: str
    tty: bool
    privileged: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    detach_keys: str
    created_ns: int = attrs.field(factory=time.time_ns)
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    stdin_fd: int = -1  # the process's stdin (pipe write end or a dup of the pty master)
    console_fd: int = -1  # the pty master, while the process runs
    hub: OutputHub = attrs.field(factory=OutputHub)
    done: trio.Event = attrs.field(factory=trio.Event)
    prelaunch: Prelaunch | None = None  # its runtime exec, started at create (prelaunch.py)
    prelaunch_run: tuple[int, str] = (0, "")  # the container's run it was started for

    def inspect(self) -> dict[str, Any]:
        """``GET /exec/{id}/json``."""
        return {
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "ExitCode": self.exit_code,
            "ID": self.id,
            "OpenStderr": self.attach_stderr,
            "OpenStdin": self.attach_stdin,
            "OpenStdout": self.attach_stdout,
            "ProcessConfig": {
                "arguments": self.argv[1:],
                "entrypoint": self.argv[0],
                "privileged": self.privileged,
                "tty": self.tty,
                "user": self.user,
            },
            "Running": self.running,
            "Pid": self.pid,
        }


def _str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"json: cannot unmarshal into Go struct field {key} of type []string")
    return list(value)


class ExecManager:
    def __init__(self, containers: ContainerManager, *, exec_root: Path) -> None:
        self._containers = containers
        self._dir = exec_root / "exec"
        self._tty_dir = exec_root / "tty"
        self._execs: dict[str, Exec] = {}
        self._nursery: trio.Nursery | None = None
        self._launching = 0  # execs whose pid berthd has not pinned with a pidfd yet
        self._prelaunched = 0  # early runtime launches alive (prelaunch.py)
        self._grantable = bounding_capabilities()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._sweep_periodically)
            task_status.started()
            await trio.sleep_forever()

    def sweep_orphans(self) -> list[int]:
        """Reap what a failed runtime ``exec`` left behind (runtime/orphans.py)."""
        runtime = self._containers.runtime
        return reap_orphans(
            tracked={ex.pid for ex in self._execs.values() if ex.pid} | runtime.running,
            runtime_names={runtime.name},
            runtime_busy=runtime.busy > 0 or self._launching > 0,
        )

    async def _sweep_periodically(self) -> None:
        while True:
            await trio.sleep(ORPHAN_SWEEP_S)
            self.sweep_orphans()

    async def _sweep_after_failure(self) -> None:
        # The runtime's process in the container may die a moment after the runtime
        # has reported the failure; another command may keep the sweep waiting.
        for delay in (0.0, 0.01, 0.1, 1.0):
            await trio.sleep(delay)
            if self.sweep_orphans():
                return

    def _event(self, h: Handle, action: str, **extra: str) -> None:
        # Durable rows like every event, but no request waits for them (EventLog.defer).
        self._containers.announce_later(h, action, **extra)

    # -- create / inspect -------------------------------------------------------------

    def _running(self, ref: str) -> Handle:
        h = self._containers.get(ref)
        status = h.record.state.status
        if status is Status.PAUSED:
            raise Conflict(f"Container {h.id} is paused, unpause the container before exec")
        if status is not Status.RUNNING:
            raise Conflict(f"Container {h.id} is not running")
        return h

    async def create(self, ref: str, body: object) -> Exec:
        """``POST /containers/{id}/exec``. Raises 400 (bad body), 404, 409 (not running)."""
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        h = self._running(ref)
        argv = _str_list(body, "Cmd")
        if not argv or not argv[0]:
            raise InvalidArgument("No exec command specified")
        env = _str_list(body, "Env")
        for item in env:
            if not item or item.startswith("="):
                raise InvalidArgument(f"invalid environment variable: {item}")
        workdir = str(body.get("WorkingDir") or "")
        if workdir and not workdir.startswith("/"):
            raise InvalidArgument(
                f"the working directory '{workdir}' is invalid, it needs to be an absolute path"
            )
        ex = Exec(
            id=secrets.token_hex(32),
            container_id=h.id,
            argv=argv,
            env=env,
            user=str(body.get("User") or ""),
            workdir=workdir,
            tty=bool(body.get("Tty")),
            privileged=bool(body.get("Privileged")),
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout")),
            attach_stderr=bool(body.get("AttachStderr")),
            detach_keys=str(body.get("DetachKeys") or ""),
        )
        self._execs[ex.id] = ex
        self._forget_old(h.id)
        if (
            not ex.tty
            and (ex.attach_stdout or ex.attach_stderr)
            and self._prelaunched < MAX_PRELAUNCHED
        ):
            self._prelaunch(h, ex)
        self._event(h, "exec_create: " + " ".join(argv), execID=ex.id)
        return ex

    def _prelaunch(self, h: Handle, ex: Exec) -> None:
        """Start the runtime now; ``start`` hands it the process (prelaunch.py)."""
        assert self._nursery is not None
        pre = ex.prelaunch = Prelaunch()
        # runc reads the container's state (its init's namespaces) before the process:
        # a launch started for one run must not be released into the next.
        ex.prelaunch_run = (h.record.state.pid, h.record.state.started_at)
        # Files of its own: a start that lets it go launches again at once, under
        # ``{id}.pid``/``.log``, while this runtime may still be exiting.
        pid_file, log_file = self._dir / f"{ex.id}.early.pid", self._dir / f"{ex.id}.early.log"

        async def launch(process: Path, pass_fds: tuple[int, ...]) -> tuple[int, PipeEnds]:
            try:
                return await self._exec_with_pipes(
                    h, ex, process, pid_file, log_file, capture=True, pass_fds=pass_fds
                )
            finally:
                pid_file.unlink(missing_ok=True)
                log_file.unlink(missing_ok=True)

        async def launch_and_count() -> None:
            try:
                await pre.run(launch)
            finally:
                self._prelaunched -= 1

        self._prelaunched += 1
        self._nursery.start_soon(launch_and_count)

    def get(self, exec_id: str) -> Exec:
        ex = self._execs.get(exec_id)
        if ex is None or not self._containers.exists(ex.container_id):
            raise NotFound(f"No such exec instance: {exec_id}")
        return ex

    def _forget_old(self, cid: str, keep: int = 64) -> None:
        """Finished execs of a container beyond the newest ``keep`` (health probes and
        loops would otherwise pile up)."""
        done = sorted(
            (e for e in self._execs.values() if e.container_id == cid and e.exit_code is not None),
            key=lambda e: e.created_ns,
        )
        for e in done[: max(0, len(done) - keep)]:
            self._execs.pop(e.id, None)

    def check_startable(self, exec_id: str) -> Exec:
        """The exec, if it exists and has not been started (404 / 409 otherwise)."""
        ex = self.get(exec_id)
        if ex.running:
            raise Conflict(f"Exec command {ex.id} is already running")
        if ex.started:
            raise Conflict(f"Exec command {ex.id} has already run")
        try:
            self._running(ex.container_id)
        except BerthError:
            if ex.prelaunch is not None:
                ex.prelaunch.abandon()
            raise
        return ex

    def resize(self, exec_id: str, height: int, width: int) -> None:
        ex = self.get(exec_id)
        if not ex.tty or ex.console_fd < 0:
            return
        with contextlib.suppress(OSError):
            set_window_size(ex.console_fd, height, width)

    # -- start ------------------------------------------------------------------------

    async def start(self, exec_id: str, *, capture: bool, tty: bool | None = None) -> Exec:
        """Run the exec's process and return once it runs (its supervision continues in
        the background). ``capture`` False sends its output nowhere (``Detach``).

        Raises:
            Conflict: already started, or the container stopped meanwhile.
            InvalidArgument: the command or the user does not exist (Docker's 126/127
                exit codes are recorded too).
        """
        ex = self.check_startable(exec_id)
        h = self._running(ex.container_id)
        if tty is not None:
            ex.tty = tty
        ex.started = True
        assert self._nursery is not None
        self._launching += 1
        try:
            try:
                pid, stdout, stderr = await self._launch(h, ex, capture=capture)
            except BaseException as exc:
                ex.exit_code = (
                    127
                    if isinstance(exc, ExecNotFound)
                    else 126
                    if isinstance(exc, ExecNotPermitted)
                    else 128
                )
                ex.done.set()
                self._nursery.start_soon(self._sweep_after_failure)
                raise
            ex.pid = pid
            pidfd = os.pidfd_open(pid)
        finally:
            self._launching -= 1
        ex.running = True
        ex.hub.start_of_run()
        self._event(h, "exec_start: " + " ".join(ex.argv), execID=ex.id)
        self._nursery.start_soon(self._supervise, h, ex, pidfd, stdout, stderr)
        return ex

    async def _launch(self, h: Handle, ex: Exec, *, capture: bool) -> tuple[int, int, int]:
        """Run ``runtime exec`` (or release the one started at create); returns (pid,
        stdout fd, stderr fd) — -1 for what is not captured."""
        pre, ex.prelaunch = ex.prelaunch, None
        try:
            process = self._process(h, ex)
        except BaseException:
            if pre is not None:
                pre.abandon()
            raise
        same_run = ex.prelaunch_run == (h.record.state.pid, h.record.state.started_at)
        if pre is not None and pre.open and capture and not ex.tty and same_run:
            with contextlib.suppress(trio.BrokenResourceError):  # result() says why
                await pre.release(json.dumps(process).encode())
            # Released, the process will run whether or not this start is cancelled:
            # wait for its pid (the runtime is quick) so it is supervised either way.
            with trio.CancelScope(shield=True):
                pid, ends = await pre.result()
            ex.stdin_fd = ends.stdin
            return pid, ends.stdout, ends.stderr
        if pre is not None:
            pre.abandon()
        process_file = self._dir / f"{ex.id}.json"
        pid_file = self._dir / f"{ex.id}.pid"
        log_file = self._dir / f"{ex.id}.log"
        process_file.write_text(json.dumps(process))
        runtime = self._containers.runtime
        try:
            if ex.tty:

                async def run(sock: Path) -> int:
                    return await runtime.exec(
                        h.id,
                        process=process_file,
                        pid_file=pid_file,
                        log_path=log_file,
                        console_socket=sock,
                    )

                pid, master = await with_console(self._tty_dir, run)
                ex.console_fd = master
                if ex.attach_stdin:
                    ex.stdin_fd = os.dup(master)
                return pid, master, -1
            pid, ends = await self._exec_with_pipes(
                h, ex, process_file, pid_file, log_file, capture=capture
            )
            ex.stdin_fd = ends.stdin
            return pid, ends.stdout, ends.stderr
        finally:
            for f in (process_file, pid_file, log_file):
                f.unlink(missing_ok=True)

    def _process(self, h: Handle, ex: Exec) -> dict[str, Any]:
        """The OCI process of ``ex``: the container's own, with the exec's command,
        environment, user, working directory, terminal and privileges."""
        paths = self._containers.paths(h.id)
        try:
            base = json.loads((paths.bundle / "config.json").read_text())["process"]
        except (OSError, ValueError, KeyError) as exc:
            raise Conflict(f"Container {h.id} is not running") from exc
        user = None
        if ex.user:
            passwd = rootfs_mod.read_in_root(paths.rootfs, "/etc/passwd")
            group = rootfs_mod.read_in_root(paths.rootfs, "/etc/group")
            try:
                u = resolve_user(
                    ex.user,
                    passwd=passwd.decode(errors="replace") if passwd else None,
                    group=group.decode(errors="replace") if group else None,
                )
            except UnknownUser as exc:
                raise InvalidArgument(str(exc)) from None
            user = (u.uid, u.gid, tuple(u.additional_gids))
        try:
            return exec_process(
                base,
                args=ex.argv,
                env=ex.env,
                cwd=ex.workdir,
                user=user,
                tty=ex.tty,
                privileged=ex.privileged,
                grantable=self._grantable,
            )
        except CommandError as exc:
            raise InvalidArgument(str(exc)) from None

    async def _exec_with_pipes(
        self,
        h: Handle,
        ex: Exec,
        process: Path,
        pid_file: Path,
        log_file: Path,
        *,
        capture: bool,
        pass_fds: tuple[int, ...] = (),
    ) -> tuple[int, PipeEnds]:
        """``runtime exec`` of ``process`` with pipes for the exec's stdin (if attached)
        and, when ``capture``, its output; returns its pid and berth's ends."""

        async def run(stdin: int, stdout: int, stderr: int) -> int:
            return await self._containers.runtime.exec(
                h.id,
                process=process,
                pass_fds=pass_fds,
                pid_file=pid_file,
                log_path=log_file,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )

        return await with_pipes(run, stdin=ex.attach_stdin, stdout=capture, stderr=capture)

    async def _supervise(self, h: Handle, ex: Exec, pidfd: int, stdout: int, stderr: int) -> None:
        """Copy output to the hub until the process ends; record the exit code first,
        then end the hub (attached clients ask for the exit code right after)."""
        drained = trio.Event()
        open_streams = sum(fd >= 0 for fd in (stdout, stderr))
        if open_streams == 0:
            drained.set()

        async def copy(fd: int, stream: str) -> None:
            nonlocal open_streams
            os.set_blocking(fd, False)
            try:
                while True:
                    try:
                        data = await read_chunk(fd)
                    except OSError:
                        data = b""  # the process's output is over either way
                    if not data:
                        break
                    ex.hub.publish(LogEntry(stream, data, time.time_ns()))
            finally:
                open_streams -= 1
                if open_streams <= 0:
                    drained.set()

        try:
            async with trio.open_nursery() as nursery:
                if stdout >= 0:
                    nursery.start_soon(copy, stdout, "stdout")
                if stderr >= 0:
                    nursery.start_soon(copy, stderr, "stderr")
                code = await wait_exit(pidfd)
                with trio.move_on_after(OUTPUT_DRAIN_S):
                    await drained.wait()
                nursery.cancel_scope.cancel()
        finally:
            os.close(pidfd)
            for fd in (stdout, stderr):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            ex.console_fd = -1
            self.close_stdin(ex)
        ex.exit_code = code
        ex.running = False
        ex.done.set()
        ex.hub.end_of_run()
        log.debug("exec.exited", container_id=h.id, exec_id=ex.id, exit_code=code)
        self._event(h, "exec_die", execID=ex.id, exitCode=str(code))

    def close_stdin(self, ex: Exec) -> None:
        if ex.stdin_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(ex.stdin_fd)
            ex.stdin_fd = -1

    # -- probes (health checks) -------------------------------------------------------

    async def probe(
        self, ref: str, argv: list[str], *, timeout_s: float, env: list[str] | None = None
    ) -> tuple[int, bytes]:
        """Run ``argv`` in the container and wait: (exit code, the first 4 KiB of its
        combined output). A process still running after ``timeout_s`` is killed and
        reported as -1."""
        ex = await self.create(
            ref, {"Cmd": argv, "Env": env or [], "AttachStdout": True, "AttachStderr": True}
        )
        output = bytearray()
        receive = ex.hub.subscribe()
        await self.start(ex.id, capture=True)
        timed_out = False
        async with receive:
            with trio.move_on_after(timeout_s) as scope:
                async for entry in receive:
                    if len(output) < PROBE_OUTPUT_LIMIT:
                        output += entry.data[: PROBE_OUTPUT_LIMIT - len(output)]
                await ex.done.wait()
            if scope.cancelled_caught and not ex.done.is_set():
                timed_out = True
                with contextlib.suppress(OSError):
                    os.kill(ex.pid, signal.SIGKILL)
        if timed_out:
            with trio.move_on_after(5):
                await ex.done.wait()
            return -1, bytes(output)
        return int(ex.exit_code if ex.exit_code is not None else -1), bytes(output)

    def forget_container(self, cid: str) -> None:
        for key in [k for k, e in self._execs.items() if e.container_id == cid]:
            ex = self._execs.pop(key)
            if ex.prelaunch is not None:
                ex.prelaunch.abandon()
