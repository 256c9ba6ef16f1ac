"""Tests for supervisor.containers.state: every (Status, Op) pair against Docker's answer.

The expectations are moby's: ``daemon/start.go`` (304 on a running container, 409 on a
paused, removing or dead one), ``daemon/stop.go`` (304 on a stopped one),
``daemon/pause.go`` / ``unpause.go`` (409), ``daemon/delete.go`` (409 without force).
"""

from __future__ import annotations

import itertools
import re

import pytest

from supervisor.containers.state import NO_OPS, TRANSITIONS, Op, Status, is_active, next_state
from supervisor.errors import Conflict, NotModified

S = Status
MODIFIED, CONFLICT = NotModified, Conflict

# (status, op) -> the next status, or the error class Docker answers with.
EXPECTED: dict[tuple[Status, Op], Status | type[Exception]] = {
    # start: 304 when running; 409 paused/removing/dead (moby start.go). A pending restart
    # starts now: berth's choice (Docker counts "restarting" as running and answers 304).
    (S.CREATED, Op.START): S.RUNNING,
    (S.RUNNING, Op.START): MODIFIED,
    (S.PAUSED, Op.START): CONFLICT,
    (S.RESTARTING, Op.START): S.RUNNING,
    (S.REMOVING, Op.START): CONFLICT,
    (S.EXITED, Op.START): S.RUNNING,
    (S.DEAD, Op.START): CONFLICT,
    # the monitor saw the process end
    (S.CREATED, Op.EXIT): CONFLICT,
    (S.RUNNING, Op.EXIT): S.EXITED,
    (S.PAUSED, Op.EXIT): S.EXITED,
    (S.RESTARTING, Op.EXIT): CONFLICT,
    (S.REMOVING, Op.EXIT): CONFLICT,
    (S.EXITED, Op.EXIT): CONFLICT,
    (S.DEAD, Op.EXIT): CONFLICT,
    # the restart policy said yes
    (S.CREATED, Op.SCHEDULE_RESTART): CONFLICT,
    (S.RUNNING, Op.SCHEDULE_RESTART): S.RESTARTING,
    (S.PAUSED, Op.SCHEDULE_RESTART): CONFLICT,
    (S.RESTARTING, Op.SCHEDULE_RESTART): CONFLICT,
    (S.REMOVING, Op.SCHEDULE_RESTART): CONFLICT,
    (S.EXITED, Op.SCHEDULE_RESTART): S.RESTARTING,
    (S.DEAD, Op.SCHEDULE_RESTART): CONFLICT,
    # stop: 304 unless running (paused and restarting count as running in Docker)
    (S.CREATED, Op.STOP): MODIFIED,
    (S.RUNNING, Op.STOP): S.RUNNING,
    (S.PAUSED, Op.STOP): S.PAUSED,
    (S.RESTARTING, Op.STOP): S.EXITED,
    (S.REMOVING, Op.STOP): CONFLICT,
    (S.EXITED, Op.STOP): MODIFIED,
    (S.DEAD, Op.STOP): MODIFIED,
    # pause: only a running container
    (S.CREATED, Op.PAUSE): CONFLICT,
    (S.RUNNING, Op.PAUSE): S.PAUSED,
    (S.PAUSED, Op.PAUSE): CONFLICT,
    (S.RESTARTING, Op.PAUSE): CONFLICT,
    (S.REMOVING, Op.PAUSE): CONFLICT,
    (S.EXITED, Op.PAUSE): CONFLICT,
    (S.DEAD, Op.PAUSE): CONFLICT,
    # unpause: only a paused container
    (S.CREATED, Op.UNPAUSE): CONFLICT,
    (S.RUNNING, Op.UNPAUSE): CONFLICT,
    (S.PAUSED, Op.UNPAUSE): S.RUNNING,
    (S.RESTARTING, Op.UNPAUSE): CONFLICT,
    (S.REMOVING, Op.UNPAUSE): CONFLICT,
    (S.EXITED, Op.UNPAUSE): CONFLICT,
    (S.DEAD, Op.UNPAUSE): CONFLICT,
    # remove without force: 409 while running, paused, restarting or being removed
    (S.CREATED, Op.REMOVE): S.REMOVING,
    (S.RUNNING, Op.REMOVE): CONFLICT,
    (S.PAUSED, Op.REMOVE): CONFLICT,
    (S.RESTARTING, Op.REMOVE): CONFLICT,
    (S.REMOVING, Op.REMOVE): CONFLICT,
    (S.EXITED, Op.REMOVE): S.REMOVING,
    (S.DEAD, Op.REMOVE): S.REMOVING,
    # remove with force: anything but a removal already in progress
    (S.CREATED, Op.FORCE_REMOVE): S.REMOVING,
    (S.RUNNING, Op.FORCE_REMOVE): S.REMOVING,
    (S.PAUSED, Op.FORCE_REMOVE): S.REMOVING,
    (S.RESTARTING, Op.FORCE_REMOVE): S.REMOVING,
    (S.REMOVING, Op.FORCE_REMOVE): CONFLICT,
    (S.EXITED, Op.FORCE_REMOVE): S.REMOVING,
    (S.DEAD, Op.FORCE_REMOVE): S.REMOVING,
    # a start that failed leaves the container where it was (a pending restart: exited)
    (S.CREATED, Op.FAIL): S.CREATED,
    (S.RUNNING, Op.FAIL): CONFLICT,
    (S.PAUSED, Op.FAIL): CONFLICT,
    (S.RESTARTING, Op.FAIL): S.EXITED,
    (S.REMOVING, Op.FAIL): CONFLICT,
    (S.EXITED, Op.FAIL): S.EXITED,
    (S.DEAD, Op.FAIL): S.DEAD,
}

PAIRS = list(itertools.product(Status, Op))


def test_expected_table_covers_every_status_op_pair() -> None:
    assert set(EXPECTED) == set(PAIRS)


@pytest.mark.parametrize(("status", "op"), PAIRS, ids=[f"{s}-{o}" for s, o in PAIRS])
def test_next_state_pair_matches_docker(status: Status, op: Op) -> None:
    expected = EXPECTED[(status, op)]
    if isinstance(expected, Status):
        assert next_state(status, op) is expected
    else:
        with pytest.raises(expected) as info:
            next_state(status, op)
        assert type(info.value) is expected  # NotModified is not a Conflict, nor the reverse


@pytest.mark.parametrize(
    ("status", "op", "http"),
    [
        (S.RUNNING, Op.START, 304),
        (S.EXITED, Op.STOP, 304),
        (S.CREATED, Op.STOP, 304),
        (S.RUNNING, Op.REMOVE, 409),
        (S.PAUSED, Op.START, 409),
        (S.EXITED, Op.PAUSE, 409),
        (S.RUNNING, Op.UNPAUSE, 409),
    ],
    ids=[
        "start-running",
        "stop-exited",
        "stop-created",
        "rm-running",
        "start-paused",
        "pause-exited",
        "unpause-running",
    ],
)
def test_next_state_refusal_carries_docker_http_status(status: Status, op: Op, http: int) -> None:
    with pytest.raises((NotModified, Conflict)) as info:
        next_state(status, op)
    assert info.value.status == http


@pytest.mark.parametrize(
    ("status", "op", "message"),
    [
        (S.RUNNING, Op.START, "container already running"),
        (S.EXITED, Op.STOP, "container already exited"),
        (S.PAUSED, Op.START, "cannot start a paused container, try unpause instead"),
        (S.DEAD, Op.START, "container is marked for removal and cannot be started"),
        (S.REMOVING, Op.START, "container is marked for removal and cannot be started"),
        (S.EXITED, Op.PAUSE, "container is not running"),
        (S.PAUSED, Op.PAUSE, "container is already paused"),
        (S.RESTARTING, Op.PAUSE, "container is restarting, wait until the container is running"),
        (S.RUNNING, Op.UNPAUSE, "container is not paused"),
        (
            S.RUNNING,
            Op.REMOVE,
            "cannot remove container: container is running: stop the container before removing or force remove",
        ),
        (S.REMOVING, Op.STOP, "container is removing"),
        (S.CREATED, Op.EXIT, "cannot exit a created container"),
    ],
    ids=[
        "start-running",
        "stop-exited",
        "start-paused",
        "start-dead",
        "start-removing",
        "pause-exited",
        "pause-paused",
        "pause-restarting",
        "unpause-running",
        "rm-running",
        "stop-removing",
        "exit-created",
    ],
)
def test_next_state_refusal_message_follows_docker(status: Status, op: Op, message: str) -> None:
    with pytest.raises((NotModified, Conflict), match=f"^{re.escape(message)}$"):
        next_state(status, op)


def test_no_ops_and_transitions_are_disjoint() -> None:
    assert not NO_OPS & set(TRANSITIONS)


def test_next_state_never_leaves_removing_but_by_conflict() -> None:
    for op in Op:
        with pytest.raises(Conflict):
            next_state(S.REMOVING, op)


@pytest.mark.parametrize("status", list(Status), ids=[s.value for s in Status])
def test_status_str_round_trip_is_identity(status: Status) -> None:
    assert Status(str(status)) is status
    assert str(status) == status.value


@pytest.mark.parametrize("op", list(Op), ids=[o.value for o in Op])
def test_op_str_round_trip_is_identity(op: Op) -> None:
    assert Op(str(op)) is op


def test_status_values_are_dockers_state_strings() -> None:
    assert {s.value for s in Status} == {
        "created",
        "running",
        "paused",
        "restarting",
        "removing",
        "exited",
        "dead",
    }


@pytest.mark.parametrize(
    ("status", "active"),
    [
        (S.CREATED, False),
        (S.RUNNING, True),
        (S.PAUSED, True),
        (S.RESTARTING, True),
        (S.REMOVING, False),
        (S.EXITED, False),
        (S.DEAD, False),
    ],
    ids=[s.value for s in Status],
)
def test_is_active_status_matches_docker_running_flag(status: Status, active: bool) -> None:
    assert is_active(status) is active
