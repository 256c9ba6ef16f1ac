"""Host plumbing for bridge networks: bridges, network namespaces, veth pairs, NAT.

Every function here is SYNCHRONOUS and blocking. Call it from a trio worker thread,
one call at a time (``supervisor.network.worker.NetlinkWorker.run`` does both)::

    worker = NetlinkWorker()  # one per daemon
    await worker.run(netlink.ensure_bridge, "berth0", "10.213.0.1/20")

Why threads: pyroute2's synchronous ``IPRoute`` runs a private asyncio event loop in the
calling thread, which must never be trio's thread, and ``IPRoute`` keeps its socket per
thread, so each call here opens its own short-lived ``IPRoute`` (about 1.5 ms). Why
serialized: ``ensure_*`` functions check, then act; two of them interleaved could both
decide to act. The iptables helpers run the ``iptables`` binary with ``subprocess``:
there is no netlink API for iptables rules that works for both iptables-legacy and
iptables-nft, and the call is made from the worker thread, so the blocking wait does
not stall trio (STYLE's ``trio.run_process`` rule is for code on the trio thread).

Network namespaces are created as ``ip netns add`` does it (a bind mount of a namespace
file under ``/run/netns``, with ``/run/netns`` a shared mount), so ``ip netns exec``
works on them and the path can be given to the OCI runtime as
``linux.namespaces[{type: network, path}]``. No process is forked for it: a throw-away
thread unshares its own network namespace, bind-mounts it and exits, and sockets for a
namespace are opened by a throw-away thread that ``setns``-es first (a socket belongs to
the namespace it was created in for its whole life). pyroute2's own netns helpers fork
the calling process, which is unsafe in a multi-threaded daemon.

Cancellation: none inside; the calls are short and run to completion even when the
awaiting trio task is cancelled (``trio.to_thread.run_sync`` without
``abandon_on_cancel``), so the host is never left half-configured by a cancel.

Errors: a refusal from the kernel or from iptables raises ``BerthError`` (500) with the
operation in the message; "already exists" on create and "does not exist" on delete are
not errors (the functions are idempotent unless documented otherwise).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import TypeVar

import structlog
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from supervisor.errors import BerthError, InvalidArgument
from supervisor.network.ipam import mac_for

log = structlog.get_logger()

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
IFNAMSIZ = 15  # usable characters of a Linux interface name

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
RT_TABLE_MAIN = 254

#: berth's own filter chain, jumped to from the top of FORWARD: isolation DROPs are
#: inserted at its head and ACCEPTs appended, so the order of calls does not matter and
#: a host firewall's REJECT at the end of FORWARD does not shadow berth's ACCEPTs.
FORWARD_CHAIN = "BERTH-FORWARD"

_libc = ctypes.CDLL(None, use_errno=True)


# -- names -----------------------------------------------------------------------------


def check_ifname(name: str) -> str:
    """Refuse a name the kernel would refuse (``dev_valid_name``).

    Raises:
        InvalidArgument: empty, longer than 15 characters, or holding ``/``, ``:`` or
            whitespace.
    """
    if (
        not name
        or len(name) > IFNAMSIZ
        or name in (".", "..")
        or any(c in name for c in "/:")
        or any(c.isspace() for c in name)
    ):
        raise InvalidArgument(f"invalid interface name: {name!r}")
    return name


# -- threads in other namespaces -------------------------------------------------------


def _in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread and return its result: namespace changes made by a
    thread die with it, so the calling (pooled) thread stays in the host namespace."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - the calling thread re-raises it
            failure.append(exc)

    thread = threading.Thread(target=target, name="berth-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def netns_path(name: str) -> Path:
    """``/run/netns/<name>`` for a bare name (``ip netns`` compatible), or ``name``
    itself when it is an absolute path (berthd keeps its namespaces under its exec-root,
    so two daemons never touch each other's)."""
    if name.startswith("/"):
        path = Path(name)
        if ".." in path.parts or path.name in ("", ".") or str(path) != name:
            raise InvalidArgument(f"invalid network namespace path: {name!r}")
        return path
    if not name or "/" in name or name in (".", ".."):
        raise InvalidArgument(f"invalid network namespace name: {name!r}")
    return NETNS_DIR / name


def netns_socket(netns_name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside the named network namespace (usable from any thread).

    Useful beyond this module: the embedded DNS responder listens on 127.0.0.11 inside
    each container's namespace through such a socket.
    """
    path = netns_path(netns_name)

    def make() -> socket.socket:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
        finally:
            os.close(fd)
        return socket.socket(family, kind, proto)

    return _in_fresh_thread(make)


# -- network namespaces ----------------------------------------------------------------


def create_netns(name: str) -> Path:
    """Create the named network namespace ``/run/netns/<name>`` (``ip netns add``).

    Idempotent: an existing namespace of that name is kept; a stale placeholder file
    (a crash between creating and mounting it) is replaced.

    Returns:
        The path to give the OCI runtime.
    """
    path = netns_path(name)
    if _is_netns(path):
        return path
    _ensure_shared_netns_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a placeholder without its mount
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    os.close(fd)

    def bind() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        source = b"/proc/thread-self/ns/net"  # this thread's new namespace
        _check(_libc.mount(source, bytes(path), b"none", MS_BIND, None), f"mount {path}")

    try:
        _in_fresh_thread(bind)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise BerthError(f"create network namespace {name}: {exc}") from exc
    log.debug("network.netns_created", netns=name)
    return path


def delete_netns(name: str) -> None:
    """Unmount and remove ``/run/netns/<name>``; a missing one is fine. The namespace
    itself (and the container end of its veths) goes when its last user exits."""
    path = netns_path(name)
    if _libc.umount2(bytes(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise BerthError(f"delete network namespace {name}: {os.strerror(err)}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def list_netns(prefix: str = "", directory: Path = NETNS_DIR) -> list[str]:
    """Names under ``directory`` starting with ``prefix`` (crash clean-up)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def _is_netns(path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    # Namespace files live on nsfs, whose device all of them share.
    return st.st_dev == os.stat("/proc/self/ns/net").st_dev


def _ensure_shared_netns_dir(directory: Path = NETNS_DIR) -> None:
    """Make ``directory`` a shared mount point, as iproute2 does for ``/run/netns``, so
    a namespace mounted later is visible in mount namespaces copied earlier."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = bytes(directory)
    if _libc.mount(b"", target, b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
        _check(-1, f"mount --make-rshared {directory}")
    _check(_libc.mount(target, target, b"none", MS_BIND | MS_REC, None), f"bind {directory}")
    _check(_libc.mount(b"", target, b"none", MS_SHARED | MS_REC, None), f"share {directory}")


# -- links -----------------------------------------------------------------------------


@contextlib.contextmanager
def _iproute(netns_name: str | None = None) -> Iterator[IPRoute]:
    if netns_name is None:
        ipr = IPRoute(groups=0)
    else:
        sock = netns_socket(netns_name, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
        ipr = IPRoute(fileno=sock.detach(), groups=0)  # pyroute2 now owns the fd
    try:
        yield ipr
    finally:
        ipr.close()


def _lookup(ipr: IPRoute, name: str) -> int | None:
    """The index of interface ``name``: one RTM_GETLINK by name, not a dump of every
    link (``link_lookup``), which grows with the number of containers."""
    try:
        reply = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return int(reply[0]["index"]) if reply else None


def _kind(ipr: IPRoute, index: int) -> str | None:
    link = ipr.link("get", index=index)[0]
    info = link.get_attr("IFLA_LINKINFO")
    return None if info is None else info.get_attr("IFLA_INFO_KIND")


def _fail(what: str, exc: NetlinkError) -> BerthError:
    return BerthError(f"{what}: {os.strerror(exc.code) if exc.code > 0 else exc}")


def ensure_bridge(name: str, gateway_cidr: str, *, mtu: int | None = None) -> int:
    """Make ``name`` a bridge that is up and holds exactly the IPv4 address
    ``gateway_cidr`` (``"10.213.0.1/20"``). Idempotent.

    The bridge's MAC is fixed to ``ipam.mac_for(gateway)`` when it is created: a bridge
    without one takes the lowest MAC among its ports, so the gateway's MAC would change
    as containers come and go and their ARP caches would go stale.

    Returns:
        The bridge's interface index.

    Raises:
        BerthError: ``name`` exists and is not a bridge, or the kernel refuses.
    """
    check_ifname(name)
    want = IPv4Interface(gateway_cidr)
    with _iproute() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            spec: dict[str, object] = {"ifname": name, "kind": "bridge"}
            spec["address"] = mac_for(want.ip)
            if mtu is not None:
                spec["mtu"] = mtu
            try:
                ipr.link("add", **spec)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise _fail(f"create bridge {name}", exc) from exc
            index = _lookup(ipr, name)
            if index is None:  # deleted between our add and lookup
                raise BerthError(f"create bridge {name}: it disappeared")
            log.info("network.bridge_created", bridge=name, gateway=str(want))
        elif _kind(ipr, index) != "bridge":
            raise BerthError(f"{name} exists and is not a bridge")
        present = {
            IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(family=socket.AF_INET, index=index)
        }
        try:
            for stale in present - {want}:
                ipr.addr(
                    "del", index=index, address=str(stale.ip), prefixlen=stale.network.prefixlen
                )
            if want not in present:
                ipr.addr("add", index=index, address=str(want.ip), prefixlen=want.network.prefixlen)
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise _fail(f"configure bridge {name}", exc) from exc
        return index


def delete_bridge(name: str) -> None:
    """Delete the bridge (its ports are detached, not deleted); a missing one is fine."""
    _delete_link(name, "delete bridge")


def attach_container(
    netns_name: str,
    *,
    bridge: str,
    host_ifname: str,
    address_cidr: str,
    gateway: IPv4Address | str | None,
    mac: str,
    ifname: str = "eth0",
    mtu: int | None = None,
) -> None:
    """Connect a network namespace to a bridge.

    Creates a veth pair whose host end ``host_ifname`` joins ``bridge`` (up) and whose
    other end is created directly inside the namespace as ``ifname`` with ``mac``, then
    inside the namespace: ``address_cidr`` on it, it and ``lo`` up, and a default route
    via ``gateway`` (none when ``gateway`` is None: a second network's interface).

    Not idempotent: the host end must not exist. On any failure the veth pair is
    deleted again before the error propagates, so nothing is left half-configured.

    Raises:
        BerthError: the bridge does not exist, a name is taken, or the kernel refuses.
    """
    check_ifname(host_ifname)
    check_ifname(ifname)
    want = IPv4Interface(address_cidr)
    path = netns_path(netns_name)
    nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _iproute() as ipr:
            bridge_index = _lookup(ipr, bridge)
            if bridge_index is None:
                raise BerthError(f"attach to {bridge}: no such bridge")
            peer: dict[str, object] = {"ifname": ifname, "net_ns_fd": nsfd, "address": mac}
            link: dict[str, object] = {}
            if mtu is not None:
                peer["mtu"] = link["mtu"] = mtu
            try:
                # One request: the host end is created on the bridge and up.
                ipr.link(
                    "add",
                    ifname=host_ifname,
                    kind="veth",
                    peer=peer,
                    master=bridge_index,
                    state="up",
                    **link,
                )
            except NetlinkError as exc:
                raise _fail(f"create veth {host_ifname}", exc) from exc
            try:
                _configure_inside(netns_name, ifname, want, gateway)
            except NetlinkError as exc:
                _delete_quietly(ipr, host_ifname)
                raise _fail(f"attach {netns_name} to {bridge}", exc) from exc
            except BaseException:
                _delete_quietly(ipr, host_ifname)
                raise
    finally:
        os.close(nsfd)
    log.debug("network.container_attached", netns=netns_name, bridge=bridge, address=str(want))


def _configure_inside(
    netns_name: str, ifname: str, address: IPv4Interface, gateway: IPv4Address | str | None
) -> None:
    with _iproute(netns_name) as ns:
        lo = _lookup(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
        index = _lookup(ns, ifname)
        if index is None:
            raise BerthError(f"{ifname} did not appear in {netns_name}")
        ns.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        ns.link("set", index=index, state="up")
        if gateway is not None:
            ns.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=index)


def create_spare(netns_name: str, host_ifname: str, *, ifname: str = "eth0") -> None:
    """A namespace made ahead of need: ``lo`` up and a veth pair whose host end
    ``host_ifname`` is down and on no bridge, the other end ``ifname`` inside, without
    an address. :func:`plug_spare` finishes it in a few milliseconds; creating the pair
    is the slow part (the kernel's veth set-up).

    On failure the namespace and the pair are removed again.
    """
    check_ifname(host_ifname)
    path = create_netns(netns_name)
    try:
        nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with _iproute() as ipr:
                try:
                    ipr.link(
                        "add",
                        ifname=host_ifname,
                        kind="veth",
                        peer={"ifname": ifname, "net_ns_fd": nsfd},
                    )
                except NetlinkError as exc:
                    raise _fail(f"create veth {host_ifname}", exc) from exc
        finally:
            os.close(nsfd)
        loopback_up(netns_name)
    except BaseException:
        with contextlib.suppress(BerthError):
            _delete_link(host_ifname, "delete veth")
        delete_netns(netns_name)
        raise


def plug_spare(
    netns_name: str,
    *,
    bridge: str,
    host_ifname: str,
    address_cidr: str,
    gateway: IPv4Address | str | None,
    mac: str,
    ifname: str = "eth0",
) -> None:
    """Put a spare's veth on ``bridge`` (up) and give its inside end ``mac``,
    ``address_cidr`` and a default route via ``gateway``: the same result as
    :func:`attach_container`.

    Raises:
        BerthError: the bridge or the spare's links are gone, or the kernel refuses.
    """
    check_ifname(host_ifname)
    want = IPv4Interface(address_cidr)
    with _iproute() as ipr:
        bridge_index = _lookup(ipr, bridge)
        if bridge_index is None:
            raise BerthError(f"attach to {bridge}: no such bridge")
        index = _lookup(ipr, host_ifname)
        if index is None:
            raise BerthError(f"spare veth {host_ifname} is gone")
        try:
            ipr.link("set", index=index, master=bridge_index, state="up")
        except NetlinkError as exc:
            raise _fail(f"plug {host_ifname} into {bridge}", exc) from exc
    try:
        with _iproute(netns_name) as ns:
            inside = _lookup(ns, ifname)
            if inside is None:
                raise BerthError(f"{ifname} is missing in {netns_name}")
            ns.link("set", index=inside, address=mac)
            ns.addr("add", index=inside, address=str(want.ip), prefixlen=want.network.prefixlen)
            ns.link("set", index=inside, state="up")
            if gateway is not None:
                ns.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=inside)
    except NetlinkError as exc:
        raise _fail(f"configure {ifname} in {netns_name}", exc) from exc
    log.debug("network.spare_plugged", netns=netns_name, bridge=bridge, address=str(want))


def rename_netns(old: str, new: str) -> Path:
    """Give a namespace a second name and drop the first (a bind mount of the same
    namespace, then an unmount: a shared mount cannot be moved)."""
    source, target = netns_path(old), netns_path(new)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    os.close(fd)
    if _libc.mount(bytes(source), bytes(target), b"none", MS_BIND, None) != 0:
        err = ctypes.get_errno()
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise BerthError(f"rename network namespace {old}: {os.strerror(err)}")
    delete_netns(old)
    return target


def detach_address(netns_name: str, address: str) -> None:
    """Delete, from inside the namespace, the interface holding ``address`` (its
    veth peer on the host goes with it): ``network disconnect`` of a running
    container. Nothing holds it: fine."""
    with _iproute(netns_name) as ns:
        for a in ns.get_addr(family=socket.AF_INET):
            if a.get_attr("IFA_ADDRESS") == address:
                try:
                    ns.link("del", index=a["index"])
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise _fail(f"delete the interface of {address}", exc) from exc
                return


def loopback_up(netns_name: str) -> None:
    """Bring ``lo`` up in a namespace without attaching it anywhere (``--network none``,
    which Docker gives a loopback interface and nothing else). Idempotent."""
    with _iproute(netns_name) as ns:
        lo = _lookup(ns, "lo")
        if lo is None:
            raise BerthError(f"no loopback interface in {netns_name}")
        ns.link("set", index=lo, state="up")


def detach(host_ifname: str) -> None:
    """Delete a container's veth pair by its host end (the peer goes with it); a
    missing one is fine."""
    _delete_link(host_ifname, "delete veth")


def _delete_link(name: str, what: str) -> None:
    check_ifname(name)
    with _iproute() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            return
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise _fail(f"{what} {name}", exc) from exc


def _delete_quietly(ipr: IPRoute, name: str) -> None:
    try:
        index = _lookup(ipr, name)
        if index is not None:
            ipr.link("del", index=index)
    except NetlinkError as exc:
        log.warning("network.cleanup_failed", link=name, error=str(exc))


def host_networks() -> list[IPv4Network]:
    """The IPv4 networks the host already reaches: its addresses' subnets and its
    routes except the default one. ``ipam.pick_subnet`` avoids them."""
    found: set[IPv4Network] = set()
    with _iproute() as ipr:
        for a in ipr.get_addr(family=socket.AF_INET):
            found.add(IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}").network)
        for r in ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                found.add(IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
    return sorted(found)


# -- iptables --------------------------------------------------------------------------


def enable_ip_forward() -> None:
    """Set ``net.ipv4.ip_forward = 1`` (left on at shutdown, as Docker leaves it)."""
    knob = Path("/proc/sys/net/ipv4/ip_forward")
    if knob.read_text().strip() != "1":
        knob.write_text("1\n")
        log.info("network.ip_forward_enabled")


def ensure_masquerade(subnet: IPv4Network | str, bridge: str) -> None:
    """Outbound NAT for a bridge network. Idempotent. Installs::

        -t nat POSTROUTING -s <subnet> ! -o <bridge> -j MASQUERADE
        BERTH-FORWARD -i <bridge> -j ACCEPT
        BERTH-FORWARD -o <bridge> -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT

    and enables IP forwarding. Not for ``--internal`` networks.
    """
    check_ifname(bridge)
    enable_ip_forward()
    _ensure_forward_chain()
    _ensure_rule("nat", "POSTROUTING", _masquerade_rule(subnet, bridge))
    for rule in _accept_rules(bridge):
        _ensure_rule("filter", FORWARD_CHAIN, rule)


def remove_masquerade(subnet: IPv4Network | str, bridge: str) -> None:
    """Remove what :func:`ensure_masquerade` installed; missing rules are fine."""
    check_ifname(bridge)
    _delete_rule("nat", "POSTROUTING", _masquerade_rule(subnet, bridge))
    if _chain_exists("filter", FORWARD_CHAIN):
        for rule in _accept_rules(bridge):
            _delete_rule("filter", FORWARD_CHAIN, rule)


def set_bridge_isolation(bridge: str, internal: bool) -> None:
    """``--internal``: drop every forwarded packet entering or leaving the bridge other
    than between its own ports (``internal=True``), or lift that (``False``).
    Idempotent. The host itself still reaches the containers (that is not forwarding).
    """
    check_ifname(bridge)
    rules = _isolation_rules(bridge)
    if internal:
        _ensure_forward_chain()
        for rule in rules:
            _ensure_rule("filter", FORWARD_CHAIN, rule, insert=True)
    elif _chain_exists("filter", FORWARD_CHAIN):
        for rule in rules:
            _delete_rule("filter", FORWARD_CHAIN, rule)


def _masquerade_rule(subnet: IPv4Network | str, bridge: str) -> list[str]:
    return ["-s", str(IPv4Network(subnet)), "!", "-o", bridge, "-j", "MASQUERADE"]


def _accept_rules(bridge: str) -> list[list[str]]:
    return [
        ["-i", bridge, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    ]


def _isolation_rules(bridge: str) -> list[list[str]]:
    # Inserted at the head of BERTH-FORWARD in this order, so they end up reversed;
    # the ACCEPT for traffic between the bridge's own ports must stay in front.
    return [
        ["-i", bridge, "!", "-o", bridge, "-j", "DROP"],
        ["!", "-i", bridge, "-o", bridge, "-j", "DROP"],
        ["-i", bridge, "-o", bridge, "-j", "ACCEPT"],
    ]


def _iptables_binary() -> str:
    found = shutil.which("iptables") or next(
        (p for p in ("/usr/sbin/iptables", "/sbin/iptables") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise BerthError("iptables not found: install the iptables package")
    return found


def _run_iptables(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LC_ALL="C")
    return subprocess.run(
        [_iptables_binary(), "-w", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _iptables(*args: str) -> str:
    proc = _run_iptables(*args)
    if proc.returncode != 0:
        raise BerthError(f"iptables {shlex.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _rule_exists(table: str, chain: str, rule: Sequence[str]) -> bool:
    proc = _run_iptables("-t", table, "-C", chain, *rule)
    if proc.returncode == 0:
        return True
    if proc.returncode == 1:
        return False
    raise BerthError(f"iptables -t {table} -C {chain} {shlex.join(rule)}: {proc.stderr.strip()}")


def _ensure_rule(table: str, chain: str, rule: Sequence[str], *, insert: bool = False) -> None:
    if not _rule_exists(table, chain, rule):
        if insert:
            _iptables("-t", table, "-I", chain, "1", *rule)
        else:
            _iptables("-t", table, "-A", chain, *rule)


def _delete_rule(table: str, chain: str, rule: Sequence[str]) -> None:
    while _rule_exists(table, chain, rule):  # duplicates from a racing process too
        _iptables("-t", table, "-D", chain, *rule)


def _chain_exists(table: str, chain: str) -> bool:
    return _run_iptables("-t", table, "-S", chain).returncode == 0


def _ensure_forward_chain() -> None:
    if not _chain_exists("filter", FORWARD_CHAIN):
        proc = _run_iptables("-t", "filter", "-N", FORWARD_CHAIN)
        if proc.returncode != 0 and "exists" not in proc.stderr:
            raise BerthError(f"iptables -N {FORWARD_CHAIN}: {proc.stderr.strip()}")
    _ensure_rule("filter", "FORWARD", ["-j", FORWARD_CHAIN], insert=True)
