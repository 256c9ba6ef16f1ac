"""Tests for supervisor.containers.restart: policy parsing and moby's restartmanager back-off."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.restart import (
    DEFAULT_DELAY_S,
    DEFAULT_MAX_DELAY_S,
    RESET_AFTER_S,
    PolicyName,
    RestartDecision,
    RestartPolicy,
    decide_restart,
    parse_policy,
    to_api,
)
from supervisor.errors import InvalidArgument

NO = RestartPolicy(PolicyName.NO)
ALWAYS = RestartPolicy(PolicyName.ALWAYS)
UNLESS_STOPPED = RestartPolicy(PolicyName.UNLESS_STOPPED)
ON_FAILURE = RestartPolicy(PolicyName.ON_FAILURE)


def decide(
    policy: RestartPolicy,
    *,
    exit_code: int = 1,
    manually_stopped: bool = False,
    ran_for_s: float = 1.0,
    restart_count: int = 0,
    backoff_s: float = 0.0,
) -> RestartDecision:
    return decide_restart(
        policy,
        exit_code=exit_code,
        manually_stopped=manually_stopped,
        ran_for_s=ran_for_s,
        restart_count=restart_count,
        backoff_s=backoff_s,
    )


# -- parse_policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        (None, RestartPolicy()),
        ({}, RestartPolicy()),
        ({"Name": ""}, RestartPolicy()),
        ({"Name": "", "MaximumRetryCount": 3}, RestartPolicy()),
        ({"Name": "no"}, RestartPolicy(PolicyName.NO)),
        ({"Name": "always"}, ALWAYS),
        ({"Name": "unless-stopped", "MaximumRetryCount": 0}, UNLESS_STOPPED),
        ({"Name": "on-failure"}, ON_FAILURE),
        ({"Name": "on-failure", "MaximumRetryCount": 5}, RestartPolicy(PolicyName.ON_FAILURE, 5)),
        ({"Name": "always", "MaximumRetryCount": None}, ALWAYS),
        (
            {"Name": "always", "Delay": 2_000_000_000, "MaxDelay": 30_000_000_000},
            RestartPolicy(PolicyName.ALWAYS, delay_s=2.0, max_delay_s=30.0),
        ),
        ({"Name": "always", "Delay": 0, "MaxDelay": None}, ALWAYS),
    ],
    ids=[
        "none",
        "empty-object",
        "empty-name",
        "empty-name-with-count",
        "no",
        "always",
        "unless-stopped",
        "on-failure",
        "on-failure-5",
        "null-count",
        "delays",
        "zero-delay",
    ],
)
def test_parse_policy_valid_returns_policy(api: object, expected: RestartPolicy) -> None:
    assert parse_policy(api) == expected


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ({"Name": "sometimes"}, "invalid restart policy 'sometimes'"),
        ({"Name": "Always"}, "invalid restart policy 'Always'"),
        ({"Name": "on-failure:3"}, "invalid restart policy 'on-failure:3'"),
        (
            {"Name": "on-failure", "MaximumRetryCount": -1},
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            {"Name": "always", "MaximumRetryCount": 3},
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            {"Name": "unless-stopped", "MaximumRetryCount": 1},
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            {"Name": "no", "MaximumRetryCount": 1},
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        ("always", "invalid restart policy: expected an object"),
        (["always"], "invalid restart policy: expected an object"),
        ({"Name": 1}, "invalid restart policy: wrong types"),
        ({"Name": "on-failure", "MaximumRetryCount": "3"}, "invalid restart policy: wrong types"),
        ({"Name": "on-failure", "MaximumRetryCount": True}, "invalid restart policy: wrong types"),
        (
            {"Name": "always", "Delay": -1},
            "invalid restart policy: Delay must be a non-negative duration in ns",
        ),
        (
            {"Name": "always", "Delay": 1.5},
            "invalid restart policy: Delay must be a non-negative duration in ns",
        ),
        (
            {"Name": "always", "MaxDelay": "1s"},
            "invalid restart policy: MaxDelay must be a non-negative duration in ns",
        ),
        (
            {"Name": "always", "MaxDelay": True},
            "invalid restart policy: MaxDelay must be a non-negative duration in ns",
        ),
    ],
    ids=[
        "unknown",
        "uppercase",
        "cli-syntax",
        "negative-count",
        "count-with-always",
        "count-with-unless-stopped",
        "count-with-no",
        "string",
        "list",
        "name-int",
        "count-str",
        "count-bool",
        "negative-delay",
        "float-delay",
        "string-max-delay",
        "bool-max-delay",
    ],
)
def test_parse_policy_invalid_raises_docker_message(api: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_policy(api)
    assert str(info.value) == message
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (RestartPolicy(), {"Name": "no", "MaximumRetryCount": 0}),
        (RestartPolicy(PolicyName.ON_FAILURE, 3), {"Name": "on-failure", "MaximumRetryCount": 3}),
        (
            RestartPolicy(PolicyName.ALWAYS, delay_s=0.5, max_delay_s=10.0),
            {
                "Name": "always",
                "MaximumRetryCount": 0,
                "Delay": 500_000_000,
                "MaxDelay": 10_000_000_000,
            },
        ),
    ],
    ids=["no", "on-failure", "with-delays"],
)
def test_to_api_policy_gives_inspect_object(
    policy: RestartPolicy, expected: dict[str, object]
) -> None:
    assert to_api(policy) == expected


@given(
    name=st.sampled_from(list(PolicyName)),
    retries=st.integers(0, 1000),
    delay_ns=st.one_of(st.none(), st.integers(1, 10**12)),
    max_delay_ns=st.one_of(st.none(), st.integers(1, 10**12)),
)
def test_to_api_parse_policy_round_trips(
    name: PolicyName, retries: int, delay_ns: int | None, max_delay_ns: int | None
) -> None:
    if name is not PolicyName.ON_FAILURE:
        retries = 0
    api: dict[str, object] = {"Name": name.value, "MaximumRetryCount": retries}
    if delay_ns is not None:
        api["Delay"] = delay_ns
    if max_delay_ns is not None:
        api["MaxDelay"] = max_delay_ns
    assert to_api(parse_policy(api)) == api


def test_restart_policy_defaults_are_dockers() -> None:
    assert RestartPolicy().initial_delay_s == DEFAULT_DELAY_S == 0.1
    assert RestartPolicy().cap_s == DEFAULT_MAX_DELAY_S == 60.0
    assert RESET_AFTER_S == 10.0


# -- decide_restart: whether --------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "exit_code", "restart"),
    [
        (NO, 0, False),
        (NO, 1, False),
        (NO, 137, False),
        (ALWAYS, 0, True),
        (ALWAYS, 1, True),
        (ALWAYS, 137, True),
        (UNLESS_STOPPED, 0, True),
        (UNLESS_STOPPED, 2, True),
        (ON_FAILURE, 0, False),
        (ON_FAILURE, 1, True),
        (ON_FAILURE, 143, True),
    ],
    ids=[
        "no-exit0",
        "no-exit1",
        "no-killed",
        "always-exit0",
        "always-exit1",
        "always-killed",
        "unless-stopped-exit0",
        "unless-stopped-exit2",
        "on-failure-exit0",
        "on-failure-exit1",
        "on-failure-sigterm",
    ],
)
def test_decide_restart_policy_and_exit_code_decide(
    policy: RestartPolicy, exit_code: int, restart: bool
) -> None:
    assert decide(policy, exit_code=exit_code).restart is restart


@pytest.mark.parametrize(
    "policy",
    [NO, ALWAYS, UNLESS_STOPPED, ON_FAILURE],
    ids=["no", "always", "unless-stopped", "on-failure"],
)
def test_decide_restart_manually_stopped_does_not_restart(policy: RestartPolicy) -> None:
    decision = decide(policy, exit_code=137, manually_stopped=True)
    assert decision == RestartDecision(False, reason="stopped by the user")


def test_decide_restart_on_failure_exit0_does_not_restart() -> None:
    assert decide(ON_FAILURE, exit_code=0).reason == "exited successfully"


@pytest.mark.parametrize(
    ("max_retries", "restart_count", "restart"),
    [
        (3, 0, True),
        (3, 2, True),
        (3, 3, False),
        (3, 10, False),
        (1, 0, True),
        (1, 1, False),
        (0, 0, True),
        (0, 10_000, True),
    ],
    ids=[
        "3-of-0",
        "3-of-2",
        "3-of-3",
        "3-of-10",
        "1-of-0",
        "1-of-1",
        "unlimited-0",
        "unlimited-many",
    ],
)
def test_decide_restart_on_failure_max_retries_bound_restarts(
    max_retries: int, restart_count: int, restart: bool
) -> None:
    policy = RestartPolicy(PolicyName.ON_FAILURE, max_retries)
    decision = decide(policy, exit_code=1, restart_count=restart_count)
    assert decision.restart is restart
    if not restart:
        assert decision.reason == "maximum retry count reached"


@pytest.mark.parametrize("restart_count", [0, 5, 1000], ids=["0", "5", "1000"])
def test_decide_restart_always_ignores_restart_count(restart_count: int) -> None:
    assert decide(ALWAYS, restart_count=restart_count).restart


# -- decide_restart: when -------------------------------------------------------------------


def test_decide_restart_first_restart_waits_100ms() -> None:
    decision = decide(ALWAYS, backoff_s=0.0)
    assert decision.delay_s == pytest.approx(0.1)
    assert decision.next_backoff_s == decision.delay_s


def test_decide_restart_consecutive_restarts_double_until_one_minute() -> None:
    backoff, delays = 0.0, []
    for _ in range(15):
        decision = decide(ALWAYS, ran_for_s=0.5, backoff_s=backoff)
        delays.append(decision.delay_s)
        backoff = decision.next_backoff_s
    expected = [min(0.1 * 2**n, 60.0) for n in range(15)]
    assert delays == pytest.approx(expected)
    assert delays[-1] == 60.0


@pytest.mark.parametrize(
    ("ran_for_s", "delay"),
    [(9.999, 12.8), (10.0, 0.1), (3600.0, 0.1)],
    ids=["just-under-10s", "exactly-10s", "an-hour"],
)
def test_decide_restart_run_of_10s_resets_backoff(ran_for_s: float, delay: float) -> None:
    assert decide(ALWAYS, ran_for_s=ran_for_s, backoff_s=6.4).delay_s == pytest.approx(delay)


def test_decide_restart_user_max_delay_caps_backoff() -> None:
    policy = RestartPolicy(PolicyName.ALWAYS, max_delay_s=5.0)
    assert decide(policy, backoff_s=3.2).delay_s == 5.0
    assert decide(policy, backoff_s=5.0).delay_s == 5.0


def test_decide_restart_user_delay_starts_backoff() -> None:
    policy = RestartPolicy(PolicyName.UNLESS_STOPPED, delay_s=2.0)
    first = decide(policy)
    second = decide(policy, backoff_s=first.next_backoff_s)
    assert (first.delay_s, second.delay_s) == (2.0, 4.0)


def test_decide_restart_backoff_from_smaller_old_policy_rises_to_initial() -> None:
    policy = RestartPolicy(PolicyName.ALWAYS, delay_s=5.0)
    assert decide(policy, backoff_s=0.1).delay_s == 5.0


def test_decide_restart_no_restart_carries_no_delay() -> None:
    decision = decide(NO, backoff_s=3.0)
    assert (decision.delay_s, decision.next_backoff_s) == (0.0, 0.0)


@given(
    initial=st.floats(0.001, 100.0),
    extra=st.floats(0.0, 1000.0),
    backoff=st.one_of(st.just(0.0), st.floats(0.0, 10_000.0)),
    ran_for=st.floats(0.0, 100.0),
    name=st.sampled_from([PolicyName.ALWAYS, PolicyName.UNLESS_STOPPED, PolicyName.ON_FAILURE]),
)
def test_decide_restart_delay_always_within_initial_and_cap(
    initial: float, extra: float, backoff: float, ran_for: float, name: PolicyName
) -> None:
    policy = RestartPolicy(name, delay_s=initial, max_delay_s=initial + extra)
    decision = decide(policy, exit_code=1, ran_for_s=ran_for, backoff_s=backoff)
    assert decision.restart
    assert policy.initial_delay_s <= decision.delay_s <= policy.cap_s
    assert decision.next_backoff_s == decision.delay_s


@given(backoff=st.floats(0.0, 120.0), ran_for=st.floats(0.0, 20.0))
def test_decide_restart_default_delay_within_100ms_and_60s(backoff: float, ran_for: float) -> None:
    decision = decide(ALWAYS, ran_for_s=ran_for, backoff_s=backoff)
    assert DEFAULT_DELAY_S <= decision.delay_s <= DEFAULT_MAX_DELAY_S
