"""A run's stdio: the pty or pipes a container's process is created with, and the
copying of its output into the json-file log (and so to ``logs -f`` and attachers).

Resource handling: :func:`create_process` returns the berth ends in an
:class:`~supervisor.containers.handle.Output`, which owns them until ``Output.close``;
the stdin write end moves to the :class:`~supervisor.containers.handle.Handle`, which
:func:`close_stdin` closes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import trio

from supervisor.containers.config import parse_human_size
from supervisor.containers.handle import Handle, Output, Paths
from supervisor.containers.logs import LogWriter, OutputHub
from supervisor.model import Container
from supervisor.runtime.console import set_window_size, with_console
from supervisor.runtime.oci import OciRuntime
from supervisor.runtime.pipes import read_chunk, with_pipes


async def create_process(
    runtime: OciRuntime, c: Container, paths: Paths, *, tty_dir: Path
) -> tuple[int, Output]:
    """``runtime create`` with the container's stdio: a pty (``Tty``) whose master
    carries input and output, or pipes for stdout and stderr and — with
    ``OpenStdin`` — stdin. Returns the init's pid and the berth ends."""
    tty = bool(c.config.get("Tty"))
    open_stdin = bool(c.config.get("OpenStdin"))
    pid_file = paths.bundle / "init.pid"
    if tty:

        async def create(sock: Path) -> int:
            return await runtime.create(
                c.id,
                bundle=paths.bundle,
                pid_file=pid_file,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                console_socket=sock,
            )

        pid, master = await with_console(tty_dir, create)
        size = c.host_config.get("ConsoleSize") or [0, 0]
        if isinstance(size, list) and len(size) == 2 and size[0] and size[1]:
            with contextlib.suppress(OSError, TypeError, ValueError):
                set_window_size(master, int(size[0]), int(size[1]))
        return pid, Output(
            stdout=master,
            stderr=-1,
            oomfd=None,
            tty=True,
            stdin=os.dup(master) if open_stdin else -1,
        )

    async def create_piped(stdin: int, stdout: int, stderr: int) -> int:
        return await runtime.create(
            c.id, bundle=paths.bundle, pid_file=pid_file, stdin=stdin, stdout=stdout, stderr=stderr
        )

    pid, ends = await with_pipes(create_piped, stdin=open_stdin, stdout=True, stderr=True)
    if ends.stdin >= 0:
        os.set_blocking(ends.stdin, False)
    return pid, Output(stdout=ends.stdout, stderr=ends.stderr, oomfd=None, stdin=ends.stdin)


def log_writer(c: Container, path: Path, hub: OutputHub) -> LogWriter:
    """The json-file writer for a run of ``c``, sized by its ``LogConfig``; with the
    ``none`` driver nothing is kept on disk (``max_size=0``) but attachers still see
    the output through ``hub``."""
    log_config = c.host_config.get("LogConfig", {})
    opts = log_config.get("Config", {})
    writer = LogWriter(
        path,
        hub,
        max_size=parse_human_size(opts["max-size"]) if "max-size" in opts else 0,
        max_file=int(opts.get("max-file", "1")),
    )
    if log_config.get("Type") == "none":
        writer.max_size = 0
    return writer


async def copy_output(output: Output, stream: str, writer: LogWriter) -> None:
    """Copy one pipe into the log until EOF. Cancellation: stops reading; the fd stays
    open (``Output.close`` owns it)."""
    fd = output.stdout if stream == "stdout" else output.stderr
    os.set_blocking(fd, False)
    while data := await read_chunk(fd):
        writer.feed(stream, data)
    output.stream_done()


def hand_over_stdin(h: Handle, output: Output) -> None:
    """A run was launched: its stdin write end and console move to ``h``, where
    attachers find them."""
    h.stdin_fd, output.stdin = output.stdin, -1
    h.console_fd = output.stdout if output.tty else -1
    h.stdin_closed = trio.Event()
    h.stdin_ready.set()


def close_stdin(h: Handle) -> None:
    """The process sees end-of-file on stdin (``StdinOnce`` after the first attach
    ends, or the run is over)."""
    if h.stdin_fd >= 0:
        with contextlib.suppress(OSError):
            os.close(h.stdin_fd)
        h.stdin_fd = -1
    h.stdin_closed.set()
