"""The event log: durable append, then fan-out to live ``/events`` subscribers.

Every event is a SQLite row before anyone hears of it (ARCHITECTURE.md §7), so a
collector that reconnects with ``since`` misses nothing, even across a ``kill -9``.
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


class EventLog:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscribers: set[trio.MemorySendChannel[Event]] = set()

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

        def transaction(conn: sqlite3.Connection) -> Event:
            if with_change is not None:
                with_change(conn)
            return event_rows.append(conn, time.time_ns(), type_, action, actor_id, attributes)

        event = await self._db.run(transaction)
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                # A subscriber that fell 4096 events behind is dropped; it can reconnect with since.
                send.close()
                self._subscribers.discard(send)
        log.debug("events.emitted", type=type_, action=action, actor=actor_id[:12])
        return event

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
