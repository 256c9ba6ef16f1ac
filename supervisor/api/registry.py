"""Routes that talk to registries: pull, push, login (``/auth``), search, distribution
inspect, and the archive routes (save/load) that move images without one."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from supervisor.api.backend import Backend
from supervisor.api.http import Produced, Request, Response, Router, Write, json_response
from supervisor.errors import InvalidArgument, NotFound, berth_error_in
from supervisor.events.filters import parse_filters
from supervisor.images import progress as msg
from supervisor.images import reference
from supervisor.images.registry import manifest as mf
from supervisor.images.registry.auth import Credentials, decode_registry_auth
from supervisor.images.registry.client import RegistryClient


def _client(b: Backend, domain: str, credentials: Credentials | None) -> RegistryClient:
    return RegistryClient(
        domain, credentials=credentials, insecure_registries=b.config.insecure_registries
    )


def _credentials(req: Request) -> Credentials | None:
    return decode_registry_auth(req.headers.get("x-registry-auth"))


async def pull_response(b: Backend, req: Request) -> Produced:
    """``POST /images/create?fromImage=...&tag=...`` (``docker pull``)."""
    image, tag = req.q("fromImage"), req.q("tag")
    if tag:
        image = f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"
    ref = reference.parse(image)
    # No tag at all (``docker pull -a``): every tag of the repository, as Docker does;
    # the docker CLI sends tag=latest for a plain ``docker pull name``.
    all_tags = ref.tag is None and ref.digest is None
    credentials = _credentials(req)

    async def produce(write: Write) -> None:
        async def emit(m: dict[str, Any]) -> None:
            await write(msg.encode(m))

        try:
            async with _client(b, ref.domain, credentials) as client:
                if not all_tags:
                    await b.distribution.pull(ref, client, emit)
                    return
                for name in sorted(await client.tags(ref.path)):
                    await b.distribution.pull(
                        reference.parse(f"{ref.repository}:{name}"), client, emit
                    )
        except Exception as exc:
            found = berth_error_in(exc)
            if found is None:
                raise
            if found is exc:
                raise
            raise found from exc  # the client words it as Docker: "manifest for x:y not found: ..."

    return Produced(produce)


def register(router: Router, b: Backend) -> None:

    @router.route("POST", "/images/{name:path}")
    async def push_or_tag(req: Request) -> Response | Produced:
        name = req.params["name"]
        if name.endswith("/tag"):
            repo = req.q("repo")
            if not repo:
                raise InvalidArgument("repository name is required")
            tag = req.q("tag")
            await b.images.tag(name[: -len("/tag")], f"{repo}:{tag}" if tag else repo)
            return Response(201)
        if not name.endswith("/push"):
            raise NotFound("page not found")
        name = name[: -len("/push")]
        tag = req.q("tag")
        ref = reference.parse(name)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        credentials = _credentials(req)
        if tag:
            targets = [reference.parse(f"{ref.repository}:{tag}")]
        elif ref.tag:
            targets = [ref]
        else:
            # No tag: every tag of the repository (docker push --all-tags).
            targets = [
                reference.parse(t)
                for image in await b.images.list_images()
                for t in image.tags
                if reference.parse(t).repository == ref.repository
            ]
            if not targets:
                raise NotFound(
                    f"An image does not exist locally with the tag: {reference.familiar(ref.repository)}"
                )
        images = [await b.images.resolve(str(t)) for t in targets]

        async def produce(write: Write) -> None:
            async def emit(m: dict[str, Any]) -> None:
                await write(msg.encode(m))

            for target, image in zip(targets, images, strict=True):
                try:
                    async with _client(b, target.domain, credentials) as client:
                        await b.distribution.push(image, target, client, emit)
                except Exception as exc:
                    error = berth_error_in(exc)
                    if error is None:
                        raise
                    await emit(msg.error(str(error)))
                    return

        return Produced(produce)

    @router.route("POST", "/auth")
    async def auth(req: Request) -> Response:
        body = await req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("invalid auth configuration")
        server = str(body.get("serveraddress") or "https://index.docker.io/v1/")
        domain = _domain_of(server)
        creds = Credentials(
            username=str(body.get("username") or ""),
            password=str(body.get("password") or ""),
            serveraddress=server,
            identitytoken=str(body.get("identitytoken") or ""),
        )
        async with _client(b, domain, creds) as client:
            token = await client.login()
        return json_response({"Status": "Login Succeeded", "IdentityToken": token or ""})

    @router.route("GET", "/images/search")
    async def search(req: Request) -> Response:
        term = req.q("term")
        if not term:
            raise InvalidArgument("term is required")
        limit = req.q_int("limit", 25) or 25
        if not 1 <= limit <= 100:
            raise InvalidArgument("limit is out of range (1-100)")
        filters = parse_filters(req.q_json("filters"))
        for key in filters:
            if key not in ("is-official", "is-automated", "stars"):
                raise InvalidArgument(f"invalid filter '{key}'")
        first = term.split("/")[0]
        if "/" in term and ("." in first or ":" in first or first == "localhost"):
            domain, needle = first, term[len(first) + 1 :]
        else:
            domain, needle = "docker.io", term
        async with _client(b, domain, _credentials(req)) as client:
            results = await client.search_v1(needle, limit)
            if results is None:
                # A plain distribution registry has no search API: filter its catalog.
                results = [
                    {
                        "name": f"{domain}/{repo}",
                        "description": "",
                        "star_count": 0,
                        "is_official": False,
                        "is_automated": False,
                    }
                    for repo in await client.catalog(1000)
                    if needle.lower() in repo.lower()
                ]
        out = [r for r in results if _search_filter(r, filters)]
        return json_response(out[:limit])

    @router.route("GET", "/distribution/{name:path}")
    async def distribution(req: Request) -> Response:
        name = req.params["name"]
        if not name.endswith("/json"):
            raise NotFound("page not found")
        ref = reference.parse(name[: -len("/json")])
        if not ref.digest:
            ref = ref.with_default_tag()
        async with _client(b, ref.domain, _credentials(req)) as client:
            raw, media_type, digest = await client.get_manifest(
                ref.path, ref.digest or ref.tag or "latest", accept=mf.MANIFEST_ACCEPT
            )
        parsed = mf.parse_manifest(raw, media_type)
        platforms = []
        if isinstance(parsed, mf.Index):
            platforms = [
                {
                    "architecture": d.platform.architecture,
                    "os": d.platform.os,
                    **({"variant": d.platform.variant} if d.platform.variant else {}),
                }
                for d in parsed.manifests
                if d.platform is not None
            ]
        else:
            platforms = [{"architecture": "amd64", "os": "linux"}]
        return json_response(
            {
                "Descriptor": {"mediaType": media_type, "digest": digest, "size": len(raw)},
                "Platforms": platforms,
            }
        )

    @router.route("GET", "/images/get")
    async def save(req: Request) -> Produced:
        names = req.q_all("names")
        if not names:
            raise InvalidArgument("names is required")
        return await _save(b, names)

    @router.route("POST", "/images/load")
    async def load(req: Request) -> Produced:
        quiet = req.q_bool("quiet")
        with tempfile.NamedTemporaryFile(dir=b.images.tmp_dir, prefix="load-", delete=False) as tmp:
            path = Path(tmp.name)
            async for chunk in req.iter_body():
                tmp.write(chunk)

        async def produce(write: Write) -> None:
            try:
                for line in await b.archives.load(path, quiet=quiet):
                    await write(json.dumps({"stream": line + "\n"}).encode() + b"\r\n")
            finally:
                path.unlink(missing_ok=True)

        return Produced(produce)

    del push_or_tag, auth, search, distribution, save, load


def _domain_of(server: str) -> str:
    server = server.removeprefix("https://").removeprefix("http://").rstrip("/")
    host = server.split("/")[0]
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io", ""):
        return "docker.io"
    return host


def _search_filter(result: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        for v in values:
            if key == "stars":
                try:
                    if int(result.get("star_count") or 0) < int(v):
                        return False
                except ValueError:
                    raise InvalidArgument(f"invalid filter 'stars={v}'") from None
            elif (
                key == "is-official" and bool(result.get("is_official")) != (v.lower() == "true")
            ) or (
                key == "is-automated" and bool(result.get("is_automated")) != (v.lower() == "true")
            ):
                return False
    return True


async def _save(b: Backend, names: list[str]) -> Produced:
    images = [await b.images.resolve(n) for n in names]

    async def produce(write: Write) -> None:
        await b.archives.save(images, names, write)

    return Produced(produce, content_type="application/x-tar")
