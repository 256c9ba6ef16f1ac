"""Published ports: ``-p`` specs, the API's port maps, and how they are shown.

Theory of operation: one value type, :class:`PortBinding`, is what berth acts on. It
is parsed from a ``-p`` spec (:func:`parse_port_spec`, go-connections' ``ParsePortSpec``)
or from the API's ``HostConfig.PortBindings`` (:func:`from_port_bindings`), expanded for
``-P`` (:func:`publish_all`), handed to the port proxies, and once every port is bound
(``host_port`` filled in) rendered back as ``NetworkSettings.Ports``, the ``Ports`` of
``GET /containers/json`` and the ``docker ps`` PORTS column. Every textual form has a
round-trip test: ``parse(format(b)) == b``.

Conventions kept from Docker:

* ``host_ip == ""`` means every address (the proxy binds 0.0.0.0; shown as 0.0.0.0);
* ``host_port == 0`` means an ephemeral port chosen by the kernel at bind time;
* ``-p 8000-8010:80`` publishes *one* port taken from the host range: ``host_port`` is
  the start and ``host_port_end`` the end (0 when there is no range);
* ``-p 8000-8001:80-81`` publishes two ports, pairwise.

Errors are ``InvalidArgument`` (400) with go-connections' and moby's wording; nothing
else escapes the parsers (a Hypothesis test holds them to that).

Imports: standard library, attrs and ``supervisor.errors`` only (a PURE module).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv6Address, ip_address

import attrs

from supervisor.errors import InvalidArgument


class Proto(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"  # parsed as Docker does; the proxies serve TCP and UDP only


#: What berth shows for ``host_ip == ""`` (Docker also lists "::" when IPv6 is on).
ANY_IPV4 = "0.0.0.0"


@attrs.frozen(order=True)
class PortBinding:
    host_ip: str = ""  # "" = every address
    host_port: int = 0  # 0 = ephemeral
    container_port: int = 0
    proto: Proto = Proto.TCP
    host_port_end: int = 0  # > host_port: take one free port from [host_port, host_port_end]

    @property
    def key(self) -> str:
        """The API's port key, ``"80/tcp"``."""
        return f"{self.container_port}/{self.proto}"

    @property
    def shown_ip(self) -> str:
        return self.host_ip or ANY_IPV4


# -- -p specs --------------------------------------------------------------------------


def parse_port_spec(spec: str) -> list[PortBinding]:
    """Parse one ``-p``/``--publish`` value, ``[ip:][hostport:]containerport[/proto]``.

    Ports may be ranges (``8000-8100:8000-8100``); IPv6 host addresses are written in
    brackets (``[::1]:80:80``). A container range yields one binding per port.

    Raises:
        InvalidArgument: ``no port specified: X<empty>``, ``invalid proto: X``,
            ``invalid IP address: X``, ``invalid containerPort: X``, ``invalid hostPort:
            X``, ``invalid ranges specified for container and host Ports: X and Y``.
    """
    host_ip, host_text, container_text = _split_parts(spec)
    container_text, _, proto_text = container_text.partition("/")
    if container_text == "":
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    proto = _parse_proto(proto_text or "tcp")
    host_ip = _parse_host_ip(host_ip)
    try:
        start, end = _parse_range(container_text)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {container_text}") from None
    if start == 0:
        raise InvalidArgument(f"invalid containerPort: {container_text}")
    host_start = host_end = 0
    if host_text:
        try:
            host_start, host_end = _parse_range(host_text)
        except ValueError:
            raise InvalidArgument(f"invalid hostPort: {host_text}") from None
        if host_start == 0 and host_end != 0:
            raise InvalidArgument(f"invalid hostPort: {host_text}")
        if end - start != host_end - host_start and start != end:
            raise InvalidArgument(
                "invalid ranges specified for container and host Ports: "
                f"{container_text} and {host_text}"
            )
    if start == end:
        # One container port; a host range is the pool its host port is taken from.
        dynamic_end = host_end if host_end != host_start else 0
        return [PortBinding(host_ip, host_start, start, proto, dynamic_end)]
    return [
        PortBinding(host_ip, host_start + i if host_text else 0, start + i, proto)
        for i in range(end - start + 1)
    ]


def parse_port_specs(specs: Iterable[str]) -> list[PortBinding]:
    """Parse several ``-p`` values, keeping their order."""
    return [binding for spec in specs for binding in parse_port_spec(spec)]


def format_port_spec(binding: PortBinding) -> str:
    """The ``-p`` spec for one binding, the inverse of :func:`parse_port_spec`."""
    container = f"{binding.container_port}/{binding.proto}"
    host = _host_port_text(binding)
    if binding.host_ip:
        ip = f"[{binding.host_ip}]" if ":" in binding.host_ip else binding.host_ip
        return f"{ip}:{host}:{container}"
    if host:
        return f"{host}:{container}"
    return container


def _split_parts(spec: str) -> tuple[str, str, str]:
    """go-connections' ``splitParts``: the last colon-separated field is the container
    port, the one before it the host port, everything before those the host IP."""
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _parse_host_ip(text: str) -> str:
    if text.startswith("["):
        if not text.endswith("]") or text.count("[") != 1 or text.count("]") != 1:
            raise InvalidArgument(f"invalid IP address {text}: missing ']' in address")
        text = text[1:-1]
    if not text:
        return ""
    try:
        ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None
    return text


def _parse_proto(text: str) -> Proto:
    try:
        return Proto(text.lower())
    except ValueError:
        raise InvalidArgument(f"invalid proto: {text.lower()}") from None


def _parse_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    port = int(text)
    if port > 65535:
        raise ValueError(text)
    return port


def _parse_range(text: str) -> tuple[int, int]:
    """``"80"`` → (80, 80); ``"8000-8100"`` → (8000, 8100). Raises ValueError."""
    start_text, dash, end_text = text.partition("-")
    start = _parse_port(start_text)
    if not dash:
        return start, start
    end = _parse_port(end_text)
    if end < start:
        raise ValueError(text)
    return start, end


def _host_port_text(binding: PortBinding) -> str:
    if binding.host_port == 0:
        return ""
    if binding.host_port_end:
        return f"{binding.host_port}-{binding.host_port_end}"
    return str(binding.host_port)


# -- the API's maps --------------------------------------------------------------------

PortMap = dict[str, list[dict[str, str]]]


def to_port_bindings(bindings: Iterable[PortBinding]) -> PortMap:
    """``HostConfig.PortBindings``: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``."""
    out: PortMap = {}
    for b in bindings:
        out.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": _host_port_text(b)})
    return out


def from_port_bindings(api: object) -> list[PortBinding]:
    """Parse ``HostConfig.PortBindings`` as clients send it (``null`` allowed, an empty
    or ``null`` list means "exposed, not published", ``HostPort`` may be empty or a
    range).

    Raises:
        InvalidArgument: moby's ``invalid port specification: "X"`` for a bad key or
            host port, ``invalid IP address: X`` for a bad ``HostIp``.
    """
    if api is None:
        return []
    if not isinstance(api, Mapping):
        raise InvalidArgument("invalid PortBindings: expected an object")
    out: list[PortBinding] = []
    for key, entries in api.items():
        container_port, proto = parse_port_key(str(key))
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise InvalidArgument(f"invalid port specification: {_go_quote(str(key))}")
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise InvalidArgument(f"invalid port specification: {_go_quote(str(key))}")
            host_ip = _parse_host_ip(str(entry.get("HostIp") or ""))
            host_text = str(entry.get("HostPort") or "")
            start = end = 0
            if host_text:
                try:
                    start, end = _parse_range(host_text)
                except ValueError:
                    raise InvalidArgument(
                        f"invalid port specification: {_go_quote(host_text)}"
                    ) from None
                if start == 0 and end != 0:
                    raise InvalidArgument(f"invalid port specification: {_go_quote(host_text)}")
            out.append(
                PortBinding(host_ip, start, container_port, proto, end if end != start else 0)
            )
    return out


def parse_port_key(key: str) -> tuple[int, Proto]:
    """``"80/tcp"`` (or ``"80"``, tcp implied) → ``(80, Proto.TCP)``.

    Raises:
        InvalidArgument: ``invalid port specification: "X"`` or ``invalid proto: X``.
    """
    port_text, _, proto_text = key.partition("/")
    try:
        port = _parse_port(port_text)
    except ValueError:
        raise InvalidArgument(f"invalid port specification: {_go_quote(port_text)}") from None
    if port == 0:
        raise InvalidArgument(f"invalid port specification: {_go_quote(port_text)}")
    return port, _parse_proto(proto_text or "tcp")


def parse_exposed_ports(api: object) -> list[tuple[int, Proto]]:
    """``Config.ExposedPorts`` (``{"80/tcp": {}}``; a key may be a range, ``"80-82/tcp"``,
    as Docker's ``nat.Port`` allows) → sorted ``(port, proto)`` pairs.

    Raises:
        InvalidArgument: as :func:`parse_port_key`.
    """
    if api is None:
        return []
    if not isinstance(api, Mapping):
        raise InvalidArgument("invalid ExposedPorts: expected an object")
    out: set[tuple[int, Proto]] = set()
    for key in api:
        port_text, _, proto_text = str(key).partition("/")
        try:
            start, end = _parse_range(port_text)
        except ValueError:
            raise InvalidArgument(f"invalid port specification: {_go_quote(port_text)}") from None
        if start == 0:
            raise InvalidArgument(f"invalid port specification: {_go_quote(port_text)}")
        proto = _parse_proto(proto_text or "tcp")
        out.update((port, proto) for port in range(start, end + 1))
    return sorted(out)


def exposed_ports(bindings: Iterable[PortBinding]) -> dict[str, dict[str, object]]:
    """``Config.ExposedPorts`` for the given bindings (``docker run -p`` exposes what it
    publishes)."""
    return {b.key: {} for b in sorted(bindings, key=lambda b: (b.container_port, b.proto))}


def publish_all(
    exposed: Iterable[tuple[int, Proto]], bindings: Iterable[PortBinding]
) -> list[PortBinding]:
    """``-P`` (``HostConfig.PublishAllPorts``): every exposed port without an explicit
    binding is published on an ephemeral host port of every address, as Docker does.

    Returns:
        ``bindings`` followed by the added ones, in port order.
    """
    explicit = list(bindings)
    taken = {(b.container_port, b.proto) for b in explicit}
    added = [
        PortBinding("", 0, port, proto)
        for port, proto in sorted(set(exposed))
        if (port, proto) not in taken
    ]
    return explicit + added


# -- what inspect, ps and port show ----------------------------------------------------

SettingsPorts = dict[str, list[dict[str, str]] | None]


def network_settings_ports(
    exposed: Iterable[tuple[int, Proto]], published: Iterable[PortBinding]
) -> SettingsPorts:
    """``NetworkSettings.Ports`` of a running container.

    Args:
        exposed: the container's exposed ports (unpublished ones are listed as null).
        published: the bindings as bound, each with its real ``host_port``.
    """
    out: SettingsPorts = {f"{port}/{proto}": None for port, proto in exposed}
    for b in published:
        entries = out.get(b.key)
        if entries is None:
            entries = out[b.key] = []
        entries.append({"HostIp": b.shown_ip, "HostPort": str(b.host_port)})
    return dict(sorted(out.items(), key=lambda kv: _key_order(kv[0])))


def container_ports(
    exposed: Iterable[tuple[int, Proto]], published: Iterable[PortBinding]
) -> list[dict[str, object]]:
    """The ``Ports`` list of ``GET /containers/json``: one entry per published binding
    (``IP``, ``PrivatePort``, ``PublicPort``, ``Type``) and one per exposed port that is
    not published (``PrivatePort`` and ``Type`` only)."""
    bound = list(published)
    out: list[dict[str, object]] = [
        {
            "IP": b.shown_ip,
            "PrivatePort": b.container_port,
            "PublicPort": b.host_port,
            "Type": str(b.proto),
        }
        for b in bound
    ]
    seen = {(b.container_port, b.proto) for b in bound}
    out.extend(
        {"PrivatePort": port, "Type": str(proto)}
        for port, proto in sorted(set(exposed))
        if (port, proto) not in seen
    )
    return out


def displayable_ports(ports: Iterable[Mapping[str, object]]) -> str:
    """The ``docker ps`` PORTS column for a ``Ports`` list, as docker/cli's
    ``DisplayablePorts`` renders it: runs of consecutive ports published on the same
    port number are grouped (``0.0.0.0:8000-8002->8000-8002/tcp``), other mappings
    listed after them (``0.0.0.0:8080->80/tcp``), unpublished ones as ``443/tcp``."""
    entries = sorted((_PortEntry.of(p) for p in ports), key=_PortEntry.order)
    groups: dict[tuple[str, str], list[int]] = {}  # insertion order = first seen
    result: list[str] = []
    host_mappings: list[str] = []
    for e in entries:
        if e.ip and e.public != e.private:
            host_mappings.append(f"{_join_host_port(e.ip, str(e.public))}->{e.private}/{e.type}")
            continue
        key = (e.ip, e.type)
        group = groups.get(key)
        if group is None:
            groups[key] = [e.private, e.private]
        elif e.private == group[1] + 1:
            group[1] = e.private
        else:
            result.append(_form_group(key, group[0], group[1]))
            groups[key] = [e.private, e.private]
    result.extend(_form_group(key, first, last) for key, (first, last) in groups.items())
    return ", ".join(result + host_mappings)


def port_lines(settings: Mapping[str, object], private: str | None = None) -> list[str]:
    """``docker port CONTAINER [PRIVATE_PORT[/PROTO]]`` output from
    ``NetworkSettings.Ports``: ``80/tcp -> 0.0.0.0:8080`` (all mappings), or just
    ``0.0.0.0:8080`` lines for one private port.

    Raises:
        InvalidArgument: a bad private port, as :func:`parse_port_key`.
    """
    wanted = None
    if private is not None:
        port, proto = parse_port_key(private)
        wanted = f"{port}/{proto}"
    lines: list[str] = []
    for key in sorted(settings, key=_key_order):
        if wanted is not None and key != wanted:
            continue
        entries = settings[key]
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            addr = _join_host_port(str(entry.get("HostIp", "")), str(entry.get("HostPort", "")))
            lines.append(addr if wanted is not None else f"{key} -> {addr}")
    return lines


@attrs.frozen
class _PortEntry:
    ip: str
    private: int
    public: int
    type: str

    @classmethod
    def of(cls, p: Mapping[str, object]) -> _PortEntry:
        return cls(
            str(p.get("IP") or ""),
            _as_int(p.get("PrivatePort")),
            _as_int(p.get("PublicPort")),
            str(p.get("Type") or "tcp"),
        )

    def order(self) -> tuple[int, tuple[int, int, str], int, str]:
        # docker/cli's comparePorts: private port, IP (netip order), public port, type.
        return (self.private, _ip_order(self.ip), self.public, self.type)


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return 0


def _ip_order(ip: str) -> tuple[int, int, str]:
    if not ip:
        return (0, 0, "")
    try:
        addr = ip_address(ip)
    except ValueError:
        return (9, 0, ip)
    return (4 if isinstance(addr, IPv4Address) else 6, int(addr), "")


def _form_group(key: tuple[str, str], first: int, last: int) -> str:
    ip, proto = key
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{proto}"


def _join_host_port(host: str, port: str) -> str:
    """Go's ``net.JoinHostPort``: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _key_order(key: str) -> tuple[int, str]:
    port_text, _, proto = key.partition("/")
    return (int(port_text) if port_text.isascii() and port_text.isdigit() else 0, proto)


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings these messages quote."""
    return json.dumps(text, ensure_ascii=False)


def is_ipv6(host_ip: str) -> bool:
    """True when a binding's host address is IPv6 (the proxy binds an AF_INET6 socket)."""
    if not host_ip:
        return False
    try:
        return isinstance(ip_address(host_ip), IPv6Address)
    except ValueError:
        return False
