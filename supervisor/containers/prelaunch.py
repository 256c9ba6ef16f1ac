"""An exec's ``runtime exec`` started at create, waiting for its process on a pipe.

A ``docker exec`` is two requests, create then start, and the client's round trip
between them is dead time for berthd. The runtime's own start-up (loading its
libraries: about 2.5 of the 7 ms ``crun exec`` takes here) does not depend on the
process to run, so berthd starts ``runtime exec --process /proc/self/fd/N`` at create,
``N`` being the read end of a pipe the runtime inherits. The runtime loads, opens the
pipe and blocks reading it. ``start`` writes the process JSON (built then, as before:
user, environment and privileges are resolved at start, as Docker does) and closes the
write end; the runtime reads it as it would a file and carries on.

Only execs whose stdio berthd can fix at create are launched early: no terminal (the
console socket belongs to one runtime call) and output attached (a detached exec's
output goes to /dev/null). A start that changes what create said, or an exec nobody
starts within :data:`LINGER_S`, abandons the launch: closing the write end unwritten
makes the runtime fail on an empty process file and exit, having touched nothing.

Resource handling: the pipe's read end lives until the runtime exits; the write end
until it is written or abandoned; berth's stdio ends go to whoever takes the result, or
are closed if nobody does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import outcome
import trio

from supervisor.errors import RuntimeFailed
from supervisor.runtime.pipes import PipeEnds

#: How long a launched runtime waits for the exec's start before it is let go.
LINGER_S = 30.0

Launch = Callable[[Path, tuple[int, ...]], Awaitable[tuple[int, PipeEnds]]]


class Prelaunch:
    """One early ``runtime exec``. Run :meth:`run` in a nursery; then either
    :meth:`release` it with the process and take its :meth:`result`, or :meth:`abandon`
    it."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_CLOEXEC)
        self._let_go = trio.Event()  # released or abandoned
        self._done = trio.Event()
        self._result: outcome.Outcome[tuple[int, PipeEnds]] | None = None
        self._taken = False

    @property
    def open(self) -> bool:
        """Neither released nor abandoned yet."""
        return not self._let_go.is_set()

    async def run(self, launch: Launch) -> None:
        """``launch(process_path, pass_fds)``: the runtime call, which returns once the
        runtime has exited. Abandons the launch after :data:`LINGER_S` unreleased."""
        try:
            async with trio.open_nursery() as nursery:

                async def expire() -> None:
                    with trio.move_on_after(LINGER_S):
                        await self._let_go.wait()
                    self.abandon()

                nursery.start_soon(expire)
                try:
                    value = await launch(Path(f"/proc/self/fd/{self._read}"), (self._read,))
                except Exception as exc:  # noqa: BLE001 -- handed to whoever takes the result
                    self._result = outcome.Error(exc)
                else:
                    self._result = outcome.Value(value)
                nursery.cancel_scope.cancel()
        finally:
            os.close(self._read)
            self.abandon()
            self._done.set()
            if not self._taken:
                self._close_result()

    async def release(self, process: bytes) -> None:
        """Hand the runtime its process (JSON).

        Raises:
            trio.BrokenResourceError: the runtime is gone (its :meth:`result` says why).
        """
        if not self.open:
            raise trio.BrokenResourceError("the early exec launch was let go")
        self._let_go.set()
        fd, self._write = self._write, -1
        async with trio.lowlevel.FdStream(fd) as stream:  # closing it is the runtime's EOF
            await stream.send_all(process)

    async def result(self) -> tuple[int, PipeEnds]:
        """The runtime call's result (pid, berth's stdio ends) once the runtime has
        exited; the caller owns the ends. Raises what the runtime call raised.

        Cancellation: the ends are closed when they arrive.
        """
        self._taken = True
        try:
            await self._done.wait()
        except BaseException:
            self._taken = False
            if self._done.is_set():
                self._close_result()
            raise
        if self._result is None:  # the launch itself was cancelled (shutdown)
            raise RuntimeFailed("the exec's runtime was stopped before it ran")
        return self._result.unwrap()

    def abandon(self) -> None:
        """Let the runtime go without a process (it fails reading it and exits)."""
        self._let_go.set()
        if self._write >= 0:
            with contextlib.suppress(OSError):
                os.close(self._write)
            self._write = -1

    def _close_result(self) -> None:
        if isinstance(self._result, outcome.Value):
            _close_ends(self._result.value[1])


def _close_ends(ends: PipeEnds) -> None:
    for fd in (ends.stdin, ends.stdout, ends.stderr):
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
