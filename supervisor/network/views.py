"""Networks as the Docker API shows them, and the filters of ``GET /networks`` and
``POST /networks/prune``. Pure: everything comes in as values.

Imports: standard library, ``supervisor.model``, ``supervisor.errors`` and the pure
network modules only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Network
from typing import Any

from supervisor.containers.logs import format_time
from supervisor.errors import InvalidArgument
from supervisor.model import Endpoint, Network
from supervisor.network import ipam

LIST_FILTERS = {"driver", "id", "label", "label!", "name", "scope", "type", "dangling"}
PRUNE_FILTERS = {"label", "label!", "until"}


def network_json(
    n: Network, endpoints: Sequence[tuple[Endpoint, str]], *, with_containers: bool = True
) -> dict[str, Any]:
    """``GET /networks/{id}``; ``endpoints`` are (endpoint, container name) pairs of
    running containers."""
    config: list[dict[str, str]] = []
    if n.subnet:
        item = {"Subnet": n.subnet, "Gateway": n.gateway}
        if n.ip_range:
            item["IPRange"] = n.ip_range
        config.append(item)
    out: dict[str, Any] = {
        "Name": n.name,
        "Id": n.id,
        "Created": format_time(n.created_ns),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if n.builtin else {}, "Config": config},
        "Internal": n.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": dict(n.options),
        "Labels": dict(n.labels),
    }
    if with_containers:
        prefix = IPv4Network(n.subnet).prefixlen if n.subnet else 0
        out["Containers"] = {
            e.container_id: {
                "Name": name,
                "EndpointID": e.id,
                "MacAddress": e.mac_address or ipam.mac_for(ipam.parse_address(e.ip)),
                "IPv4Address": f"{e.ip}/{prefix}",
                "IPv6Address": "",
            }
            for e, name in endpoints
            if e.ip is not None
        }
    return out


def endpoint_settings(n: Network, e: Endpoint | None) -> dict[str, Any]:
    """One entry of a container's ``NetworkSettings.Networks``."""
    ip = e.ip if e is not None else None
    prefix = IPv4Network(n.subnet).prefixlen if n.subnet and ip else 0
    mac = ""
    if e is not None and ip:
        mac = e.mac_address or ipam.mac_for(ipam.parse_address(ip))
    return {
        "IPAMConfig": {"IPv4Address": e.requested_ip} if e is not None and e.requested_ip else None,
        "Links": None,
        "Aliases": list(e.aliases) if e is not None and e.aliases else None,
        "NetworkID": n.id,
        "EndpointID": e.id if e is not None and ip else "",
        "Gateway": n.gateway if ip else "",
        "IPAddress": ip or "",
        "IPPrefixLen": prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": mac,
        "DriverOpts": None,
    }


def validate_filters(filters: Mapping[str, Sequence[str]], known: set[str]) -> None:
    for key, values in filters.items():
        if key not in known:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "type":
            for v in values:
                if v not in ("custom", "builtin"):
                    raise InvalidArgument(f"invalid filter: 'type'='{v}'")
        if key == "dangling":
            for v in values:
                if v.lower() not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter 'dangling={v}'")


def matcher(
    filters: Mapping[str, Sequence[str]], *, in_use: Callable[[Network], bool]
) -> Callable[[Network], bool]:
    """A predicate for ``GET /networks?filters=...`` (validated first). Values of one
    key are alternatives; keys must all match."""
    validate_filters(filters, LIST_FILTERS)

    def match(n: Network) -> bool:
        for key, values in filters.items():
            if not values:
                continue
            if key == "driver" and n.driver not in values:
                return False
            if key == "id" and not any(n.id.startswith(v) for v in values):
                return False
            if key == "name" and not any(_search(v, n.name) for v in values):
                return False
            if key == "scope" and "local" not in values:
                return False
            if key == "type":
                kind = "builtin" if n.builtin else "custom"
                if kind not in values:
                    return False
            if key == "label" and not all(_label(v, n.labels) for v in values):
                return False
            if key == "label!" and any(_label(v, n.labels) for v in values):
                return False
            if key == "dangling":
                want = values[-1].lower() in ("true", "1")
                if (not in_use(n)) != want or (want and n.builtin):
                    return False
        return True

    return match


def prune_matcher(
    filters: Mapping[str, Sequence[str]], *, parse_until: Callable[[str], int | None]
) -> Callable[[Network], bool]:
    """Which unused networks ``POST /networks/prune`` may remove."""
    validate_filters(filters, PRUNE_FILTERS)
    until = [u for u in (parse_until(v) for v in filters.get("until", [])) if u is not None]

    def match(n: Network) -> bool:
        if any(n.created_ns >= u for u in until):
            return False
        if not all(_label(v, n.labels) for v in filters.get("label", [])):
            return False
        return not any(_label(v, n.labels) for v in filters.get("label!", []))

    return match


def _label(wanted: str, labels: Mapping[str, str]) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
