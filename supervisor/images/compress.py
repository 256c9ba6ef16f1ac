"""Parallel gzip for pushes (pigz's idea with independent members).

The layer tar is cut into 16 MiB blocks, each compressed on its own worker thread
(zlib releases the GIL) into a complete gzip member, and the members are written in
order. A concatenation of gzip members is one valid gzip stream (RFC 1952 §2.2); Go's,
Python's and zlib's readers decompress it as a whole, so registries and engines read it
like any other layer. With mtime 0 and a fixed level the output is deterministic, so the
same layer always gives the same blob digest.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import trio

BLOCK = 16 << 20
LEVEL = 1


#: A block whose sample compresses worse than this is close to random (already
#: compressed files, encrypted or encoded data): LZ77 matching finds next to nothing
#: there and costs two thirds of the time, so such a block gets Huffman coding only —
#: about three times faster here, and no larger. Decided from the block's own bytes,
#: so the same layer still always gives the same blob.
POOR_RATIO = 0.7
SAMPLE = 256 << 10


def _compress(block: bytes) -> bytes:
    sample = block[:SAMPLE]
    poor = bool(sample) and len(zlib.compress(sample, LEVEL)) > POOR_RATIO * len(sample)
    strategy = zlib.Z_HUFFMAN_ONLY if poor else zlib.Z_DEFAULT_STRATEGY
    # wbits 31: a gzip member (header with mtime 0, deflate data, CRC32 and size).
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31, 9, strategy)
    return packer.compress(block) + packer.flush()


def _read_blocks(reader: BinaryIO, count: int) -> list[bytes]:
    return [b for b in (reader.read(BLOCK) for _ in range(count)) if b]


async def gzip_to_channel(
    src: Path,
    dst: Path,
    send: trio.MemorySendChannel[bytes],
    *,
    workers: int | None = None,
) -> tuple[str, int]:
    """Compress ``src`` into gzip members written to ``dst`` and also sent, in order,
    into ``send`` as they are made (a push uploads while the next blocks are still
    being compressed). Closes ``send`` at the end; returns the digest and size of the
    whole blob.

    Cancellation: the blocks in flight finish; ``dst`` is left partial for the caller
    to remove; ``send`` is closed either way.
    """
    workers = max(1, workers or os.cpu_count() or 1)
    limiter = trio.CapacityLimiter(workers)
    sha = hashlib.sha256()
    size = 0

    async def compress_into(results: list[bytes], i: int, block: bytes) -> None:
        results[i] = await trio.to_thread.run_sync(_compress, block, limiter=limiter)

    async with send:
        with open(src, "rb") as reader, open(dst, "wb") as out:  # noqa: ASYNC230 -- sequential local file I/O between thread batches
            while blocks := _read_blocks(reader, workers):
                results: list[bytes] = [b""] * len(blocks)
                async with trio.open_nursery() as nursery:
                    for i, block in enumerate(blocks):
                        nursery.start_soon(compress_into, results, i, block)
                for member in results:
                    sha.update(member)
                    size += len(member)
                    out.write(member)
                    await send.send(member)
            if size == 0:
                member = _compress(b"")
                sha.update(member)
                size = len(member)
                out.write(member)
                await send.send(member)
    return "sha256:" + sha.hexdigest(), size
