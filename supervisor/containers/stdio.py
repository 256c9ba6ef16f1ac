"""Detach keys: the sequence that ends an attach without touching the process. Pure.

Docker's syntax (``--detach-keys``, ``detachKeys``): comma-separated keys, each a single
character or ``ctrl-<x>`` with ``x`` in ``a-z @ [ \\ ] ^ _``; the default is
``ctrl-p,ctrl-q``. :class:`DetachScanner` is sans-IO: feed it what the client typed, it
returns what to forward to the process and whether the sequence was completed. Bytes
that might start the sequence are held back until the next byte decides; a sequence
that turns out not to match is forwarded whole, as Docker's escape proxy does.
"""

from __future__ import annotations

from supervisor.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str) -> bytes:
    """``ctrl-p,ctrl-q`` → ``b"\\x10\\x11"``. An empty text means the default.

    Raises:
        InvalidArgument: Docker's ``Invalid detach keys (X) provided``.
    """
    if not text:
        text = DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            out.append(ord(key) & 0xFF)
            continue
        if key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            if c in _CTRL_SPECIAL:
                out.append(_CTRL_SPECIAL[c])
                continue
        raise InvalidArgument(f"Invalid detach keys ({text}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in a stream of client input."""

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns (bytes to forward, detached). After ``detached`` is True, nothing
        more should be fed."""
        if not self._keys:
            return data, False
        out = bytearray()
        if not self._held:
            # Most input holds no key byte at all: skip to the first candidate at C speed.
            first = data.find(self._keys[:1])
            if first < 0:
                return data, False
            out += data[:first]
            data = data[first:]
        for byte in data:
            candidate = self._held + bytes([byte])
            if self._keys.startswith(candidate):
                if candidate == self._keys:
                    self._held = b""
                    return bytes(out), True
                self._held = candidate
                continue
            out += candidate if not self._keys.startswith(bytes([byte])) else self._held
            self._held = bytes([byte]) if self._keys.startswith(bytes([byte])) else b""
        return bytes(out), False

    def flush(self) -> bytes:
        """What was held back when the input ends."""
        held, self._held = self._held, b""
        return held
