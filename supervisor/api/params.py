"""Parsing of Docker's time parameters (``since``, ``until``, filter ``until``). Pure."""

from __future__ import annotations

from supervisor.config import parse_duration
from supervisor.containers.logs import parse_time
from supervisor.errors import InvalidArgument


def parse_timestamp(text: str, *, now_ns: int, durations: bool = False) -> int | None:
    """Unix seconds with an optional fraction (``1700000000.5``), an RFC 3339 time, or —
    with ``durations`` — a duration ago (``24h``, as ``until`` filters take). None for
    an empty value.

    Raises:
        InvalidArgument: anything else (400).
    """
    if not text:
        return None
    if durations:
        try:
            return now_ns - int(parse_duration(text) * 1e9)
        except ValueError:
            pass
    seconds, _, frac = text.partition(".")
    if seconds.lstrip("-").isdigit() and (not frac or frac.isdigit()):
        return int(seconds) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])
    try:
        return parse_time(text)
    except ValueError:
        raise InvalidArgument(f"invalid time value: {text!r}") from None
