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


@pytest.mark.parametrize("packer", ["_compress", "_compress_zlib"], ids=["default", "zlib"])
async def test_random_blocks_stay_their_size_and_text_blocks_shrink(packer: str) -> None:
    random_block = os.urandom(300_000)
    text_block = b"the same words again and again " * 10_000
    for data, at_most in ((random_block, 1.01), (text_block, 0.05)):
        member = getattr(compress, packer)(data)
        assert member[:4] == b"\x1f\x8b\x08\x00"  # a gzip member, no name, mtime 0
        assert gzip.decompress(member) == data
        assert len(member) <= at_most * len(data)


def test_default_compressor_is_isal_when_installed() -> None:
    assert compress.HAVE_ISAL  # a declared dependency: pushes rely on its speed


@pytest.mark.parametrize(
    "size", [0, 1, compress.SMALL_BLOCK, 2 * compress.SMALL_BLOCK + 5], ids=["0", "1", "1M", "2M+5"]
)
async def test_gzip_small_is_members_of_small_blocks_whatever_the_workers(
    tmp_path: Path, size: int
) -> None:
    data = (b"layer tar bytes " * (size // 16 + 1))[:size]
    src = tmp_path / "layer.tar"
    src.write_bytes(data)
    blob, digest = await compress.gzip_small(src, workers=1)
    again, digest2 = await compress.gzip_small(src, workers=3)
    assert gzip.decompress(blob) == data
    assert digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (again, digest2) == (blob, digest)  # the blob does not depend on the machine
    pieces = [data[i : i + compress.SMALL_BLOCK] for i in range(0, size, compress.SMALL_BLOCK)]
    assert blob == b"".join(compress._compress(p) for p in pieces or [b""])
