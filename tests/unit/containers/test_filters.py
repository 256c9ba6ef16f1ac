"""Tests for supervisor.containers.filters: ``GET /containers/json`` selection as moby's
``daemon/list.go`` ``includeContainerInList``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from supervisor.containers.filters import select, validate
from supervisor.containers.state import Status
from supervisor.errors import InvalidArgument, NoSuchContainer
from supervisor.model import Container, ContainerId, ContainerState, ImageId


def make(
    n: int,
    name: str,
    status: Status,
    *,
    exit_code: int = 0,
    labels: dict[str, str] | None = None,
    image: str = "busybox",
) -> Container:
    return Container(
        id=ContainerId(f"{n:x}" * 64 if n < 16 else f"{n:064x}"),
        name=name,
        created_ns=n * 1_000,
        image_ref=image,
        image_id=ImageId("sha256:" + "0" * 64),
        config={"Labels": labels or {}},
        host_config={},
        path="sh",
        args=(),
        state=ContainerState(status=status, exit_code=exit_code),
    )


WEB = make(1, "web", Status.RUNNING, labels={"tier": "front", "env": "prod"}, image="nginx")
DB = make(
    2, "db", Status.EXITED, exit_code=1, labels={"tier": "back", "env": "prod"}, image="postgres"
)
JOB = make(3, "job", Status.EXITED, exit_code=0, labels={"env": "dev"})
NEW = make(4, "fresh", Status.CREATED)
PAUSED = make(5, "web-paused", Status.PAUSED, labels={"tier": "front"}, image="nginx")
FLAPPY = make(6, "flappy", Status.RESTARTING, exit_code=2)
DEAD = make(7, "dead", Status.DEAD, exit_code=137)
ALL = [WEB, DB, JOB, NEW, PAUSED, FLAPPY, DEAD]


def resolve(ref: str) -> Container | None:
    return next(
        (c for c in ALL if c.id == ref or c.name == ref.lstrip("/") or c.id.startswith(ref)), None
    )


def image_matches(c: Container, ref: str) -> bool:
    return c.image_ref == ref


def names(filters: Mapping[str, Sequence[str]], *, all_: bool = False) -> list[str]:
    return [
        c.name
        for c in select(list(ALL), filters, all_=all_, resolve=resolve, image_matches=image_matches)
    ]


def test_select_no_filters_lists_running_paused_restarting() -> None:
    assert names({}) == ["web", "web-paused", "flappy"]


def test_select_all_lists_everything_in_given_order() -> None:
    assert names({}, all_=True) == [c.name for c in ALL]


@pytest.mark.parametrize(
    ("filters", "all_", "expected"),
    [
        ({"status": ["exited"]}, False, ["db", "job"]),
        ({"status": ["created", "dead"]}, False, ["fresh", "dead"]),
        ({"status": ["running"]}, True, ["web"]),
        ({"status": ["paused"]}, False, ["web-paused"]),
        ({"status": ["restarting"]}, False, ["flappy"]),
        ({"status": ["removing"]}, True, []),
        ({"exited": ["0"]}, True, ["job"]),
        ({"exited": ["1", "0"]}, True, ["db", "job"]),
        ({"exited": ["5"]}, True, []),
        ({"exited": ["01"]}, True, ["db"]),
        ({"exited": ["+1"]}, True, ["db"]),
        ({"exited": ["0"]}, False, []),
        ({"exited": ["0"], "status": ["exited"]}, False, ["job"]),
        ({"id": [WEB.id[:5]]}, False, ["web"]),
        ({"id": [WEB.id]}, False, ["web"]),
        ({"id": [DB.id[:12], JOB.id[:12]]}, True, ["db", "job"]),
        ({"name": ["web"]}, False, ["web", "web-paused"]),
        ({"name": ["^web$"]}, False, ["web"]),
        ({"name": ["^/web$"]}, False, ["web"]),
        ({"name": ["paused", "flap"]}, False, ["web-paused", "flappy"]),
        ({"name": ["[invalid"]}, True, []),
        ({"label": ["tier"]}, True, ["web", "db", "web-paused"]),
        ({"label": ["tier=front"]}, True, ["web", "web-paused"]),
        ({"label": ["tier=front", "env=prod"]}, True, ["web"]),
        ({"label": ["tier", "env=dev"]}, True, []),
        ({"label": ["env="]}, True, []),
        ({"ancestor": ["nginx"]}, True, ["web", "web-paused"]),
        ({"ancestor": ["nginx", "postgres"]}, True, ["web", "db", "web-paused"]),
        ({"before": ["job"]}, True, ["web", "db"]),
        ({"since": ["job"]}, True, ["fresh", "web-paused", "flappy", "dead"]),
        ({"since": ["web"], "before": ["fresh"]}, True, ["db", "job"]),
        ({"since": ["web"]}, False, ["web-paused", "flappy"]),
        ({"isolation": ["default"]}, False, ["web", "web-paused", "flappy"]),
        ({"network": ["bridge"]}, True, []),
        ({"volume": ["/data"]}, True, []),
        ({"publish": ["80"]}, True, []),
        ({"expose": ["80"]}, True, []),
        ({"health": ["healthy"]}, True, []),
        ({"status": []}, False, ["web", "web-paused", "flappy"]),
    ],
    ids=[
        "status-exited",
        "status-created-dead",
        "status-running",
        "status-paused",
        "status-restarting",
        "status-removing",
        "exited-0",
        "exited-1-or-0",
        "exited-no-match",
        "exited-leading-zero",
        "exited-plus-sign",
        "exited-without-all",
        "exited-with-status",
        "id-prefix",
        "id-full",
        "id-either",
        "name-regexp",
        "name-anchored",
        "name-with-slash",
        "name-either",
        "name-invalid-regexp",
        "label-key",
        "label-key-value",
        "labels-all-must-match",
        "labels-none-match",
        "label-empty-value",
        "ancestor",
        "ancestor-either",
        "before",
        "since",
        "since-and-before",
        "since-without-all",
        "isolation",
        "network",
        "volume",
        "publish",
        "expose",
        "health",
        "empty-values-ignored",
    ],
)
def test_select_filter_matches_docker(
    filters: dict[str, list[str]], all_: bool, expected: list[str]
) -> None:
    assert names(filters, all_=all_) == expected


@pytest.mark.parametrize("key", ["before", "since"], ids=["before", "since"])
def test_select_unknown_before_since_container_raises_not_found(key: str) -> None:
    with pytest.raises(NoSuchContainer) as info:
        names({key: ["nope"]})
    assert info.value.status == 404
    assert str(info.value) == "No such container: nope"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"colour": ["red"]}, "invalid filter 'colour'"),
        ({"status": ["stopped"]}, "invalid filter 'status=stopped'"),
        ({"status": ["Running"]}, "invalid filter 'status=Running'"),
        ({"exited": ["x"]}, "invalid filter 'exited=x'"),
        ({"exited": ["--1"]}, "invalid filter 'exited=--1'"),
        ({"exited": ["1.0"]}, "invalid filter 'exited=1.0'"),
        ({"exited": ["\u00b2"]}, "invalid filter 'exited=\u00b2'"),
        ({"exited": [""]}, "invalid filter 'exited='"),
    ],
    ids=[
        "unknown-key",
        "unknown-status",
        "status-case",
        "exited-word",
        "exited-double-minus",
        "exited-float",
        "exited-superscript",
        "exited-empty",
    ],
)
def test_validate_bad_filter_raises_invalid_filter(
    filters: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate(filters)
    assert str(info.value) == message
    with pytest.raises(InvalidArgument):
        names(filters, all_=True)


@pytest.mark.parametrize(
    "key",
    [
        "id",
        "name",
        "label",
        "status",
        "exited",
        "ancestor",
        "before",
        "since",
        "network",
        "volume",
        "publish",
        "expose",
        "health",
        "isolation",
        "is-task",
    ],
    ids=lambda k: k,
)
def test_validate_docker_keys_accepted(key: str) -> None:
    validate({key: []})


def test_select_network_publish_and_expose_filters() -> None:
    import attrs

    from supervisor.network.ports import PortBinding, Proto

    web = attrs.evolve(
        WEB,
        config={"ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
        state=attrs.evolve(WEB.state, ports=(PortBinding("", 8080, 80, Proto.TCP),)),
    )
    nets = {web.id: {"appnet", "a" * 64}, PAUSED.id: {"bridge"}}

    def pick(filters: Mapping[str, Sequence[str]]) -> list[str]:
        return [
            c.name
            for c in select(
                [web, PAUSED],
                filters,
                all_=True,
                resolve=resolve,
                image_matches=image_matches,
                networks_of=lambda c: nets.get(c.id, set()),
            )
        ]

    assert pick({"network": ["appnet"]}) == ["web"]
    assert pick({"network": ["a" * 64, "bridge"]}) == ["web", "web-paused"]
    assert pick({"publish": ["80"]}) == ["web"]
    assert pick({"publish": ["80/udp"]}) == []
    assert pick({"publish": ["70-90/tcp"]}) == ["web"]
    assert pick({"expose": ["53/udp"]}) == ["web"]
    with pytest.raises(InvalidArgument):
        pick({"publish": ["http"]})


HEALTH = {"web": "healthy", "web-paused": "starting", "db": "unhealthy"}


@pytest.mark.parametrize(
    ("values", "all_", "expected"),
    [
        (["healthy"], False, ["web"]),
        (["starting"], False, ["web-paused"]),
        (["unhealthy"], True, ["db"]),
        (["unhealthy"], False, []),
        (["healthy", "unhealthy"], True, ["web", "db"]),
        (["none"], False, ["flappy"]),
        (["none"], True, ["job", "fresh", "flappy", "dead"]),
    ],
    ids=[
        "healthy",
        "starting",
        "unhealthy-stopped-with-all",
        "unhealthy-stopped-hidden",
        "either",
        "none-running",
        "none-all",
    ],
)
def test_select_health_filter(values: list[str], all_: bool, expected: list[str]) -> None:
    selected = select(
        list(ALL),
        {"health": values},
        all_=all_,
        resolve=resolve,
        image_matches=image_matches,
        health_of=lambda c: HEALTH.get(c.name, "none"),
    )
    assert [c.name for c in selected] == expected


@pytest.mark.parametrize("value", ["Healthy", "ok", ""], ids=["case", "word", "empty"])
def test_validate_health_filter_values_as_docker(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate({"health": [value]})
    assert str(info.value) == f"Unrecognised filter value for health: {value}"
