"""Restart policies: parsing and the restart decision, both pure.

Theory of operation: when a container's process ends, the monitor calls
:func:`decide_restart` with what happened and acts on the :class:`RestartDecision`:
record it, sleep ``delay_s`` inside the container's cancel scope (so ``stop`` cancels a
pending restart just by cancelling), then start again. The back-off follows Docker's
restartmanager: 100 ms, doubling on each consecutive restart, capped (Docker: 1 min),
and reset to the initial delay once the container had run for at least 10 s. berth lets
the user bound it (``--restart-delay``, ``--restart-max-delay``), which Docker lacks.

Imports: standard library, attrs and ``supervisor.errors`` only.
"""

from __future__ import annotations

import enum

import attrs

from supervisor.errors import InvalidArgument

DEFAULT_DELAY_S = 0.1
DEFAULT_MAX_DELAY_S = 60.0
RESET_AFTER_S = 10.0


class PolicyName(enum.StrEnum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"


@attrs.frozen
class RestartPolicy:
    name: PolicyName = PolicyName.NO
    max_retries: int = 0  # on-failure only; 0 = unlimited
    delay_s: float | None = None  # None: Docker's 100 ms
    max_delay_s: float | None = None  # None: Docker's 1 min

    @property
    def initial_delay_s(self) -> float:
        return DEFAULT_DELAY_S if self.delay_s is None else self.delay_s

    @property
    def cap_s(self) -> float:
        return DEFAULT_MAX_DELAY_S if self.max_delay_s is None else self.max_delay_s


@attrs.frozen
class RestartDecision:
    restart: bool
    delay_s: float = 0.0
    next_backoff_s: float = 0.0  # the delay to use after the next consecutive exit
    reason: str = ""


def parse_policy(api: object) -> RestartPolicy:
    """Parse ``HostConfig.RestartPolicy`` as the Docker API sends it.

    ``{"Name": "on-failure", "MaximumRetryCount": 3}``; berth's extension keys
    ``Delay`` and ``MaxDelay`` are Go-style durations in integer nanoseconds.

    Raises:
        InvalidArgument: unknown policy name, negative counts, retries with a policy
            other than on-failure (Docker's messages).
    """
    if api is None:
        return RestartPolicy()
    if not isinstance(api, dict):
        raise InvalidArgument("invalid restart policy: expected an object")
    name = api.get("Name") or ""
    retries = api.get("MaximumRetryCount") or 0
    if not isinstance(name, str) or not isinstance(retries, int) or isinstance(retries, bool):
        raise InvalidArgument("invalid restart policy: wrong types")
    if name == "":
        # Docker accepts an empty name with any count (pre-25.0 clients send it): "no".
        return RestartPolicy()
    try:
        policy_name = PolicyName(name)
    except ValueError:
        raise InvalidArgument(f"invalid restart policy '{name}'") from None
    if retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if retries and policy_name is not PolicyName.ON_FAILURE:
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    return RestartPolicy(
        name=policy_name,
        max_retries=retries,
        delay_s=_duration_s(api.get("Delay"), "Delay"),
        max_delay_s=_duration_s(api.get("MaxDelay"), "MaxDelay"),
    )


def _duration_s(value: object, key: str) -> float | None:
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(
            f"invalid restart policy: {key} must be a non-negative duration in ns"
        )
    return value / 1e9


def decide_restart(
    policy: RestartPolicy,
    *,
    exit_code: int,
    manually_stopped: bool,
    ran_for_s: float,
    restart_count: int,
    backoff_s: float,
) -> RestartDecision:
    """Decide whether and when to restart a container whose process just ended.

    Args:
        policy: the container's restart policy.
        exit_code: the process's exit code (128+N for a signal, as Docker reports it).
        manually_stopped: the user stopped or killed it (no policy restarts it then).
        ran_for_s: how long this run lasted.
        restart_count: restarts so far (for on-failure's maximum).
        backoff_s: the delay the previous consecutive restart used (0 for none yet).

    Returns:
        The decision, with the delay to sleep now and the back-off to remember.
    """
    if manually_stopped:
        return RestartDecision(False, reason="stopped by the user")
    if policy.name is PolicyName.NO:
        return RestartDecision(False, reason="restart policy is no")
    if policy.name is PolicyName.ON_FAILURE:
        if exit_code == 0:
            return RestartDecision(False, reason="exited successfully")
        if policy.max_retries and restart_count >= policy.max_retries:
            return RestartDecision(False, reason="maximum retry count reached")
    if ran_for_s >= RESET_AFTER_S or backoff_s <= 0:
        delay = policy.initial_delay_s
    else:
        # Never below the initial delay (a back-off remembered from an older policy).
        delay = max(backoff_s * 2, policy.initial_delay_s)
    delay = min(delay, policy.cap_s)
    return RestartDecision(True, delay_s=delay, next_backoff_s=delay, reason="restart policy")


def to_api(policy: RestartPolicy) -> dict[str, object]:
    """The ``HostConfig.RestartPolicy`` object for inspect."""
    out: dict[str, object] = {
        "Name": policy.name.value if policy.name is not PolicyName.NO else "no",
        "MaximumRetryCount": policy.max_retries,
    }
    if policy.delay_s is not None:
        out["Delay"] = round(policy.delay_s * 1e9)
    if policy.max_delay_s is not None:
        out["MaxDelay"] = round(policy.max_delay_s * 1e9)
    return out
