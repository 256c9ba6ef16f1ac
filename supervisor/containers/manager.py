"""Container lifecycle: create, start, supervise, stop, kill, restart, remove, wait.

Theory of operation: SQLite is the source of truth; a :class:`Handle` per container
mirrors its record in memory and holds what only lives while berthd runs (pidfd, output
hub, exit notices, the lock that serialises lifecycle operations). Each started container
has one *supervise* task in the manager's nursery: it waits for the process, records the
exit, asks the pure restart policy, sleeps the back-off inside a cancel scope that
``stop`` cancels, and starts the process again — until the policy says no.

Paths: ``<data-root>/containers/<id>/`` holds the overlay upper/work dirs, the json-file
log and the generated hostname/hosts/resolv.conf; ``<exec-root>/containers/<id>/`` is
the OCI bundle (``config.json`` and the ``rootfs`` mount point).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio

from store import containers as rows
from store import networks as network_rows
from store.db import Database
from supervisor.containers import health, names
from supervisor.containers.config import parse_create, parse_human_size, resources_of
from supervisor.containers.health import HealthState, HealthStatus, OnFailure
from supervisor.containers.healthcheck import HealthChecks, Watch
from supervisor.containers.logs import LogWriter, OutputHub, format_time, parse_time
from supervisor.containers.monitor import LOST_EXIT_CODE, adopt, send_signal, start_time, wait_exit
from supervisor.containers.restart import (
    RestartDecision,
    RestartPolicy,
    decide_restart,
    parse_policy,
)
from supervisor.containers.state import Op, Status, is_active, next_state
from supervisor.errors import (
    BerthError,
    Conflict,
    InvalidArgument,
    NoSuchContainer,
    NotFound,
    NotModified,
    berth_error_in,
)
from supervisor.events.log import EventLog
from supervisor.images.store import ImageStore
from supervisor.model import ZERO_TIME, Container, ContainerId, Endpoint, Network
from supervisor.network import etc, views
from supervisor.network import ports as port_specs
from supervisor.network.hostfiles import HOSTS, RESOLV_CONF, read_host_file
from supervisor.network.manager import DEFAULT_NETWORK, NetworkManager, Sandbox
from supervisor.network.proxy import serve_tcp, serve_udp
from supervisor.runtime import rootfs as rootfs_mod
from supervisor.runtime.cgroups import CgroupLayout
from supervisor.runtime.console import set_window_size, with_console
from supervisor.runtime.oci import (
    ExecNotFound,
    ExecNotPermitted,
    OciRuntime,
    nofile_cap,
    signal_number,
)
from supervisor.runtime.spec import BindMount, SpecInput, UserMount, build_spec
from supervisor.runtime.users import UnknownUser, resolve_user
from supervisor.volumes.manager import VolumeManager

if TYPE_CHECKING:
    from supervisor.containers.execs import ExecManager

log = structlog.get_logger()

DEFAULT_STOP_TIMEOUT = 10
OUTPUT_DRAIN_S = 2.0


@attrs.define(eq=False)
class ExitNotice:
    """Set once when a run ends (or the container is removed); carries the exit code."""

    event: trio.Event = attrs.field(factory=trio.Event)
    code: int = 0
    error: str = ""

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def _set_event() -> trio.Event:
    event = trio.Event()
    event.set()
    return event


@attrs.define(eq=False)
class Handle:
    record: Container
    hub: OutputHub = attrs.field(factory=OutputHub)
    lock: trio.Lock = attrs.field(factory=trio.Lock)
    exited: ExitNotice = attrs.field(factory=ExitNotice)
    removed: ExitNotice = attrs.field(factory=ExitNotice)
    pidfd: int = -1
    supervising: bool = False
    idle: trio.Event = attrs.field(factory=trio.Event)  # set when no supervise task runs
    restart_scope: trio.CancelScope | None = None
    stopping: bool = False
    backoff_s: float = 0.0
    restart_delay_s: float = 0.0
    oom_announced: bool = False
    pending_output: _Output | None = None
    cleaned: trio.Event = attrs.field(factory=_set_event)  # the last run's runtime state is gone
    launched_state: dict[str, Any] = attrs.field(factory=dict)  # state to record with "start"
    sandbox: Sandbox | None = None  # the network namespace of the current run
    stdin_fd: int = -1  # the write end of the run's stdin (pipe, or a dup of the pty master)
    console_fd: int = -1  # the run's pty master, for resize (owned by its _Output)
    stdin_closed: trio.Event = attrs.field(factory=_set_event)
    stdin_ready: trio.Event = attrs.field(factory=trio.Event)  # set once a run's stdin exists
    ports_scope: trio.CancelScope | None = None  # the current run's port proxies

    @property
    def id(self) -> ContainerId:
        return self.record.id


@attrs.frozen
class Paths:
    data: Path  # <data-root>/containers/<id>
    bundle: Path  # <exec-root>/containers/<id>

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def log(self) -> Path:
        return self.data / f"{self.data.name}-json.log"


def _now() -> str:
    return format_time(time.time_ns())


class ContainerManager:
    def __init__(
        self,
        *,
        db: Database,
        events: EventLog,
        images: ImageStore,
        networks: NetworkManager,
        volumes: VolumeManager,
        runtime: OciRuntime,
        cgroups: CgroupLayout,
        data_root: Path,
        exec_root: Path,
        init_binary: str | None,
        restart_defaults: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self._db = db
        self._events = events
        self._images = images
        self.networks = networks
        self.volumes = volumes
        self.execs: ExecManager | None = None  # set by the daemon (execs need this manager)
        self.runtime = runtime
        self._cgroups = cgroups
        self._data_root = data_root / "containers"
        self._exec_root = exec_root / "containers"
        self._tty_dir = exec_root / "tty"
        self._init_binary = init_binary
        self._restart_defaults = restart_defaults
        self._handles: dict[str, Handle] = {}
        self._nursery: trio.Nursery | None = None
        self._shutting_down = False
        self.health = HealthChecks()  # State.Health of every container, probes of running ones

    # -- lookups ------------------------------------------------------------------

    def paths(self, cid: str) -> Paths:
        return Paths(self._data_root / cid, self._exec_root / cid)

    def get(self, ref: str) -> Handle:
        cid = names.match(ref, [(h.id, h.record.name) for h in self._handles.values()])
        if cid is None:
            raise NoSuchContainer(ref)
        return self._handles[cid]

    def all(self) -> list[Container]:
        return sorted(
            (h.record for h in self._handles.values()), key=lambda c: c.created_ns, reverse=True
        )

    async def users_of_image(self, image_id: str) -> list[str]:
        return [h.id for h in self._handles.values() if h.record.image_id == image_id]

    async def _save(self, h: Handle, **changes: Any) -> None:
        """Write only the given state fields (concurrent changes to others survive)."""
        await self._db.run(rows.update_state, h.id, changes)
        h.record = rows.with_state(h.record, **changes)

    async def _emit(
        self, h: Handle, action: str, *, state: dict[str, Any] | None = None, **extra: str
    ) -> None:
        """Announce a container event; ``state`` changes commit in the same transaction."""
        attrs_ = {**h.record.labels, "image": h.record.image_ref, "name": h.record.name, **extra}
        change = (
            None if state is None else functools.partial(rows.update_state, cid=h.id, changes=state)
        )
        await self._events.emit("container", action, h.id, attrs_, with_change=change)
        if state is not None:
            h.record = rows.with_state(h.record, **state)

    def _policy(self, h: Handle) -> RestartPolicy:
        """The container's restart policy, with the daemon's back-off defaults filled in."""
        policy = parse_policy(h.record.host_config.get("RestartPolicy"))
        delay, max_delay = self._restart_defaults
        return attrs.evolve(
            policy,
            delay_s=policy.delay_s if policy.delay_s is not None else delay,
            max_delay_s=policy.max_delay_s if policy.max_delay_s is not None else max_delay,
        )

    async def announce(self, h: Handle, action: str, **extra: str) -> None:
        """An event about ``h`` that changes no state (``attach``, ``commit``...)."""
        await self._emit(h, action, state=None, **extra)

    # -- start-up and shutdown ----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the nursery every container task lives in; reconcile, then serve."""
        self._data_root.mkdir(parents=True, exist_ok=True)
        self._exec_root.mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._reconcile()
            task_status.started()
            await trio.sleep_forever()

    async def _reconcile(self) -> None:
        """Compare SQLite with /proc and the runtime after a (re)start (podman's Refresh)."""
        records = await self._db.run(rows.all_containers)
        adopted: set[str] = set()
        for c in records:
            h = Handle(record=c)
            self._handles[c.id] = h
            if c.state.status in (Status.RUNNING, Status.PAUSED):
                fd = adopt(c.state.pid, c.state.pid_start)
                if fd is not None:
                    h.pidfd = fd
                    adopted.add(c.id)
                    await self._readopt_network(h)
                    assert self._nursery is not None
                    h.supervising = True
                    h.idle = trio.Event()
                    self._nursery.start_soon(self._supervise, h, None)
                    log.info("container.adopted", container_id=c.id, pid=c.state.pid)
                    continue
        # Anything mounted or known to the runtime that we did not adopt is a leftover.
        for cid in await self.runtime.list_ids():
            if cid not in adopted:
                await self.runtime.delete(cid, bundle=self.paths(cid).bundle, force=True)
        for mount in rootfs_mod.mounts_under(self._exec_root):
            if mount.parent.name not in adopted:
                rootfs_mod.unmount(mount)
        await self.networks.clean_leftovers(adopted)
        known = {c.id for c in records}
        for root in (self._data_root, self._exec_root):
            for leftover in root.iterdir():
                if leftover.name not in known:
                    # Files of a container whose removal was committed before a crash.
                    await trio.to_thread.run_sync(_remove_dirs, self.paths(leftover.name))
        for h in list(self._handles.values()):
            c = h.record
            if h.id in adopted:
                continue
            if c.state.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                # Died while berthd was down: its exit status is lost (Docker records 255 too).
                await self._save(
                    h, status=Status.EXITED, pid=0, exit_code=LOST_EXIT_CODE, finished_at=_now()
                )
                self._cgroups.remove(h.id)
                await self._emit(h, "die", exitCode=str(LOST_EXIT_CODE))
            policy = parse_policy(c.host_config.get("RestartPolicy"))
            wanted = (
                policy.name.value == "always"
                or (policy.name.value == "unless-stopped" and not h.record.state.manually_stopped)
                or (
                    policy.name.value == "on-failure"
                    and c.state.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)
                )
            )
            if wanted and h.record.state.status is not Status.CREATED:
                try:
                    await self.start(h.id)
                except BerthError as exc:
                    log.warning("container.restart_failed", container_id=h.id, error=str(exc))

    async def _readopt_network(self, h: Handle) -> None:
        """A container that outlived berthd keeps its namespace and addresses; its
        port proxies come back on the ports it had."""
        mode = str(h.record.host_config.get("NetworkMode") or "default")
        if mode in ("host", "none") or mode.startswith("container:"):
            return
        h.sandbox = self.networks.adopt(h.id, self._dns_names(h.record))
        bound = list(h.record.state.ports)
        if bound and h.sandbox.primary is not None:
            try:
                await self._serve_ports(h, bound, h.sandbox.primary.ip)
                await self.networks.publish(h.id, bound, h.sandbox)
            except BerthError as exc:
                log.warning("container.ports_lost", container_id=h.id, error=str(exc))

    async def shutdown(self) -> None:
        """Stop every container (Docker's default without live-restore)."""
        self._shutting_down = True
        async with trio.open_nursery() as nursery:
            for h in list(self._handles.values()):
                if h.record.state.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                    nursery.start_soon(self._stop_for_shutdown, h)

    async def _stop_for_shutdown(self, h: Handle) -> None:
        try:
            await self.stop(h.id, timeout=None, manual=False)
        except NotModified:
            pass
        except BerthError as exc:
            log.warning("container.stop_failed", container_id=h.id, error=str(exc))

    # -- create ---------------------------------------------------------------------

    async def create(self, body: object, *, name: str | None) -> Container:
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        image_ref = body.get("Image")
        if not isinstance(image_ref, str) or not image_ref:
            raise InvalidArgument("Config cannot be empty in order to create a container")
        if name:
            name = names.validate_name(name)
        image = await self._images.resolve(image_ref)
        cid = names.new_id()
        result = parse_create(
            body, image_ref=image_ref, image_config=image.run_config, container_id=cid
        )
        if name is None:
            name = names.generate_name({h.record.name for h in self._handles.values()})
        mode, endpoints = self._plan_network(cid, result.host_config, body.get("NetworkingConfig"))
        mounts = await self.volumes.plan(
            result.config, result.host_config, resolve=lambda ref: self.get(ref).id
        )
        record = Container(
            id=ContainerId(cid),
            name=name,
            created_ns=time.time_ns(),
            image_ref=image_ref,
            image_id=image.id,
            config=result.config,
            host_config={**result.host_config, "NetworkMode": mode},
            path=result.path,
            args=result.args,
        )
        h = Handle(record=record)
        created: list[Endpoint] = []

        def insert(conn: Any) -> None:
            rows.insert(conn, record)
            created.extend(network_rows.insert_endpoint(conn, e) for e in endpoints)

        # The row, its endpoints, its mounts and volumes and its create event commit
        # together (409 for a taken name: none of them).
        attachment = self.volumes.attachment(cid, mounts)
        await self._events.emit(
            "container",
            "create",
            cid,
            {**record.labels, "image": record.image_ref, "name": record.name},
            with_change=attachment.wrap(insert),
        )
        self.networks.record_created(created)
        await attachment.announce()
        self._handles[cid] = h
        self.paths(cid).data.mkdir(parents=True, exist_ok=True)
        log.info("container.created", container_id=cid, container_name=name)
        return record

    def _plan_network(
        self, cid: str, hc: dict[str, Any], networking_config: object
    ) -> tuple[str, list[Endpoint]]:
        """The container's ``NetworkMode`` as stored, and the endpoints to record.

        Raises:
            NotFound: an unknown network or ``container:`` peer.
            InvalidArgument: bad ``NetworkingConfig``.
        """
        mode = str(hc.get("NetworkMode") or "default")
        configs: dict[str, Any] = {}
        if networking_config is not None:
            if not isinstance(networking_config, dict):
                raise InvalidArgument("invalid NetworkingConfig: expected an object")
            configs = networking_config.get("EndpointsConfig") or {}
            if not isinstance(configs, dict):
                raise InvalidArgument("invalid EndpointsConfig: expected an object")
        if mode.startswith("container:"):
            peer = self.get(mode.split(":", 1)[1])
            if peer.id == cid:
                raise InvalidArgument("cannot join own network")
            return f"container:{peer.id}", []

        def lookup(ref: str) -> Network:
            return self.networks.get(DEFAULT_NETWORK if ref == "default" else ref)

        network = lookup(mode)
        if network.driver != "bridge":
            if any(lookup(k).id != network.id for k in configs):
                raise InvalidArgument(
                    "container sharing network namespace with another container or host "
                    "cannot be connected to any other network"
                )
            return ("host" if network.driver == "host" else "none"), []
        primary = next((cfg for key, cfg in configs.items() if lookup(key).id == network.id), None)
        endpoints = [self.networks.endpoint_for(cid, network, primary)]
        for key, cfg in configs.items():
            other = lookup(key)
            if other.id == network.id:
                continue
            if other.driver != "bridge":
                raise InvalidArgument(
                    "container cannot be disconnected from host network or connected to host network"
                )
            endpoints.append(self.networks.endpoint_for(cid, other, cfg))
        return mode, endpoints

    # -- start --------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        h = self.get(ref)
        next_state(h.record.state.status, Op.START)  # 304 / 409 before any work
        if h.restart_scope is not None:
            h.restart_scope.cancel()  # a pending back-off: start now instead
        if h.supervising and h.record.state.status is not Status.RUNNING:
            await h.idle.wait()  # the previous run's supervisor is finishing up
        async with h.lock:
            next_state(h.record.state.status, Op.START)
            await self._start_locked(h)

    async def _start_locked(self, h: Handle) -> None:
        h.stopping = False
        try:
            pidfd = await self._launch(h)
        except BerthError as exc:
            # Docker's codes for a process that never ran: 127 not found, 126 not
            # executable, 128 anything else; attached clients see end-of-stream, and an
            # AutoRemove container is removed (moby containerStart's deferred cleanup).
            code = (
                127
                if isinstance(exc, ExecNotFound)
                else 126
                if isinstance(exc, ExecNotPermitted)
                else 128
            )
            await self._save(h, exit_code=code, error=str(exc))
            h.hub.end_of_run()
            await trio.to_thread.run_sync(_unmount_quietly, self.paths(h.id).rootfs)
            if h.record.host_config.get("AutoRemove") and self._nursery is not None:
                self._nursery.start_soon(self._remove_quietly, h.id)
            raise
        h.pidfd = pidfd
        await self._emit(h, "start", state=h.launched_state)
        if not h.supervising:
            assert self._nursery is not None
            h.supervising = True
            h.idle = trio.Event()
            self._nursery.start_soon(self._supervise, h, self._open_output(h))

    def _open_output(self, h: Handle) -> _Output:
        output, h.pending_output = h.pending_output, None
        assert output is not None
        return output

    async def _launch(self, h: Handle) -> int:
        """Mount, write the bundle, create and start the process; returns its pidfd.

        Resource handling: on failure everything this made is undone (mount, runtime
        state, pipes, zombie); on success the output pipes' read ends wait in
        ``h._pending_output`` for the supervise task.
        """
        c = h.record
        paths = self.paths(c.id)
        await h.cleaned.wait()  # the previous run's runtime state must be gone first
        image = await self._images.resolve(c.image_id)
        await trio.to_thread.run_sync(self._prepare_rootfs, paths, self._images.lowerdirs(image))
        t0 = time.monotonic()
        netns, sandbox = await self._join_network(h)
        log.debug("container.network_joined", ms=round((time.monotonic() - t0) * 1000, 1))
        try:
            return await self._launch_in(h, paths, netns, sandbox)
        except BaseException:
            with trio.CancelScope(shield=True):
                self._stop_publishing(h)
                if sandbox is not None:
                    h.sandbox = None
                    await self.networks.tear_down(c.id)
            raise

    async def _launch_in(self, h: Handle, paths: Paths, netns: str, sandbox: Sandbox | None) -> int:
        """The rest of :meth:`_launch`, once the network namespace exists: publish the
        ports (every one bound before the process starts), write the bundle, create
        and start the process."""
        c = h.record
        published = await self._publish(h, sandbox)
        mounts = await self.volumes.prepare(c.id, paths.rootfs)  # copy-up, bind sources
        try:
            spec = self._spec(c, paths, netns, sandbox, mounts)
        except UnknownUser as exc:
            raise InvalidArgument(str(exc)) from None
        (paths.bundle / "config.json").write_text(json.dumps(spec))
        pidfd = -1
        output: _Output | None = None
        try:
            pid, output = await self._create_process(h, paths)
            pidfd = os.pidfd_open(pid)
            output.oomfd = self._cgroups.register_oom_eventfd(c.id)
            await self.runtime.start(c.id, bundle=paths.bundle)
        except BaseException:
            if output is not None:
                output.close()
            with trio.CancelScope(shield=True):
                await self.runtime.delete(c.id, bundle=paths.bundle, force=True)
                if pidfd >= 0:
                    await wait_exit(pidfd)
                    os.close(pidfd)
            raise
        h.launched_state = {
            "status": Status.RUNNING,
            "pid": pid,
            "pid_start": start_time(pid),
            "started_at": _now(),
            "exit_code": 0,
            "error": "",
            "oom_killed": False,
            "manually_stopped": False,
            "ports": published,
        }
        h.pending_output = output
        h.stdin_fd, output.stdin = output.stdin, -1
        h.console_fd = output.stdout if output.tty else -1
        h.stdin_closed = trio.Event()
        h.stdin_ready.set()
        h.hub.start_of_run()
        log.info("container.started", container_id=c.id, pid=pid)
        return pidfd

    async def _create_process(self, h: Handle, paths: Paths) -> tuple[int, _Output]:
        """``runtime create`` with the container's stdio: a pty (``Tty``) whose master
        carries input and output, or pipes for stdout and stderr and — with
        ``OpenStdin`` — stdin. Returns the init's pid and the berth ends."""
        c = h.record
        tty = bool(c.config.get("Tty"))
        open_stdin = bool(c.config.get("OpenStdin"))
        pid_file = paths.bundle / "init.pid"
        if tty:

            async def create(sock: Path) -> int:
                return await self.runtime.create(
                    c.id,
                    bundle=paths.bundle,
                    pid_file=pid_file,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    console_socket=sock,
                )

            pid, master = await with_console(self._tty_dir, create)
            size = c.host_config.get("ConsoleSize") or [0, 0]
            if isinstance(size, list) and len(size) == 2 and size[0] and size[1]:
                with contextlib.suppress(OSError, TypeError, ValueError):
                    set_window_size(master, int(size[0]), int(size[1]))
            return pid, _Output(
                stdout=master,
                stderr=-1,
                oomfd=None,
                tty=True,
                stdin=os.dup(master) if open_stdin else -1,
            )
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        in_r, in_w = os.pipe2(os.O_CLOEXEC) if open_stdin else (-1, -1)
        try:
            pid = await self.runtime.create(
                c.id,
                bundle=paths.bundle,
                pid_file=pid_file,
                stdin=in_r if open_stdin else subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
            )
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                if fd >= 0:
                    os.close(fd)
        if in_w >= 0:
            os.set_blocking(in_w, False)
        return pid, _Output(stdout=out_r, stderr=err_r, oomfd=None, stdin=in_w)

    async def _join_network(self, h: Handle) -> tuple[str, Sandbox | None]:
        """The network namespace for the spec (a path, ``host`` or ``none``) and the
        sandbox berth made for it (bridge networks only)."""
        c = h.record
        mode = str(c.host_config.get("NetworkMode") or "default")
        if mode in ("host", "none"):
            return mode, None
        if mode.startswith("container:"):
            peer = self._handles.get(mode.split(":", 1)[1])
            if peer is None or peer.record.state.status not in (Status.RUNNING, Status.PAUSED):
                raise Conflict(
                    f"cannot join network of a non running container: {mode.split(':', 1)[1]}"
                )
            return f"/proc/{peer.record.state.pid}/ns/net", None
        sandbox = await self.networks.set_up(c, self._dns_names(c))
        h.sandbox = sandbox
        return sandbox.netns, sandbox

    @staticmethod
    def _dns_names(c: Container) -> list[str]:
        return [c.name, c.id[:12]]

    async def _publish(
        self, h: Handle, sandbox: Sandbox | None
    ) -> tuple[port_specs.PortBinding, ...]:
        """Bind every published port (``nursery.start``: all bound, or none and an
        error); the proxies live until :meth:`_stop_publishing`."""
        if sandbox is None or sandbox.primary is None:
            return ()
        hc, cfg = h.record.host_config, h.record.config
        bindings = port_specs.from_port_bindings(hc.get("PortBindings"))
        if hc.get("PublishAllPorts"):
            exposed = port_specs.parse_exposed_ports(cfg.get("ExposedPorts"))
            bindings = port_specs.publish_all(exposed, bindings)
        if not bindings:
            return ()
        bound = await self._serve_ports(h, bindings, sandbox.primary.ip)
        await self.networks.publish(h.id, bound, sandbox)
        return bound

    async def _serve_ports(
        self, h: Handle, bindings: list[port_specs.PortBinding], target_ip: str
    ) -> tuple[port_specs.PortBinding, ...]:
        assert self._nursery is not None
        scope, bound = await self._nursery.start(_proxies, bindings, target_ip)
        h.ports_scope = scope
        return tuple(bound)

    def _stop_publishing(self, h: Handle) -> None:
        if h.ports_scope is not None:
            h.ports_scope.cancel()
            h.ports_scope = None

    def _prepare_rootfs(self, paths: Paths, lowers: list[Path]) -> None:
        for d in (paths.data / "upper", paths.data / "work", paths.rootfs):
            d.mkdir(parents=True, exist_ok=True)
        if not rootfs_mod.is_mountpoint(paths.rootfs):
            rootfs_mod.mount_overlay(
                lowers, paths.data / "upper", paths.data / "work", paths.rootfs
            )

    def _spec(
        self,
        c: Container,
        paths: Paths,
        netns: str,
        sandbox: Sandbox | None,
        mounts: tuple[UserMount, ...] = (),
    ) -> dict[str, object]:
        cfg, hc = c.config, c.host_config
        passwd = rootfs_mod.read_in_root(paths.rootfs, "/etc/passwd")
        group = rootfs_mod.read_in_root(paths.rootfs, "/etc/group")
        user = resolve_user(
            str(cfg.get("User") or ""),
            passwd=passwd.decode(errors="replace") if passwd else None,
            group=group.decode(errors="replace") if group else None,
        )
        hostname = str(cfg.get("Hostname") or c.id[:12])
        if netns == "host":
            hostname = socket.gethostname()
        env = list(cfg.get("Env") or [])
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.insert(1 if env else 0, f"HOSTNAME={hostname}")
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        if cfg.get("Tty") and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        binds = self._etc_files(c, paths, hostname, netns, sandbox)
        return build_spec(
            SpecInput(
                container_id=c.id,
                args=(c.path, *c.args),
                env=tuple(env),
                cwd=str(cfg.get("WorkingDir") or "/"),
                uid=user.uid,
                gid=user.gid,
                additional_gids=user.additional_gids,
                hostname=hostname,
                domainname=str(cfg.get("Domainname") or "") if netns != "host" else "",
                readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
                tty=bool(cfg.get("Tty")),
                rootfs=str(paths.rootfs),
                init=bool(hc.get("Init")) and self._init_binary is not None,
                init_source=self._init_binary or "",
                cgroups_path=self._cgroups.runtime_path(c.id),
                resources=resources_of(hc),
                network_mode=netns,
                binds=binds,
                mounts=mounts,
                nofile=nofile_cap(),
                swap_accounting=self._cgroups.swap_accounting,
            )
        )

    def _etc_files(
        self, c: Container, paths: Paths, hostname: str, netns: str, sandbox: Sandbox | None
    ) -> tuple[BindMount, ...]:
        """Generate /etc/hostname, /etc/hosts and /etc/resolv.conf and bind them in
        (a ``container:`` peer's own files when sharing its namespace)."""
        hc = c.host_config
        mode = str(hc.get("NetworkMode") or "")
        if mode.startswith("container:"):
            peer = self.paths(mode.split(":", 1)[1]).data
            return tuple(
                BindMount(str(peer / name), f"/etc/{name}")
                for name in ("hostname", "hosts", "resolv.conf")
            )
        extra = [etc.parse_extra_host(e) for e in hc.get("ExtraHosts") or []]
        primary = sandbox.primary if sandbox is not None else None
        gateway = primary.network.gateway if primary is not None else ""
        extra = [(name, gateway if ip == etc.HOST_GATEWAY else ip) for name, ip in extra]
        extra = [(name, ip) for name, ip in extra if ip]
        if netns == "host":
            hosts = read_host_file(HOSTS) or etc.LOCALHOST_LINES
            hosts += "".join(f"{ip}\t{name}\n" for name, ip in extra)
        else:
            hosts = etc.hosts_file(
                hostname=hostname,
                domainname=str(c.config.get("Domainname") or ""),
                addresses=[a.ip for a in sandbox.attachments] if sandbox is not None else [],
                extra_hosts=extra,
            )
        embedded = (
            self.networks.dns_address(primary.network)
            if primary is not None and primary.network.user_defined
            else None
        )
        files = {
            "hostname": hostname + "\n",
            "hosts": hosts,
            "resolv.conf": etc.resolv_conf(
                read_host_file(RESOLV_CONF),
                dns=list(hc.get("Dns") or []),
                dns_search=list(hc.get("DnsSearch") or []),
                dns_options=list(hc.get("DnsOptions") or []),
                embedded_dns=embedded,
            ),
        }
        binds = []
        for name, text in files.items():
            path = paths.data / name
            path.write_text(text)
            binds.append(BindMount(str(path), f"/etc/{name}"))
        return tuple(binds)

    # -- supervision ------------------------------------------------------------------

    async def _supervise(self, h: Handle, output: _Output | None) -> None:
        """Watch runs of ``h`` until its restart policy lets it rest."""
        with structlog.contextvars.bound_contextvars(container_id=h.id):
            try:
                while True:
                    started = time.monotonic()
                    self._start_health(h)
                    code, oom = await self._watch_run(h, output)
                    output = None
                    restarting = await self._finish_run(
                        h, code, oom, ran_for_s=time.monotonic() - started
                    )
                    if not restarting:
                        break
                    output = await self._restart_after_backoff(h)
                    if output is None:
                        break
            finally:
                h.supervising = False
                h.idle.set()
            if h.record.host_config.get("AutoRemove") and not self._shutting_down:
                with trio.CancelScope(shield=True):
                    try:
                        await self.remove(h.id, force=True, volumes=True)
                    except BerthError as exc:
                        log.warning("container.autoremove_failed", error=str(exc))

    async def _watch_run(self, h: Handle, output: _Output | None) -> tuple[int, bool]:
        """Wait for the process to end while copying its output; returns (code, oom)."""
        oom_seen = False
        if output is None:
            # Adopted after a daemon restart: no pipes any more, only the pidfd.
            code = await wait_exit(h.pidfd)
        else:
            opts = h.record.host_config.get("LogConfig", {}).get("Config", {})
            writer = LogWriter(
                self.paths(h.id).log,
                h.hub,
                max_size=parse_human_size(opts["max-size"]) if "max-size" in opts else 0,
                max_file=int(opts.get("max-file", "1")),
            )
            if h.record.host_config.get("LogConfig", {}).get("Type") == "none":
                writer.max_size = 0
            code = 0
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_copy_output, output, "stdout", writer)
                    if output.stderr >= 0:
                        nursery.start_soon(_copy_output, output, "stderr", writer)
                    if output.oomfd is not None:
                        nursery.start_soon(self._watch_oom, h, output.oomfd)
                    code = await wait_exit(h.pidfd)
                    # The pipes reach EOF once every process holding them is gone.
                    with trio.move_on_after(OUTPUT_DRAIN_S):
                        await output.drained.wait()
                    nursery.cancel_scope.cancel()
            finally:
                writer.close()
                h.console_fd = -1
                output.close()
                self.close_stdin(h)
                h.stdin_ready = trio.Event()  # for attachers waiting for the next run
                h.hub.end_of_run()
        os.close(h.pidfd)
        h.pidfd = -1
        oom_seen = self._cgroups.oom_kills(h.id) > 0
        return code, oom_seen

    async def _watch_oom(self, h: Handle, efd: int) -> None:
        await trio.lowlevel.wait_readable(efd)
        if self._cgroups.oom_kills(h.id) > 0:
            await self._emit(h, "oom")
            h.oom_announced = True

    async def _finish_run(self, h: Handle, code: int, oom: bool, *, ran_for_s: float) -> bool:
        """Record an exit and the restart decision with it. Returns True to restart.

        The die event carries the next status (``restarting`` or ``exited``), so no
        client ever sees an exited container that then restarts on its own; a stop
        that arrives while the exit is being recorded cancels the restart.
        """
        paths = self.paths(h.id)
        policy = self._exit_policy(h, unhealthy_restart=self.health.end_run(h.id))

        def decide() -> RestartDecision:
            return decide_restart(
                policy,
                exit_code=code,
                manually_stopped=h.stopping
                or h.record.state.manually_stopped
                or self._shutting_down,
                ran_for_s=ran_for_s,
                restart_count=h.record.state.restart_count,
                backoff_s=h.backoff_s,
            )

        with trio.CancelScope(shield=True):
            self._stop_publishing(h)
            decision = decide()
            if oom and not h.oom_announced:
                await self._emit(h, "oom")
            h.oom_announced = False
            state = {
                "status": Status.RESTARTING if decision.restart else Status.EXITED,
                "pid": 0,
                "exit_code": code,
                "oom_killed": oom,
                "finished_at": _now(),
                "ports": (),
            }
            await self._emit(h, "die", state=state, exitCode=str(code))
            await self.volumes.unmounted(h.id)
            if decision.restart and not decide().restart:
                decision = decide()  # stopped while the exit was being recorded
                await self._save(h, status=Status.EXITED)
            # The runtime's clean-up runs after the exit is recorded and announced, off the
            # path of clients waiting for it: the next launch and the removal of the files
            # wait for ``h.cleaned``; nothing else needs to.
            h.cleaned = trio.Event()
            assert self._nursery is not None
            self._nursery.start_soon(self._clean_up_run, h, paths, not decision.restart)
            log.info("container.exited", exit_code=code, oom_killed=oom, restart=decision.restart)
            notice, h.exited = h.exited, ExitNotice()
            notice.code = code
            notice.set()
            if not decision.restart:
                h.backoff_s = 0.0
                return False
            h.backoff_s = decision.next_backoff_s
            h.restart_delay_s = decision.delay_s
            log.info("container.restart_scheduled", delay_s=decision.delay_s)
            return True
        raise AssertionError("unreachable: the shielded scope never swallows exceptions")

    async def _collect(self, h: Handle, paths: Paths) -> None:
        """The rest of a removal: after the last run's clean-up, the runtime state (if
        any is left), cgroups, mount and directories."""
        with trio.CancelScope(shield=True):
            await h.cleaned.wait()
            try:
                await self.runtime.delete(h.id, bundle=paths.bundle, force=True)
            except BerthError as exc:
                log.warning("container.cleanup_failed", container_id=h.id, error=str(exc))
            self._cgroups.remove(h.id)
            await trio.to_thread.run_sync(_remove_dirs, paths)

    async def _clean_up_run(self, h: Handle, paths: Paths, unmount: bool) -> None:
        """After an exit: the runtime's state and cgroups, then (unless the container
        restarts) the rootfs mount. Never cancelled midway (shielded)."""
        try:
            with trio.CancelScope(shield=True):
                await self.runtime.delete(h.id, paths.bundle, True)
                self._cgroups.remove(h.id)
                if h.sandbox is not None:
                    h.sandbox = None
                    await self.networks.tear_down(h.id)
                if unmount:
                    await trio.to_thread.run_sync(_unmount_quietly, paths.rootfs)
        except BerthError as exc:
            log.warning("container.cleanup_failed", container_id=h.id, error=str(exc))
        finally:
            h.cleaned.set()

    async def _restart_after_backoff(self, h: Handle) -> _Output | None:
        delay = h.restart_delay_s
        with trio.CancelScope() as scope:
            h.restart_scope = scope
            if h.stopping:
                scope.cancel()
            await trio.sleep(delay)
        h.restart_scope = None
        if scope.cancelled_caught:
            return None  # stopped (or started by hand) during the back-off
        async with h.lock:
            if h.record.state.status is not Status.RESTARTING or h.stopping:
                if h.record.state.status is Status.RESTARTING:
                    await self._save(h, status=Status.EXITED)
                return None
            try:
                h.pidfd = await self._launch(h)
            except BerthError as exc:
                log.warning("container.restart_failed", error=str(exc))
                await self._save(h, status=Status.EXITED, error=str(exc))
                return None
            await self._emit(
                h,
                "restart",
                state={**h.launched_state, "restart_count": h.record.state.restart_count + 1},
            )
            await self._emit(h, "start")
            return self._open_output(h)

    # -- stop / kill / restart ----------------------------------------------------------

    async def stop(
        self, ref: str, *, timeout: int | None, signal_name: str | None = None, manual: bool = True
    ) -> None:
        h = self.get(ref)
        if h.record.state.status is Status.RESTARTING:
            h.stopping = True  # no further launch after this
            if h.restart_scope is not None:
                h.restart_scope.cancel()
            async with h.lock:
                pass  # a launch already in progress completes first
            if h.record.state.status is Status.RESTARTING:
                # Stopped during the back-off: there is no process to signal.
                await self._save(h, status=Status.EXITED, manually_stopped=manual)
                await self._emit(h, "stop")
                return
        status = h.record.state.status
        next_state(status, Op.STOP)  # 304 when not running
        if status is Status.PAUSED:
            await self.unpause(h.id)  # a frozen process cannot act on its stop signal
        sig = signal_number(signal_name or h.record.config.get("StopSignal"), signal.SIGTERM)
        if timeout is None:
            timeout = h.record.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        notice = h.exited  # before any await: the run may end meanwhile
        h.stopping = True
        if manual:
            await self._save(h, manually_stopped=True)
        if h.pidfd >= 0 and send_signal(h.pidfd, sig):
            await self._emit(h, "kill", signal=str(sig))
        with trio.move_on_after(timeout if timeout >= 0 else float("inf")):
            await notice.wait()
        if not notice.is_set():
            log.info("container.stop_timeout_kill", timeout=timeout)
            if h.pidfd >= 0 and send_signal(h.pidfd, signal.SIGKILL):
                await self._emit(h, "kill", signal=str(int(signal.SIGKILL)))
            await notice.wait()
        await self._emit(h, "stop")

    async def kill(self, ref: str, signal_name: str | None) -> None:
        h = self.get(ref)
        sig = signal_number(signal_name, signal.SIGKILL)
        if h.record.state.status not in (Status.RUNNING, Status.PAUSED) or h.pidfd < 0:
            raise Conflict(f"Cannot kill container: {ref}: container {h.id} is not running")
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            h.stopping = True
            await self._save(h, manually_stopped=True)
        send_signal(h.pidfd, sig)
        await self._emit(h, "kill", signal=str(sig))

    async def restart(
        self, ref: str, *, timeout: int | None, signal_name: str | None = None
    ) -> None:
        h = self.get(ref)
        with contextlib.suppress(NotModified):
            await self.stop(h.id, timeout=timeout, signal_name=signal_name)
        # Wait for the supervise task to finish recording the exit before starting again.
        if h.supervising:
            await h.idle.wait()
        await self.start(h.id)
        await self._emit(h, "restart")

    # -- wait ---------------------------------------------------------------------

    def waiter(self, ref: str, condition: str) -> Callable[[], Awaitable[tuple[int, str]]]:
        """Register a wait now; the returned function awaits it.

        Registering synchronously matters: ``docker run`` sends ``wait`` before ``start``
        and relies on the wait seeing the exit, however fast it comes.

        Returns:
            An async function returning ``(exit code, error)``.
        """
        h = self.get(ref)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition}")
        if condition in ("", "not-running") and not is_active(h.record.state.status):
            code, error = h.record.state.exit_code, h.record.state.error

            async def already() -> tuple[int, str]:
                return code, error

            return already
        notice = h.removed if condition == "removed" else h.exited

        async def wait() -> tuple[int, str]:
            await notice.wait()
            return notice.code, notice.error

        return wait

    async def wait(self, ref: str, condition: str) -> tuple[int, str]:
        return await self.waiter(ref, condition)()

    # -- remove ---------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool, volumes: bool = False) -> None:
        """``DELETE /containers/{id}``; ``volumes`` (``v=1``) also removes the
        container's anonymous volumes that no other container uses."""
        h = self.get(ref)
        status = h.record.state.status
        if status is Status.REMOVING:
            raise Conflict(f"removal of container {h.id} is already in progress")
        if is_active(status):
            if not force:
                raise Conflict(
                    f'cannot remove container "/{h.record.name}": container is {status.value}: '
                    "stop the container before removing or force remove"
                )
            await self._force_stop(h)
        async with h.lock:
            if h.id not in self._handles:
                return
            notice = h.removed
            # REMOVING lives in memory only: a crash mid-removal leaves an exited
            # container that can be removed again, never a half-removed row.
            h.record = rows.with_state(h.record, status=Status.REMOVING)
            paths = self.paths(h.id)
            anonymous = await self.volumes.anonymous_of(h.id) if volumes else []
            with trio.CancelScope(shield=True):
                # Forget first, then collect: once the row and the destroy event are
                # committed nothing can reach the container through the API; its runtime
                # state, cgroups and files go afterwards, and what a crash leaves behind is
                # swept at the next start.
                await self._events.emit(
                    "container",
                    "destroy",
                    h.id,
                    {**h.record.labels, "image": h.record.image_ref, "name": h.record.name},
                    with_change=functools.partial(rows.delete, cid=h.id),
                )
                self._handles.pop(h.id, None)
                self.networks.forget(h.id)
                if self.execs is not None:
                    self.execs.forget_container(h.id)
                self.health.forget(h.id)
                assert self._nursery is not None
                self._nursery.start_soon(self._collect, h, paths)
                await self.volumes.remove_unused(anonymous)
        notice.code = h.record.state.exit_code
        notice.set()
        log.info("container.removed", container_id=h.id)

    async def _remove_quietly(self, cid: str) -> None:
        try:
            await self.remove(cid, force=True, volumes=True)
        except BerthError as exc:
            log.warning("container.autoremove_failed", container_id=cid, error=str(exc))

    async def _force_stop(self, h: Handle) -> None:
        if h.record.state.status is Status.RESTARTING and h.restart_scope is not None:
            h.restart_scope.cancel()
        if h.record.state.status is Status.PAUSED:
            await self.unpause(h.id)
        notice = h.exited
        h.stopping = True
        if h.pidfd >= 0 and send_signal(h.pidfd, signal.SIGKILL):
            await self._emit(h, "kill", signal=str(int(signal.SIGKILL)))
            await notice.wait()
        if h.supervising:
            await h.idle.wait()

    async def exec_probe(
        self, cid: str, argv: list[str], *, timeout_s: float, env: list[str] | None = None
    ) -> tuple[int, bytes]:
        """Run ``argv`` in the running container (a health probe): (exit code, first
        4 KiB of output); -1 when killed after ``timeout_s``."""
        assert self.execs is not None
        return await self.execs.probe(cid, argv, timeout_s=timeout_s, env=env)

    # -- health checks: probes per run, State.Health, --health-on-failure ------------------
    #
    # Each run of a container with a health check has one probe task (healthcheck.py):
    # ``_supervise`` starts it before it watches the run, ``_finish_run`` ends it and asks
    # whether berth ended the run itself (--health-on-failure=restart), in which case the
    # exit goes to ``health.policy_for_unhealthy_exit`` instead of the plain policy.

    def health_of(self, c: Container) -> HealthState | None:
        """``State.Health`` of ``c`` for inspect, ps and the ``health`` filter."""
        return health.shown(
            self.health.get(c.id),
            configured=health.from_config(c.config) is not None,
            ever_started=c.state.started_at != ZERO_TIME,
        )

    def _start_health(self, h: Handle) -> None:
        """A run of ``h`` begins (started, restarted or re-adopted): probe it, if it has
        a health check, in a task the end of the run cancels."""
        config = health.from_config(h.record.config)
        if config is None:
            return
        assert self._nursery is not None
        try:
            since_start_ns = max(0, time.time_ns() - parse_time(h.record.state.started_at))
        except ValueError:
            since_start_ns = 0
        shell = h.record.config.get("Shell")
        watch = Watch(
            cid=h.id,
            config=config,
            argv=tuple(config.argv(shell if isinstance(shell, list) else None)),
            since_start_ns=since_start_ns,
            probe=self.exec_probe,
            announce=functools.partial(self._announce_health, h),
            on_unhealthy=functools.partial(self._on_unhealthy, h),
            paused=lambda: h.record.state.status is Status.PAUSED,
        )
        self._nursery.start_soon(self.health.watch, watch, self.health.begin_run(h.id))

    async def _announce_health(self, h: Handle, status: HealthStatus) -> None:
        await self.announce(h, health.event_action(status))

    def _on_unhealthy(self, h: Handle) -> None:
        """``h`` just became unhealthy: schedule its ``--health-on-failure`` action in the
        manager's nursery — stopping the container cancels the probe task calling this."""
        action = health.parse_on_failure(h.record.host_config, h.record.labels)
        if action is OnFailure.NONE:
            return
        log.info("container.unhealthy_action_scheduled", action=action.value)
        assert self._nursery is not None
        self._nursery.start_soon(self._act_on_unhealthy, h, action)

    async def _act_on_unhealthy(self, h: Handle, action: OnFailure) -> None:
        """``kill`` and ``stop`` act as ``docker kill``/``docker stop`` (the container stays
        down, whatever its policy); ``restart`` stops the process the same way but leaves
        the decision to the restart policy and its back-off (:meth:`_exit_policy`)."""
        try:
            if action is OnFailure.KILL:
                await self.kill(h.id, "SIGKILL")
            elif action is OnFailure.STOP:
                await self.stop(h.id, timeout=None)
            else:
                await self._stop_for_restart(h)
        except (NotModified, Conflict, NotFound):
            pass  # stopped, removed or restarted by someone else meanwhile
        except BerthError as exc:
            log.warning("container.unhealthy_action_failed", action=action.value, error=str(exc))

    async def _stop_for_restart(self, h: Handle) -> None:
        """Stop signal, the stop timeout, then SIGKILL — without ``manually_stopped`` or
        ``stopping``, so the exit reaches the restart policy."""
        if h.record.state.status is not Status.RUNNING or h.pidfd < 0:
            return
        sig = signal_number(h.record.config.get("StopSignal"), signal.SIGTERM)
        timeout = h.record.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        notice = h.exited
        self.health.request_restart(h.id)
        if send_signal(h.pidfd, sig):
            await self._emit(h, "kill", signal=str(sig))
        with trio.move_on_after(timeout if timeout >= 0 else float("inf")):
            await notice.wait()
        if not notice.is_set():
            if h.pidfd >= 0 and send_signal(h.pidfd, signal.SIGKILL):
                await self._emit(h, "kill", signal=str(int(signal.SIGKILL)))
            await notice.wait()

    def _exit_policy(self, h: Handle, *, unhealthy_restart: bool) -> RestartPolicy:
        """The policy deciding about the run that just ended: the container's own, or —
        when berth ended the run because it was unhealthy — one that restarts it."""
        policy = self._policy(h)
        if not unhealthy_restart:
            return policy
        return health.policy_for_unhealthy_exit(policy, restart_count=h.record.state.restart_count)

    # -- stdin and terminal of the running process ------------------------------------------

    def close_stdin(self, h: Handle) -> None:
        """The process sees end-of-file on stdin (``StdinOnce`` after the first attach
        ends, or the run is over)."""
        if h.stdin_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(h.stdin_fd)
            h.stdin_fd = -1
        h.stdin_closed.set()

    def resize(self, ref: str, height: int, width: int) -> None:
        """``POST /containers/{id}/resize``."""
        h = self.get(ref)
        if h.record.state.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"Container {h.id} is not running")
        if not h.record.config.get("Tty") or h.console_fd < 0:
            return  # Docker accepts a resize of a non-TTY container and ignores it
        try:
            set_window_size(h.console_fd, height, width)
        except OSError as exc:
            raise BerthError(f"resize: {exc.strerror}") from exc

    # -- networks of existing containers ------------------------------------------------

    async def connect_network(
        self, network_ref: str, ref: str, config: dict[str, Any] | None
    ) -> None:
        """``POST /networks/{id}/connect``: a running container is plugged in at once."""
        h = self.get(ref)
        async with h.lock:
            running = (
                h.sandbox if h.record.state.status in (Status.RUNNING, Status.PAUSED) else None
            )
            sandbox = await self.networks.connect(h.record, network_ref, config, sandbox=running)
            if running is not None:
                h.sandbox = sandbox

    async def disconnect_network(self, network_ref: str, ref: str) -> None:
        """``POST /networks/{id}/disconnect``."""
        h = self.get(ref)
        async with h.lock:
            running = (
                h.sandbox if h.record.state.status in (Status.RUNNING, Status.PAUSED) else None
            )
            sandbox = await self.networks.disconnect(h.record, network_ref, sandbox=running)
            if running is not None:
                h.sandbox = sandbox

    def network_settings(self, h: Handle) -> dict[str, Any]:
        """``NetworkSettings`` of inspect (``Ports`` as published by the current run)."""
        c = h.record
        mode = str(c.host_config.get("NetworkMode") or "default")
        networks: dict[str, Any] = {}
        if mode in ("host", "none"):
            n = self.networks.get(mode)
            networks[n.name] = views.endpoint_settings(n, None)
        running = c.state.status in (Status.RUNNING, Status.PAUSED)
        for e in self.networks.endpoints_of(c.id):
            try:
                n = self.networks.get(e.network_id)
            except NotFound:
                continue
            # A stopped container shows no address, even while its clean-up runs.
            networks[n.name] = views.endpoint_settings(
                n, e if running else attrs.evolve(e, ip=None)
            )
        first = next(iter(networks.values()), None) if mode not in ("host", "none") else None
        exposed = set(port_specs.parse_exposed_ports(c.config.get("ExposedPorts")))
        exposed.update(
            (b.container_port, b.proto)
            for b in port_specs.from_port_bindings(c.host_config.get("PortBindings"))
        )
        published = c.state.ports if running else ()
        return {
            "Bridge": "",
            "SandboxID": c.id if running and h.sandbox is not None else "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": port_specs.network_settings_ports(sorted(exposed), published)
            if running
            else {},
            "SandboxKey": h.sandbox.netns if running and h.sandbox is not None else "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": first["EndpointID"] if first else "",
            "Gateway": first["Gateway"] if first else "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": first["IPAddress"] if first else "",
            "IPPrefixLen": first["IPPrefixLen"] if first else 0,
            "IPv6Gateway": "",
            "MacAddress": first["MacAddress"] if first else "",
            "Networks": networks,
        }

    def summary_ports(self, c: Container) -> list[dict[str, object]]:
        """``Ports`` of ``GET /containers/json``."""
        exposed = set(port_specs.parse_exposed_ports(c.config.get("ExposedPorts")))
        running = c.state.status in (Status.RUNNING, Status.PAUSED)
        return port_specs.container_ports(sorted(exposed), c.state.ports if running else ())

    async def pause(self, ref: str) -> None:
        h = self.get(ref)
        async with h.lock:
            next_state(h.record.state.status, Op.PAUSE)  # 409 unless running
            await self.runtime.pause(h.id, bundle=self.paths(h.id).bundle)
            await self._emit(h, "pause", state={"status": Status.PAUSED})

    async def unpause(self, ref: str) -> None:
        h = self.get(ref)
        async with h.lock:
            next_state(h.record.state.status, Op.UNPAUSE)  # 409 unless paused
            await self.runtime.resume(h.id, bundle=self.paths(h.id).bundle)
            await self._emit(h, "unpause", state={"status": Status.RUNNING})

    @asynccontextmanager
    async def paused(self, ref: str, *, pause: bool) -> AsyncIterator[None]:
        """Freeze a running container for the duration (``commit --pause``)."""
        h = self.get(ref)
        if not pause or h.record.state.status is not Status.RUNNING:
            yield
            return
        await self.pause(h.id)
        try:
            yield
        finally:
            with trio.CancelScope(shield=True):
                await self.unpause(h.id)

    @asynccontextmanager
    async def mounted_rootfs(self, ref: str) -> AsyncIterator[tuple[Handle, Path]]:
        """The container's root filesystem (its overlay), mounted for the duration.

        A running container's mount is used as is; a stopped one's is mounted and
        unmounted again afterwards. The container's lock is held throughout, so it
        cannot start, restart or be removed meanwhile.
        """
        h = self.get(ref)
        async with h.lock:
            await h.cleaned.wait()  # a finished run's unmount must not pull it from under us
            paths = self.paths(h.id)
            was_mounted = rootfs_mod.is_mountpoint(paths.rootfs)
            if not was_mounted:
                image = await self._images.resolve(h.record.image_id)
                await trio.to_thread.run_sync(
                    self._prepare_rootfs, paths, self._images.lowerdirs(image)
                )
            try:
                yield h, paths.rootfs
            finally:
                if not was_mounted and not is_active(h.record.state.status):
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(_unmount_quietly, paths.rootfs)

    def upper_dir(self, cid: str) -> Path:
        return self.paths(cid).data / "upper"

    async def rename(self, ref: str, new_name: str) -> None:
        h = self.get(ref)
        new_name = names.validate_name(new_name)
        if any(o.record.name == new_name for o in self._handles.values() if o is not h):
            raise Conflict(f'Conflict. The container name "/{new_name}" is already in use')
        old = h.record.name
        await self._db.run(rows.rename, h.id, new_name)
        h.record = attrs.evolve(h.record, name=new_name)
        await self._emit(h, "rename", oldName="/" + old)

    async def update(self, ref: str, body: object) -> list[str]:
        """``POST /containers/{id}/update``: new limits and restart policy. A running
        container gets the limits at once (``runtime update``); then they are stored,
        so a refused update changes nothing. Returns Docker's ``Warnings``."""
        from supervisor.containers.update import plan_update

        h = self.get(ref)
        async with h.lock:
            plan = plan_update(
                h.record.host_config,
                body,
                cid=h.id,
                swap_accounting=self._cgroups.swap_accounting,
                ncpu=os.cpu_count() or 1,
            )
            if plan.resources and h.record.state.status in (Status.RUNNING, Status.PAUSED):
                await self.runtime.update(h.id, plan.resources, bundle=self.paths(h.id).bundle)
            await self._db.run(rows.update_host_config, h.id, plan.host_config)
            h.record = attrs.evolve(h.record, host_config=plan.host_config)
            await self._emit(h, "update")
        return plan.warnings


@attrs.define
class _Output:
    """The berth ends of a run's stdio. ``stdout`` is the pty master for a TTY (then
    ``stderr`` is -1); ``stdin`` moves to the handle once the run is launched."""

    stdout: int
    stderr: int
    oomfd: int | None
    tty: bool = False
    stdin: int = -1
    drained: trio.Event = attrs.field(factory=trio.Event)
    open_streams: int = 0

    def __attrs_post_init__(self) -> None:
        self.open_streams = sum(fd >= 0 for fd in (self.stdout, self.stderr))

    def stream_done(self) -> None:
        self.open_streams -= 1
        if self.open_streams <= 0:
            self.drained.set()

    def close(self) -> None:
        for fd in (self.stdout, self.stderr, self.oomfd, self.stdin):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stdout = self.stderr = self.stdin = -1
        self.oomfd = None


async def _copy_output(output: _Output, stream: str, writer: LogWriter) -> None:
    """Copy one pipe into the log until EOF. Cancellation: stops reading; the fd stays
    open (``_Output.close`` owns it)."""
    fd = output.stdout if stream == "stdout" else output.stderr
    os.set_blocking(fd, False)
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError as exc:
            if exc.errno != errno.EIO:  # a pty master once every slave is closed: EOF
                raise
            data = b""
        if not data:
            break
        writer.feed(stream, data)
    output.stream_done()


@contextlib.contextmanager
def _unwrapped_berth_error() -> Iterator[None]:
    """Raise a nursery's BerthError (a taken port...) as itself, not in a group, so
    callers' ``except BerthError`` clean-up runs."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = berth_error_in(group)
        if found is None:
            raise
        raise found from None


async def _proxies(
    bindings: list[port_specs.PortBinding],
    target_ip: str,
    *,
    task_status: trio.TaskStatus[tuple[trio.CancelScope, tuple[port_specs.PortBinding, ...]]],
) -> None:
    """Serve every binding; report ``(scope, bindings as bound)`` once all are bound.
    A port that cannot be bound cancels the ones already bound and raises."""
    with trio.CancelScope() as scope, _unwrapped_berth_error():
        async with trio.open_nursery() as nursery:
            bound = []
            for b in bindings:
                if b.proto is port_specs.Proto.SCTP:
                    raise InvalidArgument("berth publishes tcp and udp ports only")
                serve = serve_tcp if b.proto is port_specs.Proto.TCP else serve_udp
                port = await nursery.start(
                    functools.partial(
                        serve,
                        b.host_ip,
                        b.host_port,
                        target_ip,
                        b.container_port,
                        host_port_end=b.host_port_end,
                    )
                )
                bound.append(attrs.evolve(b, host_port=port, host_port_end=0))
            task_status.started((scope, tuple(bound)))


def _unmount_quietly(target: Path) -> None:
    try:
        rootfs_mod.unmount(target)
    except OSError as exc:
        log.warning("container.unmount_failed", path=str(target), error=str(exc))


def _remove_dirs(paths: Paths) -> None:
    rootfs_mod.unmount(paths.rootfs)
    shutil.rmtree(paths.bundle, ignore_errors=True)
    shutil.rmtree(paths.data, ignore_errors=True)
