"""EventLog.defer: deferred events are written in time order, together, and never lost
at shutdown (a real SQLite store in tmp_path)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import trio

from store.db import Database
from supervisor.events import log as log_mod
from supervisor.events.log import EventLog


async def actions(events: EventLog) -> list[str]:
    return [e.action for e in await events.history(since_ns=None, until_ns=None)]


async def test_deferred_events_go_first_with_the_next_emit(db: Database) -> None:
    events = EventLog(db)
    live = events.subscribe()
    events.defer("container", "exec_create: true", "c1", {})
    events.defer("container", "exec_start: true", "c1", {})
    await events.emit("container", "die", "c1", {})
    assert await actions(events) == ["exec_create: true", "exec_start: true", "die"]
    heard = [live.receive_nowait() for _ in range(3)]
    assert [e.action for e in heard] == ["exec_create: true", "exec_start: true", "die"]
    assert heard[0].time_ns <= heard[1].time_ns <= heard[2].time_ns


async def test_deferred_events_are_written_together_soon(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_mod, "DEFER_S", 0.01)
    events = EventLog(db)
    async with trio.open_nursery() as nursery:
        await nursery.start(events.run)
        events.defer("container", "exec_create: true", "c1", {"execID": "e"})
        events.defer("container", "exec_die", "c1", {"exitCode": "0"})
        assert await actions(events) == []
        with trio.fail_after(5):
            while len(await actions(events)) < 2:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    written = await events.history(since_ns=None, until_ns=None)
    assert [e.attributes for e in written] == [{"execID": "e"}, {"exitCode": "0"}]


async def test_close_writes_what_is_still_deferred(db: Database) -> None:
    events = EventLog(db)
    events.defer("container", "exec_die", "c1", {})
    events.close()
    assert await actions(events) == ["exec_die"]


async def test_a_failed_write_keeps_the_events_for_the_next(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_mod, "DEFER_S", 0.01)
    events = EventLog(db)
    real_run = db.run
    failures = [sqlite3.OperationalError("disk I/O error")]

    async def flaky_run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if failures and fn.__name__ == "transaction":  # the log's write, not history()
            raise failures.pop()
        return await real_run(fn, *args, **kwargs)

    monkeypatch.setattr(db, "run", flaky_run)
    async with trio.open_nursery() as nursery:
        await nursery.start(events.run)
        events.defer("container", "exec_die", "c1", {})
        with trio.fail_after(5):
            while not await actions(events):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert await actions(events) == ["exec_die"]
