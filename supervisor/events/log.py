"""The event log: durable append, then fan-out to live ``/events`` subscribers.

Every event is a SQLite row before anyone hears of it (ARCHITECTURE.md §7), so a
collector that reconnects with ``since`` misses nothing, even across a ``kill -9``.

Announcements no request waits for (an exec's ``exec_create``, ``exec_start`` and
``exec_die``) are :meth:`EventLog.defer`-red: they keep the time they happened and are
written together within :data:`DEFER_S`, or first thing in the next :meth:`emit`'s
transaction, so the log stays in time order. A ``docker exec`` thus costs one
transaction (one fsync) after it is over instead of three while it runs.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import structlog
import trio

from store import events as event_rows
from store.db import Database
from supervisor.model import Event

log = structlog.get_logger()

#: How long a deferred event may wait for company before it is written.
DEFER_S = 0.05
RETRY_MAX_S = 5.0  # a failing store is retried at most this far apart

_Deferred = tuple[int, str, str, str, dict[str, str]]  # time_ns, type, action, actor, attrs


class EventLog:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscribers: set[trio.MemorySendChannel[Event]] = set()
        self._deferred: list[_Deferred] = []
        self._deferred_added = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write deferred events (run in the daemon's nursery)."""
        task_status.started()
        delay = DEFER_S
        while True:
            await self._deferred_added.wait()
            self._deferred_added = trio.Event()
            await trio.sleep(delay)
            if not self._deferred:
                continue
            try:
                await self._append([])
            except (sqlite3.Error, OSError) as exc:  # kept for the next try (_append)
                if delay == DEFER_S:  # once per failing spell, not every retry
                    log.warning("events.write_failed", error=str(exc), pending=len(self._deferred))
                delay = min(delay * 2, RETRY_MAX_S)
                self._deferred_added.set()
            else:
                delay = DEFER_S

    def defer(self, type_: str, action: str, actor_id: str, attributes: dict[str, str]) -> None:
        """Append an event soon (see the module docstring); it is stamped now."""
        self._deferred.append((time.time_ns(), type_, action, actor_id, dict(attributes)))
        self._deferred_added.set()

    def close(self) -> None:
        """Write what is still deferred, from synchronous shutdown code (no task runs)."""
        pending, self._deferred = self._deferred, []
        if pending:
            self._db.run_sync(_append_all, pending)

    async def emit(
        self,
        type_: str,
        action: str,
        actor_id: str,
        attributes: dict[str, str],
        *,
        with_change: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Event:
        """Append an event durably, then announce it.

        Args:
            with_change: a state change committed in the same transaction as the event,
                so a state change and the event that reports it are never seen apart.
        """

        def this_one(conn: sqlite3.Connection) -> Event:
            if with_change is not None:
                with_change(conn)
            return event_rows.append(conn, time.time_ns(), type_, action, actor_id, attributes)

        events = await self._append([this_one])
        log.debug("events.emitted", type=type_, action=action, actor=actor_id[:12])
        return events[-1]

    async def _append(self, then: list[Callable[[sqlite3.Connection], Event]]) -> list[Event]:
        """One transaction: the deferred events, then ``then``; publish them all."""
        pending, self._deferred = self._deferred, []

        def transaction(conn: sqlite3.Connection) -> list[Event]:
            return _append_all(conn, pending) + [fn(conn) for fn in then]

        try:
            events = await self._db.run(transaction)
        except BaseException:
            self._deferred[:0] = pending  # rolled back: still to be written, still first
            raise
        for event in events:
            self._publish(event)
        return events

    def _publish(self, event: Event) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                # A subscriber that fell 4096 events behind is dropped; it can reconnect with since.
                send.close()
                self._subscribers.discard(send)

    def subscribe(self) -> trio.MemoryReceiveChannel[Event]:
        send, receive = trio.open_memory_channel[Event](4096)
        self._subscribers.add(send)
        return receive

    def unsubscribe(self, receive: trio.MemoryReceiveChannel[Event]) -> None:
        receive.close()
        self._subscribers = {s for s in self._subscribers if s.statistics().open_receive_channels}

    async def history(
        self, *, since_ns: int | None, until_ns: int | None, after_id: int = 0
    ) -> list[Event]:
        return await self._db.run(
            event_rows.between, since_ns=since_ns, until_ns=until_ns, after_id=after_id
        )

    async def prune(self, *, keep: int, max_age_s: float) -> int:
        cutoff = time.time_ns() - int(max_age_s * 1e9)
        return await self._db.run(event_rows.prune, keep=keep, older_than_ns=cutoff)


def _append_all(conn: sqlite3.Connection, pending: list[_Deferred]) -> list[Event]:
    return [event_rows.append(conn, *item) for item in pending]


def to_api(event: Event) -> dict[str, object]:
    """Docker's event message JSON (with the legacy status/id/from keys)."""
    out: dict[str, object] = {
        "Type": event.type,
        "Action": event.action,
        "Actor": {"ID": event.actor_id, "Attributes": event.attributes},
        "scope": "local",
        "time": event.time_ns // 1_000_000_000,
        "timeNano": event.time_ns,
    }
    if event.type == "container":
        out["status"] = event.action
        out["id"] = event.actor_id
        out["from"] = event.attributes.get("image", "")
    elif event.type == "image":
        out["status"] = event.action
        out["id"] = event.actor_id
    return out
