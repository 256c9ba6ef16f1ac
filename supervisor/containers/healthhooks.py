"""Where health checks meet the container lifecycle: a probe task per run,
``State.Health`` for inspect and ps, and ``--health-on-failure``.

Each run of a container with a health check has one probe task (``healthcheck.py``):
the supervise task starts it (:meth:`HealthHooks.start_run`) before it watches the run;
when the run ends the manager asks ``HealthChecks.end_run`` whether berth ended the run
itself (``--health-on-failure=restart``), in which case the exit goes to
:meth:`HealthHooks.exit_policy`'s policy (``health.policy_for_unhealthy_exit``) instead
of the container's own.
"""

from __future__ import annotations

import functools
import signal
import time
from typing import TYPE_CHECKING

import structlog
import trio

from supervisor.containers import health
from supervisor.containers.handle import DEFAULT_STOP_TIMEOUT, Handle
from supervisor.containers.health import HealthState, HealthStatus, OnFailure
from supervisor.containers.healthcheck import HealthChecks, Watch
from supervisor.containers.logs import parse_time
from supervisor.containers.monitor import send_signal
from supervisor.containers.restart import RestartPolicy
from supervisor.containers.state import Status
from supervisor.errors import BerthError, Conflict, NotFound, NotModified
from supervisor.model import ZERO_TIME, Container
from supervisor.runtime.oci import signal_number

if TYPE_CHECKING:
    from supervisor.containers.manager import ContainerManager

log = structlog.get_logger()


class HealthHooks:
    """The manager's health-check side (see the module docstring).

    Args:
        manager: whose ``kill``, ``stop``, ``announce`` and ``exec_probe`` the
            hooks use.
        checks: ``State.Health`` of every container and the probes of running ones.
    """

    def __init__(self, manager: ContainerManager, checks: HealthChecks) -> None:
        self._manager = manager
        self.checks = checks

    def shown(self, c: Container) -> HealthState | None:
        """``State.Health`` of ``c`` for inspect, ps and the ``health`` filter."""
        return health.shown(
            self.checks.get(c.id),
            configured=health.from_config(c.config) is not None,
            ever_started=c.state.started_at != ZERO_TIME,
        )

    def start_run(self, h: Handle, nursery: trio.Nursery) -> None:
        """A run of ``h`` begins (started, restarted or re-adopted): probe it, if it has
        a health check, in a task (in ``nursery``) the end of the run cancels."""
        config = health.from_config(h.record.config)
        if config is None:
            return
        try:
            since_start_ns = max(0, time.time_ns() - parse_time(h.record.state.started_at))
        except ValueError:
            since_start_ns = 0
        shell = h.record.config.get("Shell")
        watch = Watch(
            cid=h.id,
            config=config,
            argv=tuple(config.argv(shell if isinstance(shell, list) else None)),
            since_start_ns=since_start_ns,
            probe=self._manager.exec_probe,
            announce=functools.partial(self._announce, h),
            on_unhealthy=functools.partial(self._on_unhealthy, h, nursery),
            paused=lambda: h.record.state.status is Status.PAUSED,
        )
        nursery.start_soon(self.checks.watch, watch, self.checks.begin_run(h.id))

    def exit_policy(
        self, h: Handle, policy: RestartPolicy, *, unhealthy_restart: bool
    ) -> RestartPolicy:
        """The policy deciding about the run that just ended: the container's own
        (``policy``), or — when berth ended the run because it was unhealthy — one that
        restarts it."""
        if not unhealthy_restart:
            return policy
        return health.policy_for_unhealthy_exit(policy, restart_count=h.record.state.restart_count)

    async def _announce(self, h: Handle, status: HealthStatus) -> None:
        await self._manager.announce(h, health.event_action(status))

    def _on_unhealthy(self, h: Handle, nursery: trio.Nursery) -> None:
        """``h`` just became unhealthy: schedule its ``--health-on-failure`` action in the
        manager's nursery — stopping the container cancels the probe task calling this."""
        action = health.parse_on_failure(h.record.host_config, h.record.labels)
        if action is OnFailure.NONE:
            return
        log.info("container.unhealthy_action_scheduled", action=action.value)
        nursery.start_soon(self._act_on_unhealthy, h, action)

    async def _act_on_unhealthy(self, h: Handle, action: OnFailure) -> None:
        """``kill`` and ``stop`` act as ``docker kill``/``docker stop`` (the container stays
        down, whatever its policy); ``restart`` stops the process the same way but leaves
        the decision to the restart policy and its back-off (:meth:`exit_policy`)."""
        try:
            if action is OnFailure.KILL:
                await self._manager.kill(h.id, "SIGKILL")
            elif action is OnFailure.STOP:
                await self._manager.stop(h.id, timeout=None)
            else:
                await self._stop_for_restart(h)
        except (NotModified, Conflict, NotFound):
            pass  # stopped, removed or restarted by someone else meanwhile
        except BerthError as exc:
            log.warning("container.unhealthy_action_failed", action=action.value, error=str(exc))

    async def _stop_for_restart(self, h: Handle) -> None:
        """Stop signal, the stop timeout, then SIGKILL — without ``manually_stopped`` or
        ``stopping``, so the exit reaches the restart policy."""
        if h.record.state.status is not Status.RUNNING or h.pidfd < 0:
            return
        sig = signal_number(h.record.config.get("StopSignal"), signal.SIGTERM)
        timeout = h.record.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        notice = h.exited
        self.checks.request_restart(h.id)
        if send_signal(h.pidfd, sig):
            await self._manager.announce(h, "kill", signal=str(sig))
        with trio.move_on_after(timeout if timeout >= 0 else float("inf")):
            await notice.wait()
        if not notice.is_set():
            if h.pidfd >= 0 and send_signal(h.pidfd, signal.SIGKILL):
                await self._manager.announce(h, "kill", signal=str(int(signal.SIGKILL)))
            await notice.wait()
