"""A readable byte stream over an iterator of chunks (upload bodies and downloads read
by ``tarfile``), with a callback counting what is read."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class ChunkReader(io.RawIOBase):
    """``readinto`` from ``chunks``; ``on_read(n)`` after every read of ``n`` bytes."""

    def __init__(self, chunks: Iterator[bytes], on_read: Callable[[int], None]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as raw, raw.cast("B") as view:
            while not self._buf:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return 0
                self._buf = chunk
            n = min(len(view), len(self._buf))
            view[:n] = self._buf[:n]
            self._buf = self._buf[n:]
        self._on_read(n)
        return n
