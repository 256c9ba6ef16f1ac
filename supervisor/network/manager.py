"""Networks and container sandboxes: the network service of berthd.

Theory of operation: SQLite holds every network and every endpoint (a container's
attachment to a network, with its address while it runs); this service keeps an
in-memory copy of the networks, turns them into host plumbing (bridges, NAT, the DNS
responder of each user-defined network) and gives each starting container its
*sandbox*: a network namespace under ``<exec-root>/netns/<id>`` that the OCI bundle
points at, with one veth pair per endpoint.

Per container run::

    sandbox = await networks.set_up(container)      # before ``runtime create``
    ... the container runs ...
    await networks.tear_down(container.id)          # after ``runtime delete``

``set_up`` allocates each endpoint's address in the transaction that records it
(``store.networks.assign_ip``), creates the namespace and the veths; on any failure it
undoes what it did. ``tear_down`` is idempotent and runs also for containers found dead
at daemon start. All plumbing goes through one ``NetlinkWorker`` (pyroute2 off trio's
thread, one call at a time).

Built-in networks are ``bridge`` (the default, interface ``berth0``, no name resolution,
as Docker's default bridge), ``host`` and ``none``; they are created on first start and
never removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from store import networks as rows
from store.db import Database
from supervisor.errors import BerthError, Conflict, Forbidden, InvalidArgument, NotFound
from supervisor.events.log import EventLog
from supervisor.model import Container, Endpoint, Network
from supervisor.network import ipam, nat, netlink
from supervisor.network.ports import PortBinding
from supervisor.network.worker import NetlinkWorker

log = structlog.get_logger()

DEFAULT_NETWORK = "bridge"
BUILTIN_NAMES = ("bridge", "host", "none")
BRIDGE_PREFIX = "berth-"  # user-defined networks' bridges: berth-<9 hex of the id>
VETH_PREFIX = "bv"
DNS_PORT = 53
SPARES = 2  # namespaces with a veth pair made ahead of need (see set_up)
SPARE_PREFIX = "spare-"

#: The DNS responder: ``serve_dns(host, port, lookup, upstreams, task_status=...)``.
DnsServer = Callable[..., Any]


@attrs.frozen
class Attachment:
    """One endpoint of a running container, as plugged in."""

    network: Network
    endpoint: Endpoint
    host_ifname: str
    ifname: str = "eth0"  # inside the container

    @property
    def ip(self) -> str:
        assert self.endpoint.ip is not None
        return self.endpoint.ip

    @property
    def prefix_len(self) -> int:
        return IPv4Network(self.network.subnet).prefixlen

    @property
    def mac(self) -> str:
        return self.endpoint.mac_address or ipam.mac_for(IPv4Address(self.ip))


@attrs.frozen
class Sandbox:
    """What a container run got: its namespace path and its attachments (first =
    default route). ``netns`` is empty for ``host`` and ``none``."""

    netns: str = ""
    attachments: tuple[Attachment, ...] = ()

    @property
    def primary(self) -> Attachment | None:
        return self.attachments[0] if self.attachments else None


def parse_pool(text: str) -> ipam.Pool:
    """``base=10.213.0.0/16,size=24`` or a bare CIDR (size 24)."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value
        elif part.strip():
            fields["base"] = part
    try:
        return ipam.Pool(IPv4Network(fields["base"].strip()), int(fields.get("size", "24")))
    except (KeyError, ValueError) as exc:
        raise InvalidArgument(f"invalid default address pool {text!r}: {exc}") from None


class NetworkManager:
    def __init__(
        self,
        *,
        db: Database,
        events: EventLog,
        exec_root: Path,
        bip: str,
        bridge: str,
        pools: Sequence[str],
        dns_server: DnsServer | None = None,
        dns_upstreams: Sequence[str] = (),
    ) -> None:
        self._db = db
        self._events = events
        self._netns_dir = exec_root / "netns"
        self._bip = IPv4Interface(bip)
        self._bridge = bridge
        self._pools = tuple(parse_pool(p) for p in pools)
        self._dns_server = dns_server
        self._dns_upstreams = tuple(dns_upstreams)
        self.worker = NetlinkWorker()
        self._networks: dict[str, Network] = {}
        self._endpoints: dict[tuple[str, str], Endpoint] = {}  # (container, network)
        self._names: dict[str, tuple[str, ...]] = {}  # container id -> names DNS answers
        self._dns_scopes: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._lock = trio.Lock()  # create/remove/connect decisions
        self._spares: list[tuple[str, str]] = []  # (netns path, host veth name)
        self._ports_chain = nat.chain_name(exec_root)
        self._nat = False  # DNAT for published ports works on this host
        self._published: dict[str, list[nat.Rule]] = {}  # container id -> its DNAT rules
        self._want_spares = trio.Event()

    # -- start-up -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the networks, make sure their plumbing exists, serve DNS; then wait."""
        for n in await self._db.run(rows.all_networks):
            self._networks[n.id] = n
        for e in await self._db.run(rows.all_endpoints):
            self._endpoints[(e.container_id, e.network_id)] = e
        await self._ensure_builtins()
        for name in netlink.list_netns(SPARE_PREFIX, directory=self._netns_dir):
            await self.worker.run(netlink.delete_netns, str(self._netns_dir / name))
        try:
            await self.worker.run(nat.ensure_chain, self._ports_chain)
            self._nat = True
        except BerthError as exc:
            log.warning("network.dnat_unavailable", error=str(exc))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for n in list(self._networks.values()):
                if n.driver == "bridge":
                    try:
                        await self._plumb(n)
                    except BerthError as exc:
                        log.error("network.plumbing_failed", network=n.name, error=str(exc))
            task_status.started()
            await self._keep_spares()

    async def _keep_spares(self) -> None:
        """Keep ``SPARES`` namespaces with an unplugged veth pair ready: creating the
        pair is most of a sandbox's cost (~20-30 ms of kernel work here), so a starting
        container takes a spare and only plugs it in."""
        while True:
            while len(self._spares) < SPARES:
                path = str(self._netns_dir / (SPARE_PREFIX + secrets.token_hex(8)))
                veth = _new_veth_name()
                try:
                    await self.worker.run(netlink.create_spare, path, veth)
                except BerthError as exc:
                    log.warning("network.spare_failed", error=str(exc))
                    break
                self._spares.append((path, veth))
            self._want_spares = trio.Event()
            await self._want_spares.wait()

    async def _ensure_builtins(self) -> None:
        have = {n.name for n in self._networks.values()}
        subnet = self._bip.network
        for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
            if name in have:
                continue
            n = Network(
                id=secrets.token_hex(32),
                name=name,
                driver=driver,
                created_ns=time.time_ns(),
                bridge=self._bridge if driver == "bridge" else None,
                subnet=str(subnet) if driver == "bridge" else "",
                gateway=str(self._bip.ip) if driver == "bridge" else "",
                builtin=True,
                options={"com.docker.network.bridge.name": self._bridge}
                if driver == "bridge"
                else {},
            )
            await self._db.run(rows.insert_network, n)
            self._networks[n.id] = n
        default = self.get(DEFAULT_NETWORK)
        if default.subnet != str(subnet) or default.gateway != str(self._bip.ip):
            log.warning(
                "network.default_bridge_config_changed",
                stored=default.subnet,
                configured=str(self._bip),
            )

    async def _plumb(self, n: Network) -> None:
        """The bridge, NAT (or isolation) and DNS of a bridge network. Idempotent."""
        assert n.bridge is not None
        cidr = f"{n.gateway}/{IPv4Network(n.subnet).prefixlen}"
        await self.worker.run(netlink.ensure_bridge, n.bridge, cidr)
        if n.internal:
            await self.worker.run(netlink.set_bridge_isolation, n.bridge, True)
        else:
            await self.worker.run(netlink.ensure_masquerade, n.subnet, n.bridge)
            if self._nat:
                try:
                    await self.worker.run(nat.enable_bridge, n.bridge)
                except BerthError as exc:
                    log.warning("network.dnat_bridge_failed", bridge=n.bridge, error=str(exc))
        if n.user_defined and self._dns_server is not None and self._nursery is not None:
            await self._start_dns(n)

    async def _start_dns(self, n: Network) -> None:
        assert self._nursery is not None
        assert self._dns_server is not None
        scope = trio.CancelScope()
        self._dns_scopes[n.id] = scope
        server = self._dns_server

        async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await server(
                    n.gateway,
                    DNS_PORT,
                    lambda name, client: self.resolve(n.id, name, client),
                    [u for u in self._dns_upstreams if u != n.gateway],
                    task_status=task_status,
                )

        try:
            await self._nursery.start(serve)
        except (OSError, BerthError) as exc:
            # Containers fall back to the host's resolvers (see resolv_conf).
            self._dns_scopes.pop(n.id, None)
            log.warning("network.dns_unavailable", network=n.name, error=str(exc))

    async def clean_leftovers(self, keep: set[str]) -> None:
        """After a crash: namespaces, veths and addresses of containers not in ``keep``
        (the ones re-adopted running)."""
        # Deleting a dead container's namespace deletes its veth pair with it.
        for name in netlink.list_netns(directory=self._netns_dir):
            if name not in keep and not name.startswith(SPARE_PREFIX):
                await self.worker.run(netlink.delete_netns, str(self._netns_dir / name))
        for (cid, _), e in list(self._endpoints.items()):
            if cid not in keep and e.ip is not None:
                await self._release(cid)
        for cid in keep:
            self._names.pop(cid, None)

    async def shutdown(self) -> None:
        """Delete the spares; unmount the namespace directory's own mount (made shared
        at first use)."""
        for path, _ in self._spares:
            with contextlib.suppress(BerthError):
                await self.worker.run(netlink.delete_netns, path)
        self._spares.clear()
        if self._nat:
            with contextlib.suppress(BerthError):
                await self.worker.run(nat.remove_chain, self._ports_chain)
        with contextlib.suppress(OSError):
            await trio.to_thread.run_sync(_unmount_dir, self._netns_dir)

    # -- lookups --------------------------------------------------------------------

    def all(self) -> list[Network]:
        return sorted(self._networks.values(), key=lambda n: n.created_ns)

    def get(self, ref: str) -> Network:
        """By full id, then exact name, then unique id prefix (Docker's order).

        Raises:
            NotFound: ``network X not found``.
        """
        if ref in self._networks:
            return self._networks[ref]
        for n in self._networks.values():
            if n.name == ref:
                return n
        matches = [n for n in self._networks.values() if ref and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound(f"network {ref} is ambiguous ({len(matches)} matches found on id)")
        raise NotFound(f"network {ref} not found")

    def dns_address(self, n: Network) -> str | None:
        """Where containers on ``n`` send DNS queries: its responder, if it runs."""
        return n.gateway if n.id in self._dns_scopes else None

    def endpoints_of(self, cid: str) -> list[Endpoint]:
        return sorted(
            (e for (c, _), e in self._endpoints.items() if c == cid), key=lambda e: e.position
        )

    def endpoints_on(self, network_id: str) -> list[Endpoint]:
        return [e for (_, n), e in self._endpoints.items() if n == network_id]

    def resolve(self, network_id: str, name: str, client_ip: str) -> list[IPv4Address] | None:
        """The embedded DNS's answer on ``network_id``: the addresses of running
        containers on that network whose name, alias or id matches ``name``."""
        wanted = name.rstrip(".").lower()
        found: list[IPv4Address] = []
        for e in self.endpoints_on(network_id):
            if e.ip is None:
                continue
            names = {a.lower() for a in e.aliases}
            names.update(n.lower() for n in self._names.get(e.container_id, ()))
            if wanted in names or (len(wanted) >= 12 and e.container_id.startswith(wanted)):
                found.append(IPv4Address(e.ip))
        return found or None

    # -- networks ---------------------------------------------------------------------

    async def create(self, body: Mapping[str, Any]) -> Network:
        """``POST /networks/create``. Raises Docker's errors (400, 403, 404, 409)."""
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("network name is required" if not name else "invalid name")
        driver = str(body.get("Driver") or "bridge")
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        if body.get("EnableIPv6"):
            raise InvalidArgument("IPv6 networks are not supported by berth")
        labels = _str_map(body.get("Labels"), "Labels")
        options = _str_map(body.get("Options"), "Options")
        ipam_cfg = body.get("IPAM") or {}
        if not isinstance(ipam_cfg, Mapping):
            raise InvalidArgument("invalid IPAM: expected an object")
        if (ipam_cfg.get("Driver") or "default") != "default":
            raise NotFound(f'plugin "{ipam_cfg.get("Driver")}" not found')
        configs = ipam_cfg.get("Config") or []
        if not isinstance(configs, list) or len(configs) > 1:
            raise InvalidArgument("berth supports one IPv4 subnet per network")
        async with self._lock:
            if any(n.name == name for n in self._networks.values()):
                raise Conflict(f"network with name {name} already exists")
            taken = [IPv4Network(n.subnet) for n in self._networks.values() if n.subnet]
            ip_range = ""
            if configs:
                cfg = configs[0]
                if not isinstance(cfg, Mapping):
                    raise InvalidArgument("invalid IPAM config: expected an object")
                subnet_text = str(cfg.get("Subnet") or "")
                if not subnet_text:
                    raise InvalidArgument("invalid IPAM config: Subnet is required")
                subnet, gateway = ipam.validate_config(
                    subnet_text, str(cfg.get("Gateway") or "") or None
                )
                ipam.check_no_overlap(subnet, taken)
                if cfg.get("IPRange"):
                    rng = ipam.parse_subnet(str(cfg["IPRange"]))
                    if not rng.subnet_of(subnet):
                        raise InvalidArgument(
                            f"invalid ip-range {rng}: it must be a subnet of {subnet}"
                        )
                    ip_range = str(rng)
            else:
                host = await self.worker.run(netlink.host_networks)
                subnet = ipam.pick_subnet([*taken, *host], self._pools)
                gateway = ipam.default_gateway(subnet)
            nid = secrets.token_hex(32)
            bridge = options.get("com.docker.network.bridge.name") or BRIDGE_PREFIX + nid[:9]
            netlink.check_ifname(bridge)
            n = Network(
                id=nid,
                name=name,
                driver="bridge",
                created_ns=time.time_ns(),
                bridge=bridge,
                subnet=str(subnet),
                gateway=str(gateway),
                ip_range=ip_range,
                internal=bool(body.get("Internal")),
                labels=labels,
                options=options,
            )
            await self._events.emit(
                "network",
                "create",
                nid,
                {"name": name, "type": "bridge"},
                with_change=lambda conn: rows.insert_network(conn, n),
            )
            self._networks[nid] = n
            try:
                await self._plumb(n)
            except BerthError:
                await self._drop(n)
                raise
        log.info("network.created", network=name, subnet=n.subnet)
        return n

    async def remove(self, ref: str) -> None:
        """``DELETE /networks/{id}``: 403 for built-ins and networks with running
        containers (Docker's "has active endpoints")."""
        async with self._lock:
            n = self.get(ref)
            if n.builtin:
                raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
            if any(e.ip is not None for e in self.endpoints_on(n.id)):
                raise Forbidden(
                    f"error while removing network: network {n.name} id {n.id} has active endpoints"
                )
            await self._drop(n)

    async def _drop(self, n: Network) -> None:
        await self._events.emit(
            "network",
            "destroy",
            n.id,
            {"name": n.name, "type": n.driver},
            with_change=lambda conn: rows.delete_network(conn, n.id),
        )
        self._networks.pop(n.id, None)
        for key in [k for k in self._endpoints if k[1] == n.id]:
            del self._endpoints[key]
        scope = self._dns_scopes.pop(n.id, None)
        if scope is not None:
            scope.cancel()
        assert n.bridge is not None
        if n.internal:
            await self.worker.run(netlink.set_bridge_isolation, n.bridge, False)
        await self.worker.run(netlink.remove_masquerade, n.subnet, n.bridge)
        with contextlib.suppress(BerthError):
            await self.worker.run(nat.disable_bridge, n.bridge)
        await self.worker.run(netlink.delete_bridge, n.bridge)
        log.info("network.removed", network=n.name)

    async def prune(self, keep: Callable[[Network], bool]) -> list[str]:
        """Remove user-defined networks without running containers that ``keep``
        (the filters) does not protect. Returns the removed names."""
        removed: list[str] = []
        for n in self.all():
            if n.builtin or not keep(n):
                continue
            try:
                await self.remove(n.id)
            except BerthError:
                continue
            removed.append(n.name)
        return removed

    # -- endpoints --------------------------------------------------------------------

    def endpoint_for(
        self, cid: str, network: Network, config: Mapping[str, Any] | None
    ) -> Endpoint:
        """Validate an ``EndpointSettings`` object for ``network`` (pure but for the
        lookups). Raises InvalidArgument."""
        config = config or {}
        if not isinstance(config, Mapping):
            raise InvalidArgument("invalid EndpointConfig: expected an object")
        aliases = config.get("Aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InvalidArgument("invalid Aliases: expected a list of strings")
        ipam_cfg = config.get("IPAMConfig") or {}
        requested = str(ipam_cfg.get("IPv4Address") or "") if isinstance(ipam_cfg, Mapping) else ""
        if requested:
            if network.builtin:
                raise InvalidArgument(
                    "user specified IP address is supported on user defined networks only"
                )
            addr = ipam.parse_address(requested)
            if addr not in IPv4Network(network.subnet):
                raise InvalidArgument(
                    f"invalid address {addr}: It does not belong to any of this network's subnets"
                )
        if aliases and network.builtin:
            raise InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        mac = str(config.get("MacAddress") or "")
        if mac and not _valid_mac(mac):
            raise InvalidArgument(f"invalid MAC address: {mac}")
        return Endpoint(
            container_id=cid,
            network_id=network.id,
            id=secrets.token_hex(32),
            position=0,
            aliases=tuple(aliases),
            requested_ip=requested,
            mac_address=mac.lower(),
        )

    def record_created(self, endpoints: Sequence[Endpoint]) -> None:
        """The container's create transaction committed these (see ``insert_all``)."""
        for e in endpoints:
            self._endpoints[(e.container_id, e.network_id)] = e

    def forget(self, cid: str) -> None:
        """The container's row is gone (its endpoints cascade)."""
        for key in [k for k in self._endpoints if k[0] == cid]:
            del self._endpoints[key]
        self._names.pop(cid, None)

    async def connect(
        self,
        container: Container,
        network_ref: str,
        config: Mapping[str, Any] | None,
        *,
        sandbox: Sandbox | None,
    ) -> Sandbox | None:
        """``POST /networks/{id}/connect``. Plugs a running container in at once
        (``sandbox`` given) and returns its new sandbox."""
        mode = str(container.host_config.get("NetworkMode") or "")
        if mode == "host" or mode == "none" or mode.startswith("container:"):
            raise InvalidArgument(
                "container sharing network namespace with another container or host cannot be "
                "connected to any other network"
            )
        async with self._lock:
            n = self.get(network_ref)
            if n.driver != "bridge":
                raise Forbidden(
                    "container cannot be disconnected from host network or connected to host network"
                )
            if (container.id, n.id) in self._endpoints:
                raise Forbidden(
                    f"endpoint with name {container.name} already exists in network {n.name}"
                )
            e = self.endpoint_for(container.id, n, config)
            e = await self._db.run(rows.insert_endpoint, e)
            self._endpoints[(container.id, n.id)] = e
            await self._events.emit(
                "network",
                "connect",
                n.id,
                {"container": container.id, "name": n.name, "type": n.driver},
            )
        if sandbox is None or not sandbox.netns:
            return sandbox
        taken = {a.ifname for a in sandbox.attachments}
        ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
        try:
            attachment = await self._attach(
                container, sandbox.netns, n, default_route=False, ifname=ifname
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._db.run(rows.delete_endpoint, container.id, n.id)
                self._endpoints.pop((container.id, n.id), None)
            raise
        return attrs.evolve(sandbox, attachments=(*sandbox.attachments, attachment))

    async def disconnect(
        self, container: Container, network_ref: str, *, sandbox: Sandbox | None
    ) -> Sandbox | None:
        """``POST /networks/{id}/disconnect``; unplugs a running container."""
        n = self.get(network_ref)
        if (container.id, n.id) not in self._endpoints:
            raise Forbidden(f"container {container.id} is not connected to network {n.name}")
        if n.driver != "bridge":
            raise Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        e = self._endpoints[(container.id, n.id)]
        if sandbox is not None and sandbox.netns and e.ip is not None:
            await self.worker.run(netlink.detach_address, sandbox.netns, e.ip)
            sandbox = attrs.evolve(
                sandbox,
                attachments=tuple(a for a in sandbox.attachments if a.network.id != n.id),
            )
        await self._db.run(rows.delete_endpoint, container.id, n.id)
        self._endpoints.pop((container.id, n.id), None)
        await self._events.emit(
            "network",
            "disconnect",
            n.id,
            {"container": container.id, "name": n.name, "type": n.driver},
        )
        return sandbox

    # -- sandboxes --------------------------------------------------------------------

    def netns_path(self, cid: str) -> str:
        return str(self._netns_dir / cid)

    async def set_up(self, container: Container, names: Sequence[str]) -> Sandbox:
        """Create the container's namespace and plug in every endpoint (the first one
        carries the default route). ``names`` are what the embedded DNS answers for it.
        On failure, undoes everything."""
        path = self.netns_path(container.id)
        self._names[container.id] = tuple(names)
        attachments: list[Attachment] = []
        endpoints = self.endpoints_of(container.id)
        spare = self._spares.pop(0) if self._spares and endpoints else None
        try:
            if spare is not None:
                await self.worker.run(netlink.rename_netns, spare[0], path)
            else:
                await self.worker.run(netlink.create_netns, path)
                await self.worker.run(netlink.loopback_up, path)
            for i, e in enumerate(endpoints):
                n = self._networks[e.network_id]
                attachments.append(
                    await self._attach(
                        container,
                        path,
                        n,
                        default_route=i == 0,
                        ifname=f"eth{i}",
                        spare_veth=spare[1] if spare is not None and i == 0 else None,
                    )
                )
        except BaseException:
            with trio.CancelScope(shield=True):
                if spare is not None:
                    with contextlib.suppress(BerthError):
                        await self.worker.run(netlink.delete_netns, spare[0])
                await self.tear_down(container.id)
            raise
        finally:
            self._want_spares.set()  # refill after this set-up: never ahead of it
        return Sandbox(netns=path, attachments=tuple(attachments))

    async def _attach(
        self,
        container: Container,
        netns: str,
        n: Network,
        *,
        default_route: bool,
        ifname: str,
        spare_veth: str | None = None,
    ) -> Attachment:
        e = await self._db.run(rows.assign_ip, container.id, n)
        self._endpoints[(container.id, n.id)] = e
        assert e.ip is not None
        assert n.bridge is not None
        host_ifname = spare_veth or _new_veth_name()
        attachment = Attachment(network=n, endpoint=e, host_ifname=host_ifname, ifname=ifname)
        try:
            await self.worker.run(
                netlink.plug_spare if spare_veth else netlink.attach_container,
                netns,
                bridge=n.bridge,
                host_ifname=host_ifname,
                address_cidr=f"{e.ip}/{attachment.prefix_len}",
                gateway=n.gateway if default_route else None,
                mac=attachment.mac,
                ifname=ifname,
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._release_one(container.id, n.id)
            raise
        return attachment

    async def tear_down(self, cid: str) -> None:
        """Delete the container's namespace (its veths go with it) and release its
        addresses. Idempotent; never cancelled midway."""
        with trio.CancelScope(shield=True):
            # No veth is deleted one by one: with the container's processes gone, the
            # namespace dies with its last mount and the kernel deletes its veth pairs
            # in the background (deleting them here took ~30 ms of rtnl time each).
            try:
                await self.worker.run(netlink.delete_netns, self.netns_path(cid))
            except BerthError as exc:
                log.warning("network.netns_delete_failed", container_id=cid, error=str(exc))
            await self.unpublish(cid)
            await self._release(cid)
            self._names.pop(cid, None)

    async def publish(self, cid: str, bound: Sequence[PortBinding], sandbox: Sandbox) -> None:
        """DNAT rules for the container's bound ports (the kernel's fast path beside the
        proxies, see ``nat``). A failure only costs speed: the proxies serve."""
        primary = sandbox.primary
        if not self._nat or primary is None or primary.network.bridge is None:
            return
        rules = nat.dnat_rules(bound, primary.ip, primary.network.bridge)
        try:
            await self.worker.run(nat.add_rules, self._ports_chain, rules)
        except BerthError as exc:
            log.warning("network.dnat_failed", container_id=cid, error=str(exc))
            return
        self._published[cid] = rules

    async def unpublish(self, cid: str) -> None:
        rules = self._published.pop(cid, None)
        if rules:
            with trio.CancelScope(shield=True):
                try:
                    await self.worker.run(nat.delete_rules, self._ports_chain, rules)
                except BerthError as exc:
                    log.warning("network.dnat_cleanup_failed", container_id=cid, error=str(exc))

    async def _release(self, cid: str) -> None:
        await self._db.run(rows.release_ips, cid)
        for key, e in list(self._endpoints.items()):
            if key[0] == cid and e.ip is not None:
                self._endpoints[key] = attrs.evolve(e, ip=None)

    async def _release_one(self, cid: str, nid: str) -> None:
        await self._db.run(rows.release_ip, cid, nid)
        e = self._endpoints.get((cid, nid))
        if e is not None:
            self._endpoints[(cid, nid)] = attrs.evolve(e, ip=None)

    def adopt(self, cid: str, names: Sequence[str]) -> Sandbox:
        """The sandbox of a container re-adopted after a daemon restart (its namespace
        and veths survived; the endpoints table still holds its addresses)."""
        self._names[cid] = tuple(names)
        attachments = tuple(
            Attachment(
                network=self._networks[e.network_id],
                endpoint=e,
                host_ifname="",  # unknown after a restart; not needed to tear down
                ifname=f"eth{i}",  # as set up, unless connected while running
            )
            for i, e in enumerate(
                e
                for e in self.endpoints_of(cid)
                if e.ip is not None and e.network_id in self._networks
            )
        )
        return Sandbox(netns=self.netns_path(cid), attachments=attachments)


def _new_veth_name() -> str:
    """A fresh host-side veth name per attachment: a stopped container's pair may
    still be on its way out when the same container starts again."""
    return VETH_PREFIX + secrets.token_hex(6)[:11]


def _str_map(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"invalid {what}: expected an object")
    return {str(k): str(v) for k, v in value.items()}


def _valid_mac(mac: str) -> bool:
    parts = mac.split(":")
    return len(parts) == 6 and all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


def _unmount_dir(path: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if path.exists():
        libc.umount2(bytes(path), 2)  # MNT_DETACH
        with contextlib.suppress(OSError):
            os.rmdir(path)
