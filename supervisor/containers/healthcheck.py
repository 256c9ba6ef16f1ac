"""Health probes of running containers: the trio edge of :mod:`supervisor.containers.health`.

Theory of operation: :class:`HealthChecks` holds every container's :class:`HealthState`
in memory — a daemon restart starts each running container over at ``starting``, as
Docker's restore does — and runs one task per running container that has a health
check. The manager brackets each run of a container:

* when the run starts, ``scope = checks.begin_run(cid)`` (sync: the state is
  ``starting`` at once, and the scope exists before the task does, so a run that ends
  before the task is scheduled still cancels it), then
  ``nursery.start_soon(checks.watch, watch, scope)``;
* when the run ends, ``checks.end_run(cid)`` cancels the task and leaves the state
  ``unhealthy`` (Docker's) — and answers whether berth itself ended the run because the
  container was unhealthy (``--health-on-failure=restart``, :meth:`request_restart`),
  which the restart decision needs.

The task sleeps what :func:`health.next_delay_ns` says, runs the probe through
:class:`Probe` (the manager's ``exec_probe``: exit code and the first 4 KiB of output,
-1 when it killed the probe at its timeout), records the result with
:func:`health.record` and, exactly when the status changes, awaits ``announce`` (the
``health_status: <status>`` event) and on ``unhealthy`` calls ``on_unhealthy``. That
callback must not act inline: stopping the container ends the run, which cancels this
task — the manager spawns the action in its own nursery instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import structlog
import trio

from supervisor.containers import health
from supervisor.containers.health import HealthConfig, HealthState, HealthStatus
from supervisor.errors import BerthError

log = structlog.get_logger()


class Probe(Protocol):
    """Runs ``argv`` inside the running container ``cid`` (the manager's ``exec_probe``).

    Returns:
        ``(exit code, the first 4 KiB of stdout and stderr together)``; exit code -1
        when the process was killed at ``timeout_s``.

    Raises:
        BerthError: the probe could not run (container not running, exec refused...).
    """

    async def __call__(
        self, cid: str, argv: list[str], *, timeout_s: float, env: list[str] | None = None
    ) -> tuple[int, bytes]: ...


@attrs.frozen
class Watch:
    """What one container's probe task needs."""

    cid: str
    config: HealthConfig
    argv: tuple[str, ...]
    since_start_ns: int  # how long the container had been running when the task began
    probe: Probe
    announce: Callable[[HealthStatus], Awaitable[None]]  # send the health_status event
    on_unhealthy: Callable[[], None]  # synchronous: schedule the --health-on-failure action
    paused: Callable[[], bool] = lambda: False  # no probes into a frozen container


class HealthChecks:
    """Health of every container, and the probe tasks of the running ones."""

    def __init__(self, *, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self._wall_ns = wall_ns
        self._states: dict[str, HealthState] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._restart_requested: set[str] = set()

    def get(self, cid: str) -> HealthState | None:
        """The container's health as berthd last saw it (``None``: never probed since
        berthd started, or no health check)."""
        return self._states.get(cid)

    def begin_run(self, cid: str) -> trio.CancelScope:
        """A run of ``cid`` starts: its health is ``starting``; returns the scope the
        probe task of this run must run in."""
        previous = self._scopes.pop(cid, None)
        if previous is not None:
            previous.cancel()  # a run that was never ended: never two tasks at once
        self._restart_requested.discard(cid)
        self._states[cid] = health.begin_run(self._states.get(cid))
        scope = trio.CancelScope()
        self._scopes[cid] = scope
        return scope

    def end_run(self, cid: str) -> bool:
        """The run of ``cid`` ended: cancel its probes, mark it ``unhealthy`` (no event).

        Returns:
            True when berth ended the run itself to restart an unhealthy container.
        """
        scope = self._scopes.pop(cid, None)
        if scope is not None:
            scope.cancel()
        state = self._states.get(cid)
        if state is not None:
            self._states[cid] = health.end_run(state)
        requested = cid in self._restart_requested
        self._restart_requested.discard(cid)
        return requested

    def request_restart(self, cid: str) -> None:
        """Berth is about to stop ``cid`` because it is unhealthy, to restart it."""
        self._restart_requested.add(cid)

    def forget(self, cid: str) -> None:
        """The container was removed."""
        self.end_run(cid)
        self._states.pop(cid, None)

    async def watch(self, w: Watch, scope: trio.CancelScope) -> None:
        """Probe ``w.cid`` until ``scope`` is cancelled (by :meth:`end_run`).

        Cancellation: at any point; a probe in flight is cancelled with it (the probe
        kills its process), and a status change already recorded is still announced
        (shielded), so every change is announced exactly once.
        """
        with scope:
            origin = trio.current_time() - w.since_start_ns / health.NS_PER_S
            log.debug("health.watch_started", container_id=w.cid)
            while True:
                since_ns = round((trio.current_time() - origin) * health.NS_PER_S)
                state = self._states.get(w.cid) or health.begin_run(None)
                delay = health.next_delay_ns(w.config, status=state.status, since_start_ns=since_ns)
                await trio.sleep(delay / health.NS_PER_S)
                if w.paused():
                    continue
                await self._probe_once(
                    w, since_start_ns=round((trio.current_time() - origin) * health.NS_PER_S)
                )

    async def _probe_once(self, w: Watch, *, since_start_ns: int) -> None:
        start_ns = self._wall_ns()
        try:
            code, output = await w.probe(w.cid, list(w.argv), timeout_s=w.config.timeout_s)
        except BerthError as exc:
            log.warning("health.probe_failed", container_id=w.cid, error=str(exc))
            result = health.failed_result(str(exc), start_ns=start_ns, end_ns=self._wall_ns())
        else:
            result = health.probe_result(
                exit_code=code,
                output=output,
                start_ns=start_ns,
                end_ns=self._wall_ns(),
                timed_out=code == -1,
                timeout_ns=w.config.timeout_ns,
            )
        state = self._states.get(w.cid) or health.begin_run(None)
        state, changed = health.record(
            state, result, config=w.config, since_start_ns=since_start_ns
        )
        self._states[w.cid] = state
        log.debug("health.probe_completed", container_id=w.cid, exit_code=result.exit_code)
        if changed is None:
            return
        log.info("health.status_changed", container_id=w.cid, status=changed.value)
        with trio.CancelScope(shield=True):
            await w.announce(changed)
        if changed is HealthStatus.UNHEALTHY:
            w.on_unhealthy()
