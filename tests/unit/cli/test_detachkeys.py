"""Detach keys: docker's syntax and the client-side escape detector."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.detachkeys import DetachKeysError, EscapeDetector, parse_detach_keys


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("", b"\x10\x11"),
        ("ctrl-p,ctrl-q", b"\x10\x11"),
        ("ctrl-a", b"\x01"),
        ("CTRL-Z", b"\x1a"),
        ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", bytes([0, 27, 28, 29, 30, 31])),
        ("a,b", b"ab"),
        ("ctrl-x,x", b"\x18x"),
    ],
    ids=["empty-default", "default", "ctrl-a", "upper", "ctrl-specials", "letters", "mixed"],
)
def test_parse_detach_keys_docker_syntax_gives_terminal_bytes(text: str, keys: bytes) -> None:
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize(
    "text",
    ["ctrl-1", "foo", "ctrl-p,", ",ctrl-q", "ctrl-", "ctrl-pp", "é", "ctrl-é", "ctl-p"],
)
def test_parse_detach_keys_invalid_gives_the_daemons_message(text: str) -> None:
    with pytest.raises(DetachKeysError) as exc:
        parse_detach_keys(text)
    assert str(exc.value) == f"Invalid detach keys ({text}) provided"


@given(st.text(max_size=30))
def test_parse_detach_keys_never_raises_anything_else(text: str) -> None:
    try:
        keys = parse_detach_keys(text)
    except DetachKeysError:
        return
    assert 1 <= len(keys) <= len(text.split(",")) or text == ""


DEFAULT = b"\x10\x11"


@pytest.mark.parametrize(
    ("chunks", "sent", "detached"),
    [
        ([b"ls -l\r"], b"ls -l\r", False),
        ([b"ab\x10\x11cd"], b"ab", True),
        ([b"ab\x10", b"\x11cd"], b"ab", True),
        ([b"\x10", b"x"], b"\x10x", False),  # ctrl-p then x: both reach the process
        ([b"\x10\x10\x11"], b"\x10\x10\x11", False),  # as docker: no restart mid-sequence
        ([b"\x11\x10"], b"\x11", False),  # the ctrl-p is held, nothing decided yet
    ],
    ids=["plain", "in-one-read", "split", "broken", "no-restart", "held"],
)
def test_escape_detector_holds_releases_and_detects(
    chunks: list[bytes], sent: bytes, detached: bool
) -> None:
    detector = EscapeDetector(DEFAULT)
    out = b""
    done = False
    for chunk in chunks:
        forward, done = detector.feed(chunk)
        out += forward
        if done:
            break
    assert (out, done) == (sent, detached)


def test_escape_detector_flush_releases_an_unfinished_sequence() -> None:
    detector = EscapeDetector(DEFAULT)
    assert detector.feed(b"x\x10") == (b"x", False)
    assert detector.held == b"\x10"
    assert detector.flush() == b"\x10"
    assert detector.held == b""


def test_escape_detector_without_keys_passes_everything() -> None:
    assert EscapeDetector(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


@given(
    st.binary(max_size=200),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    st.sampled_from([DEFAULT, b"\x01", b"abc", b"aab"]),
)
def test_escape_detector_result_does_not_depend_on_how_input_is_split(
    data: bytes, cuts: list[int], keys: bytes
) -> None:
    whole = EscapeDetector(keys)
    expected_out, expected_done = whole.feed(data)
    if not expected_done:
        expected_out += whole.flush()
    detector = EscapeDetector(keys)
    out = b""
    done = False
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, end in itertools.pairwise(bounds):
        forward, done = detector.feed(data[start:end])
        out += forward
        if done:
            break
    if not done:
        out += detector.flush()
    assert (out, done) == (expected_out, expected_done)
    if not done:
        assert out == data  # nothing is lost or reordered unless the keys were typed
    else:
        assert keys in data


def test_escape_detector_passes_a_large_paste_whole() -> None:
    data = bytes(range(1, 16)) * 100_000  # 1.5 MB without ctrl-p
    assert EscapeDetector(DEFAULT).feed(data) == (data, False)
