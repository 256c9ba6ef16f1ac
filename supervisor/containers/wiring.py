"""A container's network wiring: the network mode and endpoints recorded at create,
the sandbox (network namespace) each run joins, its published ports, the generated
``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf``, and ``NetworkSettings``.

The networks themselves (bridges, IPAM, sandboxes, NAT) belong to
``supervisor.network.manager.NetworkManager``; this module applies them to one
container's :class:`~supervisor.containers.handle.Handle` for the container manager.

Order per run (``ContainerManager._launch``): :meth:`NetworkWiring.join` →
:meth:`NetworkWiring.publish` (every proxy bound with ``nursery.start``) → spec → runtime.
At exit :meth:`NetworkWiring.stop_publishing` cancels the proxies before the exit is
recorded and :meth:`NetworkWiring.release` drops the sandbox in the run's clean-up.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import structlog
import trio

from supervisor.containers.handle import Handle, Paths
from supervisor.containers.state import Status
from supervisor.errors import BerthError, Conflict, InvalidArgument, NotFound, berth_error_in
from supervisor.model import Container, Endpoint, Network
from supervisor.network import etc, views
from supervisor.network import ports as port_specs
from supervisor.network.hostfiles import HOSTS, RESOLV_CONF, read_host_file
from supervisor.network.manager import DEFAULT_NETWORK, NetworkManager, Sandbox
from supervisor.network.proxy import serve_tcp, serve_udp
from supervisor.runtime.spec import BindMount

log = structlog.get_logger()

PortBindings = tuple[port_specs.PortBinding, ...]


def dns_names(c: Container) -> list[str]:
    """The names the embedded DNS answers for ``c``: its name and short id."""
    return [c.name, c.id[:12]]


def network_mode(c: Container) -> str:
    return str(c.host_config.get("NetworkMode") or "default")


def _running(c: Container) -> bool:
    return c.state.status in (Status.RUNNING, Status.PAUSED)


class NetworkWiring:
    """Applies :class:`NetworkManager` to containers (see the module docstring).

    Args:
        networks: the daemon's network service.
        paths: where a container's files live (a ``container:`` peer's /etc files).
    """

    def __init__(self, networks: NetworkManager, paths: Callable[[str], Paths]) -> None:
        self.networks = networks
        self._paths = paths

    # -- create ------------------------------------------------------------------------

    def plan(
        self,
        cid: str,
        hc: dict[str, Any],
        networking_config: object,
        *,
        peer: Callable[[str], Handle],
    ) -> tuple[str, list[Endpoint]]:
        """The container's ``NetworkMode`` as stored, and the endpoints to record.

        Args:
            peer: looks up a ``container:<ref>`` peer (raises ``NoSuchContainer``).

        Raises:
            NotFound: an unknown network or ``container:`` peer.
            InvalidArgument: bad ``NetworkingConfig``.
        """
        mode = str(hc.get("NetworkMode") or "default")
        configs: dict[str, Any] = {}
        if networking_config is not None:
            if not isinstance(networking_config, dict):
                raise InvalidArgument("invalid NetworkingConfig: expected an object")
            configs = networking_config.get("EndpointsConfig") or {}
            if not isinstance(configs, dict):
                raise InvalidArgument("invalid EndpointsConfig: expected an object")
        if mode.startswith("container:"):
            other = peer(mode.split(":", 1)[1])
            if other.id == cid:
                raise InvalidArgument("cannot join own network")
            return f"container:{other.id}", []

        def lookup(ref: str) -> Network:
            return self.networks.get(DEFAULT_NETWORK if ref == "default" else ref)

        network = lookup(mode)
        if network.driver != "bridge":
            if any(lookup(k).id != network.id for k in configs):
                raise InvalidArgument(
                    "container sharing network namespace with another container or host "
                    "cannot be connected to any other network"
                )
            return ("host" if network.driver == "host" else "none"), []
        primary = next((cfg for key, cfg in configs.items() if lookup(key).id == network.id), None)
        endpoints = [self.networks.endpoint_for(cid, network, primary)]
        for key, cfg in configs.items():
            other_network = lookup(key)
            if other_network.id == network.id:
                continue
            if other_network.driver != "bridge":
                raise InvalidArgument(
                    "container cannot be disconnected from host network or connected to host network"
                )
            endpoints.append(self.networks.endpoint_for(cid, other_network, cfg))
        return mode, endpoints

    # -- a run -------------------------------------------------------------------------

    async def join(
        self, h: Handle, *, peer: Callable[[str], Handle | None]
    ) -> tuple[str, Sandbox | None]:
        """The network namespace for the spec (a path, ``host`` or ``none``) and the
        sandbox berth made for it (bridge networks only), also kept in ``h.sandbox``.

        Raises:
            Conflict: a ``container:`` peer that is not running.
        """
        c = h.record
        mode = network_mode(c)
        if mode in ("host", "none"):
            return mode, None
        if mode.startswith("container:"):
            other = peer(mode.split(":", 1)[1])
            if other is None or not _running(other.record):
                raise Conflict(
                    f"cannot join network of a non running container: {mode.split(':', 1)[1]}"
                )
            return f"/proc/{other.record.state.pid}/ns/net", None
        sandbox = await self.networks.set_up(c, dns_names(c))
        h.sandbox = sandbox
        return sandbox.netns, sandbox

    async def publish(
        self, h: Handle, sandbox: Sandbox | None, *, nursery: trio.Nursery
    ) -> PortBindings:
        """Bind every published port (``nursery.start``: all bound, or none and an
        error); the proxies live in ``nursery`` until :meth:`stop_publishing`."""
        if sandbox is None or sandbox.primary is None:
            return ()
        hc, cfg = h.record.host_config, h.record.config
        bindings = port_specs.from_port_bindings(hc.get("PortBindings"))
        if hc.get("PublishAllPorts"):
            exposed = port_specs.parse_exposed_ports(cfg.get("ExposedPorts"))
            bindings = port_specs.publish_all(exposed, bindings)
        if not bindings:
            return ()
        bound = await self._serve_ports(h, bindings, sandbox.primary.ip, nursery)
        await self.networks.publish(h.id, bound, sandbox)
        return bound

    async def readopt(self, h: Handle, *, nursery: trio.Nursery) -> None:
        """A container that outlived berthd keeps its namespace and addresses; its
        port proxies come back on the ports it had."""
        mode = network_mode(h.record)
        if mode in ("host", "none") or mode.startswith("container:"):
            return
        h.sandbox = self.networks.adopt(h.id, dns_names(h.record))
        bound = list(h.record.state.ports)
        if bound and h.sandbox.primary is not None:
            try:
                await self._serve_ports(h, bound, h.sandbox.primary.ip, nursery)
                await self.networks.publish(h.id, bound, h.sandbox)
            except BerthError as exc:
                log.warning("container.ports_lost", container_id=h.id, error=str(exc))

    @staticmethod
    async def _serve_ports(
        h: Handle,
        bindings: list[port_specs.PortBinding],
        target_ip: str,
        nursery: trio.Nursery,
    ) -> PortBindings:
        scope, bound = await nursery.start(_proxies, bindings, target_ip)
        h.ports_scope = scope
        return tuple(bound)

    @staticmethod
    def stop_publishing(h: Handle) -> None:
        """Cancel the run's port proxies (the ports are free once this returns)."""
        if h.ports_scope is not None:
            h.ports_scope.cancel()
            h.ports_scope = None

    async def release(self, h: Handle) -> None:
        """Drop the run's sandbox, if it has one (its namespace, veths and addresses)."""
        if h.sandbox is not None:
            h.sandbox = None
            await self.networks.tear_down(h.id)

    def etc_files(
        self, c: Container, paths: Paths, hostname: str, netns: str, sandbox: Sandbox | None
    ) -> tuple[BindMount, ...]:
        """Generate /etc/hostname, /etc/hosts and /etc/resolv.conf and bind them in
        (a ``container:`` peer's own files when sharing its namespace)."""
        hc = c.host_config
        mode = str(hc.get("NetworkMode") or "")
        if mode.startswith("container:"):
            peer = self._paths(mode.split(":", 1)[1]).data
            return tuple(
                BindMount(str(peer / name), f"/etc/{name}")
                for name in ("hostname", "hosts", "resolv.conf")
            )
        extra = [etc.parse_extra_host(e) for e in hc.get("ExtraHosts") or []]
        primary = sandbox.primary if sandbox is not None else None
        gateway = primary.network.gateway if primary is not None else ""
        extra = [(name, gateway if ip == etc.HOST_GATEWAY else ip) for name, ip in extra]
        extra = [(name, ip) for name, ip in extra if ip]
        if netns == "host":
            hosts = read_host_file(HOSTS) or etc.LOCALHOST_LINES
            hosts += "".join(f"{ip}\t{name}\n" for name, ip in extra)
        else:
            hosts = etc.hosts_file(
                hostname=hostname,
                domainname=str(c.config.get("Domainname") or ""),
                addresses=[a.ip for a in sandbox.attachments] if sandbox is not None else [],
                extra_hosts=extra,
            )
        embedded = (
            self.networks.dns_address(primary.network)
            if primary is not None and primary.network.user_defined
            else None
        )
        files = {
            "hostname": hostname + "\n",
            "hosts": hosts,
            "resolv.conf": etc.resolv_conf(
                read_host_file(RESOLV_CONF),
                dns=list(hc.get("Dns") or []),
                dns_search=list(hc.get("DnsSearch") or []),
                dns_options=list(hc.get("DnsOptions") or []),
                embedded_dns=embedded,
            ),
        }
        binds = []
        for name, text in files.items():
            path = paths.data / name
            path.write_text(text)
            binds.append(BindMount(str(path), f"/etc/{name}"))
        return tuple(binds)

    # -- existing containers -------------------------------------------------------------

    async def connect(self, h: Handle, network_ref: str, config: dict[str, Any] | None) -> None:
        """``network connect``: a running container is plugged in at once. The caller
        holds ``h.lock``."""
        running = h.sandbox if _running(h.record) else None
        sandbox = await self.networks.connect(h.record, network_ref, config, sandbox=running)
        if running is not None:
            h.sandbox = sandbox

    async def disconnect(self, h: Handle, network_ref: str) -> None:
        """``network disconnect``. The caller holds ``h.lock``."""
        running = h.sandbox if _running(h.record) else None
        sandbox = await self.networks.disconnect(h.record, network_ref, sandbox=running)
        if running is not None:
            h.sandbox = sandbox

    def settings(self, h: Handle) -> dict[str, Any]:
        """``NetworkSettings`` of inspect (``Ports`` as published by the current run)."""
        c = h.record
        mode = network_mode(c)
        networks: dict[str, Any] = {}
        if mode in ("host", "none"):
            n = self.networks.get(mode)
            networks[n.name] = views.endpoint_settings(n, None)
        running = _running(c)
        for e in self.networks.endpoints_of(c.id):
            try:
                n = self.networks.get(e.network_id)
            except NotFound:
                continue
            # A stopped container shows no address, even while its clean-up runs.
            networks[n.name] = views.endpoint_settings(
                n, e if running else attrs.evolve(e, ip=None)
            )
        first = next(iter(networks.values()), None) if mode not in ("host", "none") else None
        exposed = set(port_specs.parse_exposed_ports(c.config.get("ExposedPorts")))
        exposed.update(
            (b.container_port, b.proto)
            for b in port_specs.from_port_bindings(c.host_config.get("PortBindings"))
        )
        published = c.state.ports if running else ()
        return {
            "Bridge": "",
            "SandboxID": c.id if running and h.sandbox is not None else "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": port_specs.network_settings_ports(sorted(exposed), published)
            if running
            else {},
            "SandboxKey": h.sandbox.netns if running and h.sandbox is not None else "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": first["EndpointID"] if first else "",
            "Gateway": first["Gateway"] if first else "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": first["IPAddress"] if first else "",
            "IPPrefixLen": first["IPPrefixLen"] if first else 0,
            "IPv6Gateway": "",
            "MacAddress": first["MacAddress"] if first else "",
            "Networks": networks,
        }


def summary_ports(c: Container) -> list[dict[str, object]]:
    """``Ports`` of ``GET /containers/json``."""
    exposed = set(port_specs.parse_exposed_ports(c.config.get("ExposedPorts")))
    return port_specs.container_ports(sorted(exposed), c.state.ports if _running(c) else ())


@contextlib.contextmanager
def _unwrapped_berth_error() -> Iterator[None]:
    """Raise a nursery's BerthError (a taken port...) as itself, not in a group, so
    callers' ``except BerthError`` clean-up runs."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = berth_error_in(group)
        if found is None:
            raise
        raise found from None


async def _proxies(
    bindings: list[port_specs.PortBinding],
    target_ip: str,
    *,
    task_status: trio.TaskStatus[tuple[trio.CancelScope, PortBindings]],
) -> None:
    """Serve every binding; report ``(scope, bindings as bound)`` once all are bound.
    A port that cannot be bound cancels the ones already bound and raises."""
    with trio.CancelScope() as scope, _unwrapped_berth_error():
        async with trio.open_nursery() as nursery:
            bound = []
            for b in bindings:
                if b.proto is port_specs.Proto.SCTP:
                    raise InvalidArgument("berth publishes tcp and udp ports only")
                serve = serve_tcp if b.proto is port_specs.Proto.TCP else serve_udp
                port = await nursery.start(
                    functools.partial(
                        serve,
                        b.host_ip,
                        b.host_port,
                        target_ip,
                        b.container_port,
                        host_port_end=b.host_port_end,
                    )
                )
                bound.append(attrs.evolve(b, host_port=port, host_port_end=0))
            task_status.started((scope, tuple(bound)))
