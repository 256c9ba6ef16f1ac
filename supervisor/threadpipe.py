"""Stream what a blocking writer produces, without a temporary file.

A worker thread runs ``produce(out)`` with ``out`` the write end of a pipe; the trio
side reads the other end and hands each chunk to ``write`` (an HTTP response). Used by
``export`` and ``save``, whose tar writers are synchronous.

Cancellation: closing our read end makes the writer fail with EPIPE and end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

import trio

CHUNK = 65536


async def pipe_from_thread(
    produce: Callable[[BinaryIO], None], write: Callable[[bytes], Awaitable[None]]
) -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    reader = trio.lowlevel.FdStream(r)

    def run() -> None:
        with os.fdopen(w, "wb") as out:
            produce(out)

    async with trio.open_nursery() as nursery:

        async def writer() -> None:
            with contextlib.suppress(BrokenPipeError):
                await trio.to_thread.run_sync(run)

        nursery.start_soon(writer)
        try:
            while chunk := await reader.receive_some(CHUNK):
                await write(chunk)
        finally:
            # Closing our end first lets a writer blocked on a full pipe fail with EPIPE,
            # so the nursery can wait for the thread when the client has gone away.
            with trio.CancelScope(shield=True):
                await reader.aclose()
