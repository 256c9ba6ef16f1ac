"""Pure helpers of ``supervisor.build.builder``."""

from __future__ import annotations

import pytest

from supervisor.build.builder import _describe, _http_time
from supervisor.build.dockerfile import parse_line
from supervisor.build.instructions import apply_metadata


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480),
        (None, 0),
        ("", 0),
        ("yesterday", 0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
    ],
    ids=["http-date", "absent", "empty", "garbage", "epoch"],
)
def test_http_time_last_modified(value: str | None, expected: int) -> None:
    assert _http_time(value) == expected


@pytest.mark.parametrize(
    ("old", "text", "expected"),
    [
        ({"ExposedPorts": {"22/tcp": {}}}, "EXPOSE 80 $P/udp", "EXPOSE 80 90/udp"),
        ({"Volumes": {"/z": {}}}, "VOLUME /v $P", "VOLUME [/v 90]"),
        ({}, 'VOLUME ["/a", "/b"]', "VOLUME [/a /b]"),
        ({}, 'SHELL ["/bin/sh", "-c"]', "SHELL [/bin/sh -c]"),
    ],
    ids=["expose", "volume", "volume-json", "shell"],
)
def test_describe_as_classic_builder(old: dict[str, object], text: str, expected: str) -> None:
    """dockerd 20.10's history text: this instruction's values after substitution, as
    written (not the config's accumulated, sorted set), Go's ``%v`` for lists."""
    ins = parse_line(text, line=1)
    env = {"P": "90"}
    new = apply_metadata(ins, dict(old), env)
    assert _describe(ins, new, old, env, "\\") == expected
