"""``docker export``: a container's root filesystem as a tar stream.

The tar streams to the client through :func:`supervisor.threadpipe.pipe_from_thread`.
Members are added
without following symlinks; names are relative to the root, as Docker's export.
"""

from __future__ import annotations

import functools
import os
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from supervisor.threadpipe import pipe_from_thread


def _write_tar(root: Path, out: BinaryIO) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(root)):
            tar.add(root / name, arcname=name, recursive=True)


async def stream_rootfs(root: Path, write: Callable[[bytes], Awaitable[None]]) -> None:
    """Stream ``root`` as a tar to ``write``."""
    await pipe_from_thread(functools.partial(_write_tar, root), write)
