"""Health checks: configuration, the probe-result state machine and scheduling. Pure.

Theory of operation:

* **Configuration.** A container's ``Config.Healthcheck`` is Docker's ``HealthConfig``
  (``Test``, and ``Interval``/``Timeout``/``StartPeriod``/``StartInterval`` in integer
  nanoseconds, ``Retries``). :func:`parse_healthcheck` checks what a client sends
  (Docker's messages, 400), :func:`merge_healthcheck` lays it over the image's
  ``HEALTHCHECK`` field by field as Docker does (moby ``daemon/commit.go`` ``merge``),
  and :func:`from_config` turns the stored result into a :class:`HealthConfig` with
  Docker's defaults, or ``None`` when nothing is to be probed (no check, ``NONE``, an
  unknown test type — Docker only warns about the last).
* **State machine.** A run starts in ``starting`` (:func:`begin_run`; the log of earlier
  runs is kept, the failing streak reset). Each probe result goes through
  :func:`record`: exit code 0 makes the container ``healthy`` and resets the streak;
  any other code (a timeout or a probe that could not run is -1) is a failure, which
  does not count while the container is still ``starting`` inside its start period,
  and otherwise makes it ``unhealthy`` once the streak reaches ``Retries``. The log
  keeps the last :data:`MAX_LOG_ENTRIES` results. :func:`record` also returns the new
  status exactly when the status changed — the ``health_status: <status>`` event
  Docker sends (never for ``starting``). :func:`end_run` marks a stopped container
  ``unhealthy`` without an event, as Docker does "for compatibility reasons".
* **Scheduling.** :func:`next_delay_ns` is the sleep before the next probe, counted
  from the end of the previous one (Docker's timer): ``StartInterval`` while starting
  inside the start period (never past its end), ``Interval`` otherwise.
* **Beyond Docker** (moby#28400): ``HostConfig.HealthOnFailure`` — or, for clients that
  cannot send it (the docker CLI, compose), the container label
  ``berth.health-on-failure`` — names what berth does when a container becomes
  unhealthy: :class:`OnFailure`. ``restart`` goes through the container's restart
  policy and back-off: :func:`policy_for_unhealthy_exit`.

Imports: the standard library, attrs, ``supervisor.errors`` and the (pure) restart
policy only; never trio, the store or anything that does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from supervisor.containers.restart import PolicyName, RestartPolicy
from supervisor.errors import InvalidArgument

NS_PER_S = 1_000_000_000
MIN_DURATION_NS = 1_000_000  # moby container.MinimumDuration (1ms)
DEFAULT_INTERVAL_NS = 30 * NS_PER_S
DEFAULT_TIMEOUT_NS = 30 * NS_PER_S
DEFAULT_START_PERIOD_NS = 0
DEFAULT_START_INTERVAL_NS = 5 * NS_PER_S
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_BYTES = 4096
DEFAULT_SHELL = ("/bin/sh", "-c")

NO_HEALTHCHECK = "none"  # the ``health`` filter's value for containers without a check
ON_FAILURE_KEY = "HealthOnFailure"  # HostConfig key (berth's extension)
ON_FAILURE_LABEL = "berth.health-on-failure"  # the same for clients that cannot send it

_DURATION_KEYS = ("Interval", "Timeout", "StartPeriod", "StartInterval")
_KEYS = ("Test", *_DURATION_KEYS, "Retries")


class HealthStatus(enum.StrEnum):
    """Docker's ``State.Health.Status`` strings."""

    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


FILTER_VALUES = frozenset({*(s.value for s in HealthStatus), NO_HEALTHCHECK})


class ProbeKind(enum.StrEnum):
    """``Test[0]``: how the rest of ``Test`` runs."""

    CMD = "CMD"  # exec Test[1:] directly
    SHELL = "CMD-SHELL"  # Test[1:] through the container's shell


class OnFailure(enum.StrEnum):
    """What berth does when a container becomes unhealthy (``--health-on-failure``)."""

    NONE = "none"
    KILL = "kill"  # SIGKILL, stays down (as ``docker kill``)
    STOP = "stop"  # stop signal, timeout, SIGKILL; stays down (as ``docker stop``)
    RESTART = "restart"  # stop as above, then the restart policy and back-off decide


# -- configuration ----------------------------------------------------------------------


@attrs.frozen
class HealthConfig:
    """A container's health check with Docker's defaults applied (all durations > 0)."""

    kind: ProbeKind
    command: tuple[str, ...]  # Test[1:]
    interval_ns: int = DEFAULT_INTERVAL_NS
    timeout_ns: int = DEFAULT_TIMEOUT_NS
    start_period_ns: int = DEFAULT_START_PERIOD_NS
    start_interval_ns: int = DEFAULT_START_INTERVAL_NS
    retries: int = DEFAULT_RETRIES

    @property
    def timeout_s(self) -> float:
        return self.timeout_ns / NS_PER_S

    def argv(self, shell: Sequence[str] | None = None) -> list[str]:
        """The probe's command line: ``CMD-SHELL`` runs through ``shell`` (the
        container's ``Config.Shell``; ``/bin/sh -c`` when empty)."""
        if self.kind is ProbeKind.SHELL:
            return [*(shell or DEFAULT_SHELL), *self.command]
        return list(self.command)


def _go_type(value: object) -> str:
    """The JSON type name Go's decoder reports."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _unmarshal_error(value: object, field: str, go_type: str) -> InvalidArgument:
    return InvalidArgument(
        f"json: cannot unmarshal {_go_type(value)} into Go struct field "
        f"HealthConfig.Healthcheck.{field} of type {go_type}"
    )


def parse_healthcheck(raw: object) -> dict[str, Any] | None:
    """Validate ``Config.Healthcheck`` as a client sends it.

    Returns:
        The object as inspect shows it (Docker's ``omitempty``: empty and zero fields
        left out; a string ``Test`` becomes a one-element list, as Go's ``StrSlice``
        decodes it), or ``None`` when absent.

    Raises:
        InvalidArgument: wrong JSON types, or values Docker refuses (``validateHealthCheck``:
            durations under 1ms, negative retries) — and ``CMD``/``CMD-SHELL`` without a
            command, which Docker accepts but cannot run.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument(
            f"json: cannot unmarshal {_go_type(raw)} into Go struct field "
            "Config.Healthcheck of type container.HealthConfig"
        )
    out: dict[str, Any] = {}
    test = raw.get("Test")
    if isinstance(test, str):
        test = [test]
    if test is not None:
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            raise _unmarshal_error(test, "Test", "[]string")
        if test[:1] in (["CMD"], ["CMD-SHELL"]) and len(test) < 2:
            raise InvalidArgument(f"Healthcheck Test {test[0]} needs a command")
        if test:
            out["Test"] = list(test)
    for key in _DURATION_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _unmarshal_error(value, key, "time.Duration")
        if value != 0 and value < MIN_DURATION_NS:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
        if value:
            out[key] = value
    retries = raw.get("Retries")
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise _unmarshal_error(retries, "Retries", "int")
        if retries < 0:
            raise InvalidArgument("Retries in Healthcheck cannot be negative")
        if retries:
            out["Retries"] = retries
    return out


def merge_healthcheck(user: Mapping[str, Any] | None, image: object) -> dict[str, Any] | None:
    """The container's ``Healthcheck``: the user's, each empty field taken from the
    image's ``HEALTHCHECK`` (``--health-retries 5`` keeps the image's test)."""
    if not isinstance(image, dict) or not image:
        return dict(user) if user is not None else None
    if user is None:
        return {k: image[k] for k in _KEYS if image.get(k)}
    merged = dict(user)
    for key in _KEYS:
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def _positive(value: object, default: int) -> int:
    """A stored duration or count, ``default`` for zero (Docker's ``timeoutWithDefault``)
    and for anything an image may carry that a client could not have sent."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return default
    return value


def from_config(config: Mapping[str, Any]) -> HealthConfig | None:
    """The health check a container's (merged) ``Config`` asks for, or ``None``."""
    hc = config.get("Healthcheck")
    if not isinstance(hc, dict):
        return None
    test = hc.get("Test")
    if not isinstance(test, list) or len(test) < 2 or not all(isinstance(t, str) for t in test):
        return None  # none, ["NONE"], or nothing to run
    try:
        kind = ProbeKind(test[0])
    except ValueError:
        return None  # Docker: "Unknown healthcheck type" warning, no probe
    return HealthConfig(
        kind=kind,
        command=tuple(test[1:]),
        interval_ns=_positive(hc.get("Interval"), DEFAULT_INTERVAL_NS),
        timeout_ns=_positive(hc.get("Timeout"), DEFAULT_TIMEOUT_NS),
        start_period_ns=_positive(hc.get("StartPeriod"), DEFAULT_START_PERIOD_NS),
        start_interval_ns=_positive(hc.get("StartInterval"), DEFAULT_START_INTERVAL_NS),
        retries=_positive(hc.get("Retries"), DEFAULT_RETRIES),
    )


def parse_on_failure(host_config: Mapping[str, Any], labels: Mapping[str, str]) -> OnFailure:
    """``HostConfig.HealthOnFailure``, else the ``berth.health-on-failure`` label, else none.

    Raises:
        InvalidArgument: a value that is not one of :class:`OnFailure`.
    """
    value = host_config.get(ON_FAILURE_KEY)
    if value is None or value == "":
        value = labels.get(ON_FAILURE_LABEL, "")
    if not isinstance(value, str):
        raise InvalidArgument(
            f"json: cannot unmarshal {_go_type(value)} into Go struct field "
            f"HostConfig.{ON_FAILURE_KEY} of type string"
        )
    try:
        return OnFailure(value or "none")
    except ValueError:
        raise InvalidArgument(
            f"invalid health-on-failure action {value!r}: want none, kill, restart or stop"
        ) from None


def check_create(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> OnFailure:
    """Create-time check of a container's merged ``Config`` and its ``HostConfig``.

    Raises:
        InvalidArgument: a bad ``HealthOnFailure`` (or label), or a ``HealthOnFailure``
            other than ``none`` for a container without a health check.
    """
    action = parse_on_failure(host_config, dict(config.get("Labels") or {}))
    explicit = host_config.get(ON_FAILURE_KEY) not in (None, "", OnFailure.NONE.value)
    if explicit and from_config(config) is None:
        raise InvalidArgument(
            f"cannot set health-on-failure action to {action} without a health check"
        )
    return action


def policy_for_unhealthy_exit(policy: RestartPolicy, *, restart_count: int) -> RestartPolicy:
    """The policy that decides about a run berth ended because it was unhealthy (action
    ``restart``). The user asked for a restart, so ``no`` and ``on-failure`` restart
    whatever code the stopped process exited with (a server may exit 0 on SIGTERM); the
    back-off is the policy's, and ``on-failure:N`` still gives up after N restarts."""
    if policy.name is PolicyName.ON_FAILURE and 0 < policy.max_retries <= restart_count:
        return policy
    if policy.name in (PolicyName.NO, PolicyName.ON_FAILURE):
        return attrs.evolve(policy, name=PolicyName.ALWAYS, max_retries=0)
    return policy


# -- state machine ------------------------------------------------------------------------


@attrs.frozen
class ProbeResult:
    """One entry of ``State.Health.Log``."""

    start_ns: int  # wall clock, unix ns
    end_ns: int
    exit_code: int
    output: str


@attrs.frozen
class HealthState:
    """``State.Health``: status, consecutive failures and the last results."""

    status: HealthStatus = HealthStatus.STARTING
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = ()


def begin_run(previous: HealthState | None) -> HealthState:
    """A (re)started container, or one re-adopted after a daemon restart: ``starting``,
    no failures, earlier results kept (Docker's ``initHealthMonitor``)."""
    return attrs.evolve(previous or HealthState(), status=HealthStatus.STARTING, failing_streak=0)


def end_run(state: HealthState) -> HealthState:
    """The run ended (or the probes stopped): ``unhealthy``, without an event — Docker
    sets it "for compatibility reasons" when its monitor stops."""
    return attrs.evolve(state, status=HealthStatus.UNHEALTHY)


def record(
    state: HealthState, result: ProbeResult, *, config: HealthConfig, since_start_ns: int
) -> tuple[HealthState, HealthStatus | None]:
    """Apply one probe result.

    Args:
        state: the container's health before the result.
        result: the probe's result.
        config: the container's health check.
        since_start_ns: from the container's start to the probe's start.

    Returns:
        The new state, and the new status when it differs from the old one (the
        ``health_status`` event to send), else ``None``.
    """
    log = (*state.log, result)[-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        new = HealthState(HealthStatus.HEALTHY, 0, log)
    elif state.status is HealthStatus.STARTING and since_start_ns < config.start_period_ns:
        new = attrs.evolve(state, log=log)  # a failure inside the start period: not counted
    else:
        streak = state.failing_streak + 1
        status = HealthStatus.UNHEALTHY if streak >= config.retries else state.status
        new = HealthState(status, streak, log)
    return new, (new.status if new.status is not state.status else None)


def next_delay_ns(config: HealthConfig, *, status: HealthStatus, since_start_ns: int) -> int:
    """How long to wait, from now, before the next probe (always > 0)."""
    remaining = config.start_period_ns - since_start_ns
    if remaining > 0 and status is HealthStatus.STARTING:
        return min(config.start_interval_ns, remaining)
    return config.interval_ns


def probe_result(
    *, exit_code: int, output: bytes, start_ns: int, end_ns: int, timed_out: bool, timeout_ns: int
) -> ProbeResult:
    """A result from a probe that ran: its output as Docker keeps it (4 KiB, then
    ``...``; invalid UTF-8 replaced, as Go's JSON encoder does), and for a probe killed
    at its timeout exit code -1 and Docker's message."""
    text = output[:MAX_OUTPUT_BYTES].decode("utf-8", "replace")
    if len(output) > MAX_OUTPUT_BYTES:
        text += "..."
    if timed_out:
        message = f"Health check exceeded timeout ({go_duration(timeout_ns)})"
        return ProbeResult(start_ns, end_ns, -1, f"{message}: {text}" if text else message)
    return ProbeResult(start_ns, end_ns, exit_code, text)


def failed_result(message: str, *, start_ns: int, end_ns: int) -> ProbeResult:
    """A probe that could not run (exec refused...): a failure with exit code -1."""
    return ProbeResult(start_ns, end_ns, -1, message)


def event_action(status: HealthStatus) -> str:
    """The container event Docker sends on a status change: ``health_status: healthy``."""
    return f"health_status: {status.value}"


def status_suffix(state: HealthState) -> str:
    """What ``docker ps`` appends to ``Up 3 minutes``: ``(health: starting)``, ``(healthy)``."""
    if state.status is HealthStatus.STARTING:
        return "(health: starting)"
    return f"({state.status.value})"


def shown(state: HealthState | None, *, configured: bool, ever_started: bool) -> HealthState | None:
    """The ``State.Health`` to show. Health lives in memory, so after a daemon restart a
    container that ran before but is not running now has none: Docker would show the
    ``unhealthy`` its stopped monitor left, so show that (with an empty log)."""
    if state is not None:
        return state
    if configured and ever_started:
        return HealthState(status=HealthStatus.UNHEALTHY)
    return None


def filter_value(state: HealthState | None) -> str:
    """The value the ``health`` filter of ``GET /containers/json`` matches."""
    return state.status.value if state is not None else NO_HEALTHCHECK


# -- Go's time.Duration.String ----------------------------------------------------------------


def _fraction(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` (``30s``, ``1.5s``, ``500ms``, ``1m30s``, ``1h0m0s``),
    which Docker prints in the timeout message."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 1_000)}\u00b5s"  # the micro sign, as Go
    if u < NS_PER_S:
        return f"{sign}{_fraction(u, 1_000_000)}ms"
    seconds, rest = divmod(u, NS_PER_S)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = _fraction(seconds * NS_PER_S + rest, NS_PER_S) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text
