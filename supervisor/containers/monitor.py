"""Process supervision through pidfds (ARCHITECTURE.md §3).

berthd is the child subreaper, so a container's init — forked by the runtime, which then
exits — is re-parented to berthd. ``pidfd_open`` pins it: even if it has already died it
is berthd's zombie until reaped. :func:`wait_exit` waits for the pidfd to become readable
and reaps with ``waitid(P_PIDFD)``, which gives the real exit status. A process adopted
after a daemon restart is no longer our child: its status is lost (ECHILD), and Docker's
255 stands in for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from pathlib import Path

import trio

PR_SET_CHILD_SUBREAPER = 36
LOST_EXIT_CODE = 255

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def become_subreaper() -> None:
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "prctl(PR_SET_CHILD_SUBREAPER)")


def exit_code_of(result: os.waitid_result) -> int:
    """Docker's convention: the exit status, or 128 + signal number when killed."""
    if result.si_code == os.CLD_EXITED:
        return int(result.si_status)
    return 128 + int(result.si_status)


async def wait_exit(pidfd: int) -> int:
    """Wait for the process behind ``pidfd`` to end, reap it, return its exit code.

    Cancellation: safe; the process is untouched and can be waited for again.
    """
    await trio.lowlevel.wait_readable(pidfd)
    try:
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    except ChildProcessError:
        return LOST_EXIT_CODE
    if result is None:
        return LOST_EXIT_CODE
    return exit_code_of(result)


def send_signal(pidfd: int, sig: int) -> bool:
    """Signal through the pidfd (race-free). False when the process is already gone."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return False
    return True


def start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat (start time in clock ticks); 0 when the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def adopt(pid: int, expected_start: int) -> int | None:
    """A pidfd for ``pid`` if it is still the same process (start time matches)."""
    if pid <= 0:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if start_time(pid) != expected_start:
        os.close(fd)
        return None
    return fd
