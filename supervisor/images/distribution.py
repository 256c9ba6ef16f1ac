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

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from store import images as rows
from store.db import Database
from supervisor.errors import InvalidArgument, NotFound
from supervisor.events.log import EventLog
from supervisor.images import progress as msg
from supervisor.images.compress import BLOCK, gzip_to_channel
from supervisor.images.reference import Reference, familiar
from supervisor.images.registry import manifest as mf
from supervisor.images.registry.client import RegistryClient
from supervisor.images.store import ImageStore, chain_id
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
        content = self._images.content
        config_raw = await self._fetch_small(client, repo, parsed.config)
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
                else:
                    await emit(msg.status("Pulling fs layer", id_=msg.short_id(job.desc.digest)))
                    nursery.start_soon(self._download, client, repo, job, emit)
            parent = None
            for job, chain in zip(jobs, chains, strict=True):
                await job.done.wait()
                if job.error is not None:
                    raise job.error
                layer = await self._db.run(rows.get_layer, chain)
                if layer is None or not self._images.layer_path(chain).exists():
                    sid = msg.short_id(job.desc.digest)
                    await emit(msg.status("Extracting", id_=sid))
                    layer = await self._images.register_layer_file(
                        content.path(job.desc.digest),
                        parent=parent,
                        expected_diff_id=job.diff_id,
                        keep_tar=False,
                    )
                    await emit(msg.status("Pull complete", id_=sid))
                layers.append(layer)
                parent = layer.chain_id
        image = existing or await self._images.add_image(config_raw, layers)
        target = f"{ref.repository}@{pulled_digest}"
        await self._db.run(rows.set_repo_digest, target, image.id)
        if ref.tag and not ref.digest:
            await self._images.tag(image.id, str(ref))
        await self._events.emit(
            "image", "pull", str(ref) if ref.tag else target, {"name": familiar(str(ref))}
        )
        await emit(msg.status(f"Digest: {pulled_digest}"))
        shown = familiar(str(ref))
        if existing is not None and (before == image_id or ref.digest):
            await emit(msg.status(f"Status: Image is up to date for {shown}"))
        else:
            await emit(msg.status(f"Status: Downloaded newer image for {shown}"))
        log.info("image.pulled", image_ref=str(ref), image_id=image.id)
        return await self._images.resolve(image.id)

    async def _fetch_small(self, client: RegistryClient, repo: str, desc: mf.Descriptor) -> bytes:
        content = self._images.content
        async with content.ingest_lock(desc.digest):
            if not content.exists(desc.digest):
                partial = content.partial(desc.digest)
                await client.fetch_blob(repo, desc.digest, partial, size=desc.size, progress=None)
                await trio.to_thread.run_sync(
                    lambda: content.commit(desc.digest, partial, verified=True)
                )
        return content.read_bytes(desc.digest)

    async def _download(
        self, client: RegistryClient, repo: str, job: _LayerJob, emit: Emit
    ) -> None:
        content = self._images.content
        sid = msg.short_id(job.desc.digest)
        try:
            async with self._limiter, content.ingest_lock(job.desc.digest):
                if not content.exists(job.desc.digest):
                    partial = content.partial(job.desc.digest)
                    async with _reporting(emit, "Downloading", sid, job.desc.size) as progress:
                        await client.fetch_blob(
                            repo, job.desc.digest, partial, size=job.desc.size, progress=progress
                        )
                    await emit(msg.status("Verifying Checksum", id_=sid))
                    await trio.to_thread.run_sync(
                        lambda: content.commit(job.desc.digest, partial, verified=True)
                    )
                await self._db.run(
                    rows.put_layer_blob,
                    job.desc.digest,
                    job.diff_id,
                    job.desc.media_type,
                    job.desc.size,
                )
                await self._db.run(rows.add_blob_source, job.desc.digest, client.domain, repo)
            await emit(msg.status("Download complete", id_=sid))
        except Exception as exc:  # noqa: BLE001 -- handed to the extracting task, which raises it
            job.error = exc
        finally:
            job.done.set()

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
        config_desc = mf.Descriptor(mf.DOCKER_CONFIG, image.id, len(image.raw_config))
        if await client.blob_exists(repo, image.id, push=True) is None:
            path = self._images.content.ingest / f"push-{image.id.removeprefix('sha256:')}.json"
            path.write_bytes(image.raw_config)
            try:
                await client.upload_blob(repo, path, image.id, len(image.raw_config), progress=None)
            finally:
                path.unlink(missing_ok=True)
        layers = [d for d in descriptors if d is not None]
        raw, media_type = mf.build_manifest(config_desc, layers)
        digest = await client.put_manifest(repo, tag, raw, media_type)
        await self._db.run(rows.set_repo_digest, f"{ref.repository}@{digest}", image.id)
        await emit(msg.status(f"{tag}: digest: {digest} size: {len(raw)}"))
        await emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(raw)}})
        await self._events.emit("image", "push", str(ref), {"name": familiar(str(ref))})
        log.info("image.pushed", image_ref=str(ref), digest=digest)
        return digest

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
        following each other; the blob is kept for the next push. Returns None when it
        only made the blob, for the usual upload: a layer of one block (streaming saves
        nothing there and costs a round trip), or one a concurrent push compressed."""
        content = self._images.content
        if not content.exists(diff_id):
            raise NotFound(
                f"layer {diff_id} has no stored content to push (image imported before berth kept layer tars)"
            )
        async with content.ingest_lock(f"gzip:{diff_id}"):
            if await self._existing_blob(diff_id) is not None:
                return None  # a concurrent push made it
            tmp = content.ingest / f"gzip-{diff_id.removeprefix('sha256:')}.partial"
            tar_size = await trio.to_thread.run_sync(lambda: content.path(diff_id).stat().st_size)
            workers = max(1, os.cpu_count() or 1)
            send, receive = trio.open_memory_channel[bytes](workers)
            made: list[tuple[str, int]] = []

            async def produce() -> None:
                made.append(await gzip_to_channel(content.path(diff_id), tmp, send))

            if tar_size <= BLOCK:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(produce)
                        async with receive:
                            async for _ in receive:
                                pass
                    await self._keep_blob(diff_id, tmp, *made[0])
                finally:
                    tmp.unlink(missing_ok=True)
                return None

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
