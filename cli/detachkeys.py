"""Detach keys on the client side: docker's ``--detach-keys`` syntax and its escape proxy.

Theory of operation:
    ``--detach-keys`` (and ``detachKeys`` in ``config.json``) is a comma-separated
    list of keys, each one character or ``ctrl-<x>`` with ``x`` in ``a-z``, ``@``,
    ``[``, ``\\``, ``]``, ``^``, ``_``; the default is ``ctrl-p,ctrl-q``.
    ``parse_detach_keys`` turns it into the bytes a terminal sends.

    With a TTY, docker's CLI watches what the user types for that sequence itself
    (moby/term's escape proxy) and stops when it is complete, without sending it:
    the daemon never sees the keys, the terminal is given back and the container
    keeps running.  ``EscapeDetector.feed`` does the same over bytes in any split:
    a byte that continues the sequence is held back; one that breaks it releases
    the held bytes together with itself (so ``ctrl-p x`` reaches the container
    whole); the last byte of the sequence ends the stream.

    Pure module: stdlib only, no I/O.
"""

from __future__ import annotations

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


class DetachKeysError(ValueError):
    """The ``--detach-keys`` text is not docker's syntax; the message is the daemon's."""


def parse_detach_keys(text: str) -> bytes:
    """``"ctrl-p,ctrl-q"`` -> ``b"\\x10\\x11"``; an empty text means the default.

    Raises:
        DetachKeysError: ``Invalid detach keys (TEXT) provided``, as the daemon says.
    """
    if not text:
        text = DEFAULT_DETACH_KEYS
    keys = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            if not key.isascii():  # Go counts bytes: "é" is two, hence no key
                raise DetachKeysError(f"Invalid detach keys ({text}) provided")
            keys.append(ord(key))
            continue
        if len(key) == 6 and key.lower().startswith("ctrl-"):
            c = key[5].lower()
            if "a" <= c <= "z":
                keys.append(ord(c) - ord("a") + 1)
                continue
            if c in _CTRL_SPECIAL:
                keys.append(_CTRL_SPECIAL[c])
                continue
        raise DetachKeysError(f"Invalid detach keys ({text}) provided")
    return bytes(keys)


class EscapeDetector:
    """Finds the detach sequence in typed input; sans-IO.

    ``feed`` returns what to send on and whether the sequence is complete; after
    that nothing more should be fed.  ``flush`` gives back bytes held at the end of
    the input (a sequence the user began but never finished).
    """

    __slots__ = ("_held", "_keys")

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._held = bytearray()

    @property
    def held(self) -> bytes:
        """Bytes that may begin the sequence, not sent on yet."""
        return bytes(self._held)

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns ``(bytes to send on, detached)``."""
        if not self._keys:
            return data, False
        first = self._keys[0]
        out = bytearray()
        pos = 0
        while pos < len(data):
            if not self._held:
                # Skip to the next byte that may begin the sequence (a paste stays cheap).
                start = data.find(first, pos)
                if start < 0:
                    out += data[pos:]
                    break
                out += data[pos:start]
                pos = start
            self._held.append(data[pos])
            pos += 1
            if self._keys.startswith(self._held):
                if len(self._held) == len(self._keys):
                    self._held.clear()
                    return bytes(out), True
                continue
            out += self._held  # not the sequence after all: send it as typed
            self._held.clear()
        return bytes(out), False

    def flush(self) -> bytes:
        """The held bytes, released (the input ended)."""
        held = bytes(self._held)
        self._held.clear()
        return held
