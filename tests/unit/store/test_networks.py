"""store.networks: network and endpoint rows, addresses allocated in the transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import containers as container_rows
from store import networks as rows
from store.db import Database, connect
from store.migrate import migrate
from supervisor.errors import Conflict, Forbidden, NotFound
from supervisor.model import Container, ContainerId, Endpoint, ImageId, Network
from supervisor.network.manager import parse_pool

NET = Network(
    id="a" * 64, name="appnet", driver="bridge", created_ns=1, bridge="berth-aaaaaaaaa",
    subnet="10.99.0.0/29", gateway="10.99.0.1", labels={"k": "v"},
)  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    conn: sqlite3.Connection = connect(tmp_path / "berth.db")
    migrate(conn)
    yield Database(conn)
    conn.close()


def add_container(db: Database, n: int) -> str:
    cid = f"{n:064x}"
    db.run_sync(
        container_rows.insert,
        Container(
            id=ContainerId(cid),
            name=f"c{n}",
            created_ns=n,
            image_ref="busybox",
            image_id=ImageId("sha256:" + "e" * 64),
            config={},
            host_config={},
            path="sh",
            args=(),
        ),
    )
    return cid


def endpoint(cid: str, **kw: object) -> Endpoint:
    return Endpoint(cid, NET.id, "e" + cid[1:], 0, **kw)  # type: ignore[arg-type]


def test_network_round_trip_and_duplicate_name(db: Database) -> None:
    db.run_sync(rows.insert_network, NET)
    assert db.run_sync(rows.all_networks) == [NET]
    with pytest.raises(Conflict, match="network with name appnet already exists"):
        db.run_sync(rows.insert_network, NET)


def test_addresses_are_lowest_free_and_never_shared(db: Database) -> None:
    db.run_sync(rows.insert_network, NET)
    cids = [add_container(db, n) for n in range(1, 7)]
    for cid in cids[:5]:
        db.run_sync(rows.insert_endpoint, endpoint(cid))
    ips = [db.run_sync(rows.assign_ip, cid, NET).ip for cid in cids[:5]]
    assert ips == ["10.99.0.2", "10.99.0.3", "10.99.0.4", "10.99.0.5", "10.99.0.6"]
    assert db.run_sync(rows.assign_ip, cids[0], NET).ip == "10.99.0.2"  # idempotent
    db.run_sync(rows.insert_endpoint, endpoint(cids[5]))
    with pytest.raises(Exception, match="no available IPv4 addresses"):
        db.run_sync(rows.assign_ip, cids[5], NET)
    db.run_sync(rows.release_ips, cids[1])
    assert db.run_sync(rows.assign_ip, cids[5], NET).ip == "10.99.0.3"


def test_requested_address_must_be_free(db: Database) -> None:
    db.run_sync(rows.insert_network, NET)
    a, b = add_container(db, 1), add_container(db, 2)
    db.run_sync(rows.insert_endpoint, endpoint(a, requested_ip="10.99.0.4"))
    db.run_sync(rows.insert_endpoint, endpoint(b, requested_ip="10.99.0.4"))
    assert db.run_sync(rows.assign_ip, a, NET).ip == "10.99.0.4"
    with pytest.raises(Forbidden, match="Address already in use"):
        db.run_sync(rows.assign_ip, b, NET)


def test_endpoint_positions_duplicates_and_cascades(db: Database) -> None:
    db.run_sync(rows.insert_network, NET)
    other = Network(id="b" * 64, name="other", driver="bridge", created_ns=2, bridge="x",
                    subnet="10.98.0.0/24", gateway="10.98.0.1")  # fmt: skip
    db.run_sync(rows.insert_network, other)
    cid = add_container(db, 1)
    first = db.run_sync(rows.insert_endpoint, endpoint(cid))
    second = db.run_sync(rows.insert_endpoint, Endpoint(cid, other.id, "f" * 64, 0))
    assert (first.position, second.position) == (0, 1)
    with pytest.raises(Conflict):
        db.run_sync(rows.insert_endpoint, endpoint(cid))
    with pytest.raises(NotFound):
        db.run_sync(rows.insert_endpoint, Endpoint(cid, "z" * 64, "g" * 64, 0))
    db.run_sync(rows.delete_network, other.id)
    assert [e.network_id for e in db.run_sync(rows.all_endpoints)] == [NET.id]
    db.run_sync(container_rows.delete, cid)
    assert db.run_sync(rows.all_endpoints) == []


def test_parse_pool() -> None:
    assert str(parse_pool("base=10.1.0.0/16,size=20").base) == "10.1.0.0/16"
    assert parse_pool("10.1.0.0/16").size == 24
    with pytest.raises(Exception, match="invalid default address pool"):
        parse_pool("size=24")
