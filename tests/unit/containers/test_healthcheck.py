"""Tests for supervisor.containers.healthcheck: the probe task with a fake probe and
trio's autojump clock (no real time passes, no container runs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from supervisor.containers.health import (
    NS_PER_S,
    HealthConfig,
    HealthState,
    HealthStatus,
    ProbeKind,
    ProbeResult,
)
from supervisor.containers.healthcheck import HealthChecks, Watch
from supervisor.errors import Conflict

S = NS_PER_S
CID = "c" * 64
STARTING, HEALTHY, UNHEALTHY = HealthStatus.STARTING, HealthStatus.HEALTHY, HealthStatus.UNHEALTHY

Step = tuple[int, bytes] | BaseException


class FakeProbe:
    """Answers each probe with the next scripted step (the last one repeats) and
    records when it was called; ``hang`` makes a probe take that long first."""

    def __init__(self, *steps: Step, hang_s: float = 0.0) -> None:
        self.steps = list(steps)
        self.hang_s = hang_s
        self.calls: list[tuple[float, list[str], float]] = []

    async def __call__(
        self, cid: str, argv: list[str], *, timeout_s: float, env: list[str] | None = None
    ) -> tuple[int, bytes]:
        assert cid == CID
        self.calls.append((trio.current_time(), argv, timeout_s))
        await trio.sleep(self.hang_s)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        return step

    def times(self) -> list[float]:
        return [t for t, _, _ in self.calls]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, HealthStatus]] = []
        self.unhealthy = 0

    async def announce(self, status: HealthStatus) -> None:
        self.events.append((trio.current_time(), status))

    def on_unhealthy(self) -> None:
        self.unhealthy += 1

    def statuses(self) -> list[HealthStatus]:
        return [s for _, s in self.events]


def config(**kw: int) -> HealthConfig:
    return HealthConfig(kind=ProbeKind.SHELL, command=("exit 0",), interval_ns=S, **kw)


def make_watch(
    probe: FakeProbe,
    rec: Recorder,
    cfg: HealthConfig | None = None,
    *,
    since_start_ns: int = 0,
    paused: Callable[[], bool] = lambda: False,
) -> Watch:
    cfg = cfg or config()
    return Watch(
        cid=CID,
        config=cfg,
        argv=tuple(cfg.argv()),
        since_start_ns=since_start_ns,
        probe=probe,
        announce=rec.announce,
        on_unhealthy=rec.on_unhealthy,
        paused=paused,
    )


def wall() -> int:
    return round(trio.current_time() * S)


async def run_for(checks: HealthChecks, watch: Watch, seconds: float) -> None:
    """Start a run, let the probes run ``seconds`` from now, then end the run."""
    async with trio.open_nursery() as nursery:
        scope = checks.begin_run(watch.cid)
        nursery.start_soon(checks.watch, watch, scope)
        await trio.sleep(seconds)
        checks.end_run(watch.cid)


async def test_healthy_container_first_probe_after_one_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    checks, probe, rec = HealthChecks(wall_ns=wall), FakeProbe((0, b"ok\n")), Recorder()
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        scope = checks.begin_run(CID)
        assert checks.get(CID) == HealthState(STARTING)
        nursery.start_soon(checks.watch, make_watch(probe, rec), scope)
        await trio.sleep(3.5)
        state = checks.get(CID)
        checks.end_run(CID)
    assert [round(t - t0, 3) for t in probe.times()] == [1.0, 2.0, 3.0]
    assert probe.calls[0][1:] == (["/bin/sh", "-c", "exit 0"], 30.0)
    assert rec.statuses() == [HEALTHY]  # once, on the change only
    assert state is not None
    assert (state.status, state.failing_streak) == (HEALTHY, 0)
    assert state.log[-1] == ProbeResult(round((t0 + 3) * S), round((t0 + 3) * S), 0, "ok\n")
    assert checks.get(CID) == HealthState(UNHEALTHY, 0, state.log)  # the run ended
    assert rec.unhealthy == 0


async def test_failing_container_turns_unhealthy_after_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    checks, probe, rec = HealthChecks(wall_ns=wall), FakeProbe((1, b"down")), Recorder()
    await run_for(checks, make_watch(probe, rec, config(retries=3)), 6.5)
    assert len(probe.calls) == 6
    assert rec.statuses() == [UNHEALTHY]
    assert round(rec.events[0][0] - probe.calls[2][0], 3) == 0  # on the third failure
    assert rec.unhealthy == 1
    state = checks.get(CID)
    assert state is not None
    assert state.failing_streak == 6
    assert len(state.log) == 5


async def test_unhealthy_container_recovers(autojump_clock: trio.testing.MockClock) -> None:
    probe = FakeProbe((1, b""), (0, b""))
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    await run_for(checks, make_watch(probe, rec, config(retries=1)), 2.5)
    assert rec.statuses() == [UNHEALTHY, HEALTHY]


async def test_start_period_failures_do_not_count_and_use_start_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = config(start_period_ns=10 * S, start_interval_ns=2 * S, retries=1)
    probe = FakeProbe((1, b""))
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    t0 = trio.current_time()
    await run_for(checks, make_watch(probe, rec, cfg), 11.5)
    # every start interval inside the start period, then at its end, then every interval
    assert [round(t - t0, 3) for t in probe.times()] == [2, 4, 6, 8, 10, 11]
    assert rec.statuses() == [UNHEALTHY]
    assert round(rec.events[0][0] - t0, 3) == 10  # the first probe outside the period


async def test_a_success_ends_the_start_period(autojump_clock: trio.testing.MockClock) -> None:
    cfg = config(start_period_ns=60 * S, start_interval_ns=S // 2, retries=1)
    probe = FakeProbe((0, b""), (1, b""))
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    t0 = trio.current_time()
    await run_for(checks, make_watch(probe, rec, cfg), 1.75)
    assert [round(t - t0, 3) for t in probe.times()] == [0.5, 1.5]  # then the interval
    assert rec.statuses() == [HEALTHY, UNHEALTHY]


async def test_readopted_container_resumes_inside_its_start_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = config(start_period_ns=10 * S, start_interval_ns=5 * S, retries=1)
    probe = FakeProbe((1, b""))
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    t0 = trio.current_time()
    await run_for(checks, make_watch(probe, rec, cfg, since_start_ns=8 * S), 2.5)
    assert [round(t - t0, 3) for t in probe.times()] == [2]  # the period's end, counted
    assert rec.statuses() == [UNHEALTHY]


async def test_timed_out_probe_is_a_failure_with_dockers_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = config(timeout_ns=S // 2)
    probe = FakeProbe((-1, b"slow"))
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    await run_for(checks, make_watch(probe, rec, cfg), 1.5)
    assert probe.calls[0][2] == 0.5
    state = checks.get(CID)
    assert state is not None
    assert (state.log[0].exit_code, state.log[0].output) == (
        -1,
        "Health check exceeded timeout (500ms): slow",
    )


async def test_probe_that_cannot_run_is_a_failure(autojump_clock: trio.testing.MockClock) -> None:
    probe = FakeProbe(Conflict("container is not running"))
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    await run_for(checks, make_watch(probe, rec, config(retries=1)), 1.5)
    state = checks.get(CID)
    assert state is not None
    assert (state.log[0].exit_code, state.log[0].output) == (-1, "container is not running")
    assert rec.statuses() == [UNHEALTHY]


async def test_other_errors_propagate(autojump_clock: trio.testing.MockClock) -> None:
    probe = FakeProbe(ZeroDivisionError())
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    with pytest.RaisesGroup(ZeroDivisionError, flatten_subgroups=True):
        await run_for(checks, make_watch(probe, rec), 1.5)


async def test_end_run_cancels_a_probe_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    probe = FakeProbe((0, b""), hang_s=10)
    checks, rec = HealthChecks(wall_ns=wall), Recorder()
    t0 = trio.current_time()
    await run_for(checks, make_watch(probe, rec), 2)
    assert round(trio.current_time() - t0, 3) == 2  # the nursery did not wait for the probe
    assert len(probe.calls) == 1
    assert rec.events == []
    assert checks.get(CID) == HealthState(UNHEALTHY)


async def test_run_ended_before_the_task_started(autojump_clock: trio.testing.MockClock) -> None:
    probe, rec = FakeProbe((0, b"")), Recorder()
    checks = HealthChecks(wall_ns=wall)
    async with trio.open_nursery() as nursery:
        scope = checks.begin_run(CID)
        nursery.start_soon(checks.watch, make_watch(probe, rec), scope)
        checks.end_run(CID)  # before the task ever ran
    assert probe.calls == []


async def test_a_new_run_cancels_a_task_left_over(autojump_clock: trio.testing.MockClock) -> None:
    probe, rec = FakeProbe((0, b"")), Recorder()
    checks = HealthChecks(wall_ns=wall)
    async with trio.open_nursery() as nursery:
        first = checks.begin_run(CID)
        nursery.start_soon(checks.watch, make_watch(probe, rec), first)
        second = checks.begin_run(CID)
        assert first.cancel_called and not second.cancel_called
        checks.end_run(CID)


async def test_no_probes_while_paused(autojump_clock: trio.testing.MockClock) -> None:
    paused = True
    probe, rec = FakeProbe((0, b"")), Recorder()
    checks = HealthChecks(wall_ns=wall)
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        scope = checks.begin_run(CID)
        nursery.start_soon(checks.watch, make_watch(probe, rec, paused=lambda: paused), scope)
        await trio.sleep(3.5)
        assert probe.calls == []
        paused = False
        await trio.sleep(1)
        checks.end_run(CID)
    assert [round(t - t0, 3) for t in probe.times()] == [4]


def test_restart_request_is_answered_once_by_end_run() -> None:
    checks = HealthChecks()
    checks.begin_run(CID)
    checks.request_restart(CID)
    assert checks.end_run(CID) is True
    assert checks.end_run(CID) is False
    checks.request_restart(CID)
    checks.begin_run(CID)  # a new run forgets a request of the last one
    assert checks.end_run(CID) is False


def test_begin_run_keeps_the_log_and_forget_drops_everything() -> None:
    checks = HealthChecks()
    assert checks.get(CID) is None
    assert checks.end_run(CID) is False  # never started: nothing to do
    checks.begin_run(CID)
    checks.end_run(CID)
    assert checks.get(CID) == HealthState(UNHEALTHY)
    checks.begin_run(CID)
    assert checks.get(CID) == HealthState(STARTING)
    checks.forget(CID)
    assert checks.get(CID) is None
