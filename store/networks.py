"""Network and endpoint rows. Every function here is a transaction body for
:meth:`store.db.Database.run`.

Addresses are allocated inside the transaction that records them (:func:`assign_ip`):
the IPAM decides from the addresses the table holds, and ``UNIQUE(network_id, ip)``
backs it up, so no two endpoints ever share an address.
"""

from __future__ import annotations

import json
import sqlite3
from ipaddress import IPv4Address, IPv4Network

import attrs

from supervisor.errors import Conflict, NotFound
from supervisor.model import Endpoint, Network
from supervisor.network import ipam

_NETWORK_COLUMNS = (
    "id, name, driver, created_ns, bridge, subnet, gateway, ip_range, internal, builtin, "
    "labels, options"
)
_ENDPOINT_COLUMNS = "container_id, network_id, id, position, aliases, requested_ip, mac_address, ip"


def _network(row: tuple[object, ...]) -> Network:
    (nid, name, driver, created, bridge, subnet, gateway, ip_range, internal, builtin, labels,
     options) = row  # fmt: skip
    return Network(
        id=str(nid),
        name=str(name),
        driver=str(driver),
        created_ns=int(str(created)),
        bridge=None if bridge is None else str(bridge),
        subnet=str(subnet),
        gateway=str(gateway),
        ip_range=str(ip_range),
        internal=bool(internal),
        builtin=bool(builtin),
        labels=json.loads(str(labels)),
        options=json.loads(str(options)),
    )


def _endpoint(row: tuple[object, ...]) -> Endpoint:
    cid, nid, eid, position, aliases, requested, mac, ip = row
    return Endpoint(
        container_id=str(cid),
        network_id=str(nid),
        id=str(eid),
        position=int(str(position)),
        aliases=tuple(json.loads(str(aliases))),
        requested_ip=str(requested),
        mac_address=str(mac),
        ip=None if ip is None else str(ip),
    )


def insert_network(conn: sqlite3.Connection, n: Network) -> None:
    """Add a network. Raises Conflict (409) when the name is taken, as Docker words it."""
    if conn.execute("SELECT 1 FROM networks WHERE name = ?", (n.name,)).fetchone():
        raise Conflict(f"network with name {n.name} already exists")
    conn.execute(
        f"INSERT INTO networks ({_NETWORK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            n.id,
            n.name,
            n.driver,
            n.created_ns,
            n.bridge,
            n.subnet,
            n.gateway,
            n.ip_range,
            int(n.internal),
            int(n.builtin),
            json.dumps(n.labels),
            json.dumps(n.options),
        ),
    )


def all_networks(conn: sqlite3.Connection) -> list[Network]:
    return [
        _network(r)
        for r in conn.execute(f"SELECT {_NETWORK_COLUMNS} FROM networks ORDER BY created_ns")
    ]


def delete_network(conn: sqlite3.Connection, network_id: str) -> None:
    """Remove a network and (cascade) the endpoints of stopped containers on it."""
    conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))


def all_endpoints(conn: sqlite3.Connection) -> list[Endpoint]:
    return [
        _endpoint(r)
        for r in conn.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints ORDER BY container_id, position"
        )
    ]


def insert_endpoint(conn: sqlite3.Connection, e: Endpoint) -> Endpoint:
    """Record an attachment; ``position`` is assigned after the container's others.

    Raises:
        NotFound: the container or the network vanished meanwhile.
        Conflict: the container is already on that network.
    """
    if not conn.execute("SELECT 1 FROM networks WHERE id = ?", (e.network_id,)).fetchone():
        raise NotFound(f"network {e.network_id} not found")
    if conn.execute(
        "SELECT 1 FROM endpoints WHERE container_id = ? AND network_id = ?",
        (e.container_id, e.network_id),
    ).fetchone():
        raise Conflict(f"endpoint for container {e.container_id} already exists in the network")
    (last,) = conn.execute(
        "SELECT COALESCE(MAX(position), -1) FROM endpoints WHERE container_id = ?",
        (e.container_id,),
    ).fetchone()
    position = int(last) + 1
    conn.execute(
        f"INSERT INTO endpoints ({_ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        (
            e.container_id,
            e.network_id,
            e.id,
            position,
            json.dumps(list(e.aliases)),
            e.requested_ip,
            e.mac_address,
        ),
    )
    return attrs.evolve(e, position=position, ip=None)


def delete_endpoint(conn: sqlite3.Connection, container_id: str, network_id: str) -> None:
    conn.execute(
        "DELETE FROM endpoints WHERE container_id = ? AND network_id = ?",
        (container_id, network_id),
    )


def assign_ip(
    conn: sqlite3.Connection, container_id: str, network: Network, label: str = ""
) -> Endpoint:
    """Give the container's endpoint on ``network`` an address (its ``--ip`` or the
    lowest free one) and return the endpoint. Idempotent for an endpoint that has one.

    Raises:
        NotFound: no such endpoint. InvalidArgument / Forbidden / BerthError: from
        :func:`supervisor.network.ipam.allocate`.
    """
    row = conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints WHERE container_id = ? AND network_id = ?",
        (container_id, network.id),
    ).fetchone()
    if row is None:
        raise NotFound(f"container {container_id} is not connected to network {network.name}")
    endpoint = _endpoint(row)
    if endpoint.ip is not None:
        return endpoint
    used = {
        IPv4Address(str(r[0]))
        for r in conn.execute(
            "SELECT ip FROM endpoints WHERE network_id = ? AND ip IS NOT NULL", (network.id,)
        )
    }
    subnet = IPv4Network(network.subnet)
    requested = IPv4Address(endpoint.requested_ip) if endpoint.requested_ip else None
    pool = IPv4Network(network.ip_range) if network.ip_range and requested is None else subnet
    ip = ipam.allocate(
        pool,
        used=used,
        gateway=IPv4Address(network.gateway),
        requested=requested,
        network=label or f"{network.name} ({network.id})",
    )
    conn.execute(
        "UPDATE endpoints SET ip = ? WHERE container_id = ? AND network_id = ?",
        (str(ip), container_id, network.id),
    )
    return attrs.evolve(endpoint, ip=str(ip))


def release_ips(conn: sqlite3.Connection, container_id: str) -> None:
    """The container stopped: its addresses go back to the pools."""
    conn.execute("UPDATE endpoints SET ip = NULL WHERE container_id = ?", (container_id,))


def release_ip(conn: sqlite3.Connection, container_id: str, network_id: str) -> None:
    """One endpoint's address goes back (its veth could not be set up)."""
    conn.execute(
        "UPDATE endpoints SET ip = NULL WHERE container_id = ? AND network_id = ?",
        (container_id, network_id),
    )
