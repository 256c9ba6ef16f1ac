"""Apply ``migrations/NNNN_*.sql`` in order, tracked by ``PRAGMA user_version``.

Rules (containerd's migration list): files are numbered without gaps, never edited once
released, each assumes the schema of the previous one, and each has a test.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[int, str]]:
    """Every migration shipped with berth as (number, sql), in order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    for expected, (number, _) in enumerate(found, start=1):
        if number != expected:
            raise RuntimeError(f"migration numbering has a gap at {expected:04d}")
    return found


def migrate(conn: sqlite3.Connection, *, target: int | None = None) -> int:
    """Bring ``conn`` up to ``target`` (default: the newest); return the resulting version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, sql in available():
        if number <= version or (target is not None and number > target):
            continue
        # executescript commits any open transaction first, so wrap it ourselves.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:  # a failed script stops mid-way with its transaction open
                conn.execute("ROLLBACK")
            raise
        version = number
    return version
