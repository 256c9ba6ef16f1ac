"""Pipes for a container's or an exec's stdio: the counterpart of
:func:`~supervisor.runtime.console.with_console` for processes without a terminal.

The runtime (``create`` or ``exec``) is started with the child ends of fresh pipes as
its stdin, stdout and stderr, and the process it starts inherits them. berth keeps the
other ends: the write end of stdin, the read ends of stdout and stderr. A stream that
gets no pipe is ``/dev/null`` for the process and ``-1`` on berth's side.

Resource handling: the child ends are always closed once the runtime call returns
(berth must not hold them, or it would never see end-of-file). On success the caller
owns berth's ends; if the call fails or is cancelled they are closed too.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import trio

T = TypeVar("T")


@attrs.frozen
class PipeEnds:
    """berth's ends of a process's stdio pipes; ``-1`` where no pipe was asked for."""

    stdin: int  # write end
    stdout: int  # read end
    stderr: int  # read end


async def with_pipes(
    call: Callable[[int, int, int], Awaitable[T]],
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> tuple[T, PipeEnds]:
    """Run ``call(stdin, stdout, stderr)`` (a runtime create/exec) with the child ends of
    a pipe for each stream asked for, ``subprocess.DEVNULL`` for the others, and return
    its result with berth's ends.

    Cancellation: every pipe end is closed; nothing leaks.
    """
    in_r, in_w = _pipe() if stdin else (-1, -1)
    out_r, out_w = _pipe() if stdout else (-1, -1)
    err_r, err_w = _pipe() if stderr else (-1, -1)
    try:
        result = await call(_or_devnull(in_r), _or_devnull(out_w), _or_devnull(err_w))
    except BaseException:
        _close(in_w, out_r, err_r)
        raise
    finally:
        _close(in_r, out_w, err_w)
    return result, PipeEnds(stdin=in_w, stdout=out_r, stderr=err_r)


def _pipe() -> tuple[int, int]:
    return os.pipe2(os.O_CLOEXEC)


def _or_devnull(fd: int) -> int:
    return fd if fd >= 0 else subprocess.DEVNULL


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


async def read_chunk(fd: int) -> bytes:
    """The next bytes of non-blocking ``fd`` once there are some; ``b""`` at end of
    stream, which for a pty master is EIO once every slave is closed.

    Raises:
        OSError: any other read error.
    """
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return b""
