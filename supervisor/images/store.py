"""The local image store: layers unpacked once per chain id, images by config digest,
tags by normalised reference (ARCHITECTURE.md §4).

Layout under ``<data-root>/image``: ``layers/<chain hex>/diff`` (an overlay lowerdir),
``tmp/`` for imports in progress (a crash leaves only garbage there, swept at start).
A layer directory appears under its final name only once completely unpacked
(rename), and its row is written after that.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import attrs
import structlog
import trio

from store import images as rows
from store.db import Database
from supervisor.errors import Conflict, InvalidArgument, NoSuchImage, NotFound
from supervisor.events.log import EventLog
from supervisor.images import prune as prune_mod
from supervisor.images import reference
from supervisor.images.changes import apply_changes
from supervisor.images.content import ContentStore, DigestMismatch
from supervisor.images.unpack import open_layer_stream, unpack_layer
from supervisor.model import ChainId, Image, ImageId, Layer

log = structlog.get_logger()

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

InUse = Callable[[str], Awaitable[list[str]]]  # image id -> ids of containers using it


class _TeeReader:
    """Reads a stream for the unpacker while hashing it (the diff id) and, optionally,
    keeping a copy (the uncompressed layer tar, for push and save)."""

    def __init__(self, inner: IO[bytes], copy: IO[bytes] | None) -> None:
        self.inner = inner
        self.copy = copy
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.sha.update(data)
        self.size += len(data)
        if self.copy is not None:
            self.copy.write(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


@attrs.frozen
class Unpacked:
    """A layer unpacked into ``work/diff`` (and its tar copy in ``work/layer.tar`` when
    kept), verified against its diff id but not yet under its chain id."""

    work: Path
    diff_id: str
    size: int  # bytes of file content
    tar_size: int  # bytes of the uncompressed tar
    keep_tar: bool


def chain_id(parent: str | None, diff_id: str) -> ChainId:
    """OCI: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    if parent is None:
        return ChainId(diff_id)
    return ChainId("sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest())


_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def spread_subdirectories(path: Path) -> bool:
    """Mark ``path`` as a top of directory hierarchies (``chattr +T``), so ext4 places
    each new subdirectory (a layer being unpacked) in a block group of its own choosing
    instead of its parent's. Best effort: False where the filesystem has no such flag.

    Why: ext4 without a journal does not reuse an inode freed in the last minute (more
    while its inode block is dirty) and checks each such one it passes, so in a group
    where a layer was just deleted every new file costs ten times as much (busybox's
    270 symlinks: ~80 ms instead of ~8 ms on this project's machines).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:  # ENOTTY/EOPNOTSUPP: not ext2/3/4; EPERM: not root
        return False
    finally:
        os.close(fd)
    return True


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_config(config: dict[str, Any]) -> bytes:
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()


class ImageStore:
    def __init__(self, db: Database, events: EventLog, root: Path) -> None:
        self._db = db
        self._events = events
        self.root = root
        self.layers_dir = root / "layers"
        self.tmp_dir = root / "tmp"
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        spread_subdirectories(self.tmp_dir)
        self._limiter = trio.CapacityLimiter(2)
        # Image id -> its overlay lowerdirs. An id hashes a config that lists the layers'
        # diff ids, so the entry holds for as long as the image exists.
        self._lowers: dict[str, list[Path]] = {}
        self._deletions = 0  # images deleted so far (a lookup in flight must not cache)
        self.content = ContentStore(root)
        self.content.sweep_ingest()

    # -- lookups -----------------------------------------------------------------

    async def resolve(self, name: str) -> Image:
        """An image by id, reference or unique id prefix. Raises NoSuchImage (404)."""
        image = await self._db.run(_resolve, name)
        if image is None:
            raise NoSuchImage(name)
        return image

    async def list_images(self) -> list[Image]:
        return await self._db.run(rows.all_images)

    def layer_path(self, chain_id: str) -> Path:
        return self.layers_dir / chain_id.removeprefix("sha256:") / "diff"

    def lowerdirs(self, image: Image) -> list[Path]:
        """The overlay lowerdirs of ``image``, top layer first."""
        return [self.layer_path(c) for c in reversed(image.layers)]

    async def lowerdirs_of(self, image_id: str) -> list[Path]:
        """The lowerdirs of the image with this id, from memory after the first call
        (``inspect`` asks on every call). Raises NoSuchImage (404) once it is deleted."""
        lowers = self._lowers.get(image_id)
        if lowers is None:
            deletions = self._deletions
            lowers = self.lowerdirs(await self.resolve(image_id))
            if deletions == self._deletions:  # no delete ran meanwhile: still true
                self._lowers[image_id] = lowers
        return lowers

    # -- import ----------------------------------------------------------------------

    async def import_tarball(
        self,
        body: AsyncIterator[bytes],
        *,
        repo: str | None,
        tag: str | None,
        changes: list[str],
        message: str = "",
        source: str = "-",
    ) -> Image:
        """Import a root filesystem tarball (plain, gzip or zstd) as a one-layer image.

        Errors: InvalidArgument for a bad reference, change or hostile tar (nothing is
        registered then).
        """
        target = None
        if repo:
            target = reference.parse(f"{repo}:{tag}" if tag else repo).with_default_tag()
            if target.digest:
                raise InvalidArgument("cannot import to a digest reference")
        base_config = apply_changes({}, changes)
        with tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="import-", delete=False) as tmp:
            upload = Path(tmp.name)
            async for chunk in body:
                tmp.write(chunk)
        try:
            layer = await self.register_layer_file(upload, parent=None)
        finally:
            upload.unlink(missing_ok=True)
        created = now_rfc3339()
        config: dict[str, Any] = {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": base_config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [
                {
                    "created": created,
                    "comment": message or f"Imported from {source}",
                    "created_by": "",
                }
            ],
        }
        image = await self.add_image(encode_config(config), [layer])
        await self._events.emit("image", "import", image.id, {})
        if target is not None:
            await self.tag(image.id, str(target))
        log.info("image.imported", image_id=image.id, size=layer.size)
        return await self.resolve(image.id)

    # -- layers and images ------------------------------------------------------------

    async def register_layer_file(
        self,
        path: Path,
        *,
        parent: ChainId | None,
        expected_diff_id: str | None = None,
        keep_tar: bool = True,
    ) -> Layer:
        """Unpack the layer tar at ``path`` (plain, gzip or zstd) on top of ``parent``.

        The uncompressed tar is kept in the content store under its diff id (``keep_tar``)
        so that push and save reproduce the layer byte for byte.

        Errors: InvalidArgument for a hostile tar; DigestMismatch when the content is not
        ``expected_diff_id``. Nothing is registered then.
        """

        def unpack() -> Unpacked:
            with open(path, "rb") as raw:
                return self.unpack_sync(raw, expected_diff_id=expected_diff_id, keep_tar=keep_tar)

        unpacked = await trio.to_thread.run_sync(unpack, limiter=self._limiter)
        return await self.register_unpacked(unpacked, parent=parent)

    def unpack_sync(
        self, raw: BinaryIO, *, expected_diff_id: str | None, keep_tar: bool
    ) -> Unpacked:
        """Unpack the layer read from ``raw`` into a work directory under ``tmp/``, not
        yet registered (:meth:`register_unpacked` does that; :meth:`discard` forgets it).
        Blocking: run in a worker thread. ``raw`` may be a download still in progress: the
        unpacking needs no parent, so it can start before the layers below are in.

        Errors: as :meth:`register_layer_file`; the work directory is removed then.
        """
        work = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="layer-"))
        tar_copy = work / "layer.tar"
        try:
            dest = work / "diff"
            dest.mkdir()
            with open(tar_copy, "wb") if keep_tar else contextlib.nullcontext() as copy:
                reader = _TeeReader(open_layer_stream(raw), copy)
                stats = unpack_layer(reader, dest)  # type: ignore[arg-type]
                reader.drain()
            diff_id = reader.digest
            if expected_diff_id is not None and diff_id != expected_diff_id:
                raise DigestMismatch(
                    f"layer content is {diff_id}, the image config says {expected_diff_id}"
                )
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return Unpacked(
            work=work,
            diff_id=diff_id,
            size=stats.content_bytes,
            tar_size=reader.size,
            keep_tar=keep_tar,
        )

    async def register_unpacked(self, unpacked: Unpacked, *, parent: ChainId | None) -> Layer:
        """Move an unpacked layer under its chain id on top of ``parent`` and write its
        rows (the layer directory first, so a row always names a complete directory)."""
        layer = await trio.to_thread.run_sync(self._install_sync, unpacked, parent)
        await self._db.run(rows.put_layer, layer)
        if unpacked.keep_tar:
            await self._db.run(
                rows.put_layer_blob, layer.diff_id, layer.diff_id, LAYER_TAR, layer.tar_size
            )
        return layer

    @staticmethod
    def discard(unpacked: Unpacked) -> None:
        """Forget an unpacked layer that will not be registered. Blocking."""
        shutil.rmtree(unpacked.work, ignore_errors=True)

    def _install_sync(self, unpacked: Unpacked, parent: ChainId | None) -> Layer:
        work, diff_id = unpacked.work, unpacked.diff_id
        tar_copy = work / "layer.tar"
        try:
            chain = chain_id(parent, diff_id)
            if unpacked.keep_tar and not self.content.exists(diff_id):
                self.content.commit(diff_id, tar_copy, verified=True)
            final = self.layers_dir / chain.removeprefix("sha256:")
            if final.exists():
                shutil.rmtree(work, ignore_errors=True)
            else:
                tar_copy.unlink(missing_ok=True)
                work.rename(final)
            return Layer(
                chain_id=chain,
                diff_id=diff_id,
                parent=parent,
                size=unpacked.size,
                tar_size=unpacked.tar_size,
            )
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    async def add_image(self, raw_config: bytes, layers: list[Layer], *, parent: str = "") -> Image:
        """Register an image made of ``layers`` (already registered) with this config."""
        config = json.loads(raw_config)
        image = Image(
            id=ImageId("sha256:" + hashlib.sha256(raw_config).hexdigest()),
            config=config,
            raw_config=raw_config,
            created_ns=time.time_ns(),
            size=sum(layer.size for layer in layers),
            layers=tuple(layer.chain_id for layer in layers),
            parent=parent,
        )
        await self._db.run(rows.put_image, image)
        if parent:
            await self._db.run(rows.set_parent, image.id, parent)
        return image

    async def layer(self, chain: str) -> Layer:
        found = await self._db.run(rows.get_layer, chain)
        if found is None:
            raise NotFound(f"layer {chain} is not in the store")
        return found

    # -- tags and removal -----------------------------------------------------------

    async def tag(self, source: str, target: str) -> str:
        image = await self.resolve(source)
        ref = reference.parse(target).with_default_tag()
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        old = await self._db.run(rows.set_tag, str(ref), image.id, time.time_ns())
        if old:
            await self._events.emit("image", "untag", old, {"name": reference.familiar(str(ref))})
        await self._events.emit("image", "tag", image.id, {"name": reference.familiar(str(ref))})
        return str(ref)

    async def remove(
        self, name: str, *, force: bool, in_use: InUse, prune: bool = True
    ) -> list[dict[str, str]]:
        """Docker's ``rmi``: untag a reference, delete the image once no tag is left.

        With ``prune`` (Docker's default; ``noprune=1`` turns it off) deleting an image
        also deletes its untagged parents nothing else needs (:mod:`.prune`), so a
        built image takes its build's step images along.

        Errors: Conflict (409) when a container uses the image (unless ``force``, which
        then only untags), when a bare id matches an image with several tags, or names
        an image other images were made from (even forced, as Docker). Removing the
        last tag of such an image only untags it.
        """
        result, _ = await self.remove_reclaiming(name, force=force, in_use=in_use, prune=prune)
        return result

    async def remove_reclaiming(
        self, name: str, *, force: bool, in_use: InUse, prune: bool = True
    ) -> tuple[list[dict[str, str]], int]:
        """:meth:`remove`, also returning the bytes reclaimed (for the prune reports)."""
        image = await self.resolve(name)
        by_reference = _is_reference_to(name, image)
        result: list[dict[str, str]] = []
        users = await in_use(image.id)
        short = image.id.removeprefix("sha256:")[:12]
        if by_reference and users and len(image.tags) == 1 and not force:
            raise Conflict(
                f'conflict: unable to remove repository reference "{name}" (must force) - '
                f"container {users[0][:12]} is using its referenced image {short}"
            )
        children = await self._db.run(rows.child_images, image.id)
        # By reference, the image's last tag with children left: Docker untags and keeps
        # the image quietly (it is now an intermediate image of its children).
        if by_reference and (len(image.tags) > 1 or users or children):
            ref = reference.normalize(name)
            await self._db.run(rows.remove_tag, ref)
            await self._events.emit("image", "untag", image.id, {"name": reference.familiar(ref)})
            result = [{"Untagged": reference.familiar(ref)}]
            repo = reference.parse(ref).repository
            if not any(reference.parse(t).repository == repo for t in image.tags if t != ref):
                # The repository's last tag: Docker forgets its digest references too.
                for digest_ref in image.repo_digests:
                    if reference.parse(digest_ref).repository == repo:
                        await self._db.run(rows.remove_repo_digest, digest_ref)
                        result.append({"Untagged": reference.familiar(digest_ref)})
            return result, 0
        if children:
            raise Conflict(
                f"conflict: unable to delete {short} (cannot be forced) - "
                "image has dependent child images"
            )
        if users and not force:
            raise Conflict(
                f"conflict: unable to delete {short} (must be forced) - "
                f"image is being used by stopped container {users[0][:12]}"
            )
        if not by_reference and len(image.tags) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {short} (must be forced) - "
                "image is referenced in multiple repositories"
            )
        if users:
            # Forced: the image stays while containers use it.
            return await self._untag_all(image), 0
        return await self.delete(image, prune_parents=in_use if prune else None)

    async def prune(
        self,
        *,
        dangling_only: bool,
        select: Callable[[Image], bool],
        in_use: InUse,
    ) -> tuple[list[dict[str, str]], int]:
        """Docker's ``image prune``: delete the candidates (:func:`.prune.prune_candidates`)
        ``select`` accepts, each as ``rmi`` would (by each reference, then by id), with
        their untagged parents; an image a container uses, or one a conflict protects,
        is skipped. Returns the report and the bytes reclaimed."""
        images = await self.list_images()
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for image in prune_mod.prune_candidates(images, dangling_only=dangling_only):
            if not select(image):
                continue
            # Tags first (the last one deletes); digest references go with the image.
            names = list(image.tags) or [image.id]
            for name in names:
                try:
                    report, freed = await self.remove_reclaiming(name, force=False, in_use=in_use)
                except (Conflict, NotFound):
                    continue  # in use, or already gone with another image's parents
                deleted += report
                reclaimed += freed
        return deleted, reclaimed

    async def _untag_all(self, image: Image) -> list[dict[str, str]]:
        result = []
        for ref in image.tags:
            await self._db.run(rows.remove_tag, ref)
            await self._events.emit("image", "untag", image.id, {"name": reference.familiar(ref)})
            result.append({"Untagged": reference.familiar(ref)})
        for ref in image.repo_digests:
            result.append({"Untagged": reference.familiar(ref)})
        return result

    async def delete(
        self, image: Image, *, prune_parents: InUse | None = None
    ) -> tuple[list[dict[str, str]], int]:
        """Untag and delete ``image`` (the caller checked nothing uses it); collect the
        layers and blobs nothing else uses. Returns Docker's report (each deleted image,
        then the chain ids of the layers that went with it, top first) and the bytes
        reclaimed.

        With ``prune_parents`` (who uses an image), the untagged parents nothing else
        needs go too, nearest first (:func:`.prune.prunable_parent`).
        """
        result = await self._untag_all(image)
        reclaimed = await self._delete_one(image, result)
        parent_id = image.parent
        while prune_parents is not None and parent_id:
            parent = await self._db.run(rows.get_image, parent_id)
            if parent is None:
                break
            children = await self._db.run(rows.child_images, parent.id)
            users = await prune_parents(parent.id)
            if not prune_mod.prunable_parent(parent, children=children, users=users):
                break
            reclaimed += await self._delete_one(parent, result)
            parent_id = parent.parent
        return result, reclaimed

    async def _delete_one(self, image: Image, report: list[dict[str, str]]) -> int:
        await self._db.run(rows.delete_image, image.id)
        self._deletions += 1
        self._lowers.pop(image.id, None)
        await self._events.emit("image", "delete", image.id, {})
        report.append({"Deleted": image.id})
        chains, reclaimed = await self._gc_layers()
        report += [{"Deleted": chain} for chain in chains]
        return reclaimed

    async def _gc_layers(self) -> tuple[list[str], int]:
        """Delete layers and blobs no image uses; returns the layers' chain ids (top
        first) and the bytes reclaimed."""
        reclaimed = 0
        unused = await self._db.run(rows.unused_layers)
        parents: dict[str, str | None] = {}
        for chain in unused:
            layer = await self._db.run(rows.get_layer, chain)
            parents[chain] = layer.parent if layer is not None else None

        def depth(chain: str) -> int:
            n = 0
            while (up := parents.get(chain)) is not None:
                n, chain = n + 1, up
            return n

        # Children first: a layer row is its child's parent (foreign key), and a layer
        # nothing uses has only unused children.
        removed = sorted(unused, key=depth, reverse=True)
        for chain in removed:
            await self._db.run(rows.delete_layer, chain)
            path = self.layers_dir / chain.removeprefix("sha256:")
            reclaimed += await trio.to_thread.run_sync(_remove_tree, path)
        for digest in await self._db.run(rows.unused_blobs):
            await self._db.run(rows.delete_layer_blob, digest)
            if self.content.exists(digest):
                reclaimed += self.content.size(digest)
                self.content.delete(digest)
        return removed, reclaimed


def _is_reference_to(name: str, image: Image) -> bool:
    try:
        return reference.normalize(name) in image.tags
    except InvalidArgument:
        return False


def _resolve(conn: Any, name: str) -> Image | None:
    if name.startswith("sha256:") and len(name) == 71:
        return rows.get_image(conn, name)
    try:
        parsed = reference.parse(name)
    except InvalidArgument:
        parsed = None
    if parsed is not None and parsed.digest:
        image_id = rows.resolve_repo_digest(conn, f"{parsed.repository}@{parsed.digest}")
        return rows.get_image(conn, image_id) if image_id else None
    ref = str(parsed.with_default_tag()) if parsed is not None else None
    if ref:
        image_id = rows.resolve_tag(conn, ref)
        if image_id:
            return rows.get_image(conn, image_id)
    prefix = name.removeprefix("sha256:")
    if prefix and all(c in "0123456789abcdef" for c in prefix):
        matches = [i for i in rows.image_ids(conn) if i.removeprefix("sha256:").startswith(prefix)]
        if len(matches) == 1:
            return rows.get_image(conn, matches[0])
    return None


def _remove_tree(path: Path) -> int:
    """Delete ``path``; return the bytes its regular files held."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    shutil.rmtree(path, ignore_errors=True)
    return total
