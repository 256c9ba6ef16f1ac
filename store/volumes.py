"""Volume and container-mount rows. Transaction bodies for :meth:`store.db.Database.run`.

A volume is in use while any container row mounts it (``container_mounts``); the check
and the deletion happen in :func:`delete`, one transaction, so no container create can
slip in between (and the foreign key refuses it anyway).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from supervisor.errors import Conflict, NotFound
from supervisor.volumes.model import MountPoint, MountType, Volume, mount_from_json, mount_to_json

_VOLUME = "SELECT name, driver, created_ns, labels, options FROM volumes"


def _map(text: str) -> dict[str, str] | None:
    value = json.loads(text)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def _volume(row: tuple[str, str, int, str, str]) -> Volume:
    name, driver, created, labels, options = row
    return Volume(
        name=name,
        driver=driver,
        created_ns=int(created),
        labels=_map(labels),
        options=_map(options),
    )


def insert(conn: sqlite3.Connection, v: Volume) -> bool:
    """Add ``v`` unless a volume of that name exists. Returns True when added."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO volumes (name, driver, created_ns, labels, options) "
        "VALUES (?, ?, ?, ?, ?)",
        (v.name, v.driver, v.created_ns, json.dumps(v.labels), json.dumps(v.options)),
    )
    return cur.rowcount > 0


def get(conn: sqlite3.Connection, name: str) -> Volume | None:
    row = conn.execute(_VOLUME + " WHERE name = ?", (name,)).fetchone()
    return _volume(row) if row else None


def all_volumes(conn: sqlite3.Connection) -> list[Volume]:
    return [_volume(r) for r in conn.execute(_VOLUME + " ORDER BY name")]


def users(conn: sqlite3.Connection, name: str) -> list[str]:
    """Ids of the containers that mount volume ``name``."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT container_id FROM container_mounts WHERE volume = ? ORDER BY container_id",
            (name,),
        )
    ]


def ref_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Volume name → how many containers mount it (volumes no container mounts are absent)."""
    return {
        r[0]: int(r[1])
        for r in conn.execute(
            "SELECT volume, COUNT(DISTINCT container_id) FROM container_mounts "
            "WHERE volume IS NOT NULL GROUP BY volume"
        )
    }


def delete(conn: sqlite3.Connection, name: str) -> Volume:
    """Delete volume ``name`` unless a container mounts it; returns what was deleted.

    Raises:
        NotFound: no such volume (Docker: ``get NAME: no such volume``).
        Conflict: a container mounts it (``remove NAME: volume is in use - [ids]``).
    """
    v = get(conn, name)
    if v is None:
        raise NotFound(f"get {name}: no such volume")
    refs = users(conn, name)
    if refs:
        raise Conflict(f"remove {name}: volume is in use - [{', '.join(refs)}]")
    conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
    return v


def insert_mounts(conn: sqlite3.Connection, cid: str, mounts: Sequence[MountPoint]) -> None:
    """Record a new container's mounts (its row must exist, and every volume it names)."""
    conn.executemany(
        "INSERT INTO container_mounts (container_id, destination, type, volume, spec, copy_pending) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                cid,
                m.destination,
                m.type.value,
                m.name if m.type is MountType.VOLUME else None,
                json.dumps(mount_to_json(m)),
                int(m.copy_data),
            )
            for m in mounts
        ],
    )


def mounts_of(conn: sqlite3.Connection, cid: str) -> list[tuple[MountPoint, bool]]:
    """A container's mounts with whether a copy-up is still pending, by destination."""
    return [
        (mount_from_json(json.loads(r[0])), bool(r[1]))
        for r in conn.execute(
            "SELECT spec, copy_pending FROM container_mounts WHERE container_id = ? "
            "ORDER BY destination",
            (cid,),
        )
    ]


def all_mounts(conn: sqlite3.Connection) -> dict[str, list[MountPoint]]:
    """Every container's mounts (``docker ps``), by container id."""
    out: dict[str, list[MountPoint]] = {}
    for cid, spec in conn.execute(
        "SELECT container_id, spec FROM container_mounts ORDER BY container_id, destination"
    ):
        out.setdefault(cid, []).append(mount_from_json(json.loads(spec)))
    return out


def copy_done(conn: sqlite3.Connection, cid: str, destination: str) -> None:
    conn.execute(
        "UPDATE container_mounts SET copy_pending = 0 WHERE container_id = ? AND destination = ?",
        (cid, destination),
    )
