"""Tests for supervisor.volumes.filters: moby's list and prune filters."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.volumes.filters import prune_candidates, select
from supervisor.volumes.model import ANONYMOUS_LABEL, Volume

ANON = Volume("a" * 64, labels={ANONYMOUS_LABEL: ""})
DB = Volume("db-data", labels={"tier": "db", "env": "prod"})
WEB = Volume("web-cache", labels={"tier": "web"})
BARE = Volume("bare")
MOUNTED = Volume("mounted", labels={"tier": "db"})
OPTS = Volume("opts", options={"type": "tmpfs"}, labels={ANONYMOUS_LABEL: ""})
ALL = [(ANON, 0), (DB, 0), (WEB, 0), (BARE, 0), (MOUNTED, 2), (OPTS, 0)]


def names(vs: list[Volume]) -> list[str]:
    return [v.name for v in vs]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a" * 64, "db-data", "web-cache", "bare", "mounted", "opts"]),
        ({"name": ["cache"]}, ["web-cache"]),
        ({"name": ["^db", "bare"]}, ["db-data", "bare"]),
        ({"name": ["[unclosed"]}, []),
        ({"label": ["tier=db"]}, ["db-data", "mounted"]),
        ({"label": ["tier=db", "env"]}, ["db-data"]),
        ({"label": ["tier"]}, ["db-data", "web-cache", "mounted"]),
        ({"dangling": ["false"]}, ["mounted"]),
        ({"dangling": ["1"]}, ["a" * 64, "db-data", "web-cache", "bare", "opts"]),
        ({"driver": ["local"]}, ["a" * 64, "db-data", "web-cache", "bare", "mounted", "opts"]),
        ({"driver": ["nfs"]}, []),
    ],
    ids=[
        "none",
        "name-substring",
        "name-regex-or",
        "bad-regex",
        "label-kv",
        "labels-all",
        "label-key",
        "in-use",
        "dangling",
        "driver",
        "other-driver",
    ],
)
def test_select_follows_moby(filters: dict[str, list[str]], expected: list[str]) -> None:
    assert names(select(ALL, filters)) == expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"until": ["1h"]}, "invalid filter 'until'"),
        ({"dangling": ["maybe"]}, "invalid filter 'dangling=maybe'"),
        ({"dangling": ["true", "false"]}, "invalid filter 'dangling=true,false'"),
    ],
    ids=["unknown-key", "bad-bool", "two-values"],
)
def test_select_bad_filter_is_400(filters: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        select([], filters)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a" * 64]),  # anonymous, unused, no options
        ({"all": ["true"]}, ["a" * 64, "db-data", "web-cache", "bare"]),
        ({"all": ["0"]}, ["a" * 64]),
        ({"all": ["1"], "label": ["tier"]}, ["db-data", "web-cache"]),
        ({"all": ["1"], "label!": ["tier=db"]}, ["a" * 64, "web-cache", "bare"]),
        ({"label": ["tier"]}, []),
    ],
    ids=[
        "anonymous-only",
        "all",
        "all-false",
        "all-with-label",
        "label-not",
        "named-label-without-all",
    ],
)
def test_prune_candidates_follow_moby(filters: dict[str, list[str]], expected: list[str]) -> None:
    assert names(prune_candidates(ALL, filters)) == expected


@pytest.mark.parametrize(
    "filters",
    [{"name": ["x"]}, {"all": ["maybe"]}, {"all": ["1", "0"]}, {"dangling": ["true"]}],
    ids=["name-not-for-prune", "all-not-bool", "all-twice", "dangling-not-for-prune"],
)
def test_prune_candidates_bad_filter_is_400(filters: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidArgument):
        prune_candidates(ALL, filters)
