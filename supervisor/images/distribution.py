"""Pull and push: images between the local store and a registry (ARCHITECTURE.md §4).

Theory of operation — pull: resolve the reference to a manifest (selecting linux/amd64
from an index), fetch the config, then download the layers in parallel into the content
store (each verified against its digest, resumable, shared between concurrent pulls)
while a second task extracts them in order as soon as each one and its parents are in
(the chain ids need the parent's). Only when every layer is registered does the image
row appear, then the tag and repo digest. Progress goes out as Docker's JSON messages.

Push: every layer is sent as a blob the registry can verify against the config's diff
ids: the compressed blob it was pulled as, or the layer's exact tar (kept since import
or commit) gzip-compressed once and remembered. A blob the registry has is skipped, one
it has in another repository is mounted, the rest are uploaded in parallel; then the
config and the manifest.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from store import images as rows
from store.db import Database
from supervisor.errors import BerthError, InvalidArgument, NotFound
from supervisor.events.log import EventLog
from supervisor.images import progress as msg
from supervisor.images.compress import BLOCK, gzip_small, gzip_to_channel
from supervisor.images.content import Abandoned, GrowingFile
from supervisor.images.reference import Reference, familiar
from supervisor.images.registry import manifest as mf
from supervisor.images.registry.client import RegistryClient, UploadSession
from supervisor.images.store import ImageStore, Unpacked, chain_id
from supervisor.model import ChainId, Image, Layer

log = structlog.get_logger()

Emit = Callable[[dict[str, Any]], Awaitable[None]]
PARALLEL = 3
PROGRESS_EVERY_S = 0.1


@attrs.define
class _LayerJob:
    desc: mf.Descriptor
    diff_id: str
    done: trio.Event = attrs.field(factory=trio.Event)
    error: BaseException | None = None
    # The unpacking that follows the download (see _unpack_ahead): its result, if it
    # matched the diff id, and when it is over (set at once when there is none).
    unpacked: Unpacked | None = None
    unpacked_done: trio.Event = attrs.field(factory=trio.Event)


def _record_blob(
    conn: sqlite3.Connection, desc: mf.Descriptor, diff_id: str, registry: str, repo: str
) -> None:
    """One transaction: the blob carries layer ``diff_id`` and is known in ``repo``."""
    rows.put_layer_blob(conn, desc.digest, diff_id, desc.media_type, desc.size)
    rows.add_blob_source(conn, desc.digest, registry, repo)


class Distribution:
    def __init__(self, *, db: Database, events: EventLog, images: ImageStore) -> None:
        self._db = db
        self._events = events
        self._images = images
        self._limiter = trio.CapacityLimiter(PARALLEL)

    # -- pull -------------------------------------------------------------------------

    async def pull(self, ref: Reference, client: RegistryClient, emit: Emit) -> Image:
        """Pull ``ref`` (a tag or a digest) and tag it locally. Errors raised before the
        first message still map to HTTP statuses (404 unknown tag, 401...)."""
        repo = ref.path
        wanted = ref.digest or ref.tag or "latest"
        raw, media_type, digest = await client.get_manifest(repo, wanted, accept=mf.MANIFEST_ACCEPT)
        pulled_digest = digest
        parsed = mf.parse_manifest(raw, media_type)
        if isinstance(parsed, mf.Index):
            entry = mf.select_platform(parsed)
            raw, media_type, _ = await client.get_manifest(
                repo, entry.digest, accept=mf.MANIFEST_ACCEPT
            )
            parsed = mf.parse_manifest(raw, media_type)
        if not isinstance(parsed, mf.Manifest):
            raise InvalidArgument(f"unsupported manifest type {media_type}")
        await emit({"status": f"Pulling from {familiar(ref.repository)}", "id": ref.tag or wanted})
        # Blobs are synced before they get their digest names, but off the pull's path:
        # the config's sync runs in this nursery while the layers come and unpack.
        async with trio.open_nursery() as background:
            return await self._pull(ref, client, emit, parsed, pulled_digest, background)

    async def _pull(
        self,
        ref: Reference,
        client: RegistryClient,
        emit: Emit,
        parsed: mf.Manifest,
        pulled_digest: str,
        background: trio.Nursery,
    ) -> Image:
        repo = ref.path
        config_raw = await self._fetch_small(client, repo, parsed.config, background)
        config = json.loads(config_raw)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(parsed.layers):
            raise InvalidArgument("image config and manifest disagree on the number of layers")
        jobs = [_LayerJob(d, diff) for d, diff in zip(parsed.layers, diff_ids, strict=True)]
        image_id = mf.digest_of(config_raw)
        existing = await self._db.run(rows.get_image, image_id)
        # Docker: "up to date" only when this reference already named this image.
        before = (
            await self._db.run(rows.resolve_tag, str(ref)) if ref.tag and not ref.digest else None
        )
        layers: list[Layer] = []
        try:
            await self._fetch_and_unpack(client, repo, jobs, layers, emit)
        finally:
            leftovers = [j.unpacked for j in jobs if j.unpacked is not None]
            if leftovers:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(
                        lambda: [self._images.discard(u) for u in leftovers]
                    )
        image = existing or await self._images.add_image(config_raw, layers)
        target = f"{ref.repository}@{pulled_digest}"
        if ref.tag and not ref.digest:
            await self._images.tag(image.id, str(ref))
        await self._events.emit(
            "image",
            "pull",
            str(ref) if ref.tag else target,
            {"name": familiar(str(ref))},
            with_change=lambda conn: rows.set_repo_digest(conn, target, image.id),
        )
        await emit(msg.status(f"Digest: {pulled_digest}"))
        shown = familiar(str(ref))
        if existing is not None and (before == image_id or ref.digest):
            await emit(msg.status(f"Status: Image is up to date for {shown}"))
        else:
            await emit(msg.status(f"Status: Downloaded newer image for {shown}"))
        log.info("image.pulled", image_ref=str(ref), image_id=image.id)
        return await self._images.resolve(image.id)

    async def _fetch_and_unpack(
        self,
        client: RegistryClient,
        repo: str,
        jobs: list[_LayerJob],
        layers: list[Layer],
        emit: Emit,
    ) -> None:
        """Download the missing layers in parallel, each unpacked as it arrives, and
        register them in order (a chain id needs its parent's) into ``layers``."""
        content = self._images.content
        async with trio.open_nursery() as nursery:
            parent: ChainId | None = None
            chains = []
            for job in jobs:
                chain = chain_id(parent, job.diff_id)
                chains.append(chain)
                parent = chain
            for job, chain in zip(jobs, chains, strict=True):
                known = await self._db.run(rows.get_layer, chain)
                if known is not None and self._images.layer_path(chain).exists():
                    await emit(msg.status("Already exists", id_=msg.short_id(job.desc.digest)))
                    job.done.set()
                    job.unpacked_done.set()
                else:
                    await emit(msg.status("Pulling fs layer", id_=msg.short_id(job.desc.digest)))
                    nursery.start_soon(self._download, client, repo, job, emit, nursery)
            parent = None
            for job, chain in zip(jobs, chains, strict=True):
                await job.done.wait()
                if job.error is not None:
                    raise job.error
                await job.unpacked_done.wait()
                layer = await self._db.run(rows.get_layer, chain)
                if layer is None or not self._images.layer_path(chain).exists():
                    sid = msg.short_id(job.desc.digest)
                    await emit(msg.status("Extracting", id_=sid))
                    unpacked, job.unpacked = job.unpacked, None
                    if unpacked is not None:
                        layer = await self._images.register_unpacked(unpacked, parent=parent)
                    else:
                        layer = await self._images.register_layer_file(
                            content.path(job.desc.digest),
                            parent=parent,
                            expected_diff_id=job.diff_id,
                            keep_tar=False,
                        )
                    await emit(msg.status("Pull complete", id_=sid))
                layers.append(layer)
                parent = layer.chain_id

    async def _fetch_small(
        self, client: RegistryClient, repo: str, desc: mf.Descriptor, background: trio.Nursery
    ) -> bytes:
        """A small blob (the config), verified; stored by a ``background`` task."""
        content = self._images.content
        if await trio.to_thread.run_sync(content.exists, desc.digest):
            return await trio.to_thread.run_sync(content.read_bytes, desc.digest)
        # A name of its own (no resume for a small blob), so concurrent pulls need no
        # lock; renamed onto the digest name once synced (same bytes whoever wins).
        hexpart = desc.digest.removeprefix("sha256:")
        tmp = content.ingest / f"{hexpart}.{secrets.token_hex(4)}.bytes"
        try:
            await client.fetch_blob(repo, desc.digest, tmp, size=desc.size, progress=None)
            data = await trio.to_thread.run_sync(tmp.read_bytes)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: tmp.unlink(missing_ok=True))
            raise

        async def store() -> None:
            await trio.to_thread.run_sync(lambda: content.commit(desc.digest, tmp, verified=True))

        background.start_soon(store)
        return data

    async def _download(
        self,
        client: RegistryClient,
        repo: str,
        job: _LayerJob,
        emit: Emit,
        nursery: trio.Nursery,
    ) -> None:
        content = self._images.content
        sid = msg.short_id(job.desc.digest)
        try:
            async with self._limiter, content.ingest_lock(job.desc.digest):
                if not content.exists(job.desc.digest):
                    partial = content.partial(job.desc.digest)
                    follower = await trio.to_thread.run_sync(_follow, partial)
                    nursery.start_soon(self._unpack_ahead, job, follower)
                    try:
                        async with _reporting(emit, "Downloading", sid, job.desc.size) as report:

                            def progress(current: int, total: int) -> None:
                                report(current, total)
                                follower.advanced()

                            await client.fetch_blob(
                                repo,
                                job.desc.digest,
                                partial,
                                size=job.desc.size,
                                progress=progress,
                            )
                    except BaseException:
                        follower.abandon()
                        raise
                    follower.finished()
                    await emit(msg.status("Verifying Checksum", id_=sid))
                    await trio.to_thread.run_sync(
                        lambda: content.commit(job.desc.digest, partial, verified=True)
                    )
                else:
                    job.unpacked_done.set()
                await self._db.run(_record_blob, job.desc, job.diff_id, client.domain, repo)
            await emit(msg.status("Download complete", id_=sid))
        except Exception as exc:  # noqa: BLE001 -- handed to the extracting task, which raises it
            job.error = exc
        finally:
            job.done.set()

    async def _unpack_ahead(self, job: _LayerJob, follower: GrowingFile) -> None:
        """Unpack a layer from its download as the bytes arrive, so unpacking overlaps the
        transfer instead of following it. Any failure (a hostile tar, a download that
        restarted or failed) only drops the result: the verified blob is then unpacked
        the usual way, which reports the error if there is one."""
        try:
            job.unpacked = await trio.to_thread.run_sync(
                functools.partial(
                    self._images.unpack_sync,
                    follower,  # type: ignore[arg-type]  # a read()-only stream is enough
                    expected_diff_id=job.diff_id,
                    keep_tar=False,
                )
            )
        except (OSError, BerthError, Abandoned) as exc:
            log.debug("image.unpack_ahead_dropped", digest=job.desc.digest, error=str(exc))
        finally:
            follower.close()
            job.unpacked_done.set()

    # -- push -------------------------------------------------------------------------

    async def push(self, image: Image, ref: Reference, client: RegistryClient, emit: Emit) -> str:
        """Push ``image`` as ``ref`` (which has a tag); returns the manifest digest."""
        repo = ref.path
        tag = ref.tag or "latest"
        await emit(msg.status(f"The push refers to repository [{familiar(ref.repository)}]"))
        diff_ids = list((image.config.get("rootfs") or {}).get("diff_ids") or [])
        descriptors: list[mf.Descriptor | None] = [None] * len(diff_ids)
        for diff_id in reversed(diff_ids):
            await emit(msg.status("Preparing", id_=msg.short_id(diff_id)))
        async with trio.open_nursery() as nursery:
            for i, diff_id in enumerate(diff_ids):
                nursery.start_soon(self._push_layer, client, repo, diff_id, i, descriptors, emit)
            # The config goes up beside the layers, not after them (the registry only
            # needs every blob before the manifest).
            nursery.start_soon(self._push_config, client, repo, image)
        config_desc = mf.Descriptor(mf.DOCKER_CONFIG, image.id, len(image.raw_config))
        layers = [d for d in descriptors if d is not None]
        raw, media_type = mf.build_manifest(config_desc, layers)
        digest = await client.put_manifest(repo, tag, raw, media_type)
        await self._events.emit(
            "image",
            "push",
            str(ref),
            {"name": familiar(str(ref))},
            with_change=lambda conn: rows.set_repo_digest(
                conn, f"{ref.repository}@{digest}", image.id
            ),
        )
        await emit(msg.status(f"{tag}: digest: {digest} size: {len(raw)}"))
        await emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(raw)}})
        log.info("image.pushed", image_ref=str(ref), digest=digest)
        return digest

    async def _push_config(self, client: RegistryClient, repo: str, image: Image) -> None:
        if await client.blob_exists(repo, image.id, push=True) is None:
            session = await client.start_upload(repo)
            await client.finish_upload(session, image.raw_config, image.id)

    async def _push_layer(
        self,
        client: RegistryClient,
        repo: str,
        diff_id: str,
        index: int,
        out: list[mf.Descriptor | None],
        emit: Emit,
    ) -> None:
        sid = msg.short_id(diff_id)
        async with self._limiter:
            blob = await self._existing_blob(diff_id)
            if blob is None:
                blob = await self._compress_and_upload(client, repo, diff_id, sid, emit)
                if blob is not None:
                    out[index] = blob
                    return
                blob = await self._existing_blob(diff_id)
                assert blob is not None
            out[index] = blob
            if await client.blob_exists(repo, blob.digest, push=True) is not None:
                await emit(msg.status("Layer already exists", id_=sid))
                return
            for source in await self._db.run(rows.blob_sources, blob.digest, client.domain):
                if source != repo and await client.mount_blob(repo, blob.digest, source):
                    await emit(msg.status(f"Mounted from {source}", id_=sid))
                    await self._db.run(rows.add_blob_source, blob.digest, client.domain, repo)
                    return
            async with _reporting(emit, "Pushing", sid, blob.size) as progress:
                await client.upload_blob(
                    repo,
                    self._images.content.path(blob.digest),
                    blob.digest,
                    blob.size,
                    progress=progress,
                )
            await self._db.run(rows.add_blob_source, blob.digest, client.domain, repo)
            await emit(msg.status("Pushed", id_=sid))

    async def _existing_blob(self, diff_id: str) -> mf.Descriptor | None:
        """A compressed blob we already have for layer ``diff_id``, if any."""
        content = self._images.content
        for digest, media_type, size in await self._db.run(rows.blobs_for_diff, diff_id):
            if digest != diff_id and content.exists(digest):
                return mf.Descriptor(media_type, digest, size)
        return None

    async def _compress_and_upload(
        self, client: RegistryClient, repo: str, diff_id: str, sid: str, emit: Emit
    ) -> mf.Descriptor | None:
        """First push of a local layer: gzip its tar and upload the members as they are
        made (one streamed PATCH), so compression and the upload overlap instead of
        following each other; the blob is kept for the next push. A layer of one block
        goes up whole instead (:meth:`_compress_and_upload_small`: streaming saves nothing
        there and costs a round trip). Returns None when a concurrent push compressed
        it, for the usual upload."""
        content = self._images.content
        if not content.exists(diff_id):
            raise NotFound(
                f"layer {diff_id} has no stored content to push (image imported before berth kept layer tars)"
            )
        async with content.ingest_lock(f"gzip:{diff_id}"):
            if await self._existing_blob(diff_id) is not None:
                return None  # a concurrent push made it
            tar_size = await trio.to_thread.run_sync(lambda: content.path(diff_id).stat().st_size)
            if tar_size <= BLOCK:
                return await self._compress_and_upload_small(client, repo, diff_id, sid, emit)
            tmp = content.ingest / f"gzip-{diff_id.removeprefix('sha256:')}.partial"
            workers = max(1, os.cpu_count() or 1)
            send, receive = trio.open_memory_channel[bytes](workers)
            made: list[tuple[str, int]] = []

            async def produce() -> None:
                made.append(await gzip_to_channel(content.path(diff_id), tmp, send))

            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(produce)
                    async with _reporting(emit, "Pushing", sid, tar_size) as progress:
                        await client.upload_stream(
                            repo,
                            receive,
                            lambda: made[0][0],
                            progress=progress,
                            total=tar_size,
                        )
                digest, size = made[0]
                await self._keep_blob(diff_id, tmp, digest, size)
            finally:
                tmp.unlink(missing_ok=True)
        await self._db.run(rows.add_blob_source, digest, client.domain, repo)
        await emit(msg.status("Pushed", id_=sid))
        return mf.Descriptor(mf.DOCKER_LAYER, digest, size)

    async def _compress_and_upload_small(
        self, client: RegistryClient, repo: str, diff_id: str, sid: str, emit: Emit
    ) -> mf.Descriptor:
        """First push of a small local layer: compress it in memory while the upload
        session opens, then send it in one PUT while the blob is stored (and synced)
        beside; no HEAD, as dockerd: the registry cannot know a blob just made."""
        content = self._images.content
        sessions: list[UploadSession] = []

        async def open_session() -> None:
            sessions.append(await client.start_upload(repo))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(open_session)
            data, digest = await gzip_small(content.path(diff_id))
        size = len(data)

        async def keep() -> None:
            await trio.to_thread.run_sync(content.commit_bytes, digest, data)
            await self._db.run(rows.put_layer_blob, digest, diff_id, mf.DOCKER_LAYER, size)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep)
            await emit(msg.progress("Pushing", sid, 0, size))
            await client.finish_upload(sessions[0], data, digest)
        await self._db.run(rows.add_blob_source, digest, client.domain, repo)
        await emit(msg.status("Pushed", id_=sid))
        return mf.Descriptor(mf.DOCKER_LAYER, digest, size)

    async def _keep_blob(self, diff_id: str, tmp: Path, digest: str, size: int) -> None:
        """Store a layer's new compressed blob and record which layer it carries."""
        content = self._images.content
        if not content.exists(digest):
            await trio.to_thread.run_sync(lambda: content.commit(digest, tmp, verified=True))
        await self._db.run(rows.put_layer_blob, digest, diff_id, mf.DOCKER_LAYER, size)


@asynccontextmanager
async def _reporting(
    emit: Emit, what: str, sid: str, size: int
) -> AsyncIterator[Callable[[int, int], None]]:
    """A progress callback for a transfer; the latest figure goes out every 100 ms, so a
    fast transfer does not flood the client with messages."""
    latest: list[tuple[int, int]] = []

    def progress(current: int, total: int) -> None:
        latest[:] = [(current, total)]

    async def report() -> None:
        while True:
            await trio.sleep(PROGRESS_EVERY_S)
            if latest:
                ((current, total),) = latest
                latest.clear()
                await emit(msg.progress(what, sid, current, total or size))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report)
        yield progress
        nursery.cancel_scope.cancel()


def _follow(partial: Path) -> GrowingFile:
    """A reader of the download about to go into ``partial`` (created if missing)."""
    partial.touch()
    return GrowingFile(partial)
