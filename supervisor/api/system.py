"""``/_ping``, ``/version``, ``/info``, ``/events`` and the answers Docker gives for
features berth does not have (so tools that probe for them keep working)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from supervisor import __version__
from supervisor.api.backend import Backend
from supervisor.api.http import Request, Response, Router, Streaming, json_response
from supervisor.api.params import parse_timestamp
from supervisor.containers.state import Status
from supervisor.errors import NotFound, Unavailable
from supervisor.events.filters import event_matches, parse_filters, validate_event_filters
from supervisor.events.log import to_api

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"


def register(router: Router, b: Backend) -> None:
    @router.route("GET", "/_ping")
    async def ping(req: Request) -> Response:
        return Response(
            200,
            b"OK",
            content_type="text/plain; charset=utf-8",
            headers=[
                ("Cache-Control", "no-cache, no-store, must-revalidate"),
                ("Pragma", "no-cache"),
            ],
        )

    @router.route("HEAD", "/_ping")
    async def ping_head(req: Request) -> Response:
        return Response(200, b"", content_type="text/plain; charset=utf-8")

    @router.route("GET", "/version")
    async def version(req: Request) -> Response:
        uname = platform.uname()
        return json_response(
            {
                "Platform": {"Name": "berth"},
                "Components": [
                    {
                        "Name": "Engine",
                        "Version": __version__,
                        "Details": {
                            "ApiVersion": API_VERSION,
                            "MinAPIVersion": MIN_API_VERSION,
                            "Os": "linux",
                            "Arch": "amd64",
                            "KernelVersion": uname.release,
                        },
                    },
                    {"Name": b.runtime_name, "Version": "", "Details": {}},
                ],
                "Version": __version__,
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": "",
                "GoVersion": f"python{platform.python_version()}",
                "Os": "linux",
                "Arch": "amd64",
                "KernelVersion": uname.release,
                "BuildTime": "",
            }
        )

    @router.route("GET", "/info")
    async def info(req: Request) -> Response:
        containers = b.containers.all()
        images = await b.images.list_images()

        def count(*states: Status) -> int:
            return sum(1 for c in containers if c.state.status in states)

        uname = platform.uname()
        return json_response(
            {
                "ID": b.config.daemon_id,
                "Containers": len(containers),
                "ContainersRunning": count(Status.RUNNING, Status.RESTARTING),
                "ContainersPaused": count(Status.PAUSED),
                "ContainersStopped": count(Status.EXITED, Status.CREATED, Status.DEAD),
                "Images": len(images),
                "Driver": "overlay2",
                "DriverStatus": [["Backing Filesystem", "extfs"]],
                "Plugins": {
                    "Volume": ["local"],
                    "Network": ["null", "host"],
                    "Authorization": None,
                    "Log": ["json-file"],
                },
                "MemoryLimit": True,
                "SwapLimit": True,
                "CpuCfsPeriod": True,
                "CpuCfsQuota": True,
                "CPUShares": True,
                "CPUSet": True,
                "PidsLimit": True,
                "IPv4Forwarding": True,
                "Debug": False,
                "NFd": len(os.listdir("/proc/self/fd")),
                "NGoroutines": 0,
                "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "LoggingDriver": "json-file",
                "CgroupDriver": "cgroupfs",
                "CgroupVersion": b.cgroup_version,
                "NEventsListener": 0,
                "KernelVersion": uname.release,
                "OperatingSystem": _os_name(),
                "OSVersion": "",
                "OSType": "linux",
                "Architecture": uname.machine,
                "IndexServerAddress": "https://index.docker.io/v1/",
                "RegistryConfig": {
                    "IndexConfigs": {},
                    "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                    "Mirrors": [],
                },
                "NCPU": os.cpu_count() or 1,
                "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                "DockerRootDir": str(b.config.data_root),
                "Name": uname.node,
                "Labels": [],
                "ExperimentalBuild": False,
                "ServerVersion": __version__,
                "Runtimes": {b.runtime_name: {"path": b.containers.runtime.binary}},
                "DefaultRuntime": b.runtime_name,
                "Swarm": {
                    "LocalNodeState": "inactive",
                    "ControlAvailable": False,
                    "NodeID": "",
                    "NodeAddr": "",
                    "RemoteManagers": None,
                },
                "LiveRestoreEnabled": False,
                "Isolation": "",
                "InitBinary": "docker-init",
                "ContainerdCommit": {"ID": ""},
                "RuncCommit": {"ID": ""},
                "InitCommit": {"ID": ""},
                "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
                "Warnings": None,
            }
        )

    @router.route("GET", "/events")
    async def events(req: Request) -> Streaming:
        filters = parse_filters(req.q_json("filters"))
        validate_event_filters(filters)
        since_ns = _ts(req.q("since"))
        until_ns = _ts(req.q("until"))
        now = time.time_ns()
        # Subscribe before replaying so nothing falls between the two; dedupe by id.
        live = b.events.subscribe() if not until_ns or until_ns > now else None
        history = (
            await b.events.history(since_ns=since_ns, until_ns=until_ns)
            if since_ns is not None
            else []
        )

        async def body() -> AsyncIterator[bytes]:
            last = 0
            try:
                for ev in history:
                    last = ev.id
                    if event_matches(ev, filters):
                        yield json.dumps(to_api(ev)).encode() + b"\n"
                if live is None:
                    return
                yield b""
                with trio.move_on_at(
                    trio.current_time() + (until_ns - time.time_ns()) / 1e9
                    if until_ns
                    else float("inf")
                ):
                    async for ev in live:
                        if ev.id <= last:
                            continue
                        if until_ns and ev.time_ns > until_ns:
                            return
                        if event_matches(ev, filters):
                            yield json.dumps(to_api(ev)).encode() + b"\n"
            finally:
                if live is not None:
                    b.events.unsubscribe(live)

        return Streaming(body())

    @router.route("POST", "/swarm/leave")
    async def swarm_leave(req: Request) -> Response:
        raise Unavailable("This node is not part of a swarm")

    @router.route("GET", "/swarm")
    async def swarm(req: Request) -> Response:
        raise Unavailable(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.'
        )

    not_manager = (
        'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
        "to connect this node to swarm and try again."
    )

    async def swarm_only(req: Request) -> Response:
        raise Unavailable(not_manager)

    # What tools ask even where the feature is absent, answered as Docker answers.
    for kind in ("nodes", "services", "tasks", "secrets", "configs"):
        router.add("GET", f"/{kind}", swarm_only)
        router.add("GET", f"/{kind}/{{id}}", swarm_only)

    @router.route("GET", "/plugins")
    async def plugins(req: Request) -> Response:
        return json_response([])

    @router.route("GET", "/plugins/{name:path}")
    async def plugin(req: Request) -> Response:
        name = req.params["name"].removesuffix("/json")
        raise NotFound(f'plugin "{name}" not found')

    del ping, ping_head, version, info, events, swarm_leave, swarm, plugins, plugin


def _ts(text: str) -> int | None:
    """Docker's event since/until: unix seconds[.nanos], or an RFC 3339 time."""
    return parse_timestamp(text, now_ns=time.time_ns())


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"
