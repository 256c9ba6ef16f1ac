"""The content store: blobs by digest (ARCHITECTURE.md §4).

Theory of operation: a blob is written to ``ingest/<hex>.partial`` (a stable name, so an
interrupted download resumes), hashed, and renamed to ``blobs/sha256/<hex>`` only when
its content matches the digest — so a file under a digest name is always that digest's
content, whatever crashes. Concurrent fetches of one blob share a single download
(:meth:`ContentStore.ingest_lock`).

Resource handling: callers own the partial files they write until :meth:`commit`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import trio

from supervisor.errors import InvalidArgument

CHUNK = 1 << 20


class DigestMismatch(InvalidArgument):
    pass


class Abandoned(Exception):
    """The download a :class:`GrowingFile` follows failed or was cancelled."""


class GrowingFile:
    """A blocking reader of an ingest file that a download is still appending to, so a
    worker thread can unpack a layer while it arrives.

    The writer (the trio task downloading) calls :meth:`advanced` after each write and
    :meth:`finished` or :meth:`abandon` at the end; :meth:`read` blocks in the worker
    thread until there is something new, like a pipe. A tick counter, read before each
    attempt, means a wake-up that comes between a short read and the wait is never lost.

    What was read is not trusted for more than what it is: the download may restart from
    the beginning (a registry that ignores ``Range``), so whoever unpacks from it checks
    the result (the diff id) and falls back to the verified blob when it does not match.

    Resource handling: the caller closes it (:meth:`close`) once the reading thread is done.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- closed by close()
        self._cond = threading.Condition()
        self._ticks = 0
        self._done = False
        self._abandoned = False

    def advanced(self) -> None:
        with self._cond:
            self._ticks += 1
            self._cond.notify_all()

    def finished(self) -> None:
        """The download is complete and its file closed: read to the end now."""
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def abandon(self) -> None:
        """The download failed: the reader raises :class:`Abandoned` from now on."""
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()

    def read(self, n: int = -1, /) -> bytes:
        while True:
            with self._cond:
                if self._abandoned:
                    raise Abandoned("the download was abandoned")
                ticks, done = self._ticks, self._done
            data = self._file.read(n)
            if data or done:
                return data  # b"" only at the end of a finished download
            with self._cond:
                while self._ticks == ticks and not self._done and not self._abandoned:
                    self._cond.wait()

    def close(self) -> None:
        self._file.close()


def check_digest(digest: str) -> str:
    """Return the hex part of a sha256 digest. Raises InvalidArgument otherwise."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(f"invalid digest: {digest!r}")
    return hexpart


def sha256_file(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return "sha256:" + sha.hexdigest(), size


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.blobs = root / "blobs" / "sha256"
        self.ingest = root / "ingest"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.ingest.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, trio.Lock] = {}

    def path(self, digest: str) -> Path:
        return self.blobs / check_digest(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def partial(self, digest: str) -> Path:
        """The resumable ingest file for ``digest``."""
        return self.ingest / f"{check_digest(digest)}.partial"

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")

    @asynccontextmanager
    async def ingest_lock(self, digest: str) -> AsyncIterator[None]:
        """Serialise work on one blob: a second puller waits, then finds it present."""
        lock = self._locks.setdefault(digest, trio.Lock())
        async with lock:
            yield
        if not lock.statistics().tasks_waiting:
            self._locks.pop(digest, None)

    def commit(self, digest: str, partial: Path, *, verified: bool = False) -> Path:
        """Move ``partial`` under ``digest`` after checking its content (unless the
        writer hashed it already: ``verified``). Blocking: run in a worker thread.

        Raises:
            DigestMismatch: the content is not ``digest``'s; ``partial`` is removed.
        """
        final = self.path(digest)
        if not verified:
            actual, _ = sha256_file(partial)
            if actual != digest:
                partial.unlink(missing_ok=True)
                raise DigestMismatch(f"digest mismatch: expected {digest}, got {actual}")
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, final)
        return final

    def commit_bytes(self, digest: str, data: bytes) -> Path:
        """Store ``data``, already hashed to ``digest`` by the caller, as :meth:`commit`
        does a file: written beside, synced, renamed. Blocking: run in a worker thread."""
        tmp = self.ingest / f"{check_digest(digest)}.bytes"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        final = self.path(digest)
        os.replace(tmp, final)
        return final

    def write_bytes(self, data: bytes) -> str:
        """Store a small blob (config, manifest); return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        final = self.path(digest)
        if not final.exists():
            tmp = self.ingest / f"{check_digest(digest)}.bytes"
            tmp.write_bytes(data)
            os.replace(tmp, final)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def sweep_ingest(self) -> None:
        """Forget half-written small blobs (partials of big ones are kept for resume)."""
        for p in self.ingest.glob("*.bytes"):
            p.unlink(missing_ok=True)
