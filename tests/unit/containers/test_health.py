"""Tests for supervisor.containers.health: config parsing and merging, the state
machine, scheduling and the shapes derived from it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.units import parse_duration_ns
from supervisor.containers import health
from supervisor.containers.config import parse_create
from supervisor.containers.health import (
    DEFAULT_INTERVAL_NS,
    DEFAULT_RETRIES,
    DEFAULT_START_INTERVAL_NS,
    DEFAULT_TIMEOUT_NS,
    MAX_LOG_ENTRIES,
    NS_PER_S,
    HealthConfig,
    HealthState,
    HealthStatus,
    OnFailure,
    ProbeKind,
    ProbeResult,
)
from supervisor.containers.restart import PolicyName, RestartPolicy
from supervisor.errors import InvalidArgument

S = NS_PER_S
MS = 1_000_000
STARTING, HEALTHY, UNHEALTHY = HealthStatus.STARTING, HealthStatus.HEALTHY, HealthStatus.UNHEALTHY


def config(**kw: Any) -> HealthConfig:
    return HealthConfig(kind=ProbeKind.SHELL, command=("true",), **kw)


def result(code: int, *, at: int = 0, output: str = "") -> ProbeResult:
    return ProbeResult(start_ns=at, end_ns=at + 1, exit_code=code, output=output)


# -- parse_healthcheck ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ({}, {}),
        ({"Test": ["NONE"]}, {"Test": ["NONE"]}),
        ({"Test": []}, {}),
        ({"Test": "CMD-SHELL true"}, {"Test": ["CMD-SHELL true"]}),
        (
            {
                "Test": ["CMD-SHELL", "wget -q localhost"],
                "Interval": S,
                "Timeout": 500 * MS,
                "StartPeriod": 3 * S,
                "StartInterval": 100 * MS,
                "Retries": 2,
            },
            {
                "Test": ["CMD-SHELL", "wget -q localhost"],
                "Interval": S,
                "Timeout": 500 * MS,
                "StartPeriod": 3 * S,
                "StartInterval": 100 * MS,
                "Retries": 2,
            },
        ),
        ({"Interval": 0, "Timeout": None, "Retries": 0}, {}),
        ({"Interval": MS}, {"Interval": MS}),
        (
            {"Test": ["CMD", "/bin/check", "-v"], "Unknown": 1},
            {"Test": ["CMD", "/bin/check", "-v"]},
        ),
    ],
    ids=[
        "absent",
        "empty",
        "none",
        "empty-test-inherits",
        "string-test-is-one-element",
        "docker-cli-28-body",
        "zeros-are-omitted",
        "one-millisecond-is-the-minimum",
        "cmd-form-unknown-keys-dropped",
    ],
)
def test_parse_healthcheck_valid_bodies(raw: object, expected: object) -> None:
    assert health.parse_healthcheck(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"Interval": MS - 1}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Interval": -S}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
        ({"StartPeriod": 5}, "StartPeriod in Healthcheck cannot be less than 1ms"),
        ({"StartInterval": -1}, "StartInterval in Healthcheck cannot be less than 1ms"),
        ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
        (
            {"Interval": "1s"},
            "cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Interval of type time.Duration",
        ),
        ({"Interval": 1.5e9}, "cannot unmarshal number"),
        ({"Retries": True}, "cannot unmarshal bool"),
        (
            {"Test": [1]},
            "cannot unmarshal array into Go struct field HealthConfig.Healthcheck.Test",
        ),
        ({"Test": {"a": 1}}, "of type []string"),
        ({"Test": ["CMD"]}, "Healthcheck Test CMD needs a command"),
        ({"Test": ["CMD-SHELL"]}, "Healthcheck Test CMD-SHELL needs a command"),
        (["CMD", "true"], "of type container.HealthConfig"),
    ],
    ids=[
        "interval-under-1ms",
        "negative-interval",
        "timeout-under-1ms",
        "start-period-under-1ms",
        "negative-start-interval",
        "negative-retries",
        "string-duration",
        "float-duration",
        "bool-retries",
        "non-string-test",
        "object-test",
        "cmd-without-command",
        "shell-without-command",
        "not-an-object",
    ],
)
def test_parse_healthcheck_rejects_what_docker_rejects(raw: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=None) as info:
        health.parse_healthcheck(raw)
    assert message in str(info.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "Test": JSON | st.lists(st.sampled_from(["CMD", "CMD-SHELL", "NONE", "x"]), max_size=3),
        "Interval": JSON | st.integers(-S, 10 * S),
        "Timeout": JSON | st.integers(-S, 10 * S),
        "StartPeriod": st.integers(-S, 10 * S),
        "StartInterval": st.integers(-S, 10 * S),
        "Retries": JSON | st.integers(-3, 10),
    },
)


@given(JSON | FIELDS)
def test_parse_healthcheck_only_raises_invalid_argument_and_is_idempotent(raw: object) -> None:
    try:
        parsed = health.parse_healthcheck(raw)
    except InvalidArgument:
        return
    assert health.parse_healthcheck(parsed) == parsed


# -- merge_healthcheck and from_config --------------------------------------------------------

IMAGE = {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 10 * S, "Retries": 5}


@pytest.mark.parametrize(
    ("user", "image", "expected"),
    [
        (None, None, None),
        (None, IMAGE, IMAGE),
        ({"Test": ["CMD", "true"]}, None, {"Test": ["CMD", "true"]}),
        ({"Retries": 2}, IMAGE, {**IMAGE, "Retries": 2}),
        ({"Interval": S}, IMAGE, {**IMAGE, "Interval": S}),
        (
            {"Test": ["CMD", "/ok"], "Timeout": S},
            IMAGE,
            {"Test": ["CMD", "/ok"], "Timeout": S, "Interval": 10 * S, "Retries": 5},
        ),
        ({"Test": ["NONE"]}, IMAGE, {"Test": ["NONE"], "Interval": 10 * S, "Retries": 5}),
        ({}, IMAGE, IMAGE),
        (None, {}, None),
        (None, "garbage", None),
    ],
    ids=[
        "neither",
        "image-only",
        "user-only",
        "user-retries-keep-image-test",
        "user-interval-overrides",
        "user-test-and-timeout",
        "no-healthcheck-disables-image-test",
        "empty-user-inherits-all",
        "empty-image",
        "malformed-image",
    ],
)
def test_merge_healthcheck_field_by_field(
    user: dict[str, Any] | None, image: object, expected: object
) -> None:
    assert health.merge_healthcheck(user, image) == expected


@pytest.mark.parametrize(
    ("hc", "expected"),
    [
        (None, None),
        ({}, None),
        ({"Test": ["NONE"]}, None),
        ({"Test": ["CMD"]}, None),
        ({"Test": ["FOO", "x"]}, None),
        ({"Test": "CMD true"}, None),
        ({"Test": ["CMD", 1]}, None),
        (
            {"Test": ["CMD-SHELL", "exit 0"]},
            HealthConfig(ProbeKind.SHELL, ("exit 0",)),
        ),
        (
            {
                "Test": ["CMD", "/check", "a"],
                "Interval": S,
                "Timeout": 2 * S,
                "StartPeriod": 3 * S,
                "StartInterval": 4 * S,
                "Retries": 7,
            },
            HealthConfig(ProbeKind.CMD, ("/check", "a"), S, 2 * S, 3 * S, 4 * S, 7),
        ),
        (
            {"Test": ["CMD", "/c"], "Interval": -1, "Timeout": True, "Retries": "3"},
            HealthConfig(ProbeKind.CMD, ("/c",)),
        ),
    ],
    ids=[
        "absent",
        "empty",
        "none",
        "cmd-without-command",
        "unknown-type",
        "string-test",
        "non-string-argument",
        "shell-defaults",
        "cmd-all-fields",
        "bad-image-values-default",
    ],
)
def test_from_config(hc: object, expected: HealthConfig | None) -> None:
    assert health.from_config({"Healthcheck": hc}) == expected


def test_health_config_defaults_are_dockers() -> None:
    c = HealthConfig(ProbeKind.CMD, ("x",))
    assert (c.interval_ns, c.timeout_ns, c.start_period_ns, c.start_interval_ns, c.retries) == (
        30 * S,
        30 * S,
        0,
        5 * S,
        3,
    )
    assert c.timeout_s == 30.0


@pytest.mark.parametrize(
    ("kind", "command", "shell", "argv"),
    [
        (ProbeKind.SHELL, ("curl -f localhost",), None, ["/bin/sh", "-c", "curl -f localhost"]),
        (ProbeKind.SHELL, ("echo ok",), ["/bin/bash", "-ec"], ["/bin/bash", "-ec", "echo ok"]),
        (ProbeKind.SHELL, ("echo ok",), [], ["/bin/sh", "-c", "echo ok"]),
        (ProbeKind.CMD, ("/bin/check", "-v"), ["/bin/bash", "-c"], ["/bin/check", "-v"]),
    ],
    ids=["shell-default", "shell-from-config", "empty-shell", "cmd-ignores-shell"],
)
def test_health_config_argv(
    kind: ProbeKind, command: tuple[str, ...], shell: list[str] | None, argv: list[str]
) -> None:
    assert HealthConfig(kind, command).argv(shell) == argv


# -- health-on-failure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_config", "labels", "expected"),
    [
        ({}, {}, OnFailure.NONE),
        ({"HealthOnFailure": ""}, {}, OnFailure.NONE),
        ({"HealthOnFailure": "restart"}, {}, OnFailure.RESTART),
        ({"HealthOnFailure": "stop"}, {"berth.health-on-failure": "kill"}, OnFailure.STOP),
        ({}, {"berth.health-on-failure": "kill"}, OnFailure.KILL),
        ({"HealthOnFailure": None}, {"berth.health-on-failure": "restart"}, OnFailure.RESTART),
    ],
    ids=["unset", "empty", "host-config", "host-config-wins", "label", "null-falls-to-label"],
)
def test_parse_on_failure(
    host_config: dict[str, object], labels: dict[str, str], expected: OnFailure
) -> None:
    assert health.parse_on_failure(host_config, labels) == expected


@pytest.mark.parametrize(
    ("host_config", "labels", "message"),
    [
        ({"HealthOnFailure": "reboot"}, {}, "invalid health-on-failure action 'reboot'"),
        ({}, {"berth.health-on-failure": "Restart"}, "invalid health-on-failure action 'Restart'"),
        (
            {"HealthOnFailure": 1},
            {},
            "cannot unmarshal number into Go struct field HostConfig.HealthOnFailure",
        ),
    ],
    ids=["unknown", "case-sensitive-label", "wrong-type"],
)
def test_parse_on_failure_rejects(
    host_config: dict[str, object], labels: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        health.parse_on_failure(host_config, labels)
    assert message in str(info.value)


CHECKED = {"Healthcheck": {"Test": ["CMD", "true"]}}


def test_check_create_accepts_an_action_with_a_health_check() -> None:
    assert health.check_create(CHECKED, {"HealthOnFailure": "restart"}) is OnFailure.RESTART


@pytest.mark.parametrize(
    "cfg", [{}, {"Healthcheck": {"Test": ["NONE"]}}], ids=["no-check", "no-healthcheck"]
)
def test_check_create_refuses_an_action_without_a_health_check(cfg: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="without a health check"):
        health.check_create(cfg, {"HealthOnFailure": "kill"})


def test_check_create_tolerates_an_image_label_without_a_health_check() -> None:
    cfg = {"Labels": {"berth.health-on-failure": "restart"}}
    assert health.check_create(cfg, {}) is OnFailure.RESTART
    assert health.check_create(cfg, {"HealthOnFailure": "none"}) is OnFailure.NONE


def test_check_create_validates_the_label() -> None:
    with pytest.raises(InvalidArgument):
        health.check_create({"Labels": {"berth.health-on-failure": "x"}}, {})


@pytest.mark.parametrize(
    ("policy", "restart_count", "expected"),
    [
        (RestartPolicy(PolicyName.NO), 0, RestartPolicy(PolicyName.ALWAYS)),
        (RestartPolicy(PolicyName.ON_FAILURE), 9, RestartPolicy(PolicyName.ALWAYS)),
        (RestartPolicy(PolicyName.ON_FAILURE, 3), 2, RestartPolicy(PolicyName.ALWAYS)),
        (RestartPolicy(PolicyName.ON_FAILURE, 3), 3, RestartPolicy(PolicyName.ON_FAILURE, 3)),
        (
            RestartPolicy(PolicyName.ALWAYS, delay_s=1.0),
            0,
            RestartPolicy(PolicyName.ALWAYS, delay_s=1.0),
        ),
        (RestartPolicy(PolicyName.UNLESS_STOPPED), 4, RestartPolicy(PolicyName.UNLESS_STOPPED)),
        (
            RestartPolicy(PolicyName.NO, delay_s=2.0, max_delay_s=8.0),
            0,
            RestartPolicy(PolicyName.ALWAYS, delay_s=2.0, max_delay_s=8.0),
        ),
    ],
    ids=[
        "no-restarts",
        "on-failure-unlimited",
        "on-failure-under-max",
        "on-failure-at-max-gives-up",
        "always-unchanged",
        "unless-stopped-unchanged",
        "back-off-kept",
    ],
)
def test_policy_for_unhealthy_exit(
    policy: RestartPolicy, restart_count: int, expected: RestartPolicy
) -> None:
    assert health.policy_for_unhealthy_exit(policy, restart_count=restart_count) == expected


# -- the state machine ----------------------------------------------------------------------------


def test_begin_run_starts_fresh_but_keeps_the_log() -> None:
    old = HealthState(UNHEALTHY, 4, (result(1),))
    assert health.begin_run(old) == HealthState(STARTING, 0, (result(1),))
    assert health.begin_run(None) == HealthState(STARTING, 0, ())


def test_end_run_is_unhealthy_and_keeps_the_rest() -> None:
    assert health.end_run(HealthState(HEALTHY, 0, (result(0),))) == HealthState(
        UNHEALTHY, 0, (result(0),)
    )


# (status before, failing streak before, exit code, since start s, start period s, retries)
#   -> (status after, streak after, event)
RECORD_TABLE = [
    ((STARTING, 0, 0, 0, 0, 3), (HEALTHY, 0, HEALTHY)),
    ((STARTING, 0, 1, 0, 0, 3), (STARTING, 1, None)),
    ((STARTING, 2, 1, 0, 0, 3), (UNHEALTHY, 3, UNHEALTHY)),
    ((STARTING, 0, 1, 0, 0, 1), (UNHEALTHY, 1, UNHEALTHY)),
    ((STARTING, 0, 1, 5, 10, 1), (STARTING, 0, None)),
    ((STARTING, 0, 1, 10, 10, 1), (UNHEALTHY, 1, UNHEALTHY)),
    ((STARTING, 0, 0, 5, 10, 1), (HEALTHY, 0, HEALTHY)),
    ((HEALTHY, 0, 1, 5, 10, 1), (UNHEALTHY, 1, UNHEALTHY)),
    ((HEALTHY, 0, 1, 50, 10, 3), (HEALTHY, 1, None)),
    ((HEALTHY, 1, 2, 50, 10, 3), (HEALTHY, 2, None)),
    ((HEALTHY, 2, -1, 50, 10, 3), (UNHEALTHY, 3, UNHEALTHY)),
    ((HEALTHY, 2, 0, 50, 10, 3), (HEALTHY, 0, None)),
    ((UNHEALTHY, 3, 1, 50, 10, 3), (UNHEALTHY, 4, None)),
    ((UNHEALTHY, 7, 0, 50, 10, 3), (HEALTHY, 0, HEALTHY)),
]


@pytest.mark.parametrize(
    ("before", "after"),
    RECORD_TABLE,
    ids=[
        "first-success-is-healthy",
        "failure-counts-without-start-period",
        "retries-th-failure-is-unhealthy",
        "one-retry",
        "failure-inside-start-period-not-counted",
        "start-period-ends-exactly",
        "success-inside-start-period-ends-it",
        "healthy-ignores-start-period",
        "healthy-first-failure-stays",
        "exit-2-is-a-failure",
        "timeout-is-a-failure",
        "success-resets-streak",
        "unhealthy-keeps-counting",
        "unhealthy-recovers",
    ],
)
def test_record_table(
    before: tuple[HealthStatus, int, int, int, int, int],
    after: tuple[HealthStatus, int, HealthStatus | None],
) -> None:
    status, streak, code, since_s, period_s, retries = before
    cfg = config(start_period_ns=period_s * S, retries=retries)
    state, event = health.record(
        HealthState(status, streak), result(code), config=cfg, since_start_ns=since_s * S
    )
    assert (state.status, state.failing_streak, event) == after
    assert state.log == (result(code),)


def test_record_keeps_the_last_five_results() -> None:
    state = HealthState()
    for i in range(8):
        state, _ = health.record(state, result(i % 2, at=i), config=config(), since_start_ns=0)
    assert [r.start_ns for r in state.log] == [3, 4, 5, 6, 7]
    assert len(state.log) == MAX_LOG_ENTRIES


RUNS = st.lists(
    st.tuples(st.sampled_from([0, 0, 1, 1, 1, 2, -1, 137]), st.integers(0, 20)), max_size=30
)


@given(
    runs=RUNS,
    retries=st.integers(1, 5),
    period_s=st.integers(0, 10),
)
def test_record_invariants(runs: list[tuple[int, int]], retries: int, period_s: int) -> None:
    cfg = config(retries=retries, start_period_ns=period_s * S)
    state = health.begin_run(None)
    left_starting = False
    since_success = 0  # failures since the last success
    for i, (code, since_s) in enumerate(runs):
        before = state
        state, event = health.record(
            state, result(code, at=i), config=cfg, since_start_ns=since_s * S
        )
        # An event exactly when the status changes, never "starting".
        assert event == (state.status if state.status is not before.status else None)
        assert event is not STARTING
        # Results are logged in order, the last five.
        assert state.log == (*before.log, result(code, at=i))[-MAX_LOG_ENTRIES:]
        if code == 0:
            since_success = 0
            assert (state.status, state.failing_streak) == (HEALTHY, 0)
        else:
            since_success += 1
            assert state.failing_streak <= since_success
        if before.status is STARTING and since_s < period_s and code != 0:
            assert (state.status, state.failing_streak) == (STARTING, before.failing_streak)
        if state.status is UNHEALTHY:
            assert state.failing_streak >= retries
        if state.status is not STARTING:
            left_starting = True
        assert not (left_starting and state.status is STARTING)


# -- scheduling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "status", "since_s", "expected_s"),
    [
        ({}, STARTING, 0, 30),
        ({"interval_ns": 2 * S}, HEALTHY, 0, 2),
        ({"start_period_ns": 60 * S}, STARTING, 0, 5),
        ({"start_period_ns": 60 * S, "start_interval_ns": S}, STARTING, 30, 1),
        ({"start_period_ns": 7 * S}, STARTING, 5, 2),
        ({"start_period_ns": 60 * S}, HEALTHY, 10, 30),
        ({"start_period_ns": 60 * S}, STARTING, 60, 30),
        ({"start_period_ns": 60 * S}, STARTING, 90, 30),
    ],
    ids=[
        "defaults",
        "interval",
        "start-interval-in-start-period",
        "custom-start-interval",
        "never-past-the-start-period",
        "healthy-in-start-period-uses-interval",
        "start-period-over",
        "long-after",
    ],
)
def test_next_delay(
    kw: dict[str, int], status: HealthStatus, since_s: int, expected_s: int
) -> None:
    assert health.next_delay_ns(config(**kw), status=status, since_start_ns=since_s * S) == (
        expected_s * S
    )


@given(
    interval=st.integers(1, 100 * S),
    start_interval=st.integers(1, 100 * S),
    period=st.integers(0, 100 * S),
    since=st.integers(0, 200 * S),
    status=st.sampled_from(list(HealthStatus)),
)
def test_next_delay_is_positive_and_bounded(
    interval: int, start_interval: int, period: int, since: int, status: HealthStatus
) -> None:
    cfg = config(interval_ns=interval, start_interval_ns=start_interval, start_period_ns=period)
    delay = health.next_delay_ns(cfg, status=status, since_start_ns=since)
    assert 0 < delay <= max(interval, start_interval)


# -- results and shapes --------------------------------------------------------------------------


def test_probe_result_keeps_output_and_code() -> None:
    r = health.probe_result(
        exit_code=1, output=b"down\n", start_ns=1, end_ns=2, timed_out=False, timeout_ns=S
    )
    assert r == ProbeResult(1, 2, 1, "down\n")


def test_probe_result_truncates_like_docker() -> None:
    r = health.probe_result(
        exit_code=0, output=b"x" * 5000, start_ns=1, end_ns=2, timed_out=False, timeout_ns=S
    )
    assert r.output == "x" * 4096 + "..."
    exact = health.probe_result(
        exit_code=0, output=b"x" * 4096, start_ns=1, end_ns=2, timed_out=False, timeout_ns=S
    )
    assert exact.output == "x" * 4096


def test_probe_result_replaces_invalid_utf8() -> None:
    r = health.probe_result(
        exit_code=0, output=b"ok \xff", start_ns=1, end_ns=2, timed_out=False, timeout_ns=S
    )
    assert r.output == "ok \ufffd"


@pytest.mark.parametrize(
    ("output", "timeout_ns", "message"),
    [
        (b"", DEFAULT_TIMEOUT_NS, "Health check exceeded timeout (30s)"),
        (b"partial", 1500 * MS, "Health check exceeded timeout (1.5s): partial"),
    ],
    ids=["silent", "with-output"],
)
def test_probe_result_timeout_message(output: bytes, timeout_ns: int, message: str) -> None:
    r = health.probe_result(
        exit_code=-1, output=output, start_ns=1, end_ns=2, timed_out=True, timeout_ns=timeout_ns
    )
    assert (r.exit_code, r.output) == (-1, message)


def test_failed_result() -> None:
    assert health.failed_result("no such file", start_ns=1, end_ns=3) == ProbeResult(
        1, 3, -1, "no such file"
    )


@pytest.mark.parametrize(
    ("status", "suffix"),
    [(STARTING, "(health: starting)"), (HEALTHY, "(healthy)"), (UNHEALTHY, "(unhealthy)")],
    ids=["starting", "healthy", "unhealthy"],
)
def test_status_suffix(status: HealthStatus, suffix: str) -> None:
    assert health.status_suffix(HealthState(status)) == suffix


def test_event_action_is_dockers() -> None:
    assert health.event_action(HEALTHY) == "health_status: healthy"
    assert health.event_action(UNHEALTHY) == "health_status: unhealthy"


def test_filter_value() -> None:
    assert health.filter_value(None) == "none"
    assert health.filter_value(HealthState(HEALTHY)) == "healthy"
    assert {s.value for s in HealthStatus} | {"none"} == health.FILTER_VALUES


@pytest.mark.parametrize(
    ("state", "configured", "ever_started", "expected"),
    [
        (HealthState(HEALTHY), True, True, HealthState(HEALTHY)),
        (None, True, True, HealthState(UNHEALTHY)),
        (None, True, False, None),
        (None, False, True, None),
    ],
    ids=["in-memory", "ran-before-daemon-restart", "never-started", "no-check"],
)
def test_shown(
    state: HealthState | None, configured: bool, ever_started: bool, expected: HealthState | None
) -> None:
    assert health.shown(state, configured=configured, ever_started=ever_started) == expected


def test_status_enum_round_trips() -> None:
    for status in HealthStatus:
        assert HealthStatus(str(status)) is status
    for action in OnFailure:
        assert OnFailure(str(action)) is action


# -- go_duration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5\u00b5s"),
        (MS, "1ms"),
        (500 * MS, "500ms"),
        (1_234_567, "1.234567ms"),
        (S, "1s"),
        (1500 * MS, "1.5s"),
        (DEFAULT_INTERVAL_NS, "30s"),
        (60 * S, "1m0s"),
        (90 * S, "1m30s"),
        (3600 * S, "1h0m0s"),
        (3661 * S + 1, "1h1m1.000000001s"),
        (-S, "-1s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert health.go_duration(ns) == text


@given(st.integers(-(2**62), 2**62))
def test_go_duration_round_trips_through_go_parser(ns: int) -> None:
    assert parse_duration_ns(health.go_duration(ns)) == ns


def test_constants_are_dockers() -> None:
    assert (DEFAULT_RETRIES, DEFAULT_START_INTERVAL_NS, MAX_LOG_ENTRIES) == (3, 5 * S, 5)


# -- POST /containers/create (supervisor.containers.config.parse_create) ---------------------------

CID = "0123456789ab" + "c" * 52


def create_config(body: dict[str, Any], image: dict[str, Any] | None = None) -> dict[str, Any]:
    full = {"Image": "web", "Cmd": ["httpd"], **body}
    return parse_create(full, image_ref="web", image_config=image or {}, container_id=CID).config


def test_create_without_healthcheck_has_none_in_config() -> None:
    assert "Healthcheck" not in create_config({})


def test_create_inherits_image_healthcheck() -> None:
    assert create_config({}, {"Healthcheck": IMAGE})["Healthcheck"] == IMAGE


def test_create_merges_user_fields_over_image() -> None:
    cfg = create_config({"Healthcheck": {"Interval": S, "Retries": 0}}, {"Healthcheck": IMAGE})
    assert cfg["Healthcheck"] == {**IMAGE, "Interval": S}


def test_create_no_healthcheck_keeps_none_test() -> None:
    cfg = create_config({"Healthcheck": {"Test": ["NONE"]}}, {"Healthcheck": IMAGE})
    assert cfg["Healthcheck"]["Test"] == ["NONE"]
    assert health.from_config(cfg) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Healthcheck": {"Interval": 10}}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"Retries": -2}}, "Retries in Healthcheck cannot be negative"),
        ({"HostConfig": {"HealthOnFailure": "bounce"}}, "invalid health-on-failure action"),
        ({"HostConfig": {"HealthOnFailure": "restart"}}, "without a health check"),
        ({"Labels": {"berth.health-on-failure": "bounce"}}, "invalid health-on-failure action"),
    ],
    ids=["interval", "retries", "bad-action", "action-without-check", "bad-label"],
)
def test_create_rejects_bad_health_settings(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        create_config(body)
    assert message in str(info.value)


def test_create_keeps_health_on_failure_in_host_config() -> None:
    result = parse_create(
        {
            "Image": "web",
            "Cmd": ["httpd"],
            "Healthcheck": {"Test": ["CMD", "true"]},
            "HostConfig": {"HealthOnFailure": "restart"},
        },
        image_ref="web",
        image_config={},
        container_id=CID,
    )
    assert result.host_config["HealthOnFailure"] == "restart"
    assert health.parse_on_failure(result.host_config, {}) is OnFailure.RESTART
