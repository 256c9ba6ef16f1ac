"""Container lifecycle: create, start, supervise, stop, kill, restart, remove, wait.

Theory of operation: SQLite is the source of truth; a :class:`Handle` per container
mirrors its record in memory and holds what only lives while berthd runs (pidfd, output
hub, exit notices, the lock that serialises lifecycle operations). Each started container
has one *supervise* task in the manager's nursery: it waits for the process, records the
exit, asks the pure restart policy, sleeps the back-off inside a cancel scope that
``stop`` cancels, and starts the process again — until the policy says no.

Delegates: ``wiring.py`` (network mode, sandbox, ports and /etc files of a run),
``runio.py`` (a run's pty or pipes and its output into the log), ``healthhooks.py``
(probes per run, ``--health-on-failure``); the shared types are in ``handle.py``.

Paths: ``<data-root>/containers/<id>/`` holds the overlay upper/work dirs, the json-file
log and the generated hostname/hosts/resolv.conf; ``<exec-root>/containers/<id>/`` is
the OCI bundle (``config.json`` and the ``rootfs`` mount point).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio

from store import containers as rows
from store import networks as network_rows
from store.db import Database
from supervisor.containers import hostopts, names, runio, wiring
from supervisor.containers.config import parse_create, resources_of
from supervisor.containers.handle import (
    DEFAULT_STOP_TIMEOUT,
    ExitNotice,
    Handle,
    Output,
    Paths,
    now,
)
from supervisor.containers.health import HealthState
from supervisor.containers.healthcheck import HealthChecks
from supervisor.containers.healthhooks import HealthHooks
from supervisor.containers.monitor import LOST_EXIT_CODE, adopt, send_signal, start_time, wait_exit
from supervisor.containers.restart import (
    RestartDecision,
    RestartPolicy,
    decide_restart,
    parse_policy,
)
from supervisor.containers.state import Op, Status, is_active, next_state
from supervisor.containers.wiring import NetworkWiring
from supervisor.errors import (
    BerthError,
    Conflict,
    InvalidArgument,
    NoSuchContainer,
    NotModified,
)
from supervisor.events.log import EventLog
from supervisor.images.store import ImageStore
from supervisor.model import Container, ContainerId, Endpoint
from supervisor.network.manager import NetworkManager, Sandbox
from supervisor.runtime import rootfs as rootfs_mod
from supervisor.runtime.cgroups import CgroupLayout
from supervisor.runtime.console import set_window_size
from supervisor.runtime.devices import Rule, host_devices, requested_devices
from supervisor.runtime.oci import (
    ExecNotFound,
    ExecNotPermitted,
    OciRuntime,
    bounding_capabilities,
    nofile_cap,
    signal_number,
)
from supervisor.runtime.seccomp import ProfileError
from supervisor.runtime.spec import (
    CapabilityError,
    SpecInput,
    UserMount,
    build_spec,
    container_capabilities,
    normalize_capabilities,
)
from supervisor.runtime.users import UnknownUser, resolve_groups, resolve_user
from supervisor.volumes.manager import VolumeManager

if TYPE_CHECKING:
    from supervisor.containers.execs import ExecManager

__all__ = ["DEFAULT_STOP_TIMEOUT", "ContainerManager", "ExitNotice", "Handle", "Paths"]

log = structlog.get_logger()

OUTPUT_DRAIN_S = 2.0


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
        self._grantable = bounding_capabilities()  # what a container can be given at most
        self._restart_defaults = restart_defaults
        self._handles: dict[str, Handle] = {}
        self._nursery: trio.Nursery | None = None
        self._shutting_down = False
        self.health = HealthChecks()  # State.Health of every container, probes of running ones
        self._health = HealthHooks(self, self.health)
        self._wiring = NetworkWiring(networks, self.paths)

    # -- lookups ------------------------------------------------------------------

    def paths(self, cid: str) -> Paths:
        return Paths(self._data_root / cid, self._exec_root / cid)

    def get(self, ref: str) -> Handle:
        h = self._handles.get(ref)  # a full id: match's first rule, without the scan
        if h is not None:
            return h
        cid = names.match(ref, [(h.id, h.record.name) for h in self._handles.values()])
        if cid is None:
            raise NoSuchContainer(ref)
        return self._handles[cid]

    def exists(self, cid: str) -> bool:
        """Whether the container with this full id exists."""
        return cid in self._handles

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

    def _attributes(self, h: Handle, extra: dict[str, str]) -> dict[str, str]:
        return {**h.record.labels, "image": h.record.image_ref, "name": h.record.name, **extra}

    async def _emit(
        self, h: Handle, action: str, *, state: dict[str, Any] | None = None, **extra: str
    ) -> None:
        """Announce a container event; ``state`` changes commit in the same transaction."""
        attrs_ = self._attributes(h, extra)
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

    def announce_later(self, h: Handle, action: str, **extra: str) -> None:
        """The same, for an announcement no request waits for (EventLog.defer)."""
        self._events.defer("container", action, h.id, self._attributes(h, extra))

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
                    assert self._nursery is not None
                    await self._wiring.readopt(h, nursery=self._nursery)
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
                    h, status=Status.EXITED, pid=0, exit_code=LOST_EXIT_CODE, finished_at=now()
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
        mode, endpoints = self._wiring.plan(
            cid, result.host_config, body.get("NetworkingConfig"), peer=self.get
        )
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

    def _open_output(self, h: Handle) -> Output:
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
        netns, sandbox = await self._wiring.join(h, peer=self._handles.get)
        log.debug("container.network_joined", ms=round((time.monotonic() - t0) * 1000, 1))
        try:
            return await self._launch_in(h, paths, netns, sandbox)
        except BaseException:
            with trio.CancelScope(shield=True):
                self._wiring.stop_publishing(h)
                if sandbox is not None:
                    h.sandbox = None
                    await self.networks.tear_down(c.id)
            raise

    async def _launch_in(self, h: Handle, paths: Paths, netns: str, sandbox: Sandbox | None) -> int:
        """The rest of :meth:`_launch`, once the network namespace exists: publish the
        ports (every one bound before the process starts), write the bundle, create
        and start the process."""
        c = h.record
        assert self._nursery is not None
        published = await self._wiring.publish(h, sandbox, nursery=self._nursery)
        mounts = await self.volumes.prepare(c.id, paths.rootfs)  # copy-up, bind sources
        try:
            spec = self._spec(c, paths, netns, sandbox, mounts)
        except (UnknownUser, ProfileError) as exc:
            raise InvalidArgument(str(exc)) from None
        (paths.bundle / "config.json").write_text(json.dumps(spec))
        pidfd = -1
        output: Output | None = None
        try:
            pid, output = await runio.create_process(self.runtime, c, paths, tty_dir=self._tty_dir)
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
            "started_at": now(),
            "exit_code": 0,
            "error": "",
            "oom_killed": False,
            "manually_stopped": False,
            "ports": published,
        }
        h.pending_output = output
        runio.hand_over_stdin(h, output)
        h.hub.start_of_run()
        log.info("container.started", container_id=c.id, pid=pid)
        return pidfd

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
        opts = hostopts.parse(hc, stored=True)
        hostname = str(cfg.get("Hostname") or c.id[:12])
        if netns == "host" or opts.host_uts:
            hostname = socket.gethostname()
        env = list(cfg.get("Env") or [])
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.insert(1 if env else 0, f"HOSTNAME={hostname}")
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        if cfg.get("Tty") and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        binds = self._wiring.etc_files(c, paths, hostname, netns, sandbox)
        privileged = bool(hc.get("Privileged"))
        gids = user.additional_gids
        if opts.group_add:
            extra = resolve_groups(
                opts.group_add, group=group.decode(errors="replace") if group else None
            )
            gids = tuple(dict.fromkeys((*gids, *extra)))
        rules: tuple[Rule, ...] = ()
        if privileged:
            devices = host_devices()
        else:
            devices, rules = requested_devices(
                [(d.path_on_host, d.path_in_container, d.permissions) for d in opts.devices]
            )
        return build_spec(
            SpecInput(
                container_id=c.id,
                args=(c.path, *c.args),
                env=tuple(env),
                cwd=str(cfg.get("WorkingDir") or "/"),
                uid=user.uid,
                gid=user.gid,
                additional_gids=gids,
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
                capabilities=container_capabilities(
                    _names(hc.get("CapAdd")),
                    _names(hc.get("CapDrop")),
                    privileged=privileged,
                    available=self._grantable,
                ),
                privileged=privileged,
                devices=devices,
                device_rules=rules,
                no_new_privileges=opts.no_new_privileges,
                seccomp=opts.seccomp,
                seccomp_profile=opts.seccomp_profile,
                machine=platform.machine(),
                kernel=_kernel_version(),
                rlimits=opts.rlimits,
                sysctls=opts.sysctls,
                shm_size=opts.shm_size,
                oom_score_adj=opts.oom_score_adj,
                host_pid=opts.host_pid,
                host_ipc=opts.host_ipc,
                host_uts=opts.host_uts,
                no_shm=opts.no_shm,
            )
        )

    # -- supervision ------------------------------------------------------------------

    async def _supervise(self, h: Handle, output: Output | None) -> None:
        """Watch runs of ``h`` until its restart policy lets it rest."""
        with structlog.contextvars.bound_contextvars(container_id=h.id):
            try:
                while True:
                    started = time.monotonic()
                    assert self._nursery is not None
                    self._health.start_run(h, self._nursery)
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

    async def _watch_run(self, h: Handle, output: Output | None) -> tuple[int, bool]:
        """Wait for the process to end while copying its output; returns (code, oom)."""
        oom_seen = False
        if output is None:
            # Adopted after a daemon restart: no pipes any more, only the pidfd.
            code = await wait_exit(h.pidfd)
        else:
            writer = runio.log_writer(h.record, self.paths(h.id).log, h.hub)
            code = 0
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(runio.copy_output, output, "stdout", writer)
                    if output.stderr >= 0:
                        nursery.start_soon(runio.copy_output, output, "stderr", writer)
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
        policy = self._health.exit_policy(
            h, self._policy(h), unhealthy_restart=self.health.end_run(h.id)
        )

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
            self._wiring.stop_publishing(h)
            decision = decide()
            if oom and not h.oom_announced:
                await self._emit(h, "oom")
            h.oom_announced = False
            state = {
                "status": Status.RESTARTING if decision.restart else Status.EXITED,
                "pid": 0,
                "exit_code": code,
                "oom_killed": oom,
                "finished_at": now(),
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
                await self._wiring.release(h)
                if unmount:
                    await trio.to_thread.run_sync(_unmount_quietly, paths.rootfs)
        except BerthError as exc:
            log.warning("container.cleanup_failed", container_id=h.id, error=str(exc))
        finally:
            h.cleaned.set()

    async def _restart_after_backoff(self, h: Handle) -> Output | None:
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
                self.volumes.forget(h.id)
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

    # -- health checks (healthhooks.py) -------------------------------------------------

    def health_of(self, c: Container) -> HealthState | None:
        """``State.Health`` of ``c`` for inspect, ps and the ``health`` filter."""
        return self._health.shown(c)

    # -- stdin and terminal of the running process ------------------------------------------

    def close_stdin(self, h: Handle) -> None:
        """The process sees end-of-file on stdin (``StdinOnce`` after the first attach
        ends, or the run is over)."""
        runio.close_stdin(h)

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
            await self._wiring.connect(h, network_ref, config)

    async def disconnect_network(self, network_ref: str, ref: str) -> None:
        """``POST /networks/{id}/disconnect``."""
        h = self.get(ref)
        async with h.lock:
            await self._wiring.disconnect(h, network_ref)

    def network_settings(self, h: Handle) -> dict[str, Any]:
        """``NetworkSettings`` of inspect (``Ports`` as published by the current run)."""
        return self._wiring.settings(h)

    def summary_ports(self, c: Container) -> list[dict[str, object]]:
        """``Ports`` of ``GET /containers/json``."""
        return wiring.summary_ports(c)

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


def _unmount_quietly(target: Path) -> None:
    try:
        rootfs_mod.unmount(target)
    except OSError as exc:
        log.warning("container.unmount_failed", path=str(target), error=str(exc))


def _remove_dirs(paths: Paths) -> None:
    rootfs_mod.unmount(paths.rootfs)
    shutil.rmtree(paths.bundle, ignore_errors=True)
    shutil.rmtree(paths.data, ignore_errors=True)


def _names(value: object) -> list[str]:
    """``CapAdd``/``CapDrop`` as stored: a list of names, or one name. Names are checked
    at create; one an older berth stored unchecked is left out, as it was then."""
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    known = []
    for name in map(str, names):
        try:
            normalize_capabilities([name])
        except CapabilityError:
            continue
        known.append(name)
    return known


def _kernel_version() -> tuple[int, int]:
    """The running kernel's major.minor (a seccomp profile's ``minKernel``)."""
    numbers = platform.release().split("-")[0].split(".")
    try:
        return int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 0
    except ValueError:
        return 0, 0
