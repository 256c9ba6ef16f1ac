"""Docker's multiplexed stdout/stderr framing (``stdcopy``), as a sans-IO parser.

Theory of operation:
    A non-TTY attach or logs stream is a sequence of frames.  Each frame is an
    8-byte header followed by a payload::

        byte 0      stream: 0 stdin, 1 stdout, 2 stderr, 3 system error
        bytes 1..3  zero (ignored on input, written as zero)
        bytes 4..7  payload length, unsigned 32-bit big-endian

    ``Demuxer.feed`` accepts bytes in any split (one byte at a time, several
    frames at once) and returns the frames it completed.  It never does I/O.
    A stream id above 3 is a protocol error (docker's ``stdcopy`` answers
    "Unrecognized input header").  Stream 3 carries an error message from the
    daemon; callers report it rather than print it as output.

    Pure module: stdlib only, no sockets.
"""

from __future__ import annotations

STDIN = 0
STDOUT = 1
STDERR = 2
SYSTEMERR = 3

HEADER_SIZE = 8
MAX_PAYLOAD = 0xFFFFFFFF


class FrameError(ValueError):
    """The byte stream is not valid Docker framing."""


def encode_frame(stream: int, payload: bytes) -> bytes:
    """Return one frame: the 8-byte header followed by ``payload``.

    Raises:
        FrameError: ``stream`` is not 0..3 or ``payload`` is longer than 2**32-1.
    """
    if not 0 <= stream <= SYSTEMERR:
        raise FrameError(f"invalid stream id {stream}")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("frame payload too large")
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


class Demuxer:
    """Incremental frame parser: ``feed`` bytes, get ``(stream, payload)`` frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back because they do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data`` and return every frame it completes, in order.

        Raises:
            FrameError: a header names a stream other than 0..3.  The parser
                is then unusable (the framing is lost).
        """
        buf = self._buf
        buf += data
        frames: list[tuple[int, bytes]] = []
        pos = 0
        while len(buf) - pos >= HEADER_SIZE:
            stream = buf[pos]
            if stream > SYSTEMERR:
                raise FrameError(f"Unrecognized input header: {stream}")
            size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
            end = pos + HEADER_SIZE + size
            if len(buf) < end:
                break
            frames.append((stream, bytes(buf[pos + HEADER_SIZE : end])))
            pos = end
        if pos:
            del buf[:pos]
        return frames

    def close(self) -> None:
        """Declare end of input.

        Raises:
            FrameError: the input ended inside a frame.
        """
        if self._buf:
            raise FrameError(f"stream ended inside a frame ({len(self._buf)} bytes left)")
