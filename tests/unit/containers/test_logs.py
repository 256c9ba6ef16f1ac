"""Tests for supervisor.containers.logs: Docker's json-file format, line splitting, rotation,
selection, times and stream framing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.logs import (
    MAX_LINE,
    LogEntry,
    LogWriter,
    OutputHub,
    decode_line,
    encode_line,
    format_time,
    frame,
    log_files,
    parse_time,
    read_entries,
    select_entries,
)

ZERO_NS = parse_time("0001-01-01T00:00:00Z")
MAX_NS = parse_time("9999-12-31T23:59:59.999999999Z")


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "container-json.log"


def written(path: Path) -> list[tuple[str, bytes]]:
    return [(e.stream, e.data) for e in read_entries(path)]


def drain(receive: trio.MemoryReceiveChannel[LogEntry]) -> list[LogEntry]:
    out = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


# -- LogWriter: lines ------------------------------------------------------------------------


def test_log_writer_complete_lines_each_become_an_entry(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"one\ntwo\n")
    w.feed("stderr", b"oops\n")
    w.close()
    assert written(log_path) == [("stdout", b"one\n"), ("stdout", b"two\n"), ("stderr", b"oops\n")]


def test_log_writer_partial_line_waits_for_its_newline(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"hel")
    assert written(log_path) == []
    w.feed("stdout", b"lo\nwor")
    assert written(log_path) == [("stdout", b"hello\n")]
    w.feed("stdout", b"ld\n")
    w.close()
    assert written(log_path) == [("stdout", b"hello\n"), ("stdout", b"world\n")]


def test_log_writer_partials_are_kept_per_stream(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"out-")
    w.feed("stderr", b"err-")
    w.feed("stdout", b"done\n")
    w.feed("stderr", b"done\n")
    w.close()
    assert written(log_path) == [("stdout", b"out-done\n"), ("stderr", b"err-done\n")]


def test_log_writer_flush_writes_partial_lines_without_newline(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"no newline")
    w.feed("stderr", b"either")
    w.flush()
    assert written(log_path) == [("stderr", b"either"), ("stdout", b"no newline")]
    w.flush()  # nothing left: nothing written twice
    w.close()
    assert len(written(log_path)) == 2


@pytest.mark.parametrize(
    ("data", "chunks"),
    [
        (b"x" * (MAX_LINE - 1) + b"\n", [MAX_LINE]),
        (b"x" * MAX_LINE + b"\n", [MAX_LINE, 1]),
        (b"x" * (2 * MAX_LINE + 10) + b"\n", [MAX_LINE, MAX_LINE, 11]),
        (b"x" * MAX_LINE, [MAX_LINE]),
        (b"x" * (MAX_LINE + 5), [MAX_LINE, 5]),
    ],
    ids=["just-fits", "one-over", "two-and-a-bit", "exactly-16k-no-newline", "16k-plus-partial"],
)
def test_log_writer_long_line_splits_at_16k(log_path: Path, data: bytes, chunks: list[int]) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", data)
    w.close()
    entries = list(read_entries(log_path))
    assert [len(e.data) for e in entries] == chunks
    assert b"".join(e.data for e in entries) == data


def test_log_writer_byte_at_a_time_gives_same_entries(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    for byte in b"ab\ncd\n":
        w.feed("stdout", bytes([byte]))
    w.close()
    assert written(log_path) == [("stdout", b"ab\n"), ("stdout", b"cd\n")]


def test_log_writer_file_lines_are_docker_json(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stderr", b"hi \xff\n")
    w.close()
    (line,) = log_path.read_bytes().splitlines()
    obj = json.loads(line)
    assert set(obj) == {"log", "stream", "time"}
    assert obj["log"] == "hi \ufffd\n"
    assert obj["stream"] == "stderr"
    assert parse_time(obj["time"]) > 0


def test_log_writer_entries_published_to_hub(log_path: Path) -> None:
    hub = OutputHub()
    receive = hub.subscribe()
    w = LogWriter(log_path, hub)
    w.feed("stdout", b"a\nb")
    w.close()
    # Raw chunks, as they came: an interactive prompt has no newline to wait for.
    assert [(e.stream, e.data) for e in drain(receive)] == [("stdout", b"a\nb")]


def test_log_writer_times_never_go_backwards(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"".join(b"%d\n" % i for i in range(50)))
    w.close()
    times = [e.time_ns for e in read_entries(log_path)]
    assert times == sorted(times)


def test_log_writer_appends_to_existing_log(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"first run\n")
    w.close()
    w = LogWriter(log_path, OutputHub())
    w.feed("stdout", b"second run\n")
    w.close()
    assert written(log_path) == [("stdout", b"first run\n"), ("stdout", b"second run\n")]


# -- LogWriter: rotation ----------------------------------------------------------------------


def feed_lines(w: LogWriter, count: int) -> list[bytes]:
    lines = [b"line %03d\n" % i for i in range(count)]
    for line in lines:
        w.feed("stdout", line)
    w.close()
    return lines


LINE_SIZE = len(encode_line(LogEntry("stdout", b"line 000\n", 0)))


@pytest.mark.parametrize("max_file", [1, 2, 3, 5], ids=["1", "2", "3", "5"])
def test_log_writer_rotation_keeps_max_file_files(log_path: Path, max_file: int) -> None:
    w = LogWriter(log_path, OutputHub(), max_size=3 * LINE_SIZE, max_file=max_file)
    lines = feed_lines(w, 40)
    files = sorted(p.name for p in log_path.parent.iterdir())
    expected = ["container-json.log", *[f"container-json.log.{n}" for n in range(1, max_file)]]
    assert files == sorted(expected)
    for p in files:
        assert (log_path.parent / p).stat().st_size <= 3 * LINE_SIZE
    kept = [e.data for e in read_entries(log_path)]
    assert kept == lines[-len(kept) :]  # a contiguous tail, oldest file first
    assert len(kept) == 3 * max_file - 2  # every file full but the current one (1 line)


def test_log_writer_zero_max_size_never_rotates(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub(), max_size=0, max_file=3)
    lines = feed_lines(w, 30)
    assert log_files(log_path) == [log_path]
    assert [e.data for e in read_entries(log_path)] == lines


def test_log_writer_line_larger_than_max_size_still_written(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub(), max_size=10, max_file=2)
    lines = feed_lines(w, 3)
    assert [e.data for e in read_entries(log_path)] == lines[-2:]


def test_log_writer_existing_size_counts_toward_rotation(log_path: Path) -> None:
    log_path.write_bytes(encode_line(LogEntry("stdout", b"line 000\n", 1)) * 3)
    w = LogWriter(log_path, OutputHub(), max_size=3 * LINE_SIZE, max_file=2)
    w.feed("stdout", b"new\n")
    w.close()
    assert [e.data for e in read_entries(log_path)] == [b"line 000\n"] * 3 + [b"new\n"]
    assert log_files(log_path)[0].name == "container-json.log.1"


def test_log_writer_zero_max_file_treated_as_one(log_path: Path) -> None:
    w = LogWriter(log_path, OutputHub(), max_size=LINE_SIZE, max_file=0)
    lines = feed_lines(w, 5)
    assert log_files(log_path) == [log_path]
    assert [e.data for e in read_entries(log_path)] == lines[-1:]


# -- reading -----------------------------------------------------------------------------------


def test_log_files_orders_rotated_oldest_first(log_path: Path) -> None:
    for suffix in ["", ".1", ".2", ".10", ".gz", ".1.gz", ".x"]:
        (log_path.parent / f"container-json.log{suffix}").write_bytes(b"")
    assert [p.name for p in log_files(log_path)] == [
        "container-json.log.10",
        "container-json.log.2",
        "container-json.log.1",
        "container-json.log",
    ]


def test_log_files_no_log_yet_gives_empty(log_path: Path) -> None:
    assert log_files(log_path) == []
    assert list(read_entries(log_path)) == []


def test_read_entries_follows_rotation_order(log_path: Path) -> None:
    def write(path: Path, *data: bytes) -> None:
        path.write_bytes(b"".join(encode_line(LogEntry("stdout", d, 1)) for d in data))

    write(log_path.with_name("container-json.log.2"), b"a\n", b"b\n")
    write(log_path.with_name("container-json.log.1"), b"c\n")
    write(log_path, b"d\n", b"e\n")
    assert [e.data for e in read_entries(log_path)] == [b"a\n", b"b\n", b"c\n", b"d\n", b"e\n"]


def test_read_entries_skips_malformed_lines(log_path: Path) -> None:
    good = encode_line(LogEntry("stdout", b"ok\n", 5))
    log_path.write_bytes(
        b"not json\n"
        + good
        + b'{"log": "x"}\n'
        + b'{"log":1,"stream":"stdout","time":"bad"}\n'
        + good
    )
    assert [e.data for e in read_entries(log_path)] == [b"ok\n", b"ok\n"]


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"[]",
        b"null",
        b'{"stream": "stdout", "time": "2024-01-01T00:00:00Z"}',
        b'{"log": "a", "stream": "stdout"}',
    ],
    ids=["empty", "list", "null", "no-log", "no-time"],
)
def test_decode_line_malformed_returns_none(line: bytes) -> None:
    assert decode_line(line) is None


@given(
    stream=st.sampled_from(["stdout", "stderr"]),
    text=st.text(),
    ns=st.integers(0, MAX_NS),
)
def test_encode_decode_line_round_trips(stream: str, text: str, ns: int) -> None:
    data = text.encode("utf-8", "replace")  # valid UTF-8, as the file holds text
    entry = LogEntry(stream, data, ns)
    encoded = encode_line(entry)
    assert encoded.endswith(b"\n")
    assert encoded.count(b"\n") == 1
    assert decode_line(encoded) == entry


# -- select_entries --------------------------------------------------------------------------


def entries() -> Iterator[LogEntry]:
    yield LogEntry("stdout", b"o1\n", 100)
    yield LogEntry("stderr", b"e1\n", 200)
    yield LogEntry("stdout", b"o2\n", 300)
    yield LogEntry("stderr", b"e2\n", 400)
    yield LogEntry("stdout", b"o3\n", 500)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"stdout": True, "stderr": True}, ["o1", "e1", "o2", "e2", "o3"]),
        ({"stdout": True, "stderr": False}, ["o1", "o2", "o3"]),
        ({"stdout": False, "stderr": True}, ["e1", "e2"]),
        ({"stdout": False, "stderr": False}, []),
        ({"stdout": True, "stderr": True, "tail": 2}, ["e2", "o3"]),
        ({"stdout": True, "stderr": True, "tail": 0}, []),
        ({"stdout": True, "stderr": True, "tail": 99}, ["o1", "e1", "o2", "e2", "o3"]),
        ({"stdout": True, "stderr": True, "tail": None}, ["o1", "e1", "o2", "e2", "o3"]),
        ({"stdout": True, "stderr": False, "tail": 1}, ["o3"]),
        ({"stdout": True, "stderr": True, "since_ns": 300}, ["o2", "e2", "o3"]),
        ({"stdout": True, "stderr": True, "until_ns": 300}, ["o1", "e1", "o2"]),
        ({"stdout": True, "stderr": True, "since_ns": 200, "until_ns": 400}, ["e1", "o2", "e2"]),
        ({"stdout": True, "stderr": True, "since_ns": 200, "until_ns": 400, "tail": 1}, ["e2"]),
        ({"stdout": True, "stderr": True, "since_ns": 600}, []),
    ],
    ids=[
        "both",
        "stdout",
        "stderr",
        "neither",
        "tail-2",
        "tail-0",
        "tail-more",
        "tail-none",
        "tail-after-streams",
        "since-inclusive",
        "until-inclusive",
        "window",
        "tail-after-window",
        "since-after-all",
    ],
)
def test_select_entries_streams_window_tail(kwargs: dict[str, object], expected: list[str]) -> None:
    selected = select_entries(entries(), **kwargs)  # type: ignore[arg-type]
    assert [e.data.decode().strip() for e in selected] == expected


# -- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000000000Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (ZERO_NS, "0001-01-01T00:00:00.000000000Z"),
    ],
    ids=["epoch", "2023", "one-ns", "go-zero-time"],
)
def test_format_time_gives_rfc3339_nanoseconds(ns: int, text: str) -> None:
    assert format_time(ns) == text


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123_456_789),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000_500_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000_000_000),
        ("2023-11-14T22:13:20.1234567891Z", 1_700_000_000_123_456_789),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000_000_000),
    ],
    ids=["nanoseconds", "fewer-digits", "no-fraction", "extra-digits-truncated", "go-zero-time"],
)
def test_parse_time_reads_rfc3339(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@given(st.integers(ZERO_NS, MAX_NS))
def test_format_time_parse_time_round_trip(ns: int) -> None:
    assert parse_time(format_time(ns)) == ns


@given(st.integers(0, MAX_NS), st.integers(0, MAX_NS))
def test_format_time_sorts_like_the_number(a: int, b: int) -> None:
    assert (format_time(a) < format_time(b)) == (a < b)


# -- frame ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "payload", "header"),
    [
        ("stdin", b"", b"\x00\x00\x00\x00\x00\x00\x00\x00"),
        ("stdout", b"hi", b"\x01\x00\x00\x00\x00\x00\x00\x02"),
        ("stderr", b"x" * 300, b"\x02\x00\x00\x00\x00\x00\x01\x2c"),
        ("stdout", b"y" * 70_000, b"\x01\x00\x00\x00\x00\x01\x11\x70"),
    ],
    ids=["stdin-empty", "stdout", "stderr-300", "stdout-70000"],
)
def test_frame_header_is_stream_then_big_endian_length(
    stream: str, payload: bytes, header: bytes
) -> None:
    assert frame(stream, payload) == header + payload


def test_frame_unknown_stream_raises_key_error() -> None:
    with pytest.raises(KeyError):
        frame("stdlog", b"")


# -- OutputHub ------------------------------------------------------------------------------


def test_output_hub_publishes_to_every_subscriber() -> None:
    hub = OutputHub()
    a, b = hub.subscribe(), hub.subscribe()
    entry = LogEntry("stdout", b"x\n", 1)
    hub.publish(entry)
    assert drain(a) == [entry]
    assert drain(b) == [entry]


def test_output_hub_end_of_run_ends_streams_and_forgets_subscribers() -> None:
    hub = OutputHub()
    receive = hub.subscribe()
    hub.end_of_run()
    with pytest.raises(trio.EndOfChannel):
        receive.receive_nowait()
    hub.publish(LogEntry("stdout", b"next run\n", 2))  # nobody left: no error


def test_output_hub_subscriber_after_end_sees_next_run() -> None:
    hub = OutputHub()
    hub.end_of_run()
    receive = hub.subscribe()
    entry = LogEntry("stdout", b"next\n", 3)
    hub.publish(entry)
    assert drain(receive) == [entry]


def test_output_hub_slow_subscriber_is_cut_off() -> None:
    hub = OutputHub()
    slow, fast = hub.subscribe(buffer=1), hub.subscribe(buffer=10)
    sent = [LogEntry("stdout", b"%d\n" % i, i) for i in range(3)]
    for entry in sent:
        hub.publish(entry)
    assert drain(slow) == sent[:1]
    with pytest.raises(trio.EndOfChannel):
        slow.receive_nowait()
    assert drain(fast) == sent


def test_output_hub_closed_subscriber_is_dropped() -> None:
    hub = OutputHub()
    gone, kept = hub.subscribe(), hub.subscribe()
    gone.close()
    entry = LogEntry("stderr", b"e\n", 4)
    hub.publish(entry)
    hub.publish(entry)
    assert drain(kept) == [entry, entry]
