"""Tests for supervisor.containers.top: ps command lines and Docker's parse of ps output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.top import parse_ps, ps_commands, split_ps_args
from supervisor.errors import BerthError, InvalidArgument

PS_EF = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100       1  0 10:01 ?        00:00:00 sh -c sleep 300 & wait
root         101     100  0 10:01 ?        00:00:00 sleep 300
root         200       1  0 10:02 ?        00:00:00 /usr/bin/other  --flag
"""


def test_parse_ps_keeps_the_containers_rows_with_the_command_joined() -> None:
    out = parse_ps(PS_EF, [100, 101])
    assert out["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert out["Processes"] == [
        ["root", "100", "1", "0", "10:01", "?", "00:00:00", "sh -c sleep 300 & wait"],
        ["root", "101", "100", "0", "10:01", "?", "00:00:00", "sleep 300"],
    ]


def test_parse_ps_thread_rows_belong_to_the_process_above() -> None:
    output = (
        "  PID   LWP CMD\n  100   100 sh\n    -   105 sh\n  200   200 other\n    -   201 other\n"
    )
    out = parse_ps(output, [100])
    assert out["Processes"] == [["100", "100", "sh"], ["-", "105", "sh"]]


def test_parse_ps_without_pid_column_is_dockers_error() -> None:
    with pytest.raises(BerthError, match="Couldn't find PID field in ps output"):
        parse_ps("USER COMMAND\nroot x\n", [1])
    with pytest.raises(BerthError):
        parse_ps("", [1])


def test_parse_ps_non_numeric_pid_is_an_error() -> None:
    with pytest.raises(BerthError, match="Unexpected pid"):
        parse_ps("PID CMD\nabc x\n", [1])


@pytest.mark.parametrize(
    ("ps_args", "expected"),
    [
        ("", ["-ef"]),
        ("-ef", ["-ef"]),
        ("aux", ["aux"]),
        ("-o pid,comm", ["-o", "pid,comm"]),
        ("-o pid=PID,comm", ["-o", "pid=PID,comm"]),
    ],
    ids=["default", "ef", "bsd", "columns", "pid-renamed-to-PID"],
)
def test_split_ps_args(ps_args: str, expected: list[str]) -> None:
    assert split_ps_args(ps_args) == expected


def test_split_ps_args_refuses_renaming_another_column_to_pid() -> None:
    with pytest.raises(InvalidArgument, match='specifying "user=PID" is not allowed'):
        split_ps_args("-o user=PID")


def test_ps_commands_try_quick_mode_first() -> None:
    assert ps_commands("-ef", [3, 1]) == [["ps", "-ef", "-q", "3,1"], ["ps", "-ef"]]
    assert ps_commands("", []) == [["ps", "-ef"]]


@given(st.text(max_size=300), st.lists(st.integers(0, 500), max_size=5))
def test_parse_ps_raises_only_berth_errors(output: str, pids: list[int]) -> None:
    try:
        out = parse_ps(output, pids)
    except BerthError:
        return
    assert all(len(row) <= len(out["Titles"]) for row in out["Processes"])
