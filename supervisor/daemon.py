"""berthd: one process, one root nursery (ARCHITECTURE.md §1).

    berthd
    └─ root nursery
       ├─ containers      the manager's nursery: one supervise task per started container
       ├─ api server      one task per connection (h11)
       ├─ event retention hourly pruning of the event log
       └─ signals         SIGTERM/SIGINT → graceful stop: containers, socket, mounts

Start-up order: config → logging → subreaper → store (migrated) → runtime probe →
reconcile (inside the manager) → sockets → READY.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import structlog
import trio

from store.db import Database
from supervisor.api import archive as archive_routes
from supervisor.api import build as build_routes
from supervisor.api import containers as container_routes
from supervisor.api import execs as exec_routes
from supervisor.api import images as image_routes
from supervisor.api import networks as network_routes
from supervisor.api import observe as observe_routes
from supervisor.api import registry as registry_routes
from supervisor.api import system as system_routes
from supervisor.api import volumes as volume_routes
from supervisor.api.backend import Backend
from supervisor.api.http import Router, serve_connection
from supervisor.build.builder import BuildCache
from supervisor.config import DaemonConfig, parse_args
from supervisor.containers.execs import ExecManager
from supervisor.containers.manager import ContainerManager
from supervisor.containers.monitor import become_subreaper
from supervisor.errors import BerthError
from supervisor.events.log import EventLog
from supervisor.images.distribution import Distribution
from supervisor.images.store import ImageStore
from supervisor.images.transfer import Archives
from supervisor.log import configure
from supervisor.network import etc
from supervisor.network.hostfiles import RESOLV_CONF, read_host_file
from supervisor.network.manager import NetworkManager
from supervisor.network.resolver import serve_dns
from supervisor.runtime import oci
from supervisor.runtime import rootfs as rootfs_mod
from supervisor.runtime.cgroups import CgroupLayout
from supervisor.volumes.manager import VolumeManager

log = structlog.get_logger()

INIT_CANDIDATES = (
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
)


def build_router(backend: Backend) -> Router:
    router = Router()
    system_routes.register(router, backend)
    container_routes.register(router, backend)
    archive_routes.register(router, backend)
    exec_routes.register(router, backend)
    image_routes.register(router, backend)
    network_routes.register(router, backend)
    volume_routes.register(router, backend)
    registry_routes.register(router, backend)
    observe_routes.register(router, backend)
    build_routes.register(router, backend)
    return router


async def _listen_unix(path: Path, group: str) -> trio.SocketListener:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise BerthError(f"another daemon is serving {path}")
        finally:
            probe.close()
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o117)
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    if group:
        try:
            import grp

            os.chown(path, 0, grp.getgrnam(group).gr_gid)
        except KeyError:
            log.warning("daemon.group_missing", group=group)
    sock.listen(512)
    return trio.SocketListener(sock)


async def _retention(events: EventLog, cfg: DaemonConfig) -> None:
    while True:
        removed = await events.prune(
            keep=cfg.events_retention_count, max_age_s=cfg.events_retention_days * 86400
        )
        if removed:
            log.info("events.pruned", removed=removed)
        await trio.sleep(3600)


def _sd_notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, contextlib.suppress(OSError):
        s.sendto(message.encode(), address)


def _lock_data_root(data_root: Path) -> int:
    """Hold an exclusive lock on the data root for the daemon's lifetime: two daemons
    reconciling one store would stop each other's containers.

    Resource handling: the fd stays open (and the lock held) until the process exits.
    """
    fd = os.open(data_root / "berthd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BerthError(f"another berthd is using the data root {data_root}") from None
    return fd


async def serve(cfg: DaemonConfig) -> None:
    for d in (cfg.data_root, cfg.exec_root):
        d.mkdir(parents=True, exist_ok=True, mode=0o711)
    lock_fd = _lock_data_root(cfg.data_root)
    # Bind first: a socket another daemon serves is refused before anything is touched.
    bound: list[Path] = []
    listeners: list[trio.SocketListener] = []
    try:
        for path in cfg.socket_paths():
            listeners.append(await _listen_unix(path, cfg.group))
            bound.append(path)
        await _serve_bound(cfg, listeners, bound)
    finally:
        for listener in listeners:
            await listener.aclose()
        for path in bound:  # only the sockets this process created
            path.unlink(missing_ok=True)
        os.close(lock_fd)


async def _serve_bound(
    cfg: DaemonConfig, listeners: list[trio.SocketListener], sockets: list[Path]
) -> None:
    engine_id = cfg.data_root / "engine-id"
    if not engine_id.exists():
        engine_id.write_text(str(uuid.uuid4()))
    db = Database.open(cfg.data_root / "berth.db")
    events = EventLog(db)
    images = ImageStore(db, events, cfg.data_root / "image")
    runtime = await oci.probe(cfg.runtime, state_root=cfg.exec_root / "runtime")
    cgroups = CgroupLayout.probe()
    init_binary = next((p for p in INIT_CANDIDATES if os.access(p, os.X_OK)), None)
    networks = NetworkManager(
        db=db,
        events=events,
        exec_root=cfg.exec_root,
        bip=cfg.bip,
        bridge=cfg.bridge,
        pools=cfg.address_pools,
        dns_server=serve_dns,
        dns_upstreams=etc.upstream_servers(read_host_file(RESOLV_CONF)),
    )
    volumes = VolumeManager.open(db=db, events=events, data_root=cfg.data_root)
    manager = ContainerManager(
        db=db,
        events=events,
        images=images,
        networks=networks,
        volumes=volumes,
        runtime=runtime,
        cgroups=cgroups,
        data_root=cfg.data_root,
        exec_root=cfg.exec_root,
        init_binary=init_binary,
        restart_defaults=(cfg.restart_delay_s, cfg.restart_max_delay_s),
    )
    execs = ExecManager(manager, exec_root=cfg.exec_root)
    manager.execs = execs
    backend = Backend(
        config=cfg,
        containers=manager,
        execs=execs,
        networks=networks,
        volumes=volumes,
        images=images,
        distribution=Distribution(db=db, events=events, images=images),
        archives=Archives(db=db, events=events, images=images),
        events=events,
        runtime_name=runtime.name,
        cgroup_version="2" if cgroups.v2 else "1",
        started_ns=time.time_ns(),
        builds=BuildCache(db),
    )
    router = build_router(backend)
    log.info(
        "daemon.starting",
        runtime=runtime.description,
        cgroup_version=backend.cgroup_version,
        data_root=str(cfg.data_root),
    )
    try:
        async with trio.open_nursery() as root:
            await root.start(events.run)
            await root.start(networks.run)
            await root.start(manager.run)
            await root.start(execs.run)

            async def handle(stream: trio.SocketStream) -> None:
                await serve_connection(stream, router)

            api_scope = trio.CancelScope()

            async def api() -> None:
                with api_scope:
                    await trio.serve_listeners(handle, listeners)

            root.start_soon(api)
            root.start_soon(_retention, events, cfg)
            if cfg.pidfile:
                cfg.pidfile.parent.mkdir(parents=True, exist_ok=True)
                cfg.pidfile.write_text(f"{os.getpid()}\n")
            _sd_notify("READY=1")
            log.info("daemon.ready", sockets=[str(p) for p in sockets])
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info("daemon.stopping", signal=signal.Signals(signum).name)
                    break
            _sd_notify("STOPPING=1")
            for p in sockets:
                p.unlink(missing_ok=True)  # no new clients while containers stop
            with trio.move_on_after(120):
                await manager.shutdown()
            api_scope.cancel()
            root.cancel_scope.cancel()
    finally:
        for mount in rootfs_mod.mounts_under(cfg.exec_root / "containers"):
            rootfs_mod.unmount(mount)
        cgroups.remove_parent()
        await networks.shutdown()
        if cfg.pidfile:
            cfg.pidfile.unlink(missing_ok=True)
        events.close()
        db.close()
        log.info("daemon.stopped")


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    configure(level=cfg.log_level, fmt=cfg.log_format)
    if os.geteuid() != 0:
        print("berthd must run as root", file=sys.stderr)  # noqa: T201
        raise SystemExit(1)
    become_subreaper()
    try:
        trio.run(serve, cfg)
    except BerthError as exc:
        log.error("daemon.failed", error=str(exc))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass
