"""Tests for supervisor.volumes.manager with a real store in tmp_path (no daemon)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from store import containers as container_rows
from store.db import Database
from supervisor.errors import Conflict, InvalidArgument, NotFound
from supervisor.events.log import EventLog
from supervisor.model import Container, ContainerId, ImageId
from supervisor.runtime.spec import BindMount, TmpfsMount
from supervisor.volumes.manager import TRASH, VolumeManager


@pytest.fixture
def manager(db: Database, tmp_path: Path) -> VolumeManager:
    return VolumeManager.open(db=db, events=EventLog(db), data_root=tmp_path / "data")


async def actions(events: EventLog) -> list[tuple[str, str]]:
    return [(e.action, e.actor_id) for e in await events.history(since_ns=None, until_ns=None)]


async def add_container(
    manager: VolumeManager,
    n: int,
    host_config: dict[str, object],
    config: dict[str, object] | None = None,
) -> str:
    cid = f"{n:064x}"
    record = Container(
        id=ContainerId(cid),
        name=f"c{n}",
        created_ns=n,
        image_ref="busybox",
        image_id=ImageId("sha256:" + "e" * 64),
        config=config or {},
        host_config=host_config,
        path="sh",
        args=(),
    )
    mounts = await manager.plan(config or {}, host_config, resolve=lambda ref: ref)
    attachment = manager.attachment(cid, mounts)
    await manager._events.emit(
        "container",
        "create",
        cid,
        {},
        with_change=attachment.wrap(functools.partial(container_rows.insert, c=record)),
    )
    await attachment.announce()
    return cid


def test_data_dir_refuses_anything_but_a_volume_name(manager: VolumeManager) -> None:
    assert manager.data_dir("ok") == manager.root / "ok" / "_data"
    for bad in ("", ".", "..", "../x", "a/b", "/abs", f"{TRASH}"):
        with pytest.raises(InvalidArgument):
            manager.data_dir(bad)
    with pytest.raises(ValueError, match="absolute"):
        VolumeManager(db=manager._db, events=manager._events, root=Path("relative"))
    with pytest.raises(ValueError, match="absolute"):
        VolumeManager(db=manager._db, events=manager._events, root=Path("/"))


async def test_create_is_idempotent_with_one_event(manager: VolumeManager) -> None:
    first = await manager.create("data", labels={"a": "b"})
    again = await manager.create("data", labels={"c": "d"})
    assert again == first and manager.data_dir("data").is_dir()
    assert await actions(manager._events) == [("create", "data")]


async def test_remove_moves_the_directory_away_and_open_empties_the_trash(
    manager: VolumeManager, db: Database, tmp_path: Path
) -> None:
    await manager.create("data")
    (manager.data_dir("data") / "f").write_text("x")
    await manager.remove("data")
    assert not (manager.root / "data").exists()
    assert list((manager.root / TRASH).iterdir()) == []
    (manager.root / TRASH / "left-by-a-crash").mkdir()
    VolumeManager.open(db=db, events=manager._events, data_root=tmp_path / "data")
    assert not (manager.root / TRASH).exists()
    with pytest.raises(NotFound):
        await manager.remove("data")
    await manager.remove("data", force=True)


async def test_container_volumes_commit_with_the_container_and_block_removal(
    manager: VolumeManager,
) -> None:
    cid = await add_container(
        manager, 1, {"Binds": ["named:/n", "/anon"]}, {"Volumes": {"/img": {}}}
    )
    anonymous = await manager.anonymous_of(cid)
    assert len(anonymous) == 2
    assert {name for _, name in await actions(manager._events)} >= {"named", *anonymous}
    with pytest.raises(Conflict, match=f"remove named: volume is in use - \\[{cid}\\]"):
        await manager.remove("named", force=True)
    deleted, _ = await manager.prune({"all": ["true"]})
    assert deleted == []  # all in use
    await manager._db.run(container_rows.delete, cid)
    await manager.remove_unused(anonymous)
    assert [v.name for v in await manager.find({})] == ["named"]


async def test_failed_container_insert_creates_no_volume(manager: VolumeManager) -> None:
    await add_container(manager, 1, {})
    with pytest.raises(Conflict):  # the same container id again: the row's insert fails
        await add_container(manager, 1, {"Binds": ["orphan:/o"]})
    assert await manager.find({}) == []


async def test_prepare_makes_bind_sources_and_returns_spec_mounts(
    manager: VolumeManager, tmp_path: Path
) -> None:
    source = tmp_path / "host" / "made"
    cid = await add_container(
        manager, 1, {"Binds": [f"{source}:/h:ro", "named:/n"], "Tmpfs": {"/run": "size=1m"}}
    )
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    mounts = await manager.prepare(cid, rootfs)
    assert source.is_dir()
    assert mounts == (
        BindMount(str(source), "/h", readonly=True, propagation="rprivate"),
        BindMount(str(manager.data_dir("named")), "/n"),
        TmpfsMount("/run", ("noexec", "nosuid", "nodev", "rprivate", "size=1m")),
    )
    await manager.unmounted(cid)
    assert [a for a, name in await actions(manager._events) if name == "named"] == [
        "create",
        "mount",
        "unmount",
    ]
    api = await manager.api_mounts(cid)
    assert [m["Destination"] for m in api] == ["/h", "/n"]  # --tmpfs is not listed
    assert (await manager.api_mounts_all())[cid] == api


async def test_plan_mount_bind_source_must_exist(manager: VolumeManager, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        await manager.plan(
            {},
            {"Mounts": [{"Type": "bind", "Source": str(tmp_path / "no"), "Target": "/x"}]},
            resolve=str,
        )


async def test_plan_volumes_from_unknown_container_is_400(manager: VolumeManager) -> None:
    def resolve(ref: str) -> str:
        raise NotFound(f"No such container: {ref}")

    with pytest.raises(InvalidArgument, match="No such container: ghost"):
        await manager.plan({}, {"VolumesFrom": ["ghost"]}, resolve=resolve)
