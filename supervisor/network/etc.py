"""The files a container's name resolution reads: ``/etc/hosts``, ``/etc/resolv.conf``,
``/etc/hostname``; and the checks of the options that shape them.

Rules, as Docker applies them (libnetwork ``sandbox_dns_unix.go``, ``resolvconf``):

* ``/etc/hosts``: localhost lines, the container's own address with its hostname (and
  ``hostname.domainname``) on each network, then ``--add-host`` entries;
* ``/etc/resolv.conf``: on a user-defined network the embedded DNS responder is the only
  nameserver (it forwards the rest); otherwise ``--dns`` or the host's nameservers
  without loopback ones (unreachable from the container's namespace), falling back to
  Google's public resolvers when none is left; ``search`` and ``options`` from
  ``--dns-search`` / ``--dns-option`` or the host's.

Imports: standard library and ``supervisor.errors`` only (a PURE module).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import ip_address

from supervisor.errors import InvalidArgument

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

#: Docker's fallback when the host has no usable nameserver.
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")

HOST_GATEWAY = "host-gateway"


def parse_extra_host(entry: str) -> tuple[str, str]:
    """``--add-host name:ip`` (or ``name=ip``) → ``(name, ip)``; the IP may be
    ``host-gateway`` (replaced by the caller) or an IPv6 address.

    Raises:
        InvalidArgument: ``invalid IP address in add-host: "x"`` as Docker words it.
    """
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    name = name.strip()
    ip = ip.strip()
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not name or not ip:
        raise InvalidArgument(f"invalid add-host format: {entry!r}")
    if ip != HOST_GATEWAY:
        try:
            ip_address(ip)
        except ValueError:
            raise InvalidArgument(f'invalid IP address in add-host: "{ip}"') from None
    return name, ip


def check_dns(servers: Iterable[str]) -> list[str]:
    """``--dns`` values must be IP addresses."""
    out = []
    for s in servers:
        try:
            out.append(str(ip_address(s)))
        except ValueError:
            raise InvalidArgument(f"{s} is not an ip address") from None
    return out


def hosts_file(
    *,
    hostname: str,
    domainname: str,
    addresses: Sequence[str],
    extra_hosts: Sequence[tuple[str, str]],
) -> str:
    """The container's ``/etc/hosts``."""
    lines = [LOCALHOST_LINES]
    names = f"{hostname}.{domainname}\t{hostname}" if domainname else hostname
    for ip in addresses:
        lines.append(f"{ip}\t{names}\n")
    for name, ip in extra_hosts:
        lines.append(f"{ip}\t{name}\n")
    return "".join(lines)


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """``(nameservers, search domains, options)`` of a resolv.conf; later ``search``
    lines replace earlier ones, as the resolver reads them."""
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        fields = line.split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver" and values:
            try:
                nameservers.append(str(ip_address(values[0].split("%", 1)[0])))
            except ValueError:
                continue
        elif key in ("search", "domain"):
            search = values
        elif key == "options":
            options.extend(values)
    return nameservers, search, options


def resolv_conf(
    host_text: str,
    *,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
    embedded_dns: str | None = None,
) -> str:
    """The container's ``/etc/resolv.conf``.

    Args:
        host_text: the host's ``/etc/resolv.conf``.
        dns, dns_search, dns_options: ``HostConfig.Dns/DnsSearch/DnsOptions``.
        embedded_dns: the address of the network's DNS responder (user-defined
            networks), which then is the only nameserver; it forwards ``dns`` or the
            host's servers itself.
    """
    host_servers, host_search, host_options = parse_resolv_conf(host_text)
    if embedded_dns:
        servers = [embedded_dns]
    elif dns:
        servers = list(dns)
    else:
        servers = [s for s in host_servers if not _is_loopback(s)] or list(DEFAULT_NAMESERVERS)
    search = list(dns_search) if dns_search else host_search
    options = list(dns_options) if dns_options else host_options
    lines = [f"nameserver {s}\n" for s in servers]
    if search and search != ["."]:
        lines.append("search " + " ".join(search) + "\n")
    if options:
        lines.append("options " + " ".join(options) + "\n")
    return "".join(lines)


def upstream_servers(host_text: str, dns: Sequence[str] = ()) -> list[str]:
    """Where an embedded DNS responder forwards: ``--dns`` or the host's nameservers
    (loopback ones included: the responder runs in the host's namespace)."""
    return list(dns) if dns else parse_resolv_conf(host_text)[0]


def _is_loopback(address: str) -> bool:
    try:
        return ip_address(address).is_loopback
    except ValueError:
        return False
