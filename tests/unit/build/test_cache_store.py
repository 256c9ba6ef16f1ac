"""Migration 0005 (build at 0004, migrate, assert) and the build cache rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store import build as rows
from store.db import connect
from store.migrate import migrate


def _image(conn: sqlite3.Connection, image_id: str) -> None:
    conn.execute(
        "INSERT INTO images (id, config, created_ns, size, top_layer) VALUES (?, '{}', 1, 0, NULL)",
        (image_id,),
    )


def test_migration_0005_adds_build_cache(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    assert migrate(conn, target=4) == 4
    _image(conn, "sha256:a")
    assert migrate(conn, target=5) == 5
    cols = [r[1] for r in conn.execute("PRAGMA table_info(build_cache)")]
    assert cols == ["key", "image_id", "created_ns", "last_used_ns"]
    conn.close()


def test_build_cache_rows_follow_their_image(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    migrate(conn)
    _image(conn, "sha256:a")
    assert rows.lookup(conn, "k", 5) is None
    rows.put(conn, "k", "sha256:a", 1)
    assert rows.lookup(conn, "k", 5) == "sha256:a"
    assert rows.cached_images(conn) == ["sha256:a"]
    conn.execute("DELETE FROM images WHERE id = 'sha256:a'")
    assert rows.lookup(conn, "k", 6) is None  # ON DELETE CASCADE
    _image(conn, "sha256:b")
    rows.put(conn, "k2", "sha256:b", 1)
    assert rows.delete_all(conn) == ["k2"]
    assert rows.cached_images(conn) == []
    conn.close()
