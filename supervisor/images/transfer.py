"""``docker save`` and ``docker load``: images to and from docker-archive tarballs.

Save streams the archive: a worker thread writes the tar into a pipe, the trio side
sends what it reads. Layers come from the content store: the exact tar when kept, or the
pulled blob decompressed on the fly. Load spools the upload to a temporary file (the
formats need random access), then registers each image's layers in order, checking each
against the config's diff ids, and tags the images last.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import lzma
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import structlog
import trio

from store import images as rows
from store.db import Database
from supervisor.errors import InvalidArgument, NotFound
from supervisor.events.log import EventLog
from supervisor.images import reference
from supervisor.images.store import ImageStore, chain_id
from supervisor.images.unpack import open_layer_stream
from supervisor.model import ChainId, Image, Layer
from supervisor.threadpipe import pipe_from_thread

if TYPE_CHECKING:
    from supervisor.images.archive import ArchiveImage

log = structlog.get_logger()

Write = Callable[[bytes], Awaitable[None]]
CHUNK = 65536


class Archives:
    def __init__(self, *, db: Database, events: EventLog, images: ImageStore) -> None:
        self._db = db
        self._events = events
        self._images = images

    async def _archive_image(self, image: Image, names: Sequence[str]) -> ArchiveImage:
        from supervisor.images.archive import ArchiveImage, ArchiveLayer

        """``image`` for the archive, tagged with the references the user named it by
        (a repository without a tag names all its tags; an id names none)."""
        layers = []
        for chain in image.layers:
            layer = await self._images.layer(chain)
            layers.append(
                ArchiveLayer(
                    diff_id=layer.diff_id,
                    open=await self._opener(layer),
                    size=await self._tar_size(layer),
                )
            )
        tags = tuple(reference.familiar(t) for t in image.tags if _named(t, names))
        return ArchiveImage(config=image.raw_config, repo_tags=tags, layers=tuple(layers))

    async def _opener(self, layer: Layer) -> Callable[[], BinaryIO]:
        content = self._images.content
        if content.exists(layer.diff_id):
            return lambda: content.open(layer.diff_id)
        for digest, _, _ in await self._db.run(rows.blobs_for_diff, layer.diff_id):
            if content.exists(digest):
                # The archive writer only reads and closes it: a file-like object is enough.
                return lambda: cast(BinaryIO, _Decompressed(content.open(digest)))
        raise NotFound(f"no stored content for layer {layer.diff_id}")

    async def _tar_size(self, layer: Layer) -> int:
        if layer.tar_size:
            return layer.tar_size
        if self._images.content.exists(layer.diff_id):
            return self._images.content.size(layer.diff_id)
        # A layer pulled before sizes were recorded: count the decompressed stream once.
        opener = await self._opener(layer)

        def count() -> int:
            total = 0
            with opener() as stream:
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
            return total

        return await trio.to_thread.run_sync(count)

    async def save(self, images: Sequence[Image], names: Sequence[str], write: Write) -> None:
        from supervisor.images.archive import write_docker_archive

        entries = [await self._archive_image(i, names) for i in images]
        await pipe_from_thread(lambda out: write_docker_archive(out, entries), write)
        for image in images:
            await self._events.emit("image", "save", image.id, {})

    async def load(self, path: Path, *, quiet: bool = False) -> list[str]:
        """Load every image in the archive at ``path``; returns Docker's report lines."""
        from supervisor.images.archive import read_archive

        await trio.to_thread.run_sync(_decompress_in_place, path)
        loaded = await trio.to_thread.run_sync(
            functools.partial(read_archive, path, platform="linux/amd64")
        )
        lines: list[str] = []
        for item in loaded:
            parent: ChainId | None = None
            layers: list[Layer] = []
            for layer in item.layers:
                chain = chain_id(parent, layer.diff_id)
                known = await self._db.run(rows.get_layer, chain)
                if known is not None and self._images.layer_path(chain).exists():
                    layers.append(known)
                else:
                    tmp = self._images.tmp_dir / f"load-{layer.diff_id.removeprefix('sha256:')}.tar"

                    def spool(src: Callable[[], BinaryIO] = layer.open, dst: Path = tmp) -> None:
                        with src() as s, open(dst, "wb") as d:
                            while chunk := s.read(1 << 20):
                                d.write(chunk)

                    await trio.to_thread.run_sync(spool)
                    try:
                        layers.append(
                            await self._images.register_layer_file(
                                tmp, parent=parent, expected_diff_id=layer.diff_id
                            )
                        )
                    finally:
                        tmp.unlink(missing_ok=True)
                parent = layers[-1].chain_id
            image = await self._db.run(
                rows.get_image, _image_id(item.config)
            ) or await self._images.add_image(item.config, layers)
            await self._events.emit("image", "load", image.id, {})
            if item.repo_tags:
                for tag in item.repo_tags:
                    await self._images.tag(image.id, tag)
                    lines.append(f"Loaded image: {tag}")
            else:
                lines.append(f"Loaded image ID: {image.id}")
        if not loaded:
            raise InvalidArgument("no images found in the archive")
        log.info("image.loaded", count=len(loaded))
        return lines


def _image_id(config: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(config).hexdigest()


def _named(tag: str, names: Sequence[str]) -> bool:
    """Whether the stored reference ``tag`` is one the user asked for."""
    for name in names:
        try:
            ref = reference.parse(name)
        except InvalidArgument:
            continue  # an image id
        if ref.tag is None and ref.digest is None:
            if tag.rsplit(":", 1)[0] == ref.repository:
                return True
        elif str(ref) == tag:
            return True
    return False


class _Decompressed:
    """A decompressing reader that closes the blob file under it too."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._stream = open_layer_stream(raw)

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> _Decompressed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decompress_in_place(path: Path) -> None:
    """``docker load`` accepts gzip, bzip2 and xz archives: make ``path`` a plain tar."""
    with open(path, "rb") as f:
        head = f.read(6)
    opener = (
        gzip.open if head.startswith(b"\x1f\x8b")
        else bz2.open if head.startswith(b"BZh")
        else lzma.open if head.startswith(b"\xfd7zXZ\x00")
        else None
    )  # fmt: skip
    if opener is None:
        return
    plain = path.with_suffix(".tar")
    with opener(path, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(plain, path)
