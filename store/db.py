"""The one SQLite connection, serialised through a trio worker thread.

Each transaction is a plain synchronous function ``fn(conn, *args)`` run by
:meth:`Database.run` in a worker thread with a capacity limiter of one, so a transaction
never spans an ``await`` and the connection is never used by two threads at once.
aiosqlite is not used: see ARCHITECTURE.md §7.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import trio

from store.migrate import migrate

T = TypeVar("T")
P = ParamSpec("P")


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` with the pragmas berth relies on (podman's reboot-safety settings)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Database:
    """The daemon's SQLite store. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    def open(cls, path: Path) -> Database:
        conn = connect(path)
        migrate(conn)
        return cls(conn)

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run ``fn(conn, *args)`` as one transaction on the store's thread.

        Cancellation: the thread call is not abandoned (``abandon_on_cancel=False``), so a
        transaction either commits or rolls back completely before cancellation is seen.
        """
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        return await trio.to_thread.run_sync(self._transaction, fn, args, limiter=self._limiter)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """The same, from synchronous start-up code that runs before any task."""
        return self._transaction(fn, args)

    def _transaction(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def close(self) -> None:
        self._conn.close()
