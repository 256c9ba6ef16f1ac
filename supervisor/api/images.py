"""``/images/*`` routes (local images; registries arrive with the images issue)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from supervisor.api.backend import Backend
from supervisor.api.http import Produced, Request, Response, Router, Streaming, json_response
from supervisor.api.params import parse_timestamp
from supervisor.api.registry import pull_response
from supervisor.api.schema import image_history, image_inspect, image_summary
from supervisor.containers.filters import label_matches
from supervisor.errors import InvalidArgument, NoSuchImage
from supervisor.events.filters import parse_filters
from supervisor.images import reference
from supervisor.images.commit import commit as commit_container
from supervisor.images.history import history_length, history_rows
from supervisor.model import Image


def register(router: Router, b: Backend) -> None:
    @router.route("GET", "/images/json")
    async def list_(req: Request) -> Response:
        filters = parse_filters(req.q_json("filters"))
        for key in filters:
            if key not in ("dangling", "label", "before", "since", "reference"):
                raise InvalidArgument(f"invalid filter '{key}'")
        images = await b.images.list_images()
        if not req.q_bool("all"):
            # As Docker: untagged images that are another image's parent (a build's
            # intermediate steps) show only with all=1.
            parents = {i.parent for i in images if i.parent}
            images = [i for i in images if i.tags or i.repo_digests or i.id not in parents]
        selected = [i for i in images if await _image_matches(b, i, filters)]
        summaries = [image_summary(i) for i in selected]
        if filters.get("reference"):
            # As moby: only the references that matched are listed for each image.
            for summary in summaries:
                for key in ("RepoTags", "RepoDigests"):
                    summary[key] = [
                        r for r in summary[key] if _reference_matches(r, filters["reference"])
                    ]
        return json_response(summaries)

    @router.route("GET", "/images/{name:path}")
    async def inspect_or_other(req: Request) -> Response:
        name = req.params["name"]
        if name.endswith("/json"):
            image = await b.images.resolve(name[: -len("/json")])
            return json_response(image_inspect(image))
        if name.endswith("/history"):
            image = await b.images.resolve(name[: -len("/history")])
            sizes = [(await b.images.layer(c)).size for c in image.layers]
            ancestors = await _ancestors(b, image, limit=history_length(image) - 1)
            rows = history_rows(image, layer_sizes=sizes, ancestors=ancestors)
            return json_response(image_history(rows))
        raise InvalidArgument(f"unknown image endpoint: {name}")

    @router.route("POST", "/images/create")
    async def create(req: Request) -> Streaming | Produced:
        src = req.q("fromSrc")
        if not src:
            if req.q("fromImage"):
                return await pull_response(b, req)
            raise InvalidArgument("fromSrc or fromImage is required")
        if src != "-":
            raise InvalidArgument("only fromSrc=- (the request body) is supported for import")
        image = await b.images.import_tarball(
            req.iter_body(),
            repo=req.q("repo") or None,
            tag=req.q("tag") or None,
            changes=req.q_all("changes"),
            message=req.q("message"),
        )

        async def body() -> AsyncIterator[bytes]:
            yield json.dumps({"status": image.id}).encode() + b"\r\n"

        return Streaming(body(), watch_disconnect=False)

    @router.route("DELETE", "/images/{name:path}")
    async def remove(req: Request) -> Response:
        result = await b.images.remove(
            req.params["name"],
            force=req.q_bool("force"),
            in_use=b.containers.users_of_image,
            prune=not req.q_bool("noprune"),
        )
        return json_response(result)

    @router.route("POST", "/images/prune")
    async def prune(req: Request) -> Response:
        filters = parse_filters(req.q_json("filters"))
        for key in filters:
            if key not in ("dangling", "until", "label", "label!"):
                raise InvalidArgument(f"invalid filter '{key}'")
        dangling_only = (filters.get("dangling") or ["true"])[-1].lower() in ("true", "1")
        until_ns = _until(filters.get("until") or [])

        def select(image: Image) -> bool:
            if until_ns is not None and image.created_ns >= until_ns:
                return False
            labels = image.run_config.get("Labels") or {}
            if not all(label_matches(v, labels) for v in filters.get("label", [])):
                return False
            return not any(label_matches(v, labels) for v in filters.get("label!", []))

        # As dockerd: dangling (or, with dangling=false, all) images that are not a
        # build's intermediate steps, each deleted as rmi would with its untagged parents.
        deleted, reclaimed = await b.images.prune(
            dangling_only=dangling_only, select=select, in_use=b.containers.users_of_image
        )
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    @router.route("POST", "/commit")
    async def commit_(req: Request) -> Response:
        container = req.q("container")
        if not container:
            raise InvalidArgument("container is required")
        h = b.containers.get(container)
        await req.drain()  # docker sends {} (a Config to merge, which berth ignores)
        changes = req.q_all("changes")
        repo, tag = req.q("repo"), req.q("tag")
        target = None
        if repo:
            target = str(reference.parse(f"{repo}:{tag}" if tag else repo).with_default_tag())
        async with b.containers.paused(h.id, pause=req.q_bool("pause", True)):
            image = await commit_container(
                b.images,
                h.record,
                b.containers.upper_dir(h.id),
                author=req.q("author"),
                comment=req.q("comment"),
                changes=[c for change in changes for c in change.split("\n") if c.strip()],
            )
        if target:
            await b.images.tag(image.id, target)
        await b.containers.announce(
            h,
            "commit",
            comment=req.q("comment"),
            imageID=image.id,
            imageRef=reference.familiar(target or ""),
        )
        return json_response({"Id": image.id}, 201)

    del list_, inspect_or_other, create, remove, prune, commit_


async def _image_matches(b: Backend, image: Image, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "dangling":
            want = values[-1].lower() in ("true", "1")
            if (not image.tags) != want:
                return False
        elif key == "label":
            labels = image.run_config.get("Labels") or {}
            for v in values:
                k, eq, val = v.partition("=")
                if k not in labels or (eq and labels[k] != val):
                    return False
        elif key == "reference":
            if not any(
                _reference_matches(reference.familiar(t), values)
                for t in (*image.tags, *image.repo_digests)
            ):
                return False
        elif key in ("before", "since"):
            for v in values:
                other = await b.images.resolve(v)
                if key == "before" and not image.created_ns < other.created_ns:
                    return False
                if key == "since" and not image.created_ns > other.created_ns:
                    return False
    return True


def _until(values: list[str]) -> int | None:
    """Docker's ``until`` filter: a timestamp, an RFC 3339 time or a duration ago."""
    return parse_timestamp(values[-1], now_ns=time.time_ns(), durations=True) if values else None


def _reference_matches(familiar_ref: str, patterns: list[str]) -> bool:
    """Docker's FamiliarMatch: the pattern matches the familiar reference or its
    repository alone (``busybox`` matches ``busybox:latest``)."""
    import fnmatch

    repo = reference.familiar(reference.parse(familiar_ref).repository)
    return any(fnmatch.fnmatch(familiar_ref, p) or fnmatch.fnmatch(repo, p) for p in patterns)


async def _ancestors(b: Backend, image: Image, *, limit: int) -> list[Image]:
    """``image``'s parent, its parent's parent, ... (at most ``limit``), stopping at the
    first one that is not local (never made here, or deleted since), as moby's history
    walk does: the rows past it show ``<missing>``."""
    out: list[Image] = []
    parent = image.parent
    while parent and len(out) < limit:
        try:
            image = await b.images.resolve(parent)
        except NoSuchImage:
            break
        out.append(image)
        parent = image.parent
    return out
