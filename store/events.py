"""The durable event log. Transaction bodies for :meth:`store.db.Database.run`."""

from __future__ import annotations

import json
import sqlite3

from supervisor.model import Event


def append(
    conn: sqlite3.Connection,
    time_ns: int,
    type_: str,
    action: str,
    actor_id: str,
    attributes: dict[str, str],
) -> Event:
    cur = conn.execute(
        "INSERT INTO events (time_ns, type, action, actor_id, attributes) VALUES (?, ?, ?, ?, ?)",
        (time_ns, type_, action, actor_id, json.dumps(attributes, sort_keys=True)),
    )
    return Event(int(cur.lastrowid or 0), time_ns, type_, action, actor_id, dict(attributes))


def between(
    conn: sqlite3.Connection,
    *,
    since_ns: int | None,
    until_ns: int | None,
    after_id: int = 0,
    limit: int = 10000,
) -> list[Event]:
    """Events in [since, until] with id > after_id, oldest first."""
    sql = "SELECT id, time_ns, type, action, actor_id, attributes FROM events WHERE id > ?"
    params: list[object] = [after_id]
    if since_ns is not None:
        sql += " AND time_ns >= ?"
        params.append(since_ns)
    if until_ns is not None:
        sql += " AND time_ns <= ?"
        params.append(until_ns)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [
        Event(int(r[0]), int(r[1]), r[2], r[3], r[4], json.loads(r[5]))
        for r in conn.execute(sql, params)
    ]


def last_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(id) FROM events").fetchone()
    return int(row[0] or 0)


def prune(conn: sqlite3.Connection, *, keep: int, older_than_ns: int) -> int:
    """Apply the retention: keep at most ``keep`` rows and none older than the cut-off."""
    cur = conn.execute(
        "DELETE FROM events WHERE time_ns < ? OR id <= (SELECT MAX(id) FROM events) - ?",
        (older_than_ns, keep),
    )
    return cur.rowcount
