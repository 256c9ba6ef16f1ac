"""supervisor.containers.stdio: detach keys and the scanner that finds them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.stdio import DetachScanner, parse_detach_keys
from supervisor.errors import InvalidArgument

DEFAULT = b"\x10\x11"


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("", DEFAULT),
        ("ctrl-p,ctrl-q", DEFAULT),
        ("ctrl-a", b"\x01"),
        ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", bytes([0, 27, 28, 29, 30, 31])),
        ("a,b", b"ab"),
        ("CTRL-X", b"\x18"),
    ],
)
def test_parse_detach_keys(text: str, keys: bytes) -> None:
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-", "ctrl-1", "ab", "ctrl-p,", "shift-a"])
def test_parse_detach_keys_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid detach keys"):
        parse_detach_keys(text)


def test_scanner_detaches_and_forwards_what_came_before() -> None:
    s = DetachScanner(DEFAULT)
    assert s.feed(b"ls\n\x10") == (b"ls\n", False)  # a possible start is held back
    assert s.feed(b"\x11after") == (b"", True)


def test_scanner_forwards_a_partial_sequence_that_did_not_complete() -> None:
    s = DetachScanner(DEFAULT)
    assert s.feed(b"\x10") == (b"", False)
    assert s.feed(b"x") == (b"\x10x", False)
    assert s.feed(b"\x10") == (b"", False)
    assert s.flush() == b"\x10"


def test_scanner_without_keys_forwards_everything() -> None:
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_scanner_is_independent_of_how_input_is_split(data: bytes, cuts: list[int]) -> None:
    """Forwarded bytes and the detach point do not depend on chunk boundaries."""

    def run(chunks: list[bytes]) -> tuple[bytes, bool]:
        s = DetachScanner(DEFAULT)
        out = b""
        for chunk in chunks:
            forwarded, detached = s.feed(chunk)
            out += forwarded
            if detached:
                return out, True
        return out + s.flush(), False

    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole = run([data])
    assert run(pieces) == whole
    if DEFAULT not in data:
        assert whole == (data, False)
    else:
        assert whole == (data[: data.index(DEFAULT)], True)
