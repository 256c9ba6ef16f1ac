"""Parsers for docker's flag values: sizes, CPUs, restart policies, durations, env files.

Theory of operation:
    Each function turns one command-line string into the value the Engine API
    expects, following docker's CLI (docker/cli ``opts``) and ``go-units``
    wording so users see the same errors.  Every parse failure raises
    ``InvalidArgument`` with a one-line, user-facing message; no other
    exception escapes (the Hypothesis tests hold us to that).

    Host facts (environment, current time, local timezone) are parameters,
    never looked up here.  Pure module: stdlib only, no I/O.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class InvalidArgument(ValueError):
    """A flag value that docker would reject; the message is shown as is."""


# --- sizes (go-units RAMInBytes) -------------------------------------------

_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp]?)(i?b)?", re.IGNORECASE | re.ASCII)
_BINARY = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(value: str) -> int:
    """Parse a human size with binary multiples, as go-units ``RAMInBytes``.

    ``"64m"`` is 64 MiB, ``"1.5g"`` 1.5 GiB, ``"512k"``, ``"100b"``, ``"1GiB"``;
    case-insensitive, an optional space before the unit.

    Raises:
        InvalidArgument: ``invalid size: '<value>'``.
    """
    match = _SIZE_RE.fullmatch(value)
    if match is None:
        raise InvalidArgument(f"invalid size: '{value}'")
    number, unit, suffix = str(match[1]), str(match[2]), match[3]
    if suffix is not None and suffix.lower() == "ib" and not unit:
        raise InvalidArgument(f"invalid size: '{value}'")
    scale = _BINARY[unit.lower()]
    if "." not in number:
        return int(number) * scale
    whole, frac = number.split(".")
    # Exact arithmetic: go-units multiplies a float64 and truncates; for the
    # values people type ("1.5g") both agree, and we avoid float surprises.
    return (int(whole) * scale) + (int(frac) * scale) // int(10 ** len(frac))


def parse_memory_swap(value: str) -> int:
    """Parse ``--memory-swap``: a size, or ``-1`` for unlimited swap."""
    if value == "-1":
        return -1
    return parse_size(value)


# --- CPUs ---------------------------------------------------------------------


def parse_cpus(value: str) -> int:
    """Parse ``--cpus`` (a rational number of CPUs) into NanoCpus.

    ``"0.5"`` is 500000000, ``"2"`` is 2000000000.

    Raises:
        InvalidArgument: not a number, or finer than a nanocpu (docker's
            "value is too precise").
    """
    from fractions import Fraction  # lazy: only `run --cpus` needs it

    try:
        cpus = Fraction(value.strip())
    except (ValueError, ZeroDivisionError):
        raise InvalidArgument(f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise InvalidArgument("value is too precise")
    if nano < 0:
        raise InvalidArgument(f"invalid --cpus value {value}: must not be negative")
    return int(nano)


# --- restart policy -----------------------------------------------------------

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


def parse_restart_policy(value: str) -> dict[str, object]:
    """Parse ``--restart`` into HostConfig.RestartPolicy.

    ``no``, ``always``, ``unless-stopped``, ``on-failure`` or ``on-failure:N``.
    An empty value gives docker's backward-compatible ``{"Name": ""}``.

    Raises:
        InvalidArgument: with docker's wording ("invalid restart policy ...").
    """
    if value == "":
        return {"Name": "", "MaximumRetryCount": 0}
    name, colon, count_text = value.partition(":")
    if colon and not name:
        raise InvalidArgument("invalid restart policy format: no policy provided before colon")
    count = 0
    if count_text:
        if not re.fullmatch(r"[+-]?[0-9]+", count_text):
            raise InvalidArgument(
                "invalid restart policy format: maximum retry count must be an integer"
            )
        count = int(count_text)
    if name not in RESTART_POLICIES:
        raise InvalidArgument(
            f"invalid restart policy: unknown policy '{name}'; use one of "
            "'no', 'always', 'on-failure', or 'unless-stopped'"
        )
    if count and name != "on-failure":
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    if count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    return {"Name": name, "MaximumRetryCount": count}


# --- Go durations (time.ParseDuration) -----------------------------------------

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_MAX_DURATION = (1 << 63) - 1


def parse_duration_ns(value: str) -> int:
    """Parse a Go duration ("10s", "1m30s", "500ms", "-1.5h") into nanoseconds.

    Raises:
        InvalidArgument: Go's messages (``time: invalid duration "x"``, missing
            or unknown unit, overflow).
    """
    text = value
    sign = 1
    if text[:1] in ("-", "+"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise InvalidArgument(f'time: invalid duration "{value}"')
    total = 0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.end() == pos:  # pragma: no cover - the pattern always matches
            raise InvalidArgument(f'time: invalid duration "{value}"')
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            raise InvalidArgument(f'time: invalid duration "{value}"')
        if not unit:
            raise InvalidArgument(f'time: missing unit in duration "{value}"')
        scale = _NS_PER_UNIT.get(unit)
        if scale is None:
            raise InvalidArgument(f'time: unknown unit "{unit}" in duration "{value}"')
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // (10 ** len(frac))
        if total > _MAX_DURATION:
            raise InvalidArgument(f'time: invalid duration "{value}"')
        pos = match.end()
    return sign * total


def parse_duration(value: str) -> float:
    """Parse a Go duration into seconds (``"1m30s"`` is 90.0)."""
    return parse_duration_ns(value) / 1e9


# --- key=value lists ------------------------------------------------------------


def parse_env(values: Iterable[str], *, environ: Mapping[str, str]) -> list[str]:
    """Resolve ``-e`` values: ``KEY=VAL`` as is, bare ``KEY`` from ``environ`` if set.

    A bare key that is not set is passed through unchanged (docker's
    ``ValidateEnv``), which the daemon treats as "unset".

    Raises:
        InvalidArgument: an empty variable name (``-e =x``).
    """
    result: list[str] = []
    for item in values:
        key, eq, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        if not eq and key in environ:
            result.append(f"{key}={environ[key]}")
        else:
            result.append(item)
    return result


_WHITESPACE = " \t"


def parse_env_file(data: bytes, *, environ: Mapping[str, str], name: str = "") -> list[str]:
    """Parse an ``--env-file`` the way docker's ``kvfile`` does.

    One ``KEY=VALUE`` per line, the value kept verbatim (no quotes removed,
    no trimming); leading whitespace and a UTF-8 BOM are dropped; blank lines
    and lines starting with ``#`` are skipped; a bare ``KEY`` takes its value
    from ``environ`` and is skipped when unset.

    Raises:
        InvalidArgument: invalid UTF-8, a key with whitespace, an empty key.
    """
    result: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        try:
            line = raw.decode("utf-8").lstrip()
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"env file {name} contains invalid utf8 bytes at line {number}"
            ) from None
        if not line or line.startswith("#"):
            continue
        key, eq, val = line.partition("=")
        key = key.lstrip(_WHITESPACE)
        if any(ch in _WHITESPACE for ch in key):
            raise InvalidArgument(
                f"poorly formatted environment: variable '{key}' contains whitespaces"
            )
        if not key:
            raise InvalidArgument(
                f"poorly formatted environment: no variable name on line '{line}'"
            )
        if eq:
            result.append(f"{key}={val}")
        elif key in environ:
            result.append(f"{key}={environ[key]}")
    return result


def parse_labels(values: Iterable[str]) -> dict[str, str]:
    """Parse ``-l key=value`` (``-l key`` gives an empty value); later wins.

    Raises:
        InvalidArgument: an empty key (``invalid label '=x': empty name``).
    """
    labels: dict[str, str] = {}
    for item in values:
        key, _, val = item.partition("=")
        if not key.strip():
            raise InvalidArgument(f"invalid label '{item}': empty name")
        labels[key] = val
    return labels


def parse_kv(values: Iterable[str]) -> dict[str, str]:
    """Parse ``k=v`` options such as ``--log-opt`` (``k`` alone maps to "")."""
    result: dict[str, str] = {}
    for item in values:
        key, _, val = item.partition("=")
        result[key] = val
    return result


def parse_filters(values: Iterable[str]) -> dict[str, list[str]]:
    """Parse repeated ``--filter k=v`` into the API's ``{"k": ["v", ...]}``.

    Raises:
        InvalidArgument: a filter without ``=``.
    """
    filters: dict[str, list[str]] = {}
    for item in values:
        key, eq, val = item.partition("=")
        if not eq:
            raise InvalidArgument("bad format of filter (expected name=value)")
        key = key.strip().lower()
        filters.setdefault(key, [])
        if val not in filters[key]:
            filters[key].append(val)
    return filters


# --- timestamps for --since / --until --------------------------------------------

_UNIX_TS = re.compile(r"[0-9]+(?:\.[0-9]{1,9})?")


def parse_timestamp(value: str, *, now: float, local_offset: int = 0) -> str:
    """Turn ``--since``/``--until`` into the API's ``seconds[.nanoseconds]`` string.

    Accepts, like docker's ``GetTimestamp``: a Go duration relative to ``now``
    ("10m", "1h30m"), a unix timestamp ("1700000000", "1700000000.5"), and
    RFC 3339 dates with or without time and zone ("2024-01-02",
    "2024-01-02T15:04:05Z", "2024-01-02T15:04:05.123+02:00").  A date without
    a zone is read in the local zone, given as ``local_offset`` seconds east
    of UTC.

    Raises:
        InvalidArgument: none of those forms.
    """
    if value != "0":
        try:
            delta = parse_duration_ns(value)
        except InvalidArgument:
            pass
        else:
            return str(int(now - delta / 1e9))
    if _UNIX_TS.fullmatch(value):
        return value
    from datetime import UTC, datetime, timedelta, timezone  # lazy: only dates need it

    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        if "-" in value:
            raise InvalidArgument(f'parsing time "{value}": invalid RFC 3339 timestamp') from None
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"') from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone(timedelta(seconds=local_offset)))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    delta_t = stamp - epoch
    seconds = delta_t.days * 86400 + delta_t.seconds
    return f"{seconds}.{delta_t.microseconds * 1000:09d}"
