"""Tests for store.migrate (a test per migration: build at N-1, migrate, assert the schema) and
for every repository function in store.containers, store.images and store.events, each
round-tripped through a migrated SQLite file in ``tmp_path``.
"""

from __future__ import annotations

import json
import sqlite3
import types
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from store import containers as rows
from store import events as event_rows
from store import images as image_rows
from store.db import Database, connect
from store.migrate import available, migrate
from supervisor.containers.state import Status
from supervisor.errors import Conflict, NotFound
from supervisor.model import (
    ChainId,
    Container,
    ContainerId,
    ContainerState,
    Event,
    Image,
    ImageId,
    Layer,
)

LATEST = len(available())


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(tmp_path / "berth.db")
    yield c
    c.close()


@pytest.fixture
def db(conn: sqlite3.Connection) -> Database:
    migrate(conn)
    return Database(conn)


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} - {
        "sqlite_sequence"
    }


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


# -- connect -----------------------------------------------------------------------------------


def test_connect_sets_berth_pragmas(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.isolation_level is None


# -- available / migrate ----------------------------------------------------------------------


def test_available_migrations_are_numbered_without_gaps() -> None:
    numbers = [n for n, _ in available()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(sql.strip() for _, sql in available())


def test_available_gap_in_numbering_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x);")
    (tmp_path / "0003_third.sql").write_text("CREATE TABLE c (x);")
    (tmp_path / "README.md").write_text("not a migration")
    monkeypatch.setattr(
        "store.migrate.resources", types.SimpleNamespace(files=lambda _package: tmp_path)
    )
    with pytest.raises(RuntimeError, match="gap at 0002"):
        available()


def test_migrate_empty_database_reaches_latest(conn: sqlite3.Connection) -> None:
    assert version(conn) == 0
    assert migrate(conn) == LATEST
    assert version(conn) == LATEST
    assert not conn.in_transaction


def test_migrate_twice_is_a_no_op(conn: sqlite3.Connection) -> None:
    migrate(conn)
    before = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(conn) == LATEST
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before


def test_migrate_target_zero_does_nothing(conn: sqlite3.Connection) -> None:
    assert migrate(conn, target=0) == 0
    assert tables(conn) == set()


def test_migrate_0001_from_empty_creates_initial_schema(conn: sqlite3.Connection) -> None:
    assert migrate(conn, target=0) == 0  # N-1
    assert migrate(conn, target=1) == 1
    assert version(conn) == 1
    assert tables(conn) == {"containers", "container_state", "layers", "images", "tags", "events"}
    assert columns(conn, "containers") == [
        "id",
        "name",
        "created_ns",
        "image_ref",
        "image_id",
        "config",
        "host_config",
        "path",
        "args",
    ]
    assert columns(conn, "container_state") == [
        "id",
        "status",
        "pid",
        "pid_start",
        "exit_code",
        "error",
        "oom_killed",
        "started_at",
        "finished_at",
        "restart_count",
        "manually_stopped",
    ]
    assert columns(conn, "layers") == ["chain_id", "diff_id", "parent", "size"]
    assert columns(conn, "images") == ["id", "config", "created_ns", "size", "top_layer"]
    assert columns(conn, "tags") == ["ref", "image_id", "tagged_ns"]
    assert columns(conn, "events") == ["id", "time_ns", "type", "action", "actor_id", "attributes"]
    indexes = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
        )
    }
    assert indexes == {"tags_image", "events_time"}
    state_fk = conn.execute("PRAGMA foreign_key_list(container_state)").fetchall()
    assert [(r[2], r[3], r[4], r[6]) for r in state_fk] == [("containers", "id", "id", "CASCADE")]
    tags_fk = conn.execute("PRAGMA foreign_key_list(tags)").fetchall()
    assert [(r[2], r[3], r[4], r[6]) for r in tags_fk] == [("images", "image_id", "id", "CASCADE")]
    defaults = {r[1]: r[4] for r in conn.execute("PRAGMA table_info(container_state)")}
    assert defaults["started_at"] == "'0001-01-01T00:00:00Z'"
    assert defaults["restart_count"] == "0"


def test_migrate_failing_migration_rolls_back_and_keeps_version(
    conn: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_ok.sql").write_text("CREATE TABLE a (x INTEGER);")
    (migrations / "0002_broken.sql").write_text("CREATE TABLE b (x INTEGER);\nTHIS IS NOT SQL;")
    monkeypatch.setattr(
        "store.migrate.resources", types.SimpleNamespace(files=lambda _package: migrations)
    )
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn)
    assert not conn.in_transaction
    assert version(conn) == 1
    assert tables(conn) == {"a"}


# -- store.containers --------------------------------------------------------------------------


def container(n: int, name: str, **state: object) -> Container:
    return Container(
        id=ContainerId(f"{n:064x}"),
        name=name,
        created_ns=1_700_000_000_000_000_000 + n,
        image_ref="busybox",
        image_id=ImageId("sha256:" + "e" * 64),
        config={"Cmd": ["sh"], "Labels": {"a": "b"}, "Env": ["PATH=/bin"]},
        host_config={"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "Memory": 0},
        path="sh",
        args=("-c", "echo hi"),
        state=ContainerState(**state),  # type: ignore[arg-type]
    )


def test_containers_insert_get_round_trips(db: Database) -> None:
    c = container(
        1,
        "web",
        status=Status.EXITED,
        exit_code=3,
        oom_killed=True,
        manually_stopped=True,
        restart_count=2,
        error="boom",
        pid=0,
        started_at="2024-01-01T00:00:00.000000000Z",
    )
    db.run_sync(rows.insert, c)
    assert db.run_sync(rows.get, c.id) == c


def test_containers_get_unknown_is_none(db: Database) -> None:
    assert db.run_sync(rows.get, "f" * 64) is None


def test_containers_insert_duplicate_name_raises_docker_conflict(db: Database) -> None:
    first = container(1, "web")
    db.run_sync(rows.insert, first)
    with pytest.raises(Conflict) as info:
        db.run_sync(rows.insert, container(2, "web"))
    assert str(info.value) == (
        f'Conflict. The container name "/web" is already in use by container "{first.id}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    assert [c.id for c in db.run_sync(rows.all_containers)] == [first.id]


def test_containers_all_newest_first(db: Database) -> None:
    for n, name in [(2, "b"), (1, "a"), (3, "c")]:
        db.run_sync(rows.insert, container(n, name))
    assert [c.name for c in db.run_sync(rows.all_containers)] == ["c", "b", "a"]


def test_containers_save_state_round_trips(db: Database) -> None:
    c = container(1, "web")
    db.run_sync(rows.insert, c)
    running = rows.with_state(
        c, status=Status.RUNNING, pid=4242, pid_start=99, started_at="2024-05-01T00:00:00Z"
    )
    db.run_sync(rows.save_state, c.id, running.state)
    assert db.run_sync(rows.get, c.id) == running


def test_containers_with_state_changes_only_state(db: Database) -> None:
    c = container(1, "web")
    changed = rows.with_state(c, exit_code=137, oom_killed=True)
    assert changed.state == attrs.evolve(c.state, exit_code=137, oom_killed=True)
    assert attrs.evolve(changed, state=c.state) == c


def test_containers_rename_round_trips(db: Database) -> None:
    c = container(1, "old")
    db.run_sync(rows.insert, c)
    db.run_sync(rows.rename, c.id, "new")
    assert db.run_sync(rows.get, c.id) == attrs.evolve(c, name="new")
    db.run_sync(rows.insert, container(2, "old"))  # the old name is free again


def test_containers_rename_to_taken_name_violates_unique(db: Database) -> None:
    db.run_sync(rows.insert, container(1, "a"))
    db.run_sync(rows.insert, container(2, "b"))
    with pytest.raises(sqlite3.IntegrityError):
        db.run_sync(rows.rename, f"{2:064x}", "a")


def test_containers_delete_cascades_to_state(db: Database, conn: sqlite3.Connection) -> None:
    c = container(1, "web")
    db.run_sync(rows.insert, c)
    db.run_sync(rows.delete, c.id)
    assert db.run_sync(rows.get, c.id) is None
    assert conn.execute("SELECT COUNT(*) FROM container_state").fetchone()[0] == 0
    db.run_sync(rows.delete, c.id)  # deleting twice is harmless


def test_containers_every_status_round_trips(db: Database) -> None:
    for n, status in enumerate(Status, start=1):
        db.run_sync(rows.insert, container(n, f"c{n}", status=status))
    assert {c.state.status for c in db.run_sync(rows.all_containers)} == set(Status)


# -- store.images -----------------------------------------------------------------------------

BASE_LAYER = Layer(ChainId("sha256:" + "1" * 64), "sha256:" + "a" * 64, None, 100)
TOP_LAYER = Layer(ChainId("sha256:" + "2" * 64), "sha256:" + "b" * 64, BASE_LAYER.chain_id, 50)
OTHER_LAYER = Layer(ChainId("sha256:" + "3" * 64), "sha256:" + "c" * 64, None, 7)
RAW = b'{"architecture":"amd64","config":{"Cmd":["sh"]},"created":"2024-01-01T00:00:00Z","os":"linux"}'


def image(
    n: int, layers: tuple[ChainId, ...], raw: bytes = RAW, tags: tuple[str, ...] = ()
) -> Image:
    return Image(
        id=ImageId(f"sha256:{n:064x}"),
        config=json.loads(raw),
        raw_config=raw,
        created_ns=1_000 * n,
        size=150,
        layers=layers,
        tags=tags,
    )


def test_images_layer_round_trips_and_is_idempotent(db: Database) -> None:
    db.run_sync(image_rows.put_layer, BASE_LAYER)
    db.run_sync(image_rows.put_layer, TOP_LAYER)
    db.run_sync(image_rows.put_layer, attrs.evolve(TOP_LAYER, size=999))  # ignored: already there
    assert db.run_sync(image_rows.get_layer, BASE_LAYER.chain_id) == BASE_LAYER
    assert db.run_sync(image_rows.get_layer, TOP_LAYER.chain_id) == TOP_LAYER
    assert db.run_sync(image_rows.get_layer, "sha256:" + "9" * 64) is None


def test_images_put_get_image_round_trips_with_layer_chain(db: Database) -> None:
    db.run_sync(image_rows.put_layer, BASE_LAYER)
    db.run_sync(image_rows.put_layer, TOP_LAYER)
    img = image(1, (BASE_LAYER.chain_id, TOP_LAYER.chain_id))
    assert db.run_sync(image_rows.put_image, img) is True
    assert db.run_sync(image_rows.put_image, img) is False
    stored = db.run_sync(image_rows.get_image, img.id)
    assert stored == img
    assert stored is not None
    assert stored.raw_config == RAW  # byte-exact


def test_images_image_without_layers_round_trips(db: Database) -> None:
    img = image(1, ())
    db.run_sync(image_rows.put_image, img)
    assert db.run_sync(image_rows.get_image, img.id) == img


def test_images_get_unknown_is_none(db: Database) -> None:
    assert db.run_sync(image_rows.get_image, "sha256:" + "0" * 64) is None


def test_images_all_images_newest_first_and_ids(db: Database) -> None:
    for n in (2, 1, 3):
        db.run_sync(image_rows.put_image, image(n, ()))
    assert [i.id for i in db.run_sync(image_rows.all_images)] == [
        f"sha256:{n:064x}" for n in (3, 2, 1)
    ]
    assert sorted(db.run_sync(image_rows.image_ids)) == [f"sha256:{n:064x}" for n in (1, 2, 3)]


def test_images_tags_set_resolve_move_remove(db: Database) -> None:
    a, b = image(1, ()), image(2, ())
    db.run_sync(image_rows.put_image, a)
    db.run_sync(image_rows.put_image, b)
    ref = "docker.io/library/busybox:latest"
    assert db.run_sync(image_rows.resolve_tag, ref) is None
    assert db.run_sync(image_rows.set_tag, ref, a.id, 10) is None
    assert db.run_sync(image_rows.resolve_tag, ref) == a.id
    assert db.run_sync(image_rows.set_tag, ref, a.id, 11) is None  # same image: nothing displaced
    assert (
        db.run_sync(image_rows.set_tag, ref, b.id, 12) == a.id
    )  # moved: the old image is returned
    assert db.run_sync(image_rows.resolve_tag, ref) == b.id
    db.run_sync(image_rows.remove_tag, ref)
    assert db.run_sync(image_rows.resolve_tag, ref) is None


def test_images_tags_listed_in_tagging_order(db: Database) -> None:
    img = image(1, ())
    db.run_sync(image_rows.put_image, img)
    db.run_sync(image_rows.set_tag, "docker.io/library/b:1", img.id, 20)
    db.run_sync(image_rows.set_tag, "docker.io/library/a:1", img.id, 10)
    stored = db.run_sync(image_rows.get_image, img.id)
    assert stored is not None
    assert stored.tags == ("docker.io/library/a:1", "docker.io/library/b:1")


def test_images_tag_of_unknown_image_violates_foreign_key(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        db.run_sync(image_rows.set_tag, "docker.io/library/x:1", "sha256:" + "0" * 64, 1)


def test_images_delete_image_cascades_tags(db: Database) -> None:
    img = image(1, ())
    db.run_sync(image_rows.put_image, img)
    db.run_sync(image_rows.set_tag, "docker.io/library/x:1", img.id, 1)
    db.run_sync(image_rows.delete_image, img.id)
    assert db.run_sync(image_rows.get_image, img.id) is None
    assert db.run_sync(image_rows.resolve_tag, "docker.io/library/x:1") is None


def test_images_unused_layers_and_delete_layer(db: Database) -> None:
    for layer in (BASE_LAYER, TOP_LAYER, OTHER_LAYER):
        db.run_sync(image_rows.put_layer, layer)
    img = image(1, (BASE_LAYER.chain_id, TOP_LAYER.chain_id))
    db.run_sync(image_rows.put_image, img)
    assert db.run_sync(image_rows.unused_layers) == [OTHER_LAYER.chain_id]
    db.run_sync(image_rows.delete_layer, OTHER_LAYER.chain_id)
    assert db.run_sync(image_rows.get_layer, OTHER_LAYER.chain_id) is None
    db.run_sync(image_rows.delete_image, img.id)
    assert sorted(db.run_sync(image_rows.unused_layers)) == sorted(
        [BASE_LAYER.chain_id, TOP_LAYER.chain_id]
    )


def test_images_delete_parent_layer_in_use_violates_foreign_key(db: Database) -> None:
    db.run_sync(image_rows.put_layer, BASE_LAYER)
    db.run_sync(image_rows.put_layer, TOP_LAYER)
    with pytest.raises(sqlite3.IntegrityError):
        db.run_sync(image_rows.delete_layer, BASE_LAYER.chain_id)


# -- store.events -----------------------------------------------------------------------------


def append(db: Database, time_ns: int, action: str = "start", **attributes: str) -> Event:
    return db.run_sync(event_rows.append, time_ns, "container", action, "c" * 64, attributes)  # type: ignore[arg-type]


def test_events_append_between_round_trips(db: Database) -> None:
    first = append(db, 100, "create", name="web", image="busybox")
    second = append(db, 200, "start", name="web")
    assert (first.id, second.id) == (1, 2)
    assert first == Event(
        1, 100, "container", "create", "c" * 64, {"name": "web", "image": "busybox"}
    )
    assert db.run_sync(lambda c: event_rows.between(c, since_ns=None, until_ns=None)) == [
        first,
        second,
    ]


def test_events_between_window_after_id_and_limit(db: Database) -> None:
    events = [append(db, t) for t in (100, 200, 300, 400, 500)]

    def between(**kwargs: object) -> list[int]:
        return [e.time_ns for e in db.run_sync(lambda c: event_rows.between(c, **kwargs))]  # type: ignore[arg-type]

    assert between(since_ns=200, until_ns=400) == [200, 300, 400]
    assert between(since_ns=450, until_ns=None) == [500]
    assert between(since_ns=None, until_ns=150) == [100]
    assert between(since_ns=None, until_ns=None, after_id=events[2].id) == [400, 500]
    assert between(since_ns=None, until_ns=None, limit=2) == [100, 200]
    assert between(since_ns=600, until_ns=None) == []


def test_events_last_id(db: Database) -> None:
    assert db.run_sync(event_rows.last_id) == 0
    append(db, 1)
    last = append(db, 2)
    assert db.run_sync(event_rows.last_id) == last.id


def test_events_prune_keeps_newest_and_drops_old(db: Database) -> None:
    for t in (100, 200, 300, 400, 500):
        append(db, t)
    assert db.run_sync(lambda c: event_rows.prune(c, keep=3, older_than_ns=0)) == 2
    times = [
        e.time_ns
        for e in db.run_sync(lambda c: event_rows.between(c, since_ns=None, until_ns=None))
    ]
    assert times == [300, 400, 500]
    assert db.run_sync(lambda c: event_rows.prune(c, keep=100, older_than_ns=450)) == 2
    times = [
        e.time_ns
        for e in db.run_sync(lambda c: event_rows.between(c, since_ns=None, until_ns=None))
    ]
    assert times == [500]


def test_events_ids_never_reused_after_prune(db: Database) -> None:
    append(db, 1)
    append(db, 2)
    db.run_sync(lambda c: event_rows.prune(c, keep=0, older_than_ns=0))
    assert append(db, 3).id == 3  # AUTOINCREMENT: a follower's after_id stays meaningful


# -- Database transactions ------------------------------------------------------------------


def test_database_run_sync_rolls_back_on_error(db: Database) -> None:
    def insert_then_fail(c: sqlite3.Connection) -> None:
        rows.insert(c, container(1, "web"))
        raise NotFound("boom")

    with pytest.raises(NotFound):
        db.run_sync(insert_then_fail)
    assert db.run_sync(rows.all_containers) == []


async def test_database_run_in_thread_round_trips(db: Database) -> None:
    c = container(1, "web")
    await db.run(rows.insert, c)
    assert await db.run(rows.get, c.id) == c
    events = await db.run(event_rows.between, since_ns=None, until_ns=None)
    assert events == []


def test_database_open_migrates(tmp_path: Path) -> None:
    database = Database.open(tmp_path / "fresh.db")
    try:
        assert database.run_sync(version) == LATEST
    finally:
        database.close()


def test_migrate_0002_adds_content_index_and_keeps_images(conn: sqlite3.Connection) -> None:
    assert migrate(conn, target=1) == 1  # N-1
    conn.execute(
        "INSERT INTO layers (chain_id, diff_id, parent, size) VALUES ('sha256:a', 'sha256:a', NULL, 5)"
    )
    conn.execute(
        "INSERT INTO images (id, config, created_ns, size, top_layer) VALUES ('sha256:i', '{}', 1, 5, 'sha256:a')"
    )
    assert migrate(conn, target=2) == 2
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"layer_blobs", "blob_sources", "repo_digests"} <= tables
    assert conn.execute("SELECT parent FROM images WHERE id='sha256:i'").fetchone() == ("",)
    assert conn.execute("SELECT tar_size FROM layers WHERE chain_id='sha256:a'").fetchone() == (0,)


def test_store_update_state_writes_only_given_fields(db: Database) -> None:
    from store import containers as rows

    c = container(90, "upd")
    db.run_sync(rows.insert, c)
    db.run_sync(rows.update_state, c.id, {"exit_code": 7})
    db.run_sync(rows.update_state, c.id, {"manually_stopped": True})
    got = db.run_sync(rows.get, c.id)
    assert got is not None and got.state.exit_code == 7 and got.state.manually_stopped


def test_migrate_0003_adds_networks_and_keeps_containers(conn: sqlite3.Connection) -> None:
    assert migrate(conn, target=2) == 2  # N-1
    db = Database(conn)
    c = container(91, "kept", status=Status.EXITED)
    conn.execute(
        "INSERT INTO containers (id, name, created_ns, image_ref, image_id, config, host_config, path, args) "
        "VALUES (?, 'kept', 1, 'busybox', 'sha256:e', '{}', '{}', 'sh', '[]')",
        (c.id,),
    )
    conn.execute("INSERT INTO container_state (id, status) VALUES (?, 'exited')", (c.id,))
    assert migrate(conn, target=3) == 3
    assert {"networks", "endpoints"} <= tables(conn)
    got = db.run_sync(rows.get, c.id)
    assert got is not None and got.state.ports == ()
    assert columns(conn, "endpoints") == [
        "container_id",
        "network_id",
        "id",
        "position",
        "aliases",
        "requested_ip",
        "mac_address",
        "ip",
    ]


def test_store_ports_round_trip(db: Database) -> None:
    from supervisor.network.ports import PortBinding, Proto

    c = container(92, "ported")
    db.run_sync(rows.insert, c)
    bound = (PortBinding("", 8080, 80, Proto.TCP), PortBinding("127.0.0.1", 5353, 53, Proto.UDP))
    db.run_sync(rows.update_state, c.id, {"ports": bound})
    got = db.run_sync(rows.get, c.id)
    assert got is not None and got.state.ports == bound
