"""``GET /containers/json`` filters, pure.

Keys as Docker: id, name, label, status, exited, ancestor, before, since, plus
network/publish/expose (networks by name or id, ports by container port), health
(starting, healthy, unhealthy, or none for containers without a check), and
volume/isolation accepted (they match nothing berth has yet, or everything for
"isolation=default"). Unknown keys → 400 "invalid filter".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from supervisor.containers.health import FILTER_VALUES, NO_HEALTHCHECK
from supervisor.containers.state import Status
from supervisor.errors import InvalidArgument, NoSuchContainer
from supervisor.model import Container

KNOWN = {
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
}
STATUSES = {s.value for s in Status}


def validate(filters: Mapping[str, Sequence[str]]) -> None:
    for key, values in filters.items():
        if key not in KNOWN:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "status":
            for v in values:
                if v not in STATUSES:
                    raise InvalidArgument(f"invalid filter 'status={v}'")
        if key == "exited":
            for v in values:
                if not re.fullmatch(r"[+-]?[0-9]+", v):  # Go's strconv.Atoi
                    raise InvalidArgument(f"invalid filter 'exited={v}'")
        if key == "health":
            for v in values:
                if v not in FILTER_VALUES:  # moby IsValidHealthString
                    raise InvalidArgument(f"Unrecognised filter value for health: {v}")


def _search(pattern: str, text: str) -> bool:
    """Docker's ``filters.Match``: an unanchored regexp; an invalid one matches nothing."""
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def label_matches(wanted: str, labels: Mapping[str, str]) -> bool:
    """Docker's ``label`` filter value: ``key`` (present) or ``key=value``."""
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def select_prunable(
    containers: list[Container], filters: Mapping[str, Sequence[str]]
) -> list[Container]:
    """``container prune``: stopped containers matching the ``label`` / ``label!`` filters."""
    for key in filters:
        if key not in ("label", "label!"):
            raise InvalidArgument(f"invalid filter '{key}'")
    out = []
    for c in containers:
        if c.state.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING, Status.REMOVING):
            continue
        if not all(label_matches(v, c.labels) for v in filters.get("label", [])):
            continue
        if any(label_matches(v, c.labels) for v in filters.get("label!", [])):
            continue
        out.append(c)
    return out


def select(
    containers: list[Container],
    filters: Mapping[str, Sequence[str]],
    *,
    all_: bool,
    resolve: Callable[[str], Container | None],
    image_matches: Callable[[Container, str], bool],
    networks_of: Callable[[Container], set[str]] = lambda c: set(),
    health_of: Callable[[Container], str] = lambda c: NO_HEALTHCHECK,
) -> list[Container]:
    """Docker's list selection: running only unless ``all_`` or a status/exited filter.

    ``networks_of`` gives the names and ids of the networks a container is on;
    ``health_of`` its health status (``supervisor.containers.health.filter_value``)."""
    validate(filters)
    before = [resolve(v) for v in filters.get("before", [])]
    since = [resolve(v) for v in filters.get("since", [])]
    for ref, c in zip(
        [*filters.get("before", []), *filters.get("since", [])], before + since, strict=True
    ):
        if c is None:
            raise NoSuchContainer(ref)  # 404, as moby's idOrNameFilter
    out = []
    show_all = all_ or bool(filters.get("status"))  # "exited" alone does not imply all (moby)
    exited = {int(v) for v in filters.get("exited", [])}
    for c in containers:
        st = c.state.status
        if not show_all and st not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
            continue
        if filters.get("id") and not any(c.id.startswith(v) for v in filters["id"]):
            continue
        if filters.get("name") and not any(
            _search(v, c.name) or _search(v, "/" + c.name) for v in filters["name"]
        ):
            continue
        if filters.get("label") and not all(label_matches(v, c.labels) for v in filters["label"]):
            continue
        if filters.get("status") and st.value not in filters["status"]:
            continue
        if exited and not (st is Status.EXITED and c.state.exit_code in exited):
            continue
        if filters.get("ancestor") and not any(image_matches(c, v) for v in filters["ancestor"]):
            continue
        if any(b is not None and c.created_ns >= b.created_ns for b in before):
            continue
        if any(s is not None and c.created_ns <= s.created_ns for s in since):
            continue
        if filters.get("network") and not (networks_of(c) & set(filters["network"])):
            continue
        if filters.get("publish") and not _ports_match(
            filters["publish"], {(b.container_port, str(b.proto)) for b in c.state.ports}
        ):
            continue
        if filters.get("expose") and not _ports_match(filters["expose"], _exposed(c)):
            continue
        if filters.get("health") and health_of(c) not in filters["health"]:
            continue
        if filters.get("volume"):
            continue
        out.append(c)
    return out


def _exposed(c: Container) -> set[tuple[int, str]]:
    out = set()
    for key in c.config.get("ExposedPorts") or {}:
        port, _, proto = str(key).partition("/")
        if port.isdigit():
            out.add((int(port), proto or "tcp"))
    return out


def _ports_match(wanted: Sequence[str], have: set[tuple[int, str]]) -> bool:
    """``publish``/``expose`` values: ``80``, ``80/udp``, ``8000-8080/tcp``.

    Raises:
        InvalidArgument: a value that is not a port or a range.
    """
    for value in wanted:
        ports, _, proto = value.partition("/")
        start, _, end = ports.partition("-")
        if not start.isdigit() or (end and not end.isdigit()):
            raise InvalidArgument(f"invalid filter 'publish={value}'")
        lo, hi = int(start), int(end or start)
        if any(lo <= p <= hi and proto in ("", pr) for p, pr in have):
            return True
    return False
