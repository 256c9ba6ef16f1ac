"""Routes for looking at containers and the daemon's disk: ``/containers/{id}/top``,
``/stats``, ``/changes``, ``/update``, ``/system/df`` and ``/build/prune``.

The decisions are pure modules (``containers/{top,stats,changes,update,usage}.py``); the
readers are ``containers/sampler.py`` (counters), ``containers/overlay.py`` (upper dirs,
sizes) and the host's ``ps``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import trio

from supervisor.api.backend import Backend
from supervisor.api.build import prune_cache
from supervisor.api.http import Request, Response, Router, Streaming, json_response
from supervisor.api.schema import container_summary, image_summary
from supervisor.containers import top as top_mod
from supervisor.containers import usage
from supervisor.containers.manager import Handle
from supervisor.containers.overlay import container_changes, tree_size
from supervisor.containers.sampler import Sampler
from supervisor.containers.state import Status
from supervisor.containers.stats import Reading, to_api
from supervisor.errors import BerthError, Conflict, InvalidArgument, NotFound
from supervisor.runtime.cgroups import CgroupLayout

STATS_INTERVAL_S = 1.0  # Docker's collector interval: one sample a second


def _running(h: Handle) -> bool:
    return h.record.state.status in (Status.RUNNING, Status.PAUSED) and h.record.state.pid > 0


def _has_networks(h: Handle) -> bool:
    return str(h.record.host_config.get("NetworkMode") or "default") not in ("host", "none")


def register(router: Router, b: Backend) -> None:
    m = b.containers
    cgroups = CgroupLayout(v2=b.cgroup_version == "2")
    sampler = Sampler(cgroups)

    def sample(h: Handle) -> Reading | None:
        if not _running(h):
            return None
        return sampler.read(h.id, pid=h.record.state.pid, networks=_has_networks(h))

    @router.route("GET", "/containers/{id}/top")
    async def top(req: Request) -> Response:
        h = m.get(req.params["id"])
        if h.record.state.status is Status.RESTARTING:
            raise Conflict(f"Container {h.id} is restarting, wait until the container is running")
        if not _running(h):
            raise Conflict(f"Container {h.id} is not running")
        pids = cgroups.pids(h.id)
        error = ""
        for argv in top_mod.ps_commands(req.q("ps_args"), pids):
            result = await trio.run_process(
                argv, capture_stdout=True, capture_stderr=True, check=False
            )
            if result.returncode == 0:
                output = result.stdout.decode(errors="replace")
                return json_response(top_mod.parse_ps(output, pids))
            error = result.stderr.decode(errors="replace").strip()
        raise BerthError(f"Error running ps: {error or 'exit status 1'}")

    @router.route("GET", "/containers/{id}/stats")
    async def stats(req: Request) -> Response | Streaming:
        h = m.get(req.params["id"])
        stream = req.q_bool("stream", True)
        one_shot = req.q_bool("one-shot")
        if stream and one_shot:
            raise InvalidArgument("cannot have stream=true and one-shot=true")
        cid, name = h.id, h.record.name
        if not stream:
            first = sample(h)
            if first is None or one_shot:
                return json_response(to_api(first, None, cid=cid, name=name))
            # Docker primes precpu with one collector cycle before answering.
            await trio.sleep(STATS_INTERVAL_S)
            second = sample(h)
            previous = first if second is not None else None
            return json_response(to_api(second, previous, cid=cid, name=h.record.name))

        async def body() -> AsyncIterator[bytes]:
            previous: Reading | None = None
            while True:
                try:
                    current = m.get(cid)
                except NotFound:
                    return  # removed: the stream ends
                # A container that is not running gets Go's zero value each second, as
                # moby's collector publishes for it (``docker stats -a`` shows zeros).
                reading = sample(current)
                out = to_api(reading, previous, cid=cid, name=current.record.name)
                yield json.dumps(out).encode() + b"\n"
                previous = reading
                await trio.sleep(STATS_INTERVAL_S)

        return Streaming(body())

    @router.route("GET", "/containers/{id}/changes")
    async def changes(req: Request) -> Response:
        h = m.get(req.params["id"])
        try:
            layers = await b.images.lowerdirs_of(h.record.image_id)
        except NotFound:
            layers = []
        found = await trio.to_thread.run_sync(container_changes, m.upper_dir(h.id), layers)
        return json_response([c.to_api() for c in found])

    @router.route("POST", "/containers/{id}/update")
    async def update(req: Request) -> Response:
        body = await req.json()
        warnings = await m.update(req.params["id"], body)
        return json_response({"Warnings": warnings})

    @router.route("GET", "/system/df")
    async def system_df(req: Request) -> Response:
        types = usage.parse_types(req.q_all("type"))
        out: dict[str, Any] = {}
        containers = m.all()
        if "image" in types:
            images = await b.images.list_images()
            sizes = {
                c: (await b.images.layer(c)).size for c in {c for i in images for c in i.layers}
            }
            shared = usage.shared_sizes(images, sizes)
            users = usage.containers_per_image(c.image_id for c in containers)
            out["LayersSize"] = usage.layers_size(images, sizes)
            out["Images"] = [
                {**image_summary(i), "SharedSize": shared[i.id], "Containers": users[i.id]}
                for i in images
            ]
        mounts = await b.volumes.api_mounts_all()
        if "container" in types:
            rows = []
            for c in containers:
                size_rw = await trio.to_thread.run_sync(tree_size, m.upper_dir(c.id))
                try:
                    image_size = (await b.images.resolve(c.image_id)).size
                except NotFound:
                    image_size = 0
                summary = container_summary(
                    c,
                    ports=m.summary_ports(c),
                    networks=m.network_settings(m.get(c.id))["Networks"],
                    mounts=mounts.get(c.id),
                )
                rows.append({**summary, "SizeRw": size_rw, "SizeRootFs": size_rw + image_size})
            out["Containers"] = rows
        if "volume" in types:
            refs = usage.volume_refs(mounts)
            volumes = []
            for v in await b.volumes.find({}):
                data = b.volumes.data_dir(v.name)
                size = await trio.to_thread.run_sync(tree_size, data)
                volumes.append(
                    {
                        **b.volumes.volume_api(v),
                        "UsageData": {"Size": size, "RefCount": refs[v.name]},
                    }
                )
            out["Volumes"] = volumes
        if "build-cache" in types:
            out["BuildCache"] = []
        return json_response(out)

    @router.route("POST", "/build/prune")
    async def build_prune(req: Request) -> Response:
        return await prune_cache(b)

    del top, stats, changes, update, system_df, build_prune
