"""``POST /build`` (Docker's classic builder API) and ``POST /build/prune``.

The request body is the build context as a tar (plain or compressed); the answer is
Docker's JSON stream (``{"stream": ...}``, ``{"aux": {"ID": ...}}``, and
``{"errorDetail": ..., "error": ...}`` for a failure once the stream has begun). A client
that hangs up cancels the build: its intermediate container and mounts are removed and
nothing is tagged.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import trio

from supervisor.api.backend import Backend
from supervisor.api.http import READ_SIZE, Produced, Request, Response, Router, Write, json_response
from supervisor.build.builder import Builder, BuildOptions
from supervisor.build.context import extract_context
from supervisor.errors import InvalidArgument
from supervisor.images import reference
from supervisor.images.registry.client import RegistryClient
from supervisor.model import Image


def _str_map(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {what}: expected a JSON object")
    return value


def parse_options(req: Request) -> BuildOptions:
    """The query parameters of ``POST /build``, as Docker's API defines them."""
    if req.q("remote"):
        raise InvalidArgument("remote build contexts are not supported by berth")
    tags = []
    for t in req.q_all("t"):
        ref = reference.parse(t)
        if ref.digest:
            raise InvalidArgument(f"invalid tag {t!r}: a digest is not a tag")
        tags.append(str(ref.with_default_tag()))
    build_args = _str_map(req.q_json("buildargs"), "buildargs")
    labels = _str_map(req.q_json("labels"), "labels")
    return BuildOptions(
        dockerfile=req.q("dockerfile") or "Dockerfile",
        tags=tuple(tags),
        build_args={str(k): (None if v is None else str(v)) for k, v in build_args.items()},
        labels={str(k): str(v) for k, v in labels.items()},
        target=req.q("target"),
        no_cache=req.q_bool("nocache"),
        pull=req.q_bool("pull"),
        remove=req.q_bool("rm", True),
        force_remove=req.q_bool("forcerm"),
        network_mode=req.q("networkmode") or "default",
    )


def builder_for(b: Backend) -> Builder:
    if b.builds is None:
        raise InvalidArgument("this daemon has no build cache configured")

    async def pull(ref: str) -> Image:
        parsed = reference.parse(ref)

        async def ignore(message: dict[str, Any]) -> None:
            del message

        async with RegistryClient(
            parsed.domain, credentials=None, insecure_registries=b.config.insecure_registries
        ) as client:
            return await b.distribution.pull(parsed, client, ignore)

    return Builder(images=b.images, containers=b.containers, cache=b.builds, pull=pull)


def register(router: Router, b: Backend) -> None:
    @router.route("POST", "/build")
    async def build(req: Request) -> Produced:
        opts = parse_options(req)
        quiet = req.q_bool("q")
        builder = builder_for(b)
        work = Path(tempfile.mkdtemp(dir=b.images.tmp_dir, prefix="build-ctx-"))
        try:
            upload = work / "context.tar"
            with open(upload, "wb") as f:  # noqa: ASYNC230 -- small local writes, as /images/load
                async for chunk in req.iter_body():
                    f.write(chunk)
            context = work / "context"
            context.mkdir()
            await trio.to_thread.run_sync(extract_context, upload, context)
            upload.unlink()
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

        async def produce(write: Write) -> None:
            async def emit(message: dict[str, Any]) -> None:
                if quiet and "stream" in message:
                    return
                await write(json.dumps(message).encode() + b"\r\n")

            image: Image | None = None
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_disconnect, req, nursery.cancel_scope)
                    image = await builder.build(context, opts, emit)
                    nursery.cancel_scope.cancel()
                if quiet and image is not None:
                    await write(json.dumps({"stream": image.id + "\n"}).encode() + b"\r\n")
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(shutil.rmtree, work, True)

        return Produced(produce)

    del build


async def _watch_disconnect(req: Request, scope: trio.CancelScope) -> None:
    """Cancel the build when the client hangs up (its request body is fully read)."""
    try:
        while await req.stream.receive_some(READ_SIZE):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()


async def prune_cache(b: Backend) -> Response:
    """``POST /build/prune``: forget the step cache and the step images only it kept."""
    if b.builds is None:
        return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})
    keys, reclaimed = await b.builds.prune(b.images, b.containers.users_of_image)
    return json_response({"CachesDeleted": keys or None, "SpaceReclaimed": reclaimed})
