"""docker's flag-value parsers: sizes, CPUs, restart policies, durations, env files."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.units import (
    InvalidArgument,
    parse_cpus,
    parse_duration,
    parse_duration_ns,
    parse_env,
    parse_env_file,
    parse_filters,
    parse_kv,
    parse_labels,
    parse_memory_swap,
    parse_restart_policy,
    parse_size,
    parse_timestamp,
)

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64m", 64 * MIB),
        ("64M", 64 * MIB),
        ("1g", GIB),
        ("1.5g", GIB + GIB // 2),
        ("512k", 512 * KIB),
        ("512kb", 512 * KIB),
        ("512KiB", 512 * KIB),
        ("100b", 100),
        ("100", 100),
        ("2 GB", 2 * GIB),
        ("1t", 1 << 40),
        ("0", 0),
    ],
    ids=lambda v: repr(v),
)
def test_parse_size_accepts_docker_forms(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "m", "-1", "1x", "1mbb", " 1", "1ib", "1..5m", "1kk"])
def test_parse_size_rejects_with_docker_message(text: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid size: '{text}'$"):
        parse_size(text)


def test_parse_memory_swap_minus_one_is_unlimited() -> None:
    assert parse_memory_swap("-1") == -1
    assert parse_memory_swap("1g") == GIB


@given(
    n=st.integers(min_value=0, max_value=10**6),
    unit=st.sampled_from(["", "b", "k", "m", "g", "K", "Mb", "gib"]),
)
def test_parse_size_scales_by_binary_multiples(n: int, unit: str) -> None:
    scale = {"": 1, "b": 1, "k": KIB, "m": MIB, "g": GIB}[unit[:1].lower()]
    assert parse_size(f"{n}{unit}") == n * scale


@given(st.text(max_size=12))
def test_parse_size_never_raises_anything_but_invalid_argument(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        assert parse_size(text) >= 0


@pytest.mark.parametrize(
    ("text", "nanos"),
    [("0.5", 500_000_000), ("2", 2_000_000_000), ("1.25", 1_250_000_000), ("0.000000001", 1)],
)
def test_parse_cpus_gives_nanocpus(text: str, nanos: int) -> None:
    assert parse_cpus(text) == nanos


@pytest.mark.parametrize(
    ("text", "message"),
    [("abc", "failed to parse abc as a rational number"), ("0.0000000001", "value is too precise")],
)
def test_parse_cpus_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_cpus(text)


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("no", {"Name": "no", "MaximumRetryCount": 0}),
        ("always", {"Name": "always", "MaximumRetryCount": 0}),
        ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
        ("", {"Name": "", "MaximumRetryCount": 0}),
    ],
)
def test_parse_restart_policy_accepts(text: str, policy: dict[str, object]) -> None:
    assert parse_restart_policy(text) == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sometimes", "invalid restart policy: unknown policy 'sometimes'"),
        ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
        (":3", "invalid restart policy format: no policy provided before colon"),
        ("always:3", "maximum retry count can only be used with 'on-failure'"),
        ("on-failure:-1", "maximum retry count cannot be negative"),
    ],
)
def test_parse_restart_policy_rejects_with_docker_wording(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_restart_policy(text)


@given(st.text(max_size=20))
def test_parse_restart_policy_never_raises_anything_but_invalid_argument(text: str) -> None:
    try:
        policy = parse_restart_policy(text)
    except InvalidArgument:
        return
    assert policy["Name"] in ("", "no", "always", "on-failure", "unless-stopped")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("0", 0.0),
        ("-1s", -1.0),
        ("+3s", 3.0),
        ("1us", 1e-6),
        ("1\u00b5s", 1e-6),
        (".5s", 0.5),
        ("1.s", 1.0),
    ],
)
def test_parse_duration_go_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("10", 'time: missing unit in duration "10"'),
        ("3x", 'time: unknown unit "x" in duration "3x"'),
        (".s", 'time: invalid duration ".s"'),
        ("-", 'time: invalid duration "-"'),
        ("9999999999h", 'time: invalid duration "9999999999h"'),
    ],
)
def test_parse_duration_rejects_with_go_message(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.")):
        parse_duration(text)


@given(h=st.integers(0, 1000), m=st.integers(0, 59), s=st.integers(0, 59), ms=st.integers(0, 999))
def test_parse_duration_roundtrip(h: int, m: int, s: int, ms: int) -> None:
    text = f"{h}h{m}m{s}s{ms}ms"
    assert parse_duration_ns(text) == ((h * 60 + m) * 60 + s) * 10**9 + ms * 10**6


@given(st.text(max_size=16))
def test_parse_duration_never_raises_anything_but_invalid_argument(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_duration_ns(text)


def test_parse_env_bare_key_takes_value_from_environment() -> None:
    env = parse_env(["A=1", "HOME", "UNSET", "B="], environ={"HOME": "/root"})
    assert env == ["A=1", "HOME=/root", "UNSET", "B="]


def test_parse_env_empty_name_rejected() -> None:
    with pytest.raises(InvalidArgument, match="invalid environment variable: =x"):
        parse_env(["=x"], environ={})


def test_parse_env_file_docker_semantics() -> None:
    data = b"".join(
        [
            b"\xef\xbb\xbf# comment\n",
            b"\n",
            b"  A=1\n",
            b'QUOTED="kept as is"\n',
            b"EMPTY=\n",
            b"FROM_ENV\n",
            b"NOT_SET\n",
            b"\t  # indented comment\r\n",
            b"WIN=crlf\r\n",
        ]
    )
    result = parse_env_file(data, environ={"FROM_ENV": "yes"}, name="x.env")
    assert result == ["A=1", 'QUOTED="kept as is"', "EMPTY=", "FROM_ENV=yes", "WIN=crlf"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"BAD KEY=1\n", "variable 'BAD KEY' contains whitespaces"),
        (b"=value\n", "no variable name on line '=value'"),
        (b"A=\xff\n", "contains invalid utf8 bytes at line 1"),
    ],
)
def test_parse_env_file_rejects(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_env_file(data, environ={}, name="f")


@given(st.binary(max_size=200))
def test_parse_env_file_never_raises_anything_but_invalid_argument(data: bytes) -> None:
    try:
        for line in parse_env_file(data, environ={"A": "1"}):
            assert "=" in line
    except InvalidArgument:
        pass


@given(
    st.dictionaries(
        st.text(alphabet="ABCXYZ_abc019", min_size=1, max_size=10),
        st.text(alphabet="ab =#\t\"'\u00e9\u2026", max_size=20),
        max_size=8,
    )
)
def test_parse_env_file_roundtrip(env: dict[str, str]) -> None:
    data = "".join(f"{k}={v}\n" for k, v in env.items()).encode()
    assert parse_env_file(data, environ={}) == [f"{k}={v}" for k, v in env.items()]


def test_parse_labels_and_kv() -> None:
    assert parse_labels(["a=1", "b", "c=x=y", "a=2"]) == {"a": "2", "b": "", "c": "x=y"}
    assert parse_kv(["max-size=10m", "mode"]) == {"max-size": "10m", "mode": ""}
    with pytest.raises(InvalidArgument, match="empty name"):
        parse_labels(["=v"])


def test_parse_filters_groups_values_by_key() -> None:
    assert parse_filters(["status=running", "name=a", "status=exited", "status=running"]) == {
        "status": ["running", "exited"],
        "name": ["a"],
    }
    with pytest.raises(InvalidArgument, match="bad format of filter"):
        parse_filters(["status"])


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", str(int(NOW) - 600)),
        ("1h30m", str(int(NOW) - 5400)),
        ("1700000000", "1700000000"),
        ("1700000000.5", "1700000000.5"),
        ("0", "0"),
        ("2024-01-02T03:04:05Z", "1704164645.000000000"),
        ("2024-01-02T03:04:05.25+01:00", "1704161045.250000000"),
        ("2024-01-02", "1704153600.000000000"),
    ],
)
def test_parse_timestamp_forms(text: str, expected: str) -> None:
    assert parse_timestamp(text, now=NOW) == expected


def test_parse_timestamp_naive_date_uses_local_offset() -> None:
    assert (
        parse_timestamp("2024-01-02T03:04:05", now=NOW, local_offset=3600) == "1704161045.000000000"
    )


@pytest.mark.parametrize("text", ["yesterday", "2024-13-45", ""])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_timestamp(text, now=NOW)


@given(st.text(max_size=30))
def test_parse_timestamp_never_raises_anything_but_invalid_argument(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_timestamp(text, now=NOW)
