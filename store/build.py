"""Build cache rows (0005). Transaction bodies for :meth:`store.db.Database.run`."""

from __future__ import annotations

import sqlite3


def lookup(conn: sqlite3.Connection, key: str, now_ns: int) -> str | None:
    """The image a step with ``key`` produced, if still stored; marks the entry used."""
    row = conn.execute(
        "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE build_cache SET last_used_ns = ? WHERE key = ?", (now_ns, key))
    return str(row[0])


def put(conn: sqlite3.Connection, key: str, image_id: str, now_ns: int) -> None:
    conn.execute(
        "INSERT INTO build_cache (key, image_id, created_ns, last_used_ns) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id, "
        "last_used_ns = excluded.last_used_ns",
        (key, image_id, now_ns, now_ns),
    )


def cached_images(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT DISTINCT image_id FROM build_cache")]


def delete_all(conn: sqlite3.Connection) -> list[str]:
    """Forget every entry; returns the keys deleted."""
    keys = [str(r[0]) for r in conn.execute("SELECT key FROM build_cache ORDER BY key")]
    conn.execute("DELETE FROM build_cache")
    return keys
