"""``/networks/*`` routes."""

from __future__ import annotations

import time

from supervisor.api.backend import Backend
from supervisor.api.http import Request, Response, Router, json_response
from supervisor.api.params import parse_timestamp
from supervisor.errors import InvalidArgument, NotFound
from supervisor.events.filters import parse_filters
from supervisor.model import Endpoint, Network
from supervisor.network import views


def register(router: Router, b: Backend) -> None:
    nets = b.networks
    containers = b.containers

    def running_endpoints(n: Network) -> list[tuple[Endpoint, str]]:
        out = []
        for e in nets.endpoints_on(n.id):
            if e.ip is None:
                continue
            try:
                out.append((e, containers.get(e.container_id).record.name))
            except NotFound:  # removed meanwhile
                continue
        return out

    @router.route("GET", "/networks")
    async def list_(req: Request) -> Response:
        filters = parse_filters(req.q_json("filters"))
        match = views.matcher(filters, in_use=lambda n: bool(running_endpoints(n)))
        return json_response(
            [
                views.network_json(n, running_endpoints(n), with_containers=False)
                for n in nets.all()
                if match(n)
            ]
        )

    @router.route("GET", "/networks/{id}")
    async def inspect(req: Request) -> Response:
        n = nets.get(req.params["id"])
        return json_response(views.network_json(n, running_endpoints(n)))

    @router.route("POST", "/networks/create")
    async def create(req: Request) -> Response:
        body = await req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        n = await nets.create(body)
        return json_response({"Id": n.id, "Warning": ""}, 201)

    @router.route("DELETE", "/networks/{id}")
    async def remove(req: Request) -> Response:
        await nets.remove(req.params["id"])
        return Response(204)

    @router.route("POST", "/networks/{id}/connect")
    async def connect(req: Request) -> Response:
        body = await req.json()
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid JSON body: Container is required")
        await containers.connect_network(
            req.params["id"], body["Container"], body.get("EndpointConfig")
        )
        return Response(200)

    @router.route("POST", "/networks/{id}/disconnect")
    async def disconnect(req: Request) -> Response:
        body = await req.json()
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid JSON body: Container is required")
        await containers.disconnect_network(req.params["id"], body["Container"])
        return Response(200)

    @router.route("POST", "/networks/prune")
    async def prune(req: Request) -> Response:
        filters = parse_filters(req.q_json("filters"))
        now = time.time_ns()
        keep = views.prune_matcher(
            filters, parse_until=lambda v: parse_timestamp(v, now_ns=now, durations=True)
        )
        removed = await nets.prune(keep)
        return json_response({"NetworksDeleted": removed or None})
