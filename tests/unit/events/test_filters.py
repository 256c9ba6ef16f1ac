"""Tests for supervisor.events.filters: ``/events`` filters as moby's ``daemon/events/filter.go``."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.events.filters import event_matches, parse_filters, validate_event_filters
from supervisor.model import Event

CID = "c0ffee" + "1" * 58
IID = "sha256:" + "ab" * 32

START = Event(
    1,
    10,
    "container",
    "start",
    CID,
    {"name": "web", "image": "nginx:1.25", "tier": "front", "env": "prod"},
)
DIE = Event(2, 20, "container", "die", CID, {"name": "web", "image": "nginx:1.25", "exitCode": "0"})
EXEC = Event(
    3, 30, "container", "exec_start: sh -c true", CID, {"name": "web", "image": "nginx:1.25"}
)
HEALTH = Event(
    4, 40, "container", "health_status: healthy", CID, {"name": "web", "image": "nginx:1.25"}
)
OTHER = Event(
    5, 50, "container", "create", "beef" + "2" * 60, {"name": "webhook", "image": "busybox"}
)
NAMED = Event(
    6, 60, "container", "create", "dead" + "3" * 60, {"name": "nginx", "image": "busybox"}
)
TAG = Event(7, 70, "image", "tag", IID, {"name": "nginx:1.25"})
PULL = Event(8, 80, "image", "pull", "localhost:5000/app:v1", {"name": "localhost:5000/app:v1"})
REGISTRY = Event(
    9,
    90,
    "container",
    "start",
    "face" + "4" * 60,
    {"name": "app", "image": "localhost:5000/app:v1"},
)
NORMAL = Event(
    10,
    100,
    "container",
    "start",
    "feed" + "5" * 60,
    {"name": "bb", "image": "docker.io/library/busybox:latest"},
)
NET = Event(11, 110, "network", "connect", "n" * 64, {"name": "bridge", "container": CID})
DAEMON = Event(12, 120, "daemon", "reload", "d" * 20, {"name": "host1"})
EVENTS = [START, DIE, EXEC, HEALTH, OTHER, NAMED, TAG, PULL, REGISTRY, NORMAL, NET, DAEMON]


def ids(filters: dict[str, list[str]]) -> list[int]:
    return [e.id for e in EVENTS if event_matches(e, filters)]


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (None, {}),
        ("", {}),
        ({}, {}),
        ({"type": ["container"]}, {"type": ["container"]}),
        ({"type": ("container", "image")}, {"type": ["container", "image"]}),
        ({"event": {"start": True, "die": True, "kill": False}}, {"event": ["start", "die"]}),
        ({"label": []}, {"label": []}),
        ({"exitCode": [0]}, {"exitCode": ["0"]}),
    ],
    ids=[
        "none",
        "empty-string",
        "empty-object",
        "list",
        "tuple",
        "legacy-map",
        "empty-list",
        "non-string-value",
    ],
)
def test_parse_filters_accepts_both_docker_encodings(
    raw: object, parsed: dict[str, list[str]]
) -> None:
    assert parse_filters(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["type"], "invalid filter: expected a JSON object"),
        ("type=container", "invalid filter: expected a JSON object"),
        (3, "invalid filter: expected a JSON object"),
        ({"type": "container"}, "invalid filter 'type'"),
        ({"type": 1}, "invalid filter 'type'"),
        ({"type": None}, "invalid filter 'type'"),
    ],
    ids=["list", "string", "int", "string-values", "int-values", "null-values"],
)
def test_parse_filters_malformed_raises_invalid(raw: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_filters(raw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "key",
    [
        "type",
        "event",
        "container",
        "image",
        "label",
        "daemon",
        "network",
        "volume",
        "scope",
        "plugin",
        "node",
        "service",
        "secret",
        "config",
    ],
    ids=lambda k: k,
)
def test_validate_event_filters_docker_keys_accepted(key: str) -> None:
    validate_event_filters({key: ["x"]})


@pytest.mark.parametrize("key", ["status", "name", "Type", "until"], ids=lambda k: k)
def test_validate_event_filters_unknown_key_raises_invalid_filter(key: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid filter '{key}'$"):
        validate_event_filters({key: ["x"]})


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [e.id for e in EVENTS]),
        ({"type": []}, [e.id for e in EVENTS]),
        ({"type": ["image"]}, [7, 8]),
        ({"type": ["image", "daemon"]}, [7, 8, 12]),
        ({"event": ["die"]}, [2]),
        ({"event": ["start", "die"]}, [1, 2, 9, 10]),
        ({"event": ["exec_start"]}, [3]),
        ({"event": ["health_status"]}, [4]),
        ({"event": ["exec_start: sh -c true"]}, [3]),
        ({"container": ["web"]}, [1, 2, 3, 4, 5]),
        ({"container": ["webhook"]}, [5]),
        ({"container": [CID]}, [1, 2, 3, 4]),
        ({"container": ["c0ffee"]}, [1, 2, 3, 4]),
        ({"container": ["nope"]}, []),
        ({"container": ["bridge"]}, []),
        ({"image": ["nginx"]}, [1, 2, 3, 4, 7]),
        ({"image": ["nginx:1.25"]}, [1, 2, 3, 4, 7]),
        ({"image": ["busybox"]}, [5, 6, 10]),
        ({"image": ["docker.io/library/busybox:latest"]}, [10]),
        ({"image": ["localhost:5000/app"]}, [8, 9]),
        ({"image": ["localhost"]}, []),
        ({"image": [IID]}, [7]),
        ({"image": [IID[:19]]}, []),
        ({"image": ["app"]}, []),
        ({"label": ["tier"]}, [1]),
        ({"label": ["tier=front"]}, [1]),
        ({"label": ["tier=back"]}, []),
        ({"label": ["tier=front", "env=prod"]}, [1]),
        ({"label": ["tier=front", "env=dev"]}, []),
        ({"label": ["exitCode=0"]}, [2]),
        ({"scope": ["local"]}, [e.id for e in EVENTS]),
        ({"scope": ["swarm"]}, []),
        ({"network": ["bridge"]}, [11]),
        ({"network": ["nnn"]}, [11]),
        ({"daemon": ["host1"]}, [12]),
        ({"daemon": ["host"]}, [12]),
        ({"network": ["bri"]}, [11]),
        ({"volume": ["x"]}, []),
        ({"plugin": ["x"]}, []),
        ({"type": ["container"], "event": ["start"], "container": ["web"]}, [1]),
        ({"type": ["image"], "event": ["start"]}, []),
    ],
    ids=[
        "no-filters",
        "empty-values",
        "type",
        "types-or",
        "event",
        "events-or",
        "exec-prefix",
        "health-prefix",
        "exec-exact",
        "container-name-prefix",
        "container-name",
        "container-id",
        "container-id-prefix",
        "container-unknown",
        "container-only-container-events",
        "image-repo",
        "image-tag",
        "image-official",
        "image-normalized",
        "image-registry-port",
        "image-registry-host-alone",
        "image-id",
        "image-id-prefix-is-not-exact",
        "image-not-container-name",
        "label-key",
        "label-value",
        "label-other-value",
        "labels-all",
        "labels-one-fails",
        "label-attribute",
        "scope-local",
        "scope-swarm",
        "network-name",
        "network-id-prefix",
        "daemon",
        "daemon-name-prefix",
        "network-name-prefix",
        "volume",
        "plugin",
        "keys-anded",
        "keys-anded-empty",
    ],
)
def test_event_matches_filter_matches_docker(
    filters: dict[str, list[str]], expected: list[int]
) -> None:
    assert ids(filters) == expected


def test_event_matches_parsed_legacy_filters() -> None:
    filters = parse_filters({"event": {"die": True}, "container": {"web": True}})
    assert ids(filters) == [2]
