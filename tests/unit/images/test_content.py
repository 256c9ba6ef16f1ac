"""The content store: nothing wrong under a digest name, resumable partials."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trio

from supervisor.errors import InvalidArgument
from supervisor.images.content import (
    Abandoned,
    ContentStore,
    DigestMismatch,
    GrowingFile,
    check_digest,
)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_content_commit_verifies_and_renames(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"layer bytes"
    partial = store.partial(_digest(data))
    partial.write_bytes(data)
    final = store.commit(_digest(data), partial)
    assert final.read_bytes() == data
    assert store.exists(_digest(data)) and not partial.exists()


def test_content_commit_mismatch_leaves_nothing_under_the_name(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    wanted = _digest(b"right")
    partial = store.partial(wanted)
    partial.write_bytes(b"wrong")
    with pytest.raises(DigestMismatch):
        store.commit(wanted, partial)
    assert not store.exists(wanted)
    assert not partial.exists()


def test_content_write_bytes_is_idempotent(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    d1 = store.write_bytes(b"{}")
    d2 = store.write_bytes(b"{}")
    assert d1 == d2 == _digest(b"{}")
    assert store.read_bytes(d1) == b"{}"


@pytest.mark.parametrize(
    "bad",
    ["sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "", "sha256:../../etc"],
    ids=["short", "algo", "upper", "empty", "path"],
)
def test_content_rejects_bad_digests(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        check_digest(bad)
    with pytest.raises(InvalidArgument):
        ContentStore(tmp_path).path(bad)


async def test_content_ingest_lock_serialises_one_blob(tmp_path: Path) -> None:
    import trio

    store = ContentStore(tmp_path)
    order: list[str] = []

    async def worker(name: str) -> None:
        async with store.ingest_lock("sha256:" + "0" * 64):
            order.append(f"{name}-in")
            await trio.sleep(0.01)
            order.append(f"{name}-out")

    async with trio.open_nursery() as n:
        n.start_soon(worker, "a")
        n.start_soon(worker, "b")
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])


def test_content_commit_bytes_stores_under_the_digest_and_leaves_no_temp(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"compressed layer"
    final = store.commit_bytes(_digest(data), data)
    assert final == store.path(_digest(data)) and final.read_bytes() == data
    assert list(store.ingest.iterdir()) == []


async def _read_all_in_thread(reader: GrowingFile) -> bytes:
    def read_all() -> bytes:
        out = bytearray()
        while chunk := reader.read(3):
            out += chunk
        return bytes(out)

    return await trio.to_thread.run_sync(read_all)


async def test_growing_file_reads_what_is_appended_until_finished(tmp_path: Path) -> None:
    path = tmp_path / "blob.partial"
    path.write_bytes(b"resumed-")  # a partial download from before: read first
    reader = GrowingFile(path)
    got: list[bytes] = []

    async def read() -> None:
        got.append(await _read_all_in_thread(reader))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        with path.open("ab") as f:
            for piece in (b"one ", b"two ", b"three"):
                await trio.sleep(0)  # the reader may be waiting or reading: either is fine
                f.write(piece)
                f.flush()
                reader.advanced()
        reader.finished()
    reader.close()
    assert got == [b"resumed-one two three"]


async def test_growing_file_abandoned_download_raises_in_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "blob.partial"
    path.write_bytes(b"")
    reader = GrowingFile(path)
    raised: list[BaseException] = []

    async def read() -> None:
        try:
            await _read_all_in_thread(reader)
        except Abandoned as exc:
            raised.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.sleep(0)
        reader.abandon()
    reader.close()
    assert len(raised) == 1
