"""``/containers/{id}/archive``: ``docker cp``'s three calls.

``HEAD`` answers the path's stat in the ``X-Docker-Container-Path-Stat`` header, ``GET``
streams a tar of it with the same header, ``PUT`` extracts an uploaded tar into a
directory. All three work on running and stopped containers (the root file system is
mounted for the call) and see the container's volumes, binds and generated /etc files,
as Docker does. Paths are resolved inside the container (:mod:`supervisor.containers.copy`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

import trio

from supervisor.api.backend import Backend
from supervisor.api.http import Produced, Request, Response, Router, Write
from supervisor.containers.copy import ContainerFS, extract_from_body, stream_source
from supervisor.containers.copypath import (
    STAT_HEADER,
    ContainerPath,
    Mount,
    mounts_from_api,
    parse_container_path,
    stat_header,
)
from supervisor.containers.manager import Handle
from supervisor.errors import BerthError, InvalidArgument
from supervisor.runtime.users import UnknownUser, resolve_user

# Docker's bind-mounted network files (``container.NetworkMounts``).
_ETC_FILES = ("hostname", "hosts", "resolv.conf")


def register(router: Router, b: Backend) -> None:
    m = b.containers

    # HEAD first: the router would otherwise answer HEAD with the GET handler.
    @router.route("HEAD", "/containers/{id}/archive")
    async def head(req: Request) -> Response:
        ref, shown, path = _params(req)
        async with _container_fs(b, ref) as (_, fs):
            found = await trio.to_thread.run_sync(
                functools.partial(fs.stat_path, path, shown=shown)
            )
        return Response(200, headers=[(STAT_HEADER, stat_header(found))])

    @router.route("GET", "/containers/{id}/archive")
    async def get(req: Request) -> Produced:
        ref, shown, path = _params(req)
        m.get(ref)  # 404 before anything else

        async def produce(write: Write) -> None:
            async with _container_fs(b, ref) as (h, fs):
                source = await trio.to_thread.run_sync(
                    functools.partial(fs.open_source, path, shown=shown)
                )
                try:
                    # Still before the first write: this goes out with the status line.
                    result.headers.append((STAT_HEADER, stat_header(source.stat)))
                    await m.announce(h, "archive-path")
                    await stream_source(source, write)
                finally:
                    source.close()

        result = Produced(produce, content_type="application/x-tar")
        return result

    @router.route("PUT", "/containers/{id}/archive")
    async def put(req: Request) -> Response:
        ref, shown, path = _params(req)
        no_overwrite = req.q_bool("noOverwriteDirNonDir")
        copy_ids = req.q_bool("copyUIDGID")
        async with _container_fs(b, ref) as (h, fs):
            owner = None
            if copy_ids:
                owner = await trio.to_thread.run_sync(
                    _container_user, fs, str(h.record.config.get("User") or "")
                )
            target = await trio.to_thread.run_sync(
                functools.partial(fs.open_target, path, shown=shown)
            )
            try:
                await extract_from_body(
                    req.iter_body(),
                    functools.partial(
                        target.extract, no_overwrite_dir_non_dir=no_overwrite, owner=owner
                    ),
                )
            finally:
                target.close()
        await m.announce(h, "extract-to-dir")
        return Response(200, b"", content_type="text/plain")


def _params(req: Request) -> tuple[str, str, ContainerPath]:
    shown = req.q("path")
    if not shown:
        # Docker's wording, missing space included (moby ``badParameterError``).
        raise InvalidArgument("bad parameter: pathcannot be empty")
    return req.params["id"], shown, parse_container_path(shown)


@contextlib.asynccontextmanager
async def _container_fs(b: Backend, ref: str) -> AsyncIterator[tuple[Handle, ContainerFS]]:
    """The container's file tree, its root file system mounted for the duration."""
    m = b.containers
    h = m.get(ref)
    readonly = bool(h.record.host_config.get("ReadonlyRootfs"))
    mounts = mounts_from_api(await b.volumes.api_mounts(h.id))
    mounts += _etc_mounts(b, h, read_only=readonly)
    async with m.mounted_rootfs(ref) as (h, root):
        yield h, ContainerFS(root, mounts, container=ref, readonly_rootfs=readonly)


def _etc_mounts(b: Backend, h: Handle, *, read_only: bool) -> list[Mount]:
    """/etc/hostname, /etc/hosts, /etc/resolv.conf as berth bound them at the last start
    (a ``container:`` network peer's own); none before the first start."""
    data = b.containers.paths(h.id).data
    mode = str(h.record.host_config.get("NetworkMode") or "")
    if mode.startswith("container:"):
        try:
            data = b.containers.paths(b.containers.get(mode.split(":", 1)[1]).id).data
        except BerthError:
            return []
    return [
        Mount(("etc", name), str(data / name), read_only=read_only)
        for name in _ETC_FILES
        if (data / name).is_file()
    ]


def _container_user(fs: ContainerFS, user: str) -> tuple[int, int] | None:
    """``copyUIDGID``: the container's ``User`` as ids, read in its /etc files; None
    when it has none (Docker then keeps the tar's owners)."""
    if not user:
        return None
    passwd, group = fs.read_file("/etc/passwd"), fs.read_file("/etc/group")
    try:
        u = resolve_user(
            user,
            passwd=passwd.decode(errors="replace") if passwd is not None else None,
            group=group.decode(errors="replace") if group is not None else None,
        )
    except UnknownUser as exc:
        raise InvalidArgument(str(exc)) from None
    return u.uid, u.gid
