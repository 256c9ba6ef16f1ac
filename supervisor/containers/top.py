"""``top``: which ``ps`` to run and which of its rows belong to the container. Pure.

Theory of operation: Docker answers ``GET /containers/{id}/top?ps_args=`` by running the
host's ``ps`` with the client's arguments (default ``-ef``) and keeping the rows whose PID
is one of the container's processes; berth does the same with the PIDs listed in the
container's cgroup. :func:`ps_commands` gives the command lines to try: first with
``-q <pids>`` (procps' quick mode: ``ps`` reads only those processes), then — because
some options, such as ``f``, refuse ``-q`` — the plain one. :func:`parse_ps` finds the
``PID`` column in the header and keeps the rows of the container's PIDs; thread rows
(``-L``/``-T``) whose PID column is ``-`` belong to the process above them. Every row
has as many fields as the header; the last column (the command) keeps its spaces.

Imports: standard library and ``supervisor.errors`` only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from supervisor.errors import BerthError, InvalidArgument

DEFAULT_PS_ARGS = "-ef"
# "-o user=PID" would rename a column to PID and make the parse pick the wrong one.
_RENAMED_TO_PID = re.compile(r"\s+(\S*)=\s*(PID\S*)")


def split_ps_args(ps_args: str) -> list[str]:
    """``ps_args`` as words, after Docker's check.

    Raises:
        InvalidArgument: a column other than ``pid`` is renamed to ``PID`` (400).
    """
    for key, value in _RENAMED_TO_PID.findall(ps_args):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')
    return (ps_args or DEFAULT_PS_ARGS).split()


def ps_commands(ps_args: str, pids: Sequence[int]) -> list[list[str]]:
    """The ``ps`` command lines to try in order (the second when the first fails)."""
    args = split_ps_args(ps_args)
    quick = ["ps", *args, "-q", ",".join(str(p) for p in pids)] if pids else None
    return [quick, ["ps", *args]] if quick else [["ps", *args]]


def _fields(line: str) -> list[str]:
    # ASCII whitespace only, as Docker splits (a command may contain other spaces).
    return [f for f in re.split(r"[ \t\n\r\f\v]+", line) if f]


def parse_ps(output: str, pids: Collection[int]) -> dict[str, Any]:
    """Docker's ``ContainerTopOKBody``: ``{"Titles": [...], "Processes": [[...]]}``.

    Raises:
        BerthError: the output has no ``PID`` column (500, Docker's message).
    """
    lines = output.splitlines()
    titles = _fields(lines[0]) if lines else []
    if "PID" not in titles:
        raise BerthError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    wanted = set(pids)
    processes: list[list[str]] = []
    current = -1
    for line in lines[1:]:
        fields = _fields(line)
        if len(fields) <= at:
            continue
        if fields[at] == "-":
            pid = current  # a thread row (-L/-T): its process is the last one listed
        else:
            try:
                pid = int(fields[at])
            except ValueError:
                raise BerthError(f"Unexpected pid '{fields[at]}' in ps output") from None
            current = pid
        if pid in wanted:
            last = len(titles) - 1
            processes.append([*fields[:last], " ".join(fields[last:])])
    return {"Titles": titles, "Processes": processes}
