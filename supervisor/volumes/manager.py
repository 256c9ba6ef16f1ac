"""Volumes (local driver) and what containers mount: create, inspect, list, remove,
prune; the container manager's hooks at create, start, exit and remove.

Theory of operation: SQLite is the truth (``store/volumes.py``), the directory
``<data-root>/volumes/<name>/_data`` the data. The directory is made or moved away
*inside* the transaction that adds or deletes the row (they run one at a time on the
store's thread), so rows and directories agree at every commit: a volume removed while a
container is being created with it is either still there for the container or made
anew, never a row without a directory. A removed volume's directory is renamed into
``.trash/`` (names cannot start with a dot) and deleted after the commit; start-up
empties the trash a crash left behind.

A container's mounts are planned (validated, pure) before anything is stored; its
volumes are created in the same transaction as its row (:meth:`attachment`), and the
container keeps its mount points in ``container_mounts`` for its life: they are what
makes a volume "in use", whatever the container's state.

Every path written to is below ``root`` and derived from a validated volume name
(:meth:`data_dir`): an empty or hostile name never becomes ``/`` or ``..``.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import structlog
import trio

from store import volumes as rows
from store.db import Database
from supervisor.errors import BerthError, Conflict, InvalidArgument, NotFound
from supervisor.events.log import EventLog
from supervisor.runtime.spec import UserMount
from supervisor.volumes import copyup, filters
from supervisor.volumes.model import ANONYMOUS_LABEL, LOCAL_DRIVER, MountPoint, MountType, Volume
from supervisor.volumes.mounts import (
    check_volume,
    plan_mounts,
    to_api,
    to_spec,
    volume_name_error,
    volumes_from_refs,
)

log = structlog.get_logger()

TRASH = ".trash"


def new_volume_name() -> str:
    """64 hex digits, as Docker names anonymous volumes (``stringid.GenerateRandomID``)."""
    return secrets.token_hex(32)


class _Exists(Exception):
    """Rolls back a create whose volume appeared meanwhile (no event for it)."""


@attrs.define
class Attachment:
    """A new container's mounts, recorded with its row (see :meth:`VolumeManager.attachment`)."""

    manager: VolumeManager
    cid: str
    mounts: tuple[MountPoint, ...]
    created: list[Volume] = attrs.field(factory=list)

    def wrap(
        self, change: Callable[[sqlite3.Connection], None]
    ) -> Callable[[sqlite3.Connection], None]:
        """``change`` (the container row's insert), then the volumes and mounts, in the
        same transaction."""
        if not self.mounts:
            return change

        def transaction(conn: sqlite3.Connection) -> None:
            self.created.clear()
            change(conn)
            self.created.extend(self.manager._add_volumes(conn, self.mounts))
            rows.insert_mounts(conn, self.cid, self.mounts)

        return transaction

    async def announce(self) -> None:
        """The ``create`` events of the volumes the container's transaction made."""
        for v in self.created:
            await self.manager._events.emit("volume", "create", v.name, {"driver": v.driver})


class VolumeManager:
    def __init__(self, *, db: Database, events: EventLog, root: Path) -> None:
        if not root.is_absolute() or root == Path("/"):
            raise ValueError(f"volume root must be an absolute directory, not {root!s}")
        self._db = db
        self._events = events
        self.root = root
        self._pruning = False
        # Container id -> its mount points (fixed at create), for inspect's ``Mounts``.
        self._mount_points: dict[str, list[MountPoint]] = {}
        self._forgotten = 0  # containers forgotten so far (see api_mounts)

    @classmethod
    def open(cls, *, db: Database, events: EventLog, data_root: Path) -> VolumeManager:
        """The manager for ``<data_root>/volumes``; empties a trash a crash left behind."""
        manager = cls(db=db, events=events, root=data_root / "volumes")
        manager.root.mkdir(mode=0o701, parents=True, exist_ok=True)
        shutil.rmtree(manager.root / TRASH, ignore_errors=True)
        return manager

    # -- paths ------------------------------------------------------------------------

    def data_dir(self, name: str) -> Path:
        """``<root>/<name>/_data``; refuses any name that is not a volume name."""
        if volume_name_error(name) is not None:
            raise InvalidArgument(f"invalid volume name: {name!r}")
        path = self.root / name / "_data"
        if path.parent.parent != self.root:  # cannot happen for a valid name; belt and braces
            raise InvalidArgument(f"invalid volume name: {name!r}")
        return path

    def _make_dirs(self, name: str) -> None:
        data = self.data_dir(name)
        for d, mode in ((data.parent, 0o701), (data, 0o755)):
            try:
                os.mkdir(d, mode)
            except FileExistsError:
                if d.is_symlink() or not d.is_dir():
                    raise BerthError(f"volume directory {d} is not a directory") from None

    def _trash(self, name: str) -> Path | None:
        """Move a volume's directory out of the way (inside the deleting transaction)."""
        source = self.data_dir(name).parent
        trash = self.root / TRASH
        trash.mkdir(mode=0o700, exist_ok=True)
        target = trash / f"{name}-{secrets.token_hex(4)}"
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return None
        return target

    # -- the API ------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        driver: str = "",
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume:
        """``POST /volumes/create``: a new volume, or the existing one of that name.

        No name: 64 hex digits and the anonymous label (moby ``VolumesService.Create``).

        Errors: InvalidArgument (400) bad name or option; NotFound (404) other driver;
        Unsupported (501) device options.
        """
        if not name:
            name = new_volume_name()
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        check_volume(name, driver, options)
        existing = await self._db.run(rows.get, name)
        if existing is not None:
            return existing  # Docker: same name, same driver → that volume, no event
        v = Volume(
            name=name,
            driver=LOCAL_DRIVER,
            created_ns=time.time_ns(),
            labels=dict(labels) if labels is not None else None,
            options=dict(options) if options is not None else None,
        )

        def add(conn: sqlite3.Connection) -> None:
            if not rows.insert(conn, v):
                raise _Exists
            self._make_dirs(v.name)

        try:
            await self._events.emit("volume", "create", name, {"driver": v.driver}, with_change=add)
        except _Exists:
            found = await self._db.run(rows.get, name)
            assert found is not None
            return found
        log.info("volume.created", volume=name)
        return v

    async def get(self, name: str) -> Volume:
        v = await self._db.run(rows.get, name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    async def find(self, wanted: Mapping[str, Sequence[str]]) -> list[Volume]:
        """``GET /volumes`` with Docker's filters (400 for an unknown one)."""
        return filters.select(await self._with_refs(), wanted)

    async def _with_refs(self) -> list[tuple[Volume, int]]:
        def read(conn: sqlite3.Connection) -> list[tuple[Volume, int]]:
            refs = rows.ref_counts(conn)
            return [(v, refs.get(v.name, 0)) for v in rows.all_volumes(conn)]

        return await self._db.run(read)

    async def remove(self, name: str, *, force: bool = False) -> None:
        """``DELETE /volumes/{name}``. ``force`` ignores a missing volume, never a user.

        Errors: NotFound (404); Conflict (409) ``remove NAME: volume is in use - [ids]``.
        """
        try:
            await self._remove(name)
        except NotFound:
            if not force:
                raise

    async def _remove(self, name: str) -> None:
        moved: list[Path] = []

        def delete(conn: sqlite3.Connection) -> None:
            v = rows.delete(conn, name)  # the in-use check, in the deleting transaction
            trash = self._trash(v.name)
            if trash is not None:
                moved.append(trash)

        # The driver is always local, so the event can be named before the row is read.
        with trio.CancelScope(shield=True):
            await self._events.emit(
                "volume", "destroy", name, {"driver": LOCAL_DRIVER}, with_change=delete
            )
            for path in moved:
                await trio.to_thread.run_sync(
                    functools.partial(shutil.rmtree, path, ignore_errors=True)
                )
        log.info("volume.removed", volume=name)

    async def prune(self, wanted: Mapping[str, Sequence[str]]) -> tuple[list[str], int]:
        """``POST /volumes/prune``: (names removed, bytes reclaimed); a ``prune`` event.

        Errors: InvalidArgument (400) bad filter; Conflict (409) a prune is running.
        """
        if self._pruning:
            raise Conflict("a prune operation is already running")
        self._pruning = True
        try:
            candidates = filters.prune_candidates(await self._with_refs(), wanted)
            deleted: list[str] = []
            reclaimed = 0
            for v in candidates:
                size = await trio.to_thread.run_sync(copyup.tree_size, self.data_dir(v.name))
                try:
                    await self._remove(v.name)
                except (NotFound, Conflict):
                    continue  # removed or taken into use meanwhile
                deleted.append(v.name)
                reclaimed += size
            await self._events.emit("volume", "prune", "", {"reclaimed": str(reclaimed)})
            return deleted, reclaimed
        finally:
            self._pruning = False

    # -- container hooks -------------------------------------------------------------------

    async def plan(
        self,
        config: Mapping[str, object],
        host_config: Mapping[str, object],
        *,
        resolve: Callable[[str], str],
    ) -> tuple[MountPoint, ...]:
        """A new container's mount points, validated; nothing is created yet.

        Args:
            resolve: a ``VolumesFrom`` container reference to its id (raising
                NotFound for an unknown one).

        Errors: InvalidArgument (400) for anything malformed, an unknown
        ``VolumesFrom`` container, or a ``--mount`` bind source that does not exist.
        """
        sources = []
        for ref, mode in volumes_from_refs(host_config):
            try:
                cid = resolve(ref)
            except NotFound as exc:
                raise InvalidArgument(str(exc)) from None
            sources.append(([m for m, _ in await self._db.run(rows.mounts_of, cid)], mode))
        planned = plan_mounts(
            host_config, config.get("Volumes"), volumes_from=sources, new_name=new_volume_name
        )
        for m in planned:
            if m.type is MountType.BIND and not m.create_source and not os.path.exists(m.source):
                raise InvalidArgument(_missing_source(m.source))
        return planned

    def attachment(self, cid: str, mounts: Sequence[MountPoint]) -> Attachment:
        """Record ``mounts`` (creating their volumes) in the transaction that inserts
        container ``cid``: ``emit(..., with_change=a.wrap(insert))``, then
        ``await a.announce()`` for the volumes' ``create`` events."""
        return Attachment(self, cid, tuple(mounts))

    def _add_volumes(self, conn: sqlite3.Connection, mounts: Sequence[MountPoint]) -> list[Volume]:
        created = []
        now = time.time_ns()
        for m in mounts:
            if m.type is not MountType.VOLUME:
                continue
            v = Volume(
                name=m.name,
                driver=LOCAL_DRIVER,
                created_ns=now,
                labels=m.volume_labels,
                options=m.volume_options,
            )
            if rows.insert(conn, v):
                created.append(v)
            self._make_dirs(m.name)  # also re-makes one a crash or an operator lost
        return created

    async def prepare(self, cid: str, rootfs: Path) -> tuple[UserMount, ...]:
        """Before a container starts: create ``-v`` bind sources, fill empty volumes
        from the image (first start only), announce ``mount``; the spec's mounts.

        Args:
            rootfs: the container's mounted root, where the image's files are read.

        Errors: InvalidArgument (400) a ``--mount`` bind source is gone; BerthError
        (500) the copy-up failed.
        """
        mounts = await self._db.run(rows.mounts_of, cid)
        specs: list[UserMount] = []
        for m, copy_pending in mounts:
            path = ""
            if m.type is MountType.BIND:
                await trio.to_thread.run_sync(_ensure_source, m)
            elif m.type is MountType.VOLUME:
                data = self.data_dir(m.name)
                await trio.to_thread.run_sync(self._make_dirs, m.name)
                if copy_pending:
                    try:
                        await trio.to_thread.run_sync(copyup.copy_up, rootfs, m.destination, data)
                    except (OSError, copyup.CopyUpError) as exc:
                        raise BerthError(
                            f"failed to copy the image's {m.destination} into volume {m.name}: {exc}"
                        ) from exc
                    await self._db.run(rows.copy_done, cid, m.destination)
                path = str(data)
            specs.append(to_spec(m, path))
        for m, _ in mounts:
            if m.type is MountType.VOLUME:
                await self._events.emit(
                    "volume",
                    "mount",
                    m.name,
                    {
                        "driver": m.driver or LOCAL_DRIVER,
                        "container": cid,
                        "destination": m.destination,
                        "read/write": str(m.rw).lower(),
                        "propagation": m.propagation,
                    },
                )
        return tuple(specs)

    async def unmounted(self, cid: str) -> None:
        """After a run: the ``unmount`` event of each volume it mounted."""
        for m, _ in await self._db.run(rows.mounts_of, cid):
            if m.type is MountType.VOLUME:
                await self._events.emit(
                    "volume",
                    "unmount",
                    m.name,
                    {"driver": m.driver or LOCAL_DRIVER, "container": cid},
                )

    async def anonymous_of(self, cid: str) -> list[str]:
        """The anonymous volumes container ``cid`` mounts (what ``rm -v`` removes)."""
        return [
            m.name
            for m, _ in await self._db.run(rows.mounts_of, cid)
            if m.type is MountType.VOLUME and m.anonymous
        ]

    async def remove_unused(self, names: Sequence[str]) -> None:
        """Remove these volumes where no container uses them any more (moby
        ``removeMountPoints``: in use elsewhere is not an error)."""
        for name in names:
            try:
                await self._remove(name)
            except (NotFound, Conflict):
                continue

    async def api_mounts(self, cid: str) -> list[dict[str, object]]:
        """Inspect's ``Mounts`` (from memory after the first call: a container's mount
        points never change after create)."""
        points = self._mount_points.get(cid)
        if points is None:
            forgotten = self._forgotten
            points = [m for m, _ in await self._db.run(rows.mounts_of, cid)]
            if forgotten == self._forgotten:  # no container went meanwhile
                self._mount_points[cid] = points
        return self._api(points)

    def forget(self, cid: str) -> None:
        """Container ``cid`` is gone."""
        self._forgotten += 1
        self._mount_points.pop(cid, None)

    async def api_mounts_all(self) -> dict[str, list[dict[str, object]]]:
        """``docker ps``'s ``Mounts``, by container id."""
        return {cid: self._api(ms) for cid, ms in (await self._db.run(rows.all_mounts)).items()}

    def _api(self, mounts: Sequence[MountPoint]) -> list[dict[str, object]]:
        return [
            to_api(m, str(self.data_dir(m.name)) if m.type is MountType.VOLUME else "")
            for m in mounts
            if not m.from_tmpfs_map
        ]

    def volume_api(self, v: Volume) -> dict[str, object]:
        """Docker's ``Volume`` JSON (API 1.43)."""
        return volume_to_api(v, str(self.data_dir(v.name)))


def volume_to_api(v: Volume, mountpoint: str) -> dict[str, object]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.created_ns // 1_000_000_000))
    return {
        "CreatedAt": created,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": mountpoint,
        "Name": v.name,
        "Options": v.options,
        "Scope": "local",
    }


def _missing_source(source: str) -> str:
    return f'invalid mount config for type "bind": bind source path does not exist: {source}'


def _ensure_source(m: MountPoint) -> None:
    """``-v /host:/c`` makes a missing ``/host`` (moby ``MountPoint.Setup``); a
    ``--mount`` bind whose source is gone fails the start."""
    if os.path.exists(m.source):
        return
    if not m.create_source:
        raise InvalidArgument(_missing_source(m.source))
    os.makedirs(m.source, mode=0o755, exist_ok=True)
