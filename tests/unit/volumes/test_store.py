"""Tests for migration 0004 and store.volumes, through a migrated SQLite file in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import containers as container_rows
from store import volumes as rows
from store.db import Database, connect
from store.migrate import migrate
from supervisor.errors import Conflict, NotFound
from supervisor.model import Container, ContainerId, ImageId
from supervisor.volumes.model import MountPoint, MountType, Volume, mount_from_json, mount_to_json
from supervisor.volumes.mounts import plan_mounts


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(tmp_path / "berth.db")
    yield c
    c.close()


@pytest.fixture
def db(conn: sqlite3.Connection) -> Database:
    migrate(conn)
    return Database(conn)


def container(n: int) -> Container:
    return Container(
        id=ContainerId(f"{n:064x}"),
        name=f"c{n}",
        created_ns=n,
        image_ref="busybox",
        image_id=ImageId("sha256:" + "e" * 64),
        config={},
        host_config={},
        path="sh",
        args=(),
    )


def volume_mount(name: str, destination: str = "/data", **kw: object) -> MountPoint:
    return MountPoint(
        type=MountType.VOLUME, destination=destination, name=name, driver="local", **kw
    )  # type: ignore[arg-type]


def test_migrate_0004_adds_volume_tables_and_keeps_containers(conn: sqlite3.Connection) -> None:
    assert migrate(conn, target=3) == 3  # N-1
    db = Database(conn)
    db.run_sync(container_rows.insert, container(1))
    assert migrate(conn, target=4) == 4
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"volumes", "container_mounts"} <= tables
    assert db.run_sync(container_rows.get, f"{1:064x}") is not None
    fks = conn.execute("PRAGMA foreign_key_list(container_mounts)").fetchall()
    assert sorted((r[2], r[3], r[6]) for r in fks) == [
        ("containers", "container_id", "CASCADE"),
        ("volumes", "volume", "NO ACTION"),
    ]


def test_volume_insert_get_round_trip_and_is_idempotent(db: Database) -> None:
    v = Volume("data", created_ns=5, labels={"a": "b"}, options={})
    assert db.run_sync(rows.insert, v) is True
    assert db.run_sync(rows.insert, Volume("data", created_ns=9)) is False
    assert db.run_sync(rows.get, "data") == v
    bare = Volume("bare", created_ns=1)
    db.run_sync(rows.insert, bare)
    assert db.run_sync(rows.get, "bare") == bare  # labels/options stay None (null)
    assert [x.name for x in db.run_sync(rows.all_volumes)] == ["bare", "data"]
    assert db.run_sync(rows.get, "nope") is None


def test_volume_delete_refuses_while_any_container_mounts_it(db: Database) -> None:
    db.run_sync(rows.insert, Volume("data", created_ns=1))
    for n in (2, 1):
        db.run_sync(container_rows.insert, container(n))
        db.run_sync(rows.insert_mounts, f"{n:064x}", [volume_mount("data")])
    assert db.run_sync(rows.users, "data") == [f"{1:064x}", f"{2:064x}"]
    assert db.run_sync(rows.ref_counts) == {"data": 2}
    with pytest.raises(Conflict) as info:
        db.run_sync(rows.delete, "data")
    assert str(info.value) == f"remove data: volume is in use - [{1:064x}, {2:064x}]"
    for n in (1, 2):
        db.run_sync(container_rows.delete, f"{n:064x}")  # cascades to its mounts
    assert db.run_sync(rows.delete, "data").name == "data"
    with pytest.raises(NotFound, match="get data: no such volume"):
        db.run_sync(rows.delete, "data")


def test_container_mounts_need_their_volume(db: Database) -> None:
    db.run_sync(container_rows.insert, container(1))
    with pytest.raises(sqlite3.IntegrityError):
        db.run_sync(rows.insert_mounts, f"{1:064x}", [volume_mount("missing")])


def test_mounts_round_trip_with_copy_flag(db: Database) -> None:
    db.run_sync(rows.insert, Volume("data", created_ns=1))
    db.run_sync(container_rows.insert, container(1))
    cid = f"{1:064x}"
    mounts = plan_mounts(
        {
            "Binds": ["data:/data", "/h:/h:ro,rshared"],
            "Tmpfs": {"/run": "size=1m"},
            "Mounts": [{"Type": "tmpfs", "Target": "/t"}],
        },
        None,
        new_name=lambda: "x" * 64,
    )
    db.run_sync(rows.insert_mounts, cid, mounts)
    got = db.run_sync(rows.mounts_of, cid)
    assert [m for m, _ in got] == list(mounts)
    assert [pending for _, pending in got] == [True, False, False, False]  # /data /h /run /t
    db.run_sync(rows.copy_done, cid, "/data")
    assert [pending for _, pending in db.run_sync(rows.mounts_of, cid)] == [False] * 4
    assert db.run_sync(rows.all_mounts) == {cid: list(mounts)}


def test_mount_json_round_trips_every_field() -> None:
    m = MountPoint(
        type=MountType.TMPFS,
        destination="/t",
        source="/s",
        name="n1",
        driver="local",
        mode="ro,z",
        rw=False,
        propagation="rslave",
        anonymous=True,
        copy_data=True,
        create_source=True,
        recursive=False,
        tmpfs_options=("size=1m",),
        from_tmpfs_map=True,
        volume_labels={"a": "b"},
        volume_options={"o": "p"},
    )
    back = mount_from_json(mount_to_json(m))
    assert back == m and back.volume_labels == {"a": "b"} and back.volume_options == {"o": "p"}
