"""Run a short command (the OCI runtime's) from the trio thread, without a thread hop.

``trio.run_process`` starts its child from a worker thread. For the runtime's commands
that hop is the largest cost berthd adds: about 0.5 ms a call on this machine, and a
``docker run`` makes two calls (create, start) and a ``docker exec`` one. ``Popen``
starts the child with vfork, so the trio thread is held only until the child has
exec'd (about 0.25 ms); the wait for its exit is a pidfd in trio's epoll, as trio's own.

This is the one module that uses ``subprocess.Popen`` (STYLE.md's banned-api rule
points everything else to ``trio.run_process``); descriptors are closed in the child
(``close_fds``) exactly as there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import trio

TERMINATE_GRACE_S = 5.0  # trio.run_process's default: SIGTERM, then SIGKILL after 5 s


async def run(
    argv: list[str],
    *,
    stdin: int,
    stdout: int,
    stderr: int,
    pass_fds: tuple[int, ...] = (),
    running: set[int] | None = None,
) -> int:
    """Run ``argv`` with these descriptors (or ``subprocess.DEVNULL``) as its stdio, and
    ``pass_fds`` under their own numbers, and return its exit status (``-N`` when killed
    by signal N). ``running`` holds the child's pid until it is reaped (so nobody else
    reaps it: runtime/orphans.py).

    Cancellation: as ``trio.run_process``, the child gets SIGTERM, then SIGKILL after
    five seconds, and is always reaped before the cancellation goes on.
    """
    proc = subprocess.Popen(  # noqa: ASYNC220 -- vfork: held only until the child execs
        argv, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=pass_fds
    )
    if running is not None:
        running.add(proc.pid)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # out of descriptors: no waiting in trio, so stop it and reap it now
        proc.kill()
        proc.wait()
        if running is not None:
            running.discard(proc.pid)
        raise
    try:
        await trio.lowlevel.wait_readable(pidfd)
    except BaseException:
        with trio.CancelScope(shield=True):
            await _stop(proc, pidfd)
        raise
    finally:
        os.close(pidfd)
        code = proc.wait()
        if running is not None:
            running.discard(proc.pid)
    return code


async def _stop(proc: subprocess.Popen[bytes], pidfd: int) -> None:
    for sig, grace in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, sig)
        with trio.move_on_after(grace if grace is not None else float("inf")):
            await trio.lowlevel.wait_readable(pidfd)
            break
