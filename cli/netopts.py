"""Network flags: ``run``/``create`` endpoints, ports, DNS and hosts; ``network create`` IPAM.

Theory of operation:
    Pure parsers with docker 28's wording, each turning flag values into the
    Engine API's shape:

    * ``endpoints`` is docker's ``parseNetworkOpts``: ``--network`` values
      (a name, ``bridge``, ``host``, ``none``, ``container:<id>``, or the
      long syntax ``name=N,alias=A,ip=I,mac-address=M,driver-opt=K=V``),
      with ``--network-alias``, ``--ip`` and ``--mac-address`` applied to
      the first, give ``HostConfig.NetworkMode`` and
      ``NetworkingConfig.EndpointsConfig``;
    * ``publish`` and ``expose`` give ``PortBindings``/``ExposedPorts``;
      ``-p`` specs are parsed by the daemon's pure ``supervisor.network.ports``
      (imported lazily: only ``run -p`` pays for it), so the CLI and berthd
      can never disagree on a spec;
    * ``check_ip``, ``check_dns_search``, ``check_extra_host`` and
      ``check_mac`` are docker's flag validators;
    * ``ipam_config`` is ``network create``'s ``createIPAMConfig``.

    Errors are ``InvalidArgument`` with docker's message, never anything
    else.  No I/O.
"""

from __future__ import annotations

import json
import re

from cli.units import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

BUILTIN_MODES = ("default", "bridge", "host", "none")


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings docker's messages quote."""
    return json.dumps(text, ensure_ascii=False)


def is_user_defined(mode: str) -> bool:
    """docker's ``NetworkMode.IsUserDefined``: not a builtin mode nor ``container:<id>``."""
    return mode not in BUILTIN_MODES and not mode.startswith("container:")


# --- addresses ------------------------------------------------------------------------


def _parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    """Go's ``net.ParseIP``: no zones, no brackets; None when invalid."""
    from ipaddress import ip_address  # lazy: only network flags need it

    if "%" in text:
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


def check_ip(value: str) -> str:
    """docker's ``ValidateIPAddress``: the address in canonical form.

    Raises:
        InvalidArgument: ``IP address is not correctly formatted: X``.
    """
    addr = _parse_ip(value.strip())
    if addr is None:
        raise InvalidArgument(f"IP address is not correctly formatted: {value}")
    mapped = getattr(addr, "ipv4_mapped", None)
    return str(mapped if mapped is not None else addr)


_ALPHA = re.compile(r"[a-zA-Z]")
_LABEL = r"(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))"
# docker's domainRegexp, "(:?" typos included: they make a leading colon legal.
_DOMAIN = re.compile(rf"^(:?{_LABEL}(:?\.{_LABEL})*)\.?[\t\n\f\r ]*\Z")


def check_dns_search(value: str) -> str:
    """docker's ``ValidateDNSSearch``: ``.`` or a domain (a trailing dot dropped).

    Raises:
        InvalidArgument: ``X is not a valid domain``.
    """
    value = value.strip(" ")
    if value == ".":
        return value
    match = _DOMAIN.match(value) if _ALPHA.search(value) else None
    if match is None or len(match.group(1)) >= 255:
        raise InvalidArgument(f"{value} is not a valid domain")
    return match.group(1)


def check_extra_host(value: str) -> str:
    """docker's ``ValidateExtraHost``: ``host:ip`` or ``host=ip`` (``[ip]`` allowed)
    or ``host:host-gateway``, sent as ``host:ip``.

    Raises:
        InvalidArgument: ``bad format for add-host: "X"``, ``invalid IP address
            in add-host: "X"``.
    """
    host, eq, addr = value.partition("=")
    if not eq:
        host, eq, addr = value.partition(":")
    if not eq or not host or ":" in host:
        raise InvalidArgument(f"bad format for add-host: {go_quote(value)}")
    if addr != "host-gateway":
        if len(addr) > 2 and addr[0] == "[" and addr[-1] == "]":
            addr = addr[1:-1]
        if _parse_ip(addr.strip()) is None:
            raise InvalidArgument(f"invalid IP address in add-host: {go_quote(addr)}")
    return f"{host}:{addr}"


_MAC_GROUPS = (6, 8, 20)  # EUI-48, EUI-64, 20-octet IP over InfiniBand


def check_mac(value: str) -> str:
    """Go's ``net.ParseMAC`` (``aa:bb:..``, ``aa-bb-..``, ``aabb.ccdd.eeff``).

    Raises:
        InvalidArgument: docker's ``X is not a valid mac address``.
    """
    text = value.strip()
    hexdigits = "0123456789abcdefABCDEF"
    if len(text) >= 14 and text[2:3] in (":", "-"):
        groups = text.split(text[2])
        ok = len(groups) in _MAC_GROUPS and all(
            len(g) == 2 and all(c in hexdigits for c in g) for g in groups
        )
    elif len(text) >= 14 and text[4:5] == ".":
        groups = text.split(".")
        ok = len(groups) * 2 in _MAC_GROUPS and all(
            len(g) == 4 and all(c in hexdigits for c in g) for g in groups
        )
    else:
        ok = False
    if not ok:
        raise InvalidArgument(f"{value} is not a valid mac address")
    return value


# --- --network and its endpoint ------------------------------------------------------


class Attachment:
    """One ``--network`` value (docker's ``NetworkAttachmentOpts``)."""

    __slots__ = ("aliases", "driver_opts", "gw_priority", "ipv4", "ipv6", "mac", "target")

    def __init__(self, target: str = "") -> None:
        self.target = target
        self.aliases: list[str] = []
        self.driver_opts: dict[str, str] = {}
        self.ipv4 = ""
        self.ipv6 = ""
        self.mac = ""
        self.gw_priority = 0


_LONG_SYNTAX = re.compile(r"\w+=\w+(,\w+=\w+)*", re.ASCII)


def _driver_opt(text: str) -> tuple[str, str]:
    key, eq, value = text.lower().partition("=")
    if not eq or not key:
        raise InvalidArgument("invalid key value pair format in driver options")
    return key.strip(), value.strip()


def parse_network(value: str) -> Attachment:
    """One ``--network`` value: a plain network (mode) or the CSV long syntax.

    Raises:
        InvalidArgument: ``invalid field X``, ``invalid field key K``,
            ``network name/id is not specified``, CSV errors.
    """
    if not _LONG_SYNTAX.search(value):
        return Attachment(value)
    from cli.mounts import read_csv_record

    attachment = Attachment()
    for field in read_csv_record(value):
        # docker lowercases the whole field, values included.
        key, eq, val = field.lower().partition("=")
        if not eq or not key:
            raise InvalidArgument(f"invalid field {field}")
        key, val = key.strip(), val.strip()
        if key == "name":
            attachment.target = val
        elif key == "alias":
            attachment.aliases.append(val)
        elif key == "ip":
            attachment.ipv4 = val
        elif key == "ip6":
            attachment.ipv6 = val
        elif key == "mac-address":
            attachment.mac = val
        elif key == "driver-opt":
            opt_key, opt_value = _driver_opt(val)
            attachment.driver_opts[opt_key] = opt_value
        elif key == "gw-priority":
            try:
                attachment.gw_priority = int(val, 10)
            except ValueError:
                raise InvalidArgument(f"invalid gw-priority ({val}): invalid syntax") from None
        else:
            raise InvalidArgument(f"invalid field key {key}")
    if not attachment.target:
        raise InvalidArgument("network name/id is not specified")
    return attachment


def _endpoint(attachment: Attachment) -> dict[str, object]:
    """docker's ``parseNetworkAttachmentOpt``: the ``EndpointSettings`` to send."""
    if not attachment.target.strip():
        raise InvalidArgument("no name set for network")
    if not is_user_defined(attachment.target) and attachment.aliases:
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    ipam: dict[str, object] | None = None
    if attachment.ipv4 or attachment.ipv6:
        ipam = {}
        if attachment.ipv4:
            ipam["IPv4Address"] = attachment.ipv4
        if attachment.ipv6:
            ipam["IPv6Address"] = attachment.ipv6
    if attachment.mac:
        check_mac(attachment.mac)
    endpoint: dict[str, object] = {
        "IPAMConfig": ipam,
        "Links": None,
        "Aliases": list(attachment.aliases) or None,
        "MacAddress": attachment.mac,
        "DriverOpts": dict(attachment.driver_opts) or None,
    }
    if attachment.gw_priority:
        endpoint["GwPriority"] = attachment.gw_priority
    return endpoint


def _is_empty(endpoint: dict[str, object]) -> bool:
    return not any(endpoint.values())


def endpoints(
    networks: Sequence[str], *, aliases: Sequence[str] = (), ip: str = "", mac: str = ""
) -> tuple[str, dict[str, dict[str, object]]]:
    """``HostConfig.NetworkMode`` and ``NetworkingConfig.EndpointsConfig`` for ``run``.

    Without ``--network`` the mode is ``default`` and its endpoint is always
    sent; ``--network-alias``/``--ip``/``--mac-address`` apply to the first
    network; a single plain ``--network`` sends no endpoint (the daemon makes
    one), as docker does.

    Raises:
        InvalidArgument: docker's conflicts ("conflicting options: ..."), a
            network given twice, aliases on a builtin network, a bad MAC.
    """
    attachments = [parse_network(n) for n in networks]
    result: dict[str, dict[str, object]] = {}
    if not attachments:
        first = Attachment("default")
        _apply_run_options(first, aliases=aliases, ip=ip, mac=mac)
        result["default"] = _endpoint(first)
        return "default", result
    user_defined = builtin = False
    for i, attachment in enumerate(attachments):
        if is_user_defined(attachment.target):
            user_defined = True
        else:
            builtin = True
        if i == 0:
            _apply_run_options(attachment, aliases=aliases, ip=ip, mac=mac)
        endpoint = _endpoint(attachment)
        if attachment.target in result:
            raise InvalidArgument(
                f"network {go_quote(attachment.target)} is specified multiple times"
            )
        if i == 0 and len(attachments) == 1 and _is_empty(endpoint):
            continue
        result[attachment.target] = endpoint
    if user_defined and builtin:
        raise InvalidArgument(
            "conflicting options: cannot attach both user-defined and non-user-defined "
            "network-modes"
        )
    return attachments[0].target, result


def _apply_run_options(
    attachment: Attachment, *, aliases: Sequence[str], ip: str, mac: str
) -> None:
    if attachment.aliases and aliases:
        raise InvalidArgument(
            "conflicting options: cannot specify both --network-alias and per-network alias"
        )
    if attachment.ipv4 and ip:
        raise InvalidArgument(
            "conflicting options: cannot specify both --ip and per-network IPv4 address"
        )
    if attachment.mac and mac:
        raise InvalidArgument(
            "conflicting options: cannot specify both --mac-address and per-network MAC address"
        )
    if aliases:
        attachment.aliases = list(aliases)
    if ip:
        attachment.ipv4 = ip
    if mac:
        attachment.mac = mac


# --- ports ------------------------------------------------------------------------------

PortMap = dict[str, list[dict[str, str]]]


def _standard_notation(value: str) -> str:
    """docker's ``convertToStandardNotation``: ``published=8080,target=80`` → ``8080:80/tcp``."""
    if "=" not in value:
        return value
    params = {"protocol": "tcp"}
    for param in value.split(","):
        key, eq, val = param.partition("=")
        if not eq or not key:
            raise InvalidArgument(
                f"invalid publish opts format (should be name=value but got '{param}')"
            )
        params[key] = val
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def publish(values: Iterable[str]) -> tuple[list[str], PortMap]:
    """``-p`` values as ``(exposed port keys, HostConfig.PortBindings)``.

    Raises:
        InvalidArgument: go-connections' messages (``invalid containerPort:
            x``, ``invalid proto: x``, ...), shared with the daemon.
    """
    specs = [_standard_notation(v) for v in values]
    if not specs:
        return [], {}
    from supervisor.errors import InvalidArgument as SpecError
    from supervisor.network.ports import exposed_ports, parse_port_specs, to_port_bindings

    try:
        bindings = parse_port_specs(specs)
    except SpecError as exc:
        raise InvalidArgument(str(exc)) from None
    return list(exposed_ports(bindings)), to_port_bindings(bindings)


def _parse_uint16(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 10, 16)``."""
    if not text or not (text.isascii() and text.isdigit()):
        raise InvalidArgument(f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if value > 0xFFFF:
        raise InvalidArgument(f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    return value


def _port_range(text: str) -> tuple[int, int]:
    """go-connections' ``ParsePortRange`` (a third ``-part`` is ignored, as there)."""
    if not text:
        raise InvalidArgument("empty string specified for ports")
    if "-" not in text:
        port = _parse_uint16(text)
        return port, port
    parts = text.split("-")
    start = _parse_uint16(parts[0])
    end = _parse_uint16(parts[1])
    if end < start:
        raise InvalidArgument(f"invalid range specified for port: {text}")
    return start, end


def expose(values: Iterable[str]) -> list[str]:
    """``--expose PORT[-END][/PROTO]`` values as ``ExposedPorts`` keys.

    Raises:
        InvalidArgument: ``invalid port format for --expose: X``, ``invalid
            range format for --expose: X, error: ...``.
    """
    keys: list[str] = []
    for value in values:
        if ":" in value:
            raise InvalidArgument(f"invalid port format for --expose: {value}")
        parts = value.split("/")
        port_text, proto = parts[0], "tcp"
        if not port_text:
            port_text, proto = "", ""
        elif len(parts) > 1 and parts[1]:
            proto = parts[1]
        try:
            start, end = _port_range(port_text)
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"invalid range format for --expose: {value}, error: {exc}"
            ) from None
        keys.extend(f"{port}/{proto}" for port in range(start, end + 1))
    return keys


# --- network create: IPAM --------------------------------------------------------------


def _cidr(text: str) -> tuple[IPv4Address | IPv6Address, IPv4Network | IPv6Network]:
    """Go's ``net.ParseCIDR``: the address and its network.

    Raises:
        InvalidArgument: ``invalid CIDR address: X``.
    """
    from ipaddress import ip_interface

    addr, slash, bits = text.partition("/")
    if not slash or "%" in addr or not (bits.isascii() and bits.isdigit()):
        raise InvalidArgument(f"invalid CIDR address: {text}")
    try:
        iface = ip_interface(text)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    return iface.ip, iface.network


def _subnet_matches(subnet: str, data: str) -> bool:
    try:
        _, network = _cidr(subnet)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid subnet: {exc}") from None
    addr = _cidr(data)[0] if "/" in data else _parse_ip(data)
    return addr is not None and addr.version == network.version and addr in network


def ipam_config(
    subnets: Sequence[str], ip_ranges: Sequence[str], gateways: Sequence[str]
) -> list[dict[str, str]]:
    """``IPAM.Config`` from ``--subnet``/``--ip-range``/``--gateway`` (docker's
    ``createIPAMConfig``): one entry per subnet, each range and gateway on the
    subnet that holds it.

    Raises:
        InvalidArgument: docker's messages ("every ip-range or gateway must
            have a corresponding subnet", "no matching subnet for range X", ...).
    """
    if len(subnets) < len(ip_ranges) or len(subnets) < len(gateways):
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    config: dict[str, dict[str, str]] = {}
    for subnet in subnets:
        for known in config:
            if _subnet_matches(subnet, known) or _subnet_matches(known, subnet):
                raise InvalidArgument("multiple overlapping subnet configuration is not supported")
        config[subnet] = {"Subnet": subnet}
    for key, what, values in (("IPRange", "range", ip_ranges), ("Gateway", "gateway", gateways)):
        for value in values:
            matched = False
            for subnet in subnets:
                if key == "IPRange":
                    _cidr(value)
                if not _subnet_matches(subnet, value):
                    continue
                entry = config[subnet]
                if key in entry:
                    plural = "ranges" if key == "IPRange" else "gateways"
                    where = "on the same subnet" if key == "IPRange" else "for the same subnet"
                    raise InvalidArgument(
                        f"cannot configure multiple {plural} ({value}, {entry[key]}) "
                        f"{where} ({subnet})"
                    )
                entry[key] = value
                matched = True
            if not matched:
                raise InvalidArgument(f"no matching subnet for {what} {value}")
    return list(config.values())
