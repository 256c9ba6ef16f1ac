from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest
import trio

from supervisor.images import compress


async def gzip_collect(src: Path, dst: Path, workers: int | None = None) -> tuple[str, int, bytes]:
    """Run gzip_to_channel with a consumer; return digest, size and what was sent."""
    send, receive = trio.open_memory_channel[bytes](2)
    sent = bytearray()
    result: list[tuple[str, int]] = []

    async def produce() -> None:
        result.append(await compress.gzip_to_channel(src, dst, send, workers=workers))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with receive:
            async for member in receive:
                sent += member
    return result[0][0], result[0][1], bytes(sent)


async def test_members_decompress_to_the_input_and_are_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compress, "BLOCK", 1 << 16)  # several members from a small input
    data = os.urandom(200_000) + b"a" * 300_000
    src = tmp_path / "layer.tar"
    src.write_bytes(data)
    one, two = tmp_path / "1.gz", tmp_path / "2.gz"
    digest, size, sent = await gzip_collect(src, one, workers=2)
    again, _, _ = await gzip_collect(src, two, workers=3)
    assert sent == one.read_bytes()  # what was streamed is what was kept
    assert gzip.decompress(one.read_bytes()) == data
    assert digest == "sha256:" + hashlib.sha256(one.read_bytes()).hexdigest()
    assert size == one.stat().st_size
    assert again == digest  # same blocks, same members, whatever the worker count


async def test_empty_input_is_one_empty_member(tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    _, size, sent = await gzip_collect(src, tmp_path / "out")
    assert gzip.decompress((tmp_path / "out").read_bytes()) == b"" == gzip.decompress(sent)
    assert size == (tmp_path / "out").stat().st_size


async def test_random_blocks_get_huffman_only_and_text_blocks_lz77(tmp_path: Path) -> None:
    random_block = os.urandom(300_000)
    text_block = b"the same words again and again " * 10_000
    for data, at_most in ((random_block, 1.01), (text_block, 0.05)):
        member = compress._compress(data)
        assert gzip.decompress(member) == data
        assert len(member) <= at_most * len(data)
