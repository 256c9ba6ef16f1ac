"""supervisor/runtime/pipes.py: child ends to the call, berth's ends back, no leaks."""

from __future__ import annotations

import os
import subprocess

import pytest
import trio

from supervisor.runtime.pipes import PipeEnds, with_pipes


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _read_all(fd: int) -> bytes:
    chunks = []
    while data := os.read(fd, 4096):
        chunks.append(data)
    return b"".join(chunks)


async def test_with_pipes_all_streams_connect_child_ends_to_berth_ends() -> None:
    async def call(stdin: int, stdout: int, stderr: int) -> str:
        os.write(stdout, b"out")
        os.write(stderr, b"err")
        os.set_blocking(stdin, False)
        return "created"

    result, ends = await with_pipes(call, stdin=True, stdout=True, stderr=True)
    try:
        assert result == "created"
        # The child ends are closed once the call returns: berth reads to end-of-file.
        assert _read_all(ends.stdout) == b"out"
        assert _read_all(ends.stderr) == b"err"
        # Nobody reads stdin's child end any more.
        with pytest.raises(BrokenPipeError):
            os.write(ends.stdin, b"x")
    finally:
        for fd in (ends.stdin, ends.stdout, ends.stderr):
            os.close(fd)


async def test_with_pipes_unwanted_streams_are_devnull_and_minus_one() -> None:
    seen: list[tuple[int, int, int]] = []

    async def call(stdin: int, stdout: int, stderr: int) -> None:
        seen.append((stdin, stdout, stderr))

    before = _open_fds()
    _, ends = await with_pipes(call, stdin=False, stdout=False, stderr=False)
    assert seen == [(subprocess.DEVNULL,) * 3]
    assert ends == PipeEnds(stdin=-1, stdout=-1, stderr=-1)
    assert _open_fds() == before


async def test_with_pipes_only_stdin_gives_a_write_end() -> None:
    async def call(stdin: int, stdout: int, stderr: int) -> int:
        assert (stdout, stderr) == (subprocess.DEVNULL, subprocess.DEVNULL)
        return stdin

    child_stdin, ends = await with_pipes(call, stdin=True, stdout=False, stderr=False)
    try:
        assert child_stdin >= 0
        assert (ends.stdout, ends.stderr) == (-1, -1)
        assert ends.stdin >= 0
    finally:
        os.close(ends.stdin)


async def test_with_pipes_failed_call_closes_every_end() -> None:
    async def call(stdin: int, stdout: int, stderr: int) -> None:
        raise RuntimeError("runtime failed")

    before = _open_fds()
    with pytest.raises(RuntimeError, match="runtime failed"):
        await with_pipes(call, stdin=True, stdout=True, stderr=True)
    assert _open_fds() == before


async def test_with_pipes_cancelled_call_closes_every_end() -> None:
    started = trio.Event()

    async def call(stdin: int, stdout: int, stderr: int) -> None:
        started.set()
        await trio.sleep_forever()

    before = _open_fds()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: with_pipes(call, stdin=True, stdout=True, stderr=True))
        await started.wait()
        nursery.cancel_scope.cancel()
    assert _open_fds() == before
