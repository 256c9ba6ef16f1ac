"""Docker's 8-byte-header stream framing: encoder and incremental demuxer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.stream import STDERR, STDOUT, SYSTEMERR, Demuxer, FrameError, encode_frame


def test_encode_frame_header_layout() -> None:
    assert encode_frame(STDERR, b"hi") == b"\x02\x00\x00\x00\x00\x00\x00\x02hi"


def test_encode_frame_empty_payload() -> None:
    assert encode_frame(STDOUT, b"") == b"\x01\x00\x00\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("stream", [-1, 4, 255], ids=["negative", "four", "byte-max"])
def test_encode_frame_invalid_stream_raises(stream: int) -> None:
    with pytest.raises(FrameError):
        encode_frame(stream, b"x")


def test_demuxer_byte_at_a_time_yields_frame_once_complete() -> None:
    data = encode_frame(STDOUT, b"hello")
    demux = Demuxer()
    frames = []
    for i in range(len(data)):
        frames.extend(demux.feed(data[i : i + 1]))
        if i < len(data) - 1:
            assert frames == []
    assert frames == [(STDOUT, b"hello")]
    assert demux.pending == 0
    demux.close()


def test_demuxer_several_frames_in_one_feed() -> None:
    data = encode_frame(STDOUT, b"a") + encode_frame(STDERR, b"bc") + encode_frame(SYSTEMERR, b"!")
    assert Demuxer().feed(data) == [(STDOUT, b"a"), (STDERR, b"bc"), (SYSTEMERR, b"!")]


def test_demuxer_ignores_reserved_header_bytes() -> None:
    assert Demuxer().feed(b"\x01\xff\xff\xff\x00\x00\x00\x01z") == [(STDOUT, b"z")]


def test_demuxer_unknown_stream_raises() -> None:
    with pytest.raises(FrameError, match="Unrecognized input header: 7"):
        Demuxer().feed(b"\x07\x00\x00\x00\x00\x00\x00\x00")


def test_demuxer_close_inside_frame_raises() -> None:
    demux = Demuxer()
    demux.feed(encode_frame(STDOUT, b"abc")[:-1])
    assert demux.pending == 10
    with pytest.raises(FrameError, match="inside a frame"):
        demux.close()


frames_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3), st.binary(max_size=300)), max_size=12
)


@given(frames=frames_strategy, cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20))
def test_roundtrip_any_split(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = b"".join(encode_frame(s, p) for s, p in frames)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    demux = Demuxer()
    got: list[tuple[int, bytes]] = []
    for start, end in itertools.pairwise(points):
        got.extend(demux.feed(data[start:end]))
    demux.close()
    assert got == frames


@given(st.binary(max_size=200))
def test_demuxer_never_raises_anything_but_frame_error(data: bytes) -> None:
    demux = Demuxer()
    try:
        demux.feed(data)
        demux.close()
    except FrameError:
        pass
