"""runtime/spawn.py: exit statuses, stdio, and cancellation (the child never outlives it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import trio

from supervisor.runtime import spawn


async def test_exit_status_is_returned() -> None:
    assert await spawn.run(["sh", "-c", "exit 3"], stdin=-3, stdout=-3, stderr=-3) == 3


async def test_killed_by_signal_is_negative() -> None:
    code = await spawn.run(
        ["sh", "-c", "kill -9 $$"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert code == -9


async def test_stdio_goes_to_the_given_descriptors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with out.open("wb") as f:
        await spawn.run(
            ["sh", "-c", "echo hello; echo oops >&2"],
            stdin=subprocess.DEVNULL,
            stdout=f.fileno(),
            stderr=f.fileno(),
        )
    assert out.read_text() == "hello\noops\n"


async def test_cancellation_terminates_and_reaps(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    await _cancel_once_written(
        ["sh", "-c", f"echo $$ > {pid_file}.new; mv {pid_file}.new {pid_file}; exec sleep 30"],
        pid_file,
    )
    with pytest.raises(ProcessLookupError):  # terminated and reaped, not a zombie
        os.kill(int(pid_file.read_text()), 0)


async def test_a_child_ignoring_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spawn, "TERMINATE_GRACE_S", 0.2)
    pid_file = tmp_path / "pid"
    script = f"trap '' TERM; echo $$ > {pid_file}.new; mv {pid_file}.new {pid_file}; while :; do sleep 0.05; done"
    await _cancel_once_written(["sh", "-c", script], pid_file)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def _cancel_once_written(argv: list[str], path: Path) -> None:
    """Run ``argv`` with spawn.run and cancel it once ``path`` exists."""
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            await spawn.run(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        nursery.start_soon(run)
        while not path.exists():
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
