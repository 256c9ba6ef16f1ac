"""What berthd holds in memory about a container besides its SQLite record: the
:class:`Handle` (the record plus run-time state), the berth ends of a run's stdio
(:class:`Output`) and where the container's files live (:class:`Paths`).

A plain types module, so the manager and the modules it delegates to (``wiring``,
``runio``, ``healthhooks``) share these without importing each other.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from supervisor.containers.logs import OutputHub, format_time
from supervisor.model import Container, ContainerId
from supervisor.network.manager import Sandbox

#: Seconds between the stop signal and SIGKILL when neither the request nor the
#: container's ``StopTimeout`` says (Docker's default).
DEFAULT_STOP_TIMEOUT = 10


@attrs.define(eq=False)
class ExitNotice:
    """Set once when a run ends (or the container is removed); carries the exit code."""

    event: trio.Event = attrs.field(factory=trio.Event)
    code: int = 0
    error: str = ""

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def _set_event() -> trio.Event:
    event = trio.Event()
    event.set()
    return event


@attrs.define
class Output:
    """The berth ends of a run's stdio. ``stdout`` is the pty master for a TTY (then
    ``stderr`` is -1); ``stdin`` moves to the handle once the run is launched."""

    stdout: int
    stderr: int
    oomfd: int | None
    tty: bool = False
    stdin: int = -1
    drained: trio.Event = attrs.field(factory=trio.Event)
    open_streams: int = 0

    def __attrs_post_init__(self) -> None:
        self.open_streams = sum(fd >= 0 for fd in (self.stdout, self.stderr))

    def stream_done(self) -> None:
        self.open_streams -= 1
        if self.open_streams <= 0:
            self.drained.set()

    def close(self) -> None:
        for fd in (self.stdout, self.stderr, self.oomfd, self.stdin):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stdout = self.stderr = self.stdin = -1
        self.oomfd = None


@attrs.define(eq=False)
class Handle:
    record: Container
    hub: OutputHub = attrs.field(factory=OutputHub)
    lock: trio.Lock = attrs.field(factory=trio.Lock)
    exited: ExitNotice = attrs.field(factory=ExitNotice)
    removed: ExitNotice = attrs.field(factory=ExitNotice)
    pidfd: int = -1
    supervising: bool = False
    idle: trio.Event = attrs.field(factory=trio.Event)  # set when no supervise task runs
    restart_scope: trio.CancelScope | None = None
    stopping: bool = False
    backoff_s: float = 0.0
    restart_delay_s: float = 0.0
    oom_announced: bool = False
    pending_output: Output | None = None
    cleaned: trio.Event = attrs.field(factory=_set_event)  # the last run's runtime state is gone
    launched_state: dict[str, Any] = attrs.field(factory=dict)  # state to record with "start"
    sandbox: Sandbox | None = None  # the network namespace of the current run
    stdin_fd: int = -1  # the write end of the run's stdin (pipe, or a dup of the pty master)
    console_fd: int = -1  # the run's pty master, for resize (owned by its Output)
    stdin_closed: trio.Event = attrs.field(factory=_set_event)
    stdin_ready: trio.Event = attrs.field(factory=trio.Event)  # set once a run's stdin exists
    ports_scope: trio.CancelScope | None = None  # the current run's port proxies

    @property
    def id(self) -> ContainerId:
        return self.record.id


@attrs.frozen
class Paths:
    data: Path  # <data-root>/containers/<id>
    bundle: Path  # <exec-root>/containers/<id>

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def log(self) -> Path:
        return self.data / f"{self.data.name}-json.log"


def now() -> str:
    """The current time as Docker writes it in container state (``StartedAt``...)."""
    return format_time(time.time_ns())
