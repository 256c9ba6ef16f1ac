"""Container output: Docker's json-file log format, rotation, and live fan-out.

Theory of operation: a :class:`LogWriter` per container appends one JSON object per
line (``{"log": "...\\n", "stream": "stdout", "time": "RFC3339Nano"}``) and publishes
the same :class:`LogEntry` to an :class:`OutputHub`, which fans out to ``attach`` and
``logs --follow`` readers. Writing and publishing happen in one synchronous step on the
trio thread, and a follower reads the file and subscribes in one synchronous step too,
so a follower sees every line exactly once without sequence numbers.

Lines longer than 16 KiB are split as Docker splits them; a partial last line (no
newline) is flushed at EOF.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import trio

MAX_LINE = 16 * 1024
STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}


@attrs.frozen
class LogEntry:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time_ns: int


def format_time(ns: int) -> str:
    """RFC3339 with nanoseconds, as Docker writes log and state times."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    # Not strftime: glibc's %Y does not pad years before 1000 (Go's zero time is year 1).
    return f"{dt.year:04d}-{dt:%m-%dT%H:%M:%S}.{nanos:09d}Z"


def parse_time(text: str) -> int:
    """Inverse of :func:`format_time` (accepts fewer fraction digits too)."""
    text = text.rstrip("Z")
    base, _, frac = text.partition(".")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def encode_line(entry: LogEntry) -> bytes:
    return (
        json.dumps(
            {
                "log": entry.data.decode("utf-8", "replace"),
                "stream": entry.stream,
                "time": format_time(entry.time_ns),
            }
        ).encode()
        + b"\n"
    )


def decode_line(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
        return LogEntry(str(obj["stream"]), str(obj["log"]).encode(), parse_time(str(obj["time"])))
    except (ValueError, KeyError, TypeError):
        return None


def frame(stream: str, payload: bytes) -> bytes:
    """Docker's multiplexed stream frame: [stream, 0, 0, 0, len32be] + payload."""
    return bytes([STREAM_IDS[stream], 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class OutputHub:
    """Fans a container's output out to live subscribers (attach, logs -f).

    Subscribers registered while the container is not running receive the next run's
    output (``docker run`` attaches before it starts the container).
    """

    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel[LogEntry]] = set()
        self.live = False  # a run's output is flowing; False between end_of_run and the next run

    def start_of_run(self) -> None:
        self.live = True

    def subscribe(self, buffer: int = 1024) -> trio.MemoryReceiveChannel[LogEntry]:
        send, receive = trio.open_memory_channel[LogEntry](buffer)
        self._subscribers.add(send)
        return receive

    def publish(self, entry: LogEntry) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(entry)
            except trio.WouldBlock:
                # A reader that cannot keep up is cut off rather than slowing the container.
                send.close()
                self._subscribers.discard(send)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(send)

    def end_of_run(self) -> None:
        """The run's output ended: current subscribers see end-of-stream."""
        self.live = False
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()


class LogWriter:
    """Appends a container's output to ``path`` in json-file format, with rotation."""

    def __init__(self, path: Path, hub: OutputHub, *, max_size: int = 0, max_file: int = 1) -> None:
        self.path = path
        self.hub = hub
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[str, bytes] = {}

    def feed(self, stream: str, data: bytes) -> None:
        """Write the complete lines of ``data`` (keeping a partial line for later).

        Live subscribers (attach, logs -f) get ``data`` as it came, partial lines
        included: a shell's prompt has no newline."""
        if data:
            self.hub.publish(LogEntry(stream, data, time.time_ns()))
        buffer = self._partial.pop(stream, b"") + data
        while buffer:
            newline = buffer.find(b"\n")
            if newline < 0 or newline >= MAX_LINE:
                if len(buffer) < MAX_LINE:
                    self._partial[stream] = buffer
                    return
                line, buffer = buffer[:MAX_LINE], buffer[MAX_LINE:]
            else:
                line, buffer = buffer[: newline + 1], buffer[newline + 1 :]
            self._write(LogEntry(stream, line, time.time_ns()))

    def flush(self) -> None:
        for stream, rest in sorted(self._partial.items()):
            if rest:
                self._write(LogEntry(stream, rest, time.time_ns()))
        self._partial.clear()

    def _write(self, entry: LogEntry) -> None:
        encoded = encode_line(entry)
        if self.max_size and self._size + len(encoded) > self.max_size and self._size > 0:
            self._rotate()
        os.write(self._fd, encoded)
        self._size += len(encoded)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 0, -1):
                src = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
                if src.exists():
                    src.rename(self.path.with_name(f"{self.path.name}.{n}"))
        else:
            self.path.unlink(missing_ok=True)
        self._fd = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640
        )
        self._size = 0

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def log_files(path: Path) -> list[Path]:
    """The current log and its rotated siblings, oldest first."""
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*rotated, *([path] if path.exists() else [])]


def read_entries(path: Path) -> Iterator[LogEntry]:
    for p in log_files(path):
        try:
            with open(p, "rb") as f:
                for line in f:
                    entry = decode_line(line)
                    if entry is not None:
                        yield entry
        except FileNotFoundError:
            continue


def select_entries(
    entries: Iterator[LogEntry],
    *,
    stdout: bool,
    stderr: bool,
    since_ns: int = 0,
    until_ns: int = 0,
    tail: int | None = None,
) -> list[LogEntry]:
    """Docker's ``logs`` selection: streams, time window, then the last ``tail`` lines."""
    out = [
        e
        for e in entries
        if ((e.stream == "stdout" and stdout) or (e.stream == "stderr" and stderr))
        and e.time_ns >= since_ns
        and (not until_ns or e.time_ns <= until_ns)
    ]
    if tail is not None:
        out = out[-tail:] if tail > 0 else []
    return out
