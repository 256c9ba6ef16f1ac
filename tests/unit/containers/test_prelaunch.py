"""containers/prelaunch.py with a fake runtime call that reads its process the way a
runtime does: by opening ``/proc/self/fd/N`` and reading to end of file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from supervisor.containers import prelaunch as prelaunch_mod
from supervisor.containers.prelaunch import Prelaunch
from supervisor.errors import RuntimeFailed
from supervisor.runtime.pipes import PipeEnds


class FakeRuntime:
    def __init__(self) -> None:
        self.read: bytes | None = None
        self.ends: list[int] = []

    async def __call__(self, process: Path, pass_fds: tuple[int, ...]) -> tuple[int, PipeEnds]:
        assert process == Path(f"/proc/self/fd/{pass_fds[0]}")
        self.read = await trio.to_thread.run_sync(process.read_bytes)
        if not self.read:
            raise RuntimeFailed("cannot parse the data: premature EOF")
        r, w = os.pipe()
        os.close(w)
        self.ends.append(r)
        return 4242, PipeEnds(stdin=-1, stdout=r, stderr=-1)


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_released_launch_reads_the_process_and_gives_the_result() -> None:
    runtime = FakeRuntime()
    pre = Prelaunch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pre.run, runtime)
        await pre.release(b'{"args": ["true"]}')
        assert not pre.open
        pid, ends = await pre.result()
    assert (pid, runtime.read) == (4242, b'{"args": ["true"]}')
    assert is_open(ends.stdout)  # the caller's now
    os.close(ends.stdout)


async def test_a_process_larger_than_a_pipe_buffer_gets_through() -> None:
    runtime = FakeRuntime()
    pre = Prelaunch()
    big = b"x" * (1 << 20)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pre.run, runtime)
        await pre.release(big)
        _, ends = await pre.result()
    assert runtime.read == big
    os.close(ends.stdout)


async def test_abandoned_launch_fails_in_the_runtime_and_cannot_be_released() -> None:
    runtime = FakeRuntime()
    pre = Prelaunch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pre.run, runtime)
        pre.abandon()
        with pytest.raises(trio.BrokenResourceError):
            await pre.release(b"{}")
        with pytest.raises(RuntimeFailed):
            await pre.result()
    assert runtime.read == b""


async def test_an_unreleased_launch_is_let_go_after_the_linger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prelaunch_mod, "LINGER_S", 0.05)
    runtime = FakeRuntime()
    pre = Prelaunch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pre.run, runtime)
    assert runtime.read == b"" and not pre.open


async def test_a_result_nobody_takes_is_closed() -> None:
    runtime = FakeRuntime()
    pre = Prelaunch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pre.run, runtime)
        await pre.release(b"{}")
        with trio.move_on_after(0) as scope:  # the taker gives up (a cancelled start)
            await pre.result()
        assert scope.cancelled_caught
    assert runtime.ends and not is_open(runtime.ends[0])
