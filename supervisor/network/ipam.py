"""IPv4 address management for bridge networks: subnets, gateways, container addresses.

Theory of operation: the IPAM holds no state. The caller (the network service) keeps
every network's subnet and every endpoint's address in SQLite and passes the relevant
set in; these functions only decide. So an allocation survives a daemon restart exactly
as well as the row that records it, and two containers can never receive the same
address as long as the caller allocates and inserts in one serialized transaction.

Rules, as Docker's default IPAM (libnetwork ``ipams/defaultipam``) applies them:

* a subnet must be written in canonical form (``10.1.0.0/16``, not ``10.1.2.3/16``);
* the network and broadcast addresses are never handed out, and the gateway is
  reserved (by default the first host address);
* an automatic allocation takes the lowest free address (Docker's non-serial mode);
* a requested address (``--ip``) must lie in the subnet and be free.

Error classes, therefore HTTP statuses, follow moby's: a malformed subnet, gateway or
address is ``InvalidArgument`` (400); an address in use or an overlapping pool is
``Forbidden`` (403, libnetwork's ``ForbiddenErrorf``); an exhausted network is a plain
500, as in moby.

Imports: standard library, attrs and ``supervisor.errors`` only (a PURE module).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, ip_address

import attrs

from supervisor.errors import BerthError, Forbidden, InvalidArgument

#: Smallest bridge subnet: network, gateway, one container, broadcast.
MAX_PREFIXLEN = 30


@attrs.frozen
class Pool:
    """An address range carved into equal subnets for networks created without
    ``--subnet`` (Docker's ``default-address-pools`` entry ``{base, size}``)."""

    base: IPv4Network
    size: int

    def subnets(self) -> Iterable[IPv4Network]:
        if self.size <= self.base.prefixlen:
            yield self.base
            return
        yield from self.base.subnets(new_prefix=self.size)


#: berth's default bridge ``berth0``. Docker uses 172.17.0.0/16 and then 172.18-31/16 and
#: 192.168/16 for user networks; those collide with Docker itself on the same host and
#: with many home and office networks, so berth takes a rarely used corner of 10/8.
DEFAULT_BRIDGE_SUBNET = IPv4Network("10.213.0.0/20")

#: Pools for user-defined networks without ``--subnet``: 10.213.0.0/16 as /24s (the
#: first sixteen overlap ``berth0``'s /20 and are skipped while it exists).
DEFAULT_POOLS: tuple[Pool, ...] = (Pool(IPv4Network("10.213.0.0/16"), 24),)

ADDRESS_IN_USE = "Address already in use"  # libnetwork ipamapi.ErrIPAlreadyAllocated
POOL_OVERLAP = "Pool overlaps with other one on this address space"  # ErrPoolOverlap
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"  # ErrNoMoreSubnets


def parse_subnet(text: str) -> IPv4Network:
    """Parse ``--subnet`` / ``IPAM.Config[].Subnet``.

    Raises:
        InvalidArgument: with moby's ``ValidateIPAM`` wording: ``invalid subnet X:
            invalid CIDR block notation`` or ``...: it should be 10.0.0.0/8``; IPv6
            subnets are refused (berth networks are IPv4 only) and so are prefixes too
            long to hold a gateway and one container.
    """
    # Go's netip.ParsePrefix, which moby uses: "addr/bits", bits in decimal without
    # leading zeros, no netmask form, no surrounding space.
    invalid = InvalidArgument(f"invalid subnet {text}: invalid CIDR block notation")
    addr_text, slash, bits_text = text.partition("/")
    if not slash or not (bits_text.isascii() and bits_text.isdigit()):
        raise invalid
    if len(bits_text) > 1 and bits_text[0] == "0":
        raise invalid
    try:
        addr = ip_address(addr_text)
    except ValueError:
        raise invalid from None
    bits = int(bits_text)
    if not isinstance(addr, IPv4Address):
        if bits > 128:
            raise invalid
        raise InvalidArgument(f"invalid subnet {text}: IPv6 has not been enabled for this network")
    if bits > 32:
        raise invalid
    network = IPv4Network((addr, bits), strict=False)
    if addr != network.network_address:
        raise InvalidArgument(f"invalid subnet {text}: it should be {network}")
    if network.prefixlen > MAX_PREFIXLEN:
        raise InvalidArgument(
            f"invalid subnet {text}: a bridge network needs at least a /{MAX_PREFIXLEN}"
        )
    return network


def parse_address(text: str) -> IPv4Address:
    """Parse an IPv4 address (``--ip``, ``--gateway``).

    Raises:
        InvalidArgument: ``invalid IPv4 address: X``.
    """
    try:
        addr = ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {text}") from None
    if not isinstance(addr, IPv4Address):
        raise InvalidArgument(f"invalid IPv4 address: {text}")
    return addr


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    """The first host address, Docker's default gateway."""
    return subnet.network_address + 1


def parse_gateway(text: str, subnet: IPv4Network) -> IPv4Address:
    """Parse ``--gateway`` for ``subnet``.

    Raises:
        InvalidArgument: moby's ``invalid gateway X: invalid address`` or ``invalid
            gateway X: parent subnet S doesn't contain this address``.
    """
    try:
        gateway = ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid gateway {text}: invalid address") from None
    if not isinstance(gateway, IPv4Address):
        raise InvalidArgument(f"invalid gateway {text}: parent subnet is an IPv4 block")
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(
            f"invalid gateway {text}: parent subnet {subnet} doesn't contain this address"
        )
    return gateway


def validate_config(subnet: str, gateway: str | None = None) -> tuple[IPv4Network, IPv4Address]:
    """Validate one ``IPAM.Config`` entry as moby's ``ValidateIPAM`` does.

    Returns:
        The subnet and its gateway (the default one when ``gateway`` is empty).

    Raises:
        InvalidArgument: ``invalid network config:\\n`` followed by the problem.
    """
    try:
        network = parse_subnet(subnet)
        gw = parse_gateway(gateway, network) if gateway else default_gateway(network)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid network config:\n{exc}") from None
    return network, gw


def overlaps(a: IPv4Network, b: IPv4Network) -> bool:
    return a.overlaps(b)


def check_no_overlap(subnet: IPv4Network, existing: Iterable[IPv4Network]) -> None:
    """Refuse a ``--subnet`` that overlaps another network's.

    Raises:
        Forbidden: ``Pool overlaps with other one on this address space`` (moby's 403).
    """
    if any(subnet.overlaps(other) for other in existing):
        raise Forbidden(POOL_OVERLAP)


def pick_subnet(
    existing: Sequence[IPv4Network], pools: Sequence[Pool] = DEFAULT_POOLS
) -> IPv4Network:
    """The first subnet of ``pools`` that overlaps none of ``existing``.

    Args:
        existing: the subnets of every berth network plus the host's own routes and
            addresses (``netlink.host_networks()``), so that a new network never
            shadows a network the host already reaches.
        pools: where to carve from, in order.

    Raises:
        InvalidArgument: ``all predefined address pools have been fully subnetted``.
    """
    for pool in pools:
        for candidate in pool.subnets():
            if not any(candidate.overlaps(other) for other in existing):
                return candidate
    raise InvalidArgument(NO_MORE_SUBNETS)


def allocate(
    subnet: IPv4Network,
    *,
    used: set[IPv4Address],
    gateway: IPv4Address,
    requested: IPv4Address | None = None,
    network: str = "",
) -> IPv4Address:
    """Choose a container address in ``subnet``.

    Args:
        used: addresses already held by endpoints of this network.
        gateway: the network's gateway, never handed out.
        requested: ``--ip``; must be inside the subnet and free.
        network: ``"name (id)"`` for the exhaustion message, as moby words it.

    Returns:
        ``requested`` when given, else the lowest free host address.

    Raises:
        InvalidArgument: ``invalid address X: It does not belong to any of this
            network's subnets`` (the requested address is outside the subnet).
        Forbidden: ``Address already in use`` (requested address taken, or it is the
            gateway, network or broadcast address: libnetwork reserves those).
        BerthError: ``no available IPv4 addresses on this network's address pools``.
    """
    if requested is not None:
        if requested not in subnet:
            raise InvalidArgument(
                f"invalid address {requested}: It does not belong to any of this network's subnets"
            )
        if requested in used or requested in _reserved(subnet, gateway):
            raise Forbidden(ADDRESS_IN_USE)
        return requested
    reserved = _reserved(subnet, gateway)
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    # Skip the contiguous block of used addresses quickly when it is large: at most
    # len(used) + 3 candidates can be taken before a free one.
    for value in range(first, min(last, first + len(used) + len(reserved)) + 1):
        candidate = IPv4Address(value)
        if candidate not in used and candidate not in reserved:
            return candidate
    suffix = f": {network}" if network else ""
    raise BerthError(f"no available IPv4 addresses on this network's address pools{suffix}")


def _reserved(subnet: IPv4Network, gateway: IPv4Address) -> set[IPv4Address]:
    return {subnet.network_address, subnet.broadcast_address, gateway}


def mac_for(ip: IPv4Address) -> str:
    """Docker's generated MAC address: the locally administered prefix ``02:42`` and
    the four bytes of the IPv4 address (``10.213.0.2`` → ``02:42:0a:d5:00:02``)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def interface_cidr(ip: IPv4Address, subnet: IPv4Network) -> str:
    """``10.213.0.2/20``: the form ``netlink.attach_container`` and ``ensure_bridge``
    take."""
    return f"{ip}/{subnet.prefixlen}"
