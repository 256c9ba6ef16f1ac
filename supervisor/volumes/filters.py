"""Docker's filters for ``GET /volumes`` and ``POST /volumes/prune``. Pure.

Theory of operation: moby ``volume/service`` accepts ``dangling``, ``name``, ``driver``
and ``label`` when listing, ``label``, ``label!`` and ``all`` when pruning (anything else:
"invalid filter 'x'"). Values of one key are alternatives, except the label keys, where
every value must match (``MatchKVList``). ``name`` matches exactly or as a regular
expression anywhere in the name. Prune (API ≥ 1.42) considers only anonymous volumes
unless ``all=true``: it adds ``label=com.docker.volume.anonymous``.

Imports: standard library, ``supervisor.errors`` and the volume model only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from supervisor.errors import InvalidArgument
from supervisor.volumes.model import ANONYMOUS_LABEL, Volume

LIST_FILTERS = ("dangling", "name", "driver", "label")
PRUNE_FILTERS = ("label", "label!", "all")
_TRUE = ("true", "1")
_FALSE = ("false", "0")


def _validate(filters: Mapping[str, Sequence[str]], accepted: Sequence[str]) -> None:
    for key in filters:
        if key not in accepted:
            raise InvalidArgument(f"invalid filter '{key}'")


def _match_kv_list(wanted: Sequence[str], labels: Mapping[str, str] | None) -> bool:
    if not wanted:
        return True
    if not labels:
        return False
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _name_matches(patterns: Sequence[str], name: str) -> bool:
    for pattern in patterns:
        if pattern == name:
            return True
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def _dangling(values: Sequence[str]) -> bool:
    if len(values) > 1 or values[0].lower() not in (*_TRUE, *_FALSE):
        raise InvalidArgument(f"invalid filter 'dangling={','.join(values)}'")
    return values[0].lower() in _TRUE


def matches(v: Volume, refs: int, filters: Mapping[str, Sequence[str]]) -> bool:
    """Whether volume ``v`` (mounted by ``refs`` containers) passes ``filters``."""
    if filters.get("driver") and v.driver not in filters["driver"]:
        return False
    if filters.get("name") and not _name_matches(filters["name"], v.name):
        return False
    if not _match_kv_list(filters.get("label", ()), v.labels):
        return False
    if filters.get("label!") and _match_kv_list(filters["label!"], v.labels):
        return False
    return not filters.get("dangling") or _dangling(filters["dangling"]) == (refs == 0)


def select(
    volumes: Sequence[tuple[Volume, int]], filters: Mapping[str, Sequence[str]]
) -> list[Volume]:
    """``GET /volumes``: the volumes (each with its reference count) that match."""
    _validate(filters, LIST_FILTERS)
    if filters.get("dangling"):
        _dangling(filters["dangling"])  # a bad value is an error even with no volumes
    return [v for v, refs in volumes if matches(v, refs, filters)]


def prune_candidates(
    volumes: Sequence[tuple[Volume, int]], filters: Mapping[str, Sequence[str]]
) -> list[Volume]:
    """``POST /volumes/prune``: unused local volumes without driver options that match,
    anonymous ones only unless ``all=true`` (moby ``withPrune``)."""
    _validate(filters, PRUNE_FILTERS)
    wanted = {k: list(v) for k, v in filters.items() if k != "all"}
    everything = filters.get("all") or []
    if len(everything) > 1:
        raise InvalidArgument(f"invalid filter 'all={everything}': only one value is expected")
    prune_all = False
    if everything:
        value = everything[0].lower()
        if value not in ("1", "t", "true", "0", "f", "false"):
            raise InvalidArgument(
                f"invalid filter 'all': strconv.ParseBool: parsing \"{everything[0]}\": invalid syntax"
            )
        prune_all = value in ("1", "t", "true")
    if not prune_all:
        wanted["label"] = [*wanted.get("label", []), ANONYMOUS_LABEL]
    return [
        v
        for v, refs in volumes
        if refs == 0 and v.driver == "local" and not v.options and matches(v, refs, wanted)
    ]
