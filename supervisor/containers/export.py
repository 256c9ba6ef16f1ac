"""``docker export``: a container's root filesystem as a tar stream.

The tar is written by a worker thread into a pipe and read on the trio side, so a big
root filesystem streams to the client without a temporary file. Members are added
without following symlinks; names are relative to the root, as Docker's export.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

CHUNK = 65536


def _write_tar(root: Path, fd: int) -> None:
    with (
        os.fdopen(fd, "wb") as pipe,
        tarfile.open(fileobj=pipe, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(os.listdir(root)):
            tar.add(root / name, arcname=name, recursive=True)


async def stream_rootfs(root: Path, write: Callable[[bytes], Awaitable[None]]) -> None:
    """Stream ``root`` as a tar to ``write``.

    Cancellation: closing our read end makes the writer thread fail with EPIPE and end.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    reader = trio.lowlevel.FdStream(r)
    try:
        async with trio.open_nursery() as nursery:

            async def writer() -> None:
                with contextlib.suppress(BrokenPipeError):
                    await trio.to_thread.run_sync(_write_tar, root, w)

            nursery.start_soon(writer)
            while chunk := await reader.receive_some(CHUNK):
                await write(chunk)
    finally:
        await reader.aclose()
