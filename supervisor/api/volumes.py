"""``/volumes`` routes (Docker Engine API 1.43)."""

from __future__ import annotations

from supervisor.api.backend import Backend
from supervisor.api.http import Request, Response, Router, json_response
from supervisor.errors import InvalidArgument
from supervisor.events.filters import parse_filters


def _str_map(body: dict[str, object], key: str) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidArgument(
            f"json: cannot unmarshal into Go struct field CreateOptions.{key} of type map[string]string"
        )
    return dict(value)


def _str(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f"CreateOptions.{key} of type string"
        )
    return value


def register(router: Router, b: Backend) -> None:
    v = b.volumes

    @router.route("GET", "/volumes")
    async def list_(req: Request) -> Response:
        found = await v.find(parse_filters(req.q_json("filters")))
        return json_response({"Volumes": [v.volume_api(x) for x in found], "Warnings": []})

    @router.route("POST", "/volumes/create")
    async def create(req: Request) -> Response:
        body = await req.json(allow_empty=True)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        if body.get("ClusterVolumeSpec"):
            raise InvalidArgument("volume cluster spec is only valid on swarm managers")
        created = await v.create(
            _str(body, "Name"),
            driver=_str(body, "Driver"),
            labels=_str_map(body, "Labels"),
            options=_str_map(body, "DriverOpts"),
        )
        return json_response(v.volume_api(created), 201)

    @router.route("POST", "/volumes/prune")
    async def prune(req: Request) -> Response:
        deleted, reclaimed = await v.prune(parse_filters(req.q_json("filters")))
        return json_response({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})

    @router.route("GET", "/volumes/{name}")
    async def inspect(req: Request) -> Response:
        return json_response(v.volume_api(await v.get(req.params["name"])))

    @router.route("DELETE", "/volumes/{name}")
    async def remove(req: Request) -> Response:
        await v.remove(req.params["name"], force=req.q_bool("force"))
        return Response(204)

    del list_, create, prune, inspect, remove
