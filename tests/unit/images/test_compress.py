from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from supervisor.images import compress


async def test_gzip_file_members_decompress_to_the_input_and_are_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compress, "BLOCK", 1 << 16)  # several members from a small input
    data = os.urandom(200_000) + b"a" * 300_000
    src = tmp_path / "layer.tar"
    src.write_bytes(data)
    one, two = tmp_path / "1.gz", tmp_path / "2.gz"
    digest, size = await compress.gzip_file(src, one, workers=2)
    again, _ = await compress.gzip_file(src, two, workers=3)
    assert gzip.decompress(one.read_bytes()) == data
    assert digest == "sha256:" + hashlib.sha256(one.read_bytes()).hexdigest()
    assert size == one.stat().st_size
    assert again == digest  # same blocks, same members, whatever the worker count


async def test_gzip_file_empty_input(tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    _, size = await compress.gzip_file(src, tmp_path / "out")
    assert gzip.decompress((tmp_path / "out").read_bytes()) == b""
    assert size == (tmp_path / "out").stat().st_size
