"""Input over a hijacked connection (attach, exec): client bytes to a process's stdin.

Resource handling: :func:`pump_stdin` writes to a descriptor it duplicates, so the
process's own stdin descriptor may be closed (or its number reused) meanwhile without
this task writing somewhere else.
"""

from __future__ import annotations

import enum
import os

import trio

from supervisor.containers.stdio import DetachScanner


class InputEnd(enum.Enum):
    EOF = "eof"  # the client closed its sending side
    DETACHED = "detached"  # the client typed the detach keys
    BROKEN = "broken"  # the process's stdin or the connection is gone


async def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking pipe or pty."""
    os.set_blocking(fd, False)
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)
            continue
        view = view[n:]


async def pump_stdin(stream: trio.abc.Stream, first: bytes, fd: int, keys: bytes) -> InputEnd:
    """Copy the client's input (``first``: what came with the request) into ``fd``,
    watching for the detach keys, until the client stops sending."""
    own = os.dup(fd)
    scanner = DetachScanner(keys)
    try:
        data = first
        while True:
            forward, detached = scanner.feed(data)
            await write_all(own, forward)
            if detached:
                return InputEnd.DETACHED
            data = bytes(await stream.receive_some(65536))
            if not data:
                await write_all(own, scanner.flush())
                return InputEnd.EOF
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        return InputEnd.BROKEN
    finally:
        os.close(own)
