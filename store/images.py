"""Image, layer and tag rows. Transaction bodies for :meth:`store.db.Database.run`."""

from __future__ import annotations

import json
import sqlite3

from supervisor.model import ChainId, Image, ImageId, Layer


def put_layer(conn: sqlite3.Connection, layer: Layer) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size, tar_size) VALUES (?, ?, ?, ?, ?)",
        (layer.chain_id, layer.diff_id, layer.parent, layer.size, layer.tar_size),
    )


def get_layer(conn: sqlite3.Connection, chain_id: str) -> Layer | None:
    row = conn.execute(
        "SELECT chain_id, diff_id, parent, size, tar_size FROM layers WHERE chain_id = ?",
        (chain_id,),
    ).fetchone()
    if not row:
        return None
    return Layer(
        ChainId(row[0]), row[1], ChainId(row[2]) if row[2] else None, int(row[3]), int(row[4])
    )


def put_image(conn: sqlite3.Connection, image: Image) -> bool:
    """Store ``image`` (idempotent). Returns False when it was there already."""
    top = image.layers[-1] if image.layers else None
    cur = conn.execute(
        "INSERT OR IGNORE INTO images (id, config, created_ns, size, top_layer) VALUES (?, ?, ?, ?, ?)",
        (image.id, image.raw_config.decode(), image.created_ns, image.size, top),
    )
    return cur.rowcount > 0


def _layers_of(conn: sqlite3.Connection, top: str | None) -> tuple[ChainId, ...]:
    chain: list[ChainId] = []
    while top:
        chain.append(ChainId(top))
        row = conn.execute("SELECT parent FROM layers WHERE chain_id = ?", (top,)).fetchone()
        top = row[0] if row else None
    return tuple(reversed(chain))


def _image(conn: sqlite3.Connection, row: tuple[str, str, int, int, str | None, str]) -> Image:
    iid, raw, created, size, top, parent = row
    tags = tuple(
        r[0]
        for r in conn.execute("SELECT ref FROM tags WHERE image_id = ? ORDER BY tagged_ns", (iid,))
    )
    return Image(
        id=ImageId(iid),
        config=json.loads(raw),
        raw_config=raw.encode(),
        created_ns=int(created),
        size=int(size),
        layers=_layers_of(conn, top),
        tags=tags,
        repo_digests=tuple(repo_digests(conn, iid)),
        parent=parent,
    )


_IMAGE = "SELECT id, config, created_ns, size, top_layer, parent FROM images"


def get_image(conn: sqlite3.Connection, image_id: str) -> Image | None:
    row = conn.execute(_IMAGE + " WHERE id = ?", (image_id,)).fetchone()
    return _image(conn, row) if row else None


def all_images(conn: sqlite3.Connection) -> list[Image]:
    return [_image(conn, r) for r in conn.execute(_IMAGE + " ORDER BY created_ns DESC").fetchall()]


def image_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM images")]


def resolve_tag(conn: sqlite3.Connection, ref: str) -> str | None:
    row = conn.execute("SELECT image_id FROM tags WHERE ref = ?", (ref,)).fetchone()
    return row[0] if row else None


def set_tag(conn: sqlite3.Connection, ref: str, image_id: str, now_ns: int) -> str | None:
    """Point ``ref`` at ``image_id``; returns the image it pointed at before, if another."""
    old = resolve_tag(conn, ref)
    conn.execute(
        "INSERT INTO tags (ref, image_id, tagged_ns) VALUES (?, ?, ?) "
        "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, tagged_ns = excluded.tagged_ns",
        (ref, image_id, now_ns),
    )
    return old if old != image_id else None


def remove_tag(conn: sqlite3.Connection, ref: str) -> None:
    conn.execute("DELETE FROM tags WHERE ref = ?", (ref,))


def delete_image(conn: sqlite3.Connection, image_id: str) -> None:
    conn.execute("DELETE FROM images WHERE id = ?", (image_id,))


def unused_layers(conn: sqlite3.Connection) -> list[str]:
    """Chain ids no image's chain reaches (candidates for removal from disk)."""
    used: set[str] = set()
    for (top,) in conn.execute(
        "SELECT top_layer FROM images WHERE top_layer IS NOT NULL"
    ).fetchall():
        used.update(_layers_of(conn, top))
    return [r[0] for r in conn.execute("SELECT chain_id FROM layers") if r[0] not in used]


def delete_layer(conn: sqlite3.Connection, chain_id: str) -> None:
    conn.execute("DELETE FROM layers WHERE chain_id = ?", (chain_id,))


# -- content store index (0002) ------------------------------------------------------


def put_layer_blob(
    conn: sqlite3.Connection, digest: str, diff_id: str, media_type: str, size: int
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO layer_blobs (digest, diff_id, media_type, size) VALUES (?, ?, ?, ?)",
        (digest, diff_id, media_type, size),
    )


def blobs_for_diff(conn: sqlite3.Connection, diff_id: str) -> list[tuple[str, str, int]]:
    """(digest, media type, size) of every blob known to carry the layer ``diff_id``."""
    return [
        (r[0], r[1], int(r[2]))
        for r in conn.execute(
            "SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ? ORDER BY digest = diff_id",
            (diff_id,),
        )
    ]


def add_blob_source(conn: sqlite3.Connection, digest: str, registry: str, repository: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO blob_sources (digest, registry, repository) VALUES (?, ?, ?)",
        (digest, registry, repository),
    )


def blob_sources(conn: sqlite3.Connection, digest: str, registry: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT repository FROM blob_sources WHERE digest = ? AND registry = ?",
            (digest, registry),
        )
    ]


def set_repo_digest(conn: sqlite3.Connection, ref: str, image_id: str) -> None:
    conn.execute(
        "INSERT INTO repo_digests (ref, image_id) VALUES (?, ?) "
        "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id",
        (ref, image_id),
    )


def repo_digests(conn: sqlite3.Connection, image_id: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT ref FROM repo_digests WHERE image_id = ? ORDER BY ref", (image_id,)
        )
    ]


def resolve_repo_digest(conn: sqlite3.Connection, ref: str) -> str | None:
    row = conn.execute("SELECT image_id FROM repo_digests WHERE ref = ?", (ref,)).fetchone()
    return row[0] if row else None


def set_parent(conn: sqlite3.Connection, image_id: str, parent: str) -> None:
    conn.execute("UPDATE images SET parent = ? WHERE id = ?", (parent, image_id))


def child_images(conn: sqlite3.Connection, image_id: str) -> list[str]:
    """Ids of the images made from ``image_id`` (build steps, commits)."""
    return [r[0] for r in conn.execute("SELECT id FROM images WHERE parent = ?", (image_id,))]


def unused_blobs(conn: sqlite3.Connection) -> list[str]:
    """Layer blobs whose layer no image uses any more."""
    used: set[str] = set()
    for (top,) in conn.execute(
        "SELECT top_layer FROM images WHERE top_layer IS NOT NULL"
    ).fetchall():
        for chain in _layers_of(conn, top):
            row = conn.execute("SELECT diff_id FROM layers WHERE chain_id = ?", (chain,)).fetchone()
            if row:
                used.add(row[0])
    return [
        r[0] for r in conn.execute("SELECT digest, diff_id FROM layer_blobs") if r[1] not in used
    ]


def delete_layer_blob(conn: sqlite3.Connection, digest: str) -> None:
    conn.execute("DELETE FROM layer_blobs WHERE digest = ?", (digest,))
    conn.execute("DELETE FROM blob_sources WHERE digest = ?", (digest,))


def remove_repo_digest(conn: sqlite3.Connection, ref: str) -> None:
    conn.execute("DELETE FROM repo_digests WHERE ref = ?", (ref,))
