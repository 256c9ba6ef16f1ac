"""The content store: nothing wrong under a digest name, resumable partials."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images.content import ContentStore, DigestMismatch, check_digest


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
