"""Pseudo-terminals for containers and execs: the runtime's ``--console-socket``.

With ``process.terminal = true`` the OCI runtime (runc and crun alike) creates the pty
inside the container and sends its master end over a unix socket named by
``--console-socket``, as one ``SCM_RIGHTS`` message. berth listens on a short-lived
socket of its own while the runtime runs, receives the master, and from then on the
master is the process's stdin and its single output stream. Reading the master after
the process and its children have exited fails with ``EIO``: that is end of stream.

Cancellation: :func:`with_console` closes its socket whether the runtime call succeeds,
fails or is cancelled; a master received for a failed call is closed too.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import secrets
import socket as stdsocket
import struct
import termios
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import trio

from supervisor.errors import BerthError, berth_error_in

T = TypeVar("T")

#: How long the master may lag behind the runtime's exit (it was sent before).
RECEIVE_GRACE_S = 5.0


async def with_console(directory: Path, call: Callable[[Path], Awaitable[T]]) -> tuple[T, int]:
    """Run ``call(socket_path)`` (a runtime create/exec given ``--console-socket``)
    and return its result with the pty master it handed over.

    Raises:
        BerthError: the runtime's own error, or no master arrived.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{secrets.token_hex(6)}.sock"  # short: sun_path holds 108 bytes
    listener = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    master = -1
    try:
        await listener.bind(str(path))
        listener.listen(1)

        async def receive() -> None:
            nonlocal master
            conn, _ = await listener.accept()
            with conn:
                _, ancillary, _, _ = await conn.recvmsg(1024, stdsocket.CMSG_SPACE(4))
            for level, kind, data in ancillary:
                if level == stdsocket.SOL_SOCKET and kind == stdsocket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                    for extra in fds[1:]:
                        os.close(extra)
                    if fds:
                        master = fds[0]

        try:
            async with trio.open_nursery() as nursery:
                done = trio.Event()

                async def receive_then_signal() -> None:
                    await receive()
                    done.set()

                nursery.start_soon(receive_then_signal)
                result = await call(path)
                with trio.move_on_after(RECEIVE_GRACE_S):
                    await done.wait()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            found = berth_error_in(group)
            if found is None:
                raise
            raise found from None
        if master < 0:
            raise BerthError("the OCI runtime did not hand over the container's terminal")
        os.set_blocking(master, False)
        return result, master
    except BaseException:
        if master >= 0:
            os.close(master)
        raise
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def set_window_size(fd: int, height: int, width: int) -> None:
    """``TIOCSWINSZ`` on a pty master (``resize``): the process gets SIGWINCH."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def window_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of a pty."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols
