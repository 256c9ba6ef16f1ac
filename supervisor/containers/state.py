"""The container state machine: one table, one function, no I/O (h11's ``_state.py`` lesson).

Theory of operation: a container is in exactly one :class:`Status`. Operations that the
API or the monitor apply are :class:`Op` values. :func:`next_state` answers the state
after an operation or raises :class:`NotModified` (Docker's 304: start a running
container, stop a stopped one) or :class:`Conflict` (409: remove a running container,
pause a stopped one). ``STATUS_NAMES`` is the only mapping to Docker's strings, and it is
the enum's own value, so the two cannot drift apart (podman's drift between two maps).

This module imports nothing but the standard library and ``supervisor.errors``.
"""

from __future__ import annotations

import enum

from supervisor.errors import Conflict, NotModified


class Status(enum.StrEnum):
    """Docker's ``State.Status`` strings."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"  # waiting out a restart back-off
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


class Op(enum.StrEnum):
    START = "start"  # API start, or a restart after back-off
    EXIT = "exit"  # the monitor saw the init process end
    SCHEDULE_RESTART = "schedule_restart"  # restart policy said yes; back-off sleep begins
    STOP = "stop"  # API stop / kill; the state changes on EXIT, this only validates
    PAUSE = "pause"
    UNPAUSE = "unpause"
    REMOVE = "remove"  # without force
    FORCE_REMOVE = "force_remove"
    FAIL = "fail"  # start failed (runtime error): Docker leaves the container "created"/"exited"


_S, _O = Status, Op

TRANSITIONS: dict[tuple[Status, Op], Status] = {
    (_S.CREATED, _O.START): _S.RUNNING,
    (_S.EXITED, _O.START): _S.RUNNING,
    (_S.RESTARTING, _O.START): _S.RUNNING,
    (_S.RUNNING, _O.EXIT): _S.EXITED,
    (_S.PAUSED, _O.EXIT): _S.EXITED,
    (_S.RUNNING, _O.SCHEDULE_RESTART): _S.RESTARTING,
    (_S.EXITED, _O.SCHEDULE_RESTART): _S.RESTARTING,
    (_S.RUNNING, _O.STOP): _S.RUNNING,
    (_S.PAUSED, _O.STOP): _S.PAUSED,
    (_S.RESTARTING, _O.STOP): _S.EXITED,
    (_S.RUNNING, _O.PAUSE): _S.PAUSED,
    (_S.PAUSED, _O.UNPAUSE): _S.RUNNING,
    (_S.CREATED, _O.REMOVE): _S.REMOVING,
    (_S.EXITED, _O.REMOVE): _S.REMOVING,
    (_S.DEAD, _O.REMOVE): _S.REMOVING,
    (_S.CREATED, _O.FAIL): _S.CREATED,
    (_S.EXITED, _O.FAIL): _S.EXITED,
    (_S.RESTARTING, _O.FAIL): _S.EXITED,
    (_S.DEAD, _O.FAIL): _S.DEAD,
}
for _status in Status:
    if _status is not Status.REMOVING:
        TRANSITIONS[(_status, Op.FORCE_REMOVE)] = Status.REMOVING

# Docker answers 304 for these (docker-archive/engine#356): not an error, nothing to do.
NO_OPS: frozenset[tuple[Status, Op]] = frozenset(
    {
        (_S.RUNNING, _O.START),
        (_S.CREATED, _O.STOP),
        (_S.EXITED, _O.STOP),
        (_S.DEAD, _O.STOP),
    }
)

_CONFLICT_MESSAGES: dict[Op, str] = {
    Op.REMOVE: "cannot remove container: container is {status}: stop the container before removing or force remove",
    Op.PAUSE: "container is not running",
    Op.UNPAUSE: "container is not paused",
    Op.STOP: "container is {status}",
}

# Where Docker's wording depends on the state too (moby daemon/start.go, pause.go).
_STATE_CONFLICT_MESSAGES: dict[tuple[Status, Op], str] = {
    (_S.PAUSED, _O.START): "cannot start a paused container, try unpause instead",
    (_S.REMOVING, _O.START): "container is marked for removal and cannot be started",
    (_S.DEAD, _O.START): "container is marked for removal and cannot be started",
    (_S.PAUSED, _O.PAUSE): "container is already paused",
    (_S.RESTARTING, _O.PAUSE): "container is restarting, wait until the container is running",
}


def next_state(status: Status, op: Op) -> Status:
    """The state after applying ``op`` in ``status``.

    Raises:
        NotModified: the operation has nothing to do (304).
        Conflict: the operation is not allowed in this state (409).
    """
    if (status, op) in NO_OPS:
        raise NotModified(f"container already {status}")
    try:
        return TRANSITIONS[(status, op)]
    except KeyError:
        template = _STATE_CONFLICT_MESSAGES.get((status, op)) or _CONFLICT_MESSAGES.get(
            op, "cannot {op} a {status} container"
        )
        raise Conflict(template.format(op=op.value, status=status.value)) from None


def is_active(status: Status) -> bool:
    """True while the container holds a process or a pending restart."""
    return status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)
