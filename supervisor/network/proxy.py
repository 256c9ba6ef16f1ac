"""Userland port proxies for published ports, as trio tasks inside berthd.

One task per published port, no process per port (Docker starts one ``docker-proxy``
process per port and address family). Start each with ``nursery.start`` so the API
answers only once the port is bound::

    port = await container_nursery.start(
        proxy.serve_tcp, binding.host_ip, binding.host_port, container_ip, binding.container_port
    )

TCP: each accepted connection gets a connection to the target and two pumps, one per
direction. A pump moves bytes with ``os.splice`` through a pipe (socket → pipe → socket;
the data never enters user space), falling back to ``recv_into``/``send`` when the kernel
refuses to splice. When one side reaches end-of-file the pump shuts down the writing
half of the other side (``SHUT_WR``), so a client that half-closes still receives the
rest of the reply; the connection is closed when both directions are done, or at once
when either side fails (reset, broken pipe). Beyond ``max_connections`` concurrent
connections, new ones are accepted and closed at once, so the backlog does not hold them.

UDP: a flow table keyed by client address. A datagram from a new client opens a
connected socket towards the target and a task relaying the target's answers back to
that client; a flow idle for ``idle_timeout`` seconds in both directions is closed
(docker-proxy's ``UDPConnTrackTimeout``, 90 s).

Resource handling: everything a proxy opens lives in its own nursery; cancelling the
task (container stop) closes the listener, every connection and every flow.

Errors: a port already bound raises ``Conflict`` (409) with Docker's message, ``Bind for
0.0.0.0:8080 failed: port is already allocated``, before ``task_status.started``; other
bind failures raise ``BerthError`` (500). Failures of single connections are logged,
never raised.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import Final, Literal

import structlog
import trio

from supervisor.errors import BerthError, Conflict

log = structlog.get_logger()

#: Errors that mean "out of file descriptors or memory" on accept; trio's serve_listeners
#: sleeps and retries on the same set.
ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_CAPACITY_SLEEP_S = 0.1

DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_UDP_IDLE_TIMEOUT_S = 90.0  # docker-proxy's UDPConnTrackTimeout
DEFAULT_MAX_UDP_FLOWS = 1024

#: Pipe capacity for splice. The pipe holds references to socket pages, not copies; it
#: is extra buffering per direction only while the receiver is slower than the sender,
#: so its size bounds memory per connection. Measured here on loopback (100 MiB): 64 KiB
#: pipes reach ~0.5x a direct connection, 256 KiB and 1 MiB both ~0.9-1.0x.
PIPE_SIZE = 256 * 1024
COPY_BUFFER = 256 * 1024  # the recv/send fallback's buffer
UDP_MAX_DATAGRAM = 65535

SPLICE_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# splice() refusing this pair of file descriptors: fall back to copying.
_SPLICE_UNSUPPORTED: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


def _family(ip: str) -> stdsocket.AddressFamily:
    return stdsocket.AF_INET6 if ":" in ip else stdsocket.AF_INET


def _show(ip: str, port: int | str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def _bind(
    kind: stdsocket.SocketKind, host_ip: str, host_port: int, host_port_end: int
) -> trio.socket.SocketType:
    """A socket bound to ``host_ip`` and the first free port of ``[host_port,
    host_port_end]`` (just ``host_port`` when the end is 0; 0 = ephemeral)."""
    ip = host_ip or "0.0.0.0"  # "" publishes on every IPv4 address
    family = _family(ip)
    last = host_port_end or host_port
    for port in range(host_port, last + 1):
        sock = trio.socket.socket(family, kind)
        try:
            if kind == stdsocket.SOCK_STREAM:
                # Go's net.Listen sets SO_REUSEADDR too: a restarted container can bind
                # again while old connections sit in TIME_WAIT. It does not let two
                # listeners share the port.
                sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
            if family == stdsocket.AF_INET6:
                # "::" must not also take the IPv4 port: 0.0.0.0 is a binding of its own.
                sock.setsockopt(stdsocket.IPPROTO_IPV6, stdsocket.IPV6_V6ONLY, 1)
            await sock.bind((ip, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                if port < last:
                    continue
                shown = f"{host_port}-{last}" if last != host_port else str(port)
                raise Conflict(
                    f"Bind for {_show(ip, shown)} failed: port is already allocated"
                ) from exc
            proto = "tcp" if kind == stdsocket.SOCK_STREAM else "udp"
            raise BerthError(
                f"listen {proto} {_show(ip, port)}: bind: {os.strerror(exc.errno or 0).lower()}"
            ) from exc
        return sock
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


# -- TCP -------------------------------------------------------------------------------


async def serve_tcp(
    host_ip: str,
    host_port: int,
    target_ip: str,
    target_port: int,
    *,
    host_port_end: int = 0,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    use_splice: bool = True,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Forward TCP connections on ``host_ip:host_port`` to ``target_ip:target_port``.

    Args:
        host_ip: "" for every IPv4 address, else one local address (IPv4 or IPv6).
        host_port: 0 for an ephemeral port; with ``host_port_end``, the first free
            port of the range (``-p 8000-8010:80``).
        max_connections: connections beyond this are accepted and closed at once.
        use_splice: False forces the recv/send copy (for tests and comparison).
        task_status: receives the bound port.

    Raises:
        Conflict: the port is in use (before ``started``).
        BerthError: any other bind failure (before ``started``).

    Cancellation: closes the listener and every connection.
    """
    listener = await _bind(stdsocket.SOCK_STREAM, host_ip, host_port, host_port_end)
    with listener:
        listener.listen(stdsocket.SOMAXCONN)
        port = int(listener.getsockname()[1])
        log.debug("proxy.listening", proto="tcp", host_ip=host_ip, host_port=port)
        task_status.started(port)

        async def handle(client: trio.socket.SocketType, _peer_ip: str) -> None:
            await _proxy_connection(client, target_ip, target_port, use_splice=use_splice)

        await serve_accepted(
            listener, handle, max_connections=max_connections, subsystem="proxy", host_port=port
        )


#: The warnings of :func:`serve_accepted`, per subsystem: (accept failed, refused).
_ACCEPT_EVENTS: Final = {
    "proxy": ("proxy.accept_failed", "proxy.connection_refused"),
    "dns": ("dns.accept_failed", "dns.connection_refused"),
}


async def serve_accepted(
    listener: trio.socket.SocketType,
    handle: Callable[[trio.socket.SocketType, str], Awaitable[None]],
    *,
    max_connections: int,
    subsystem: Literal["proxy", "dns"],
    **context: object,
) -> None:
    """Accept connections on a listening TCP socket forever, each handled by
    ``handle(sock, peer_ip)`` in a task of its own.

    Beyond ``max_connections`` concurrent connections a new one is accepted and closed
    at once (so the backlog does not hold it); running out of descriptors or memory
    (``ACCEPT_CAPACITY_ERRNOS``) pauses accepting briefly, as trio's serve_listeners
    does. Both are logged as ``<subsystem>.connection_refused`` and
    ``<subsystem>.accept_failed`` with ``context``.

    Raises:
        OSError: any other accept failure.

    Cancellation: every connection's task is cancelled; ``handle`` closes its socket.
    """
    accept_failed, refused = _ACCEPT_EVENTS[subsystem]
    active = 0

    async def run(sock: trio.socket.SocketType, peer_ip: str) -> None:
        nonlocal active
        try:
            await handle(sock, peer_ip)
        finally:
            active -= 1

    async with trio.open_nursery() as nursery:
        while True:
            try:
                sock, peer = await listener.accept()
            except OSError as exc:
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                log.warning(accept_failed, **context, error=exc.strerror)
                await trio.sleep(ACCEPT_CAPACITY_SLEEP_S)
                continue
            if active >= max_connections:
                sock.close()
                log.warning(refused, **context, limit=max_connections)
                continue
            active += 1
            nursery.start_soon(run, sock, str(peer[0]))


async def _proxy_connection(
    client: trio.socket.SocketType, target_ip: str, target_port: int, *, use_splice: bool
) -> None:
    with client:
        upstream = trio.socket.socket(_family(target_ip), stdsocket.SOCK_STREAM)
        with upstream:
            try:
                await upstream.connect((target_ip, target_port))
            except OSError as exc:
                # docker-proxy closes the client too; it sees a connection with no data.
                log.debug(
                    "proxy.upstream_failed", target=_show(target_ip, target_port), error=str(exc)
                )
                return
            for sock in (client, upstream):
                sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                nursery.start_soon(_pump, client, upstream, scope, use_splice)
                nursery.start_soon(_pump, upstream, client, scope, use_splice)


async def _pump(
    src: trio.socket.SocketType,
    dst: trio.socket.SocketType,
    connection: trio.CancelScope,
    use_splice: bool,
) -> None:
    """Copy ``src`` to ``dst`` until EOF, then half-close ``dst``. Any socket error ends
    the whole connection (both pumps)."""
    try:
        if not (use_splice and await _splice_copy(src, dst)):
            await _buffered_copy(src, dst)
        with contextlib.suppress(OSError):
            dst.shutdown(stdsocket.SHUT_WR)
    except (OSError, trio.ClosedResourceError) as exc:
        log.debug("proxy.connection_failed", error=str(exc))
        connection.cancel()


async def _splice_copy(src: trio.socket.SocketType, dst: trio.socket.SocketType) -> bool:
    """Move bytes with splice(2) through a pipe until EOF.

    Returns:
        True when the stream was copied, False when the kernel refused to splice before
        any byte moved (the caller copies instead).
    """
    r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # EPERM beyond pipe-max-size
        src_fd, dst_fd = src.fileno(), dst.fileno()
        moved = False
        while True:
            await trio.lowlevel.checkpoint()  # fairness: a busy stream never waits
            try:
                n = os.splice(src_fd, w, PIPE_SIZE, flags=SPLICE_FLAGS)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(src)
                continue
            except OSError as exc:
                if not moved and exc.errno in _SPLICE_UNSUPPORTED:
                    return False
                raise
            if n == 0:
                return True
            moved = True
            while n:
                try:
                    n -= os.splice(r, dst_fd, n, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(dst)
    finally:
        os.close(r)
        os.close(w)


async def _buffered_copy(src: trio.socket.SocketType, dst: trio.socket.SocketType) -> None:
    buf = bytearray(COPY_BUFFER)
    view = memoryview(buf)
    while n := await src.recv_into(buf):
        sent = 0
        while sent < n:
            sent += await dst.send(view[sent:n])


# -- UDP -------------------------------------------------------------------------------


class _Flow:
    __slots__ = ("closed", "scope", "sock")

    def __init__(self, sock: trio.socket.SocketType, idle_timeout: float) -> None:
        self.sock = sock
        self.scope = trio.CancelScope(deadline=trio.current_time() + idle_timeout)
        self.closed = False


async def serve_udp(
    host_ip: str,
    host_port: int,
    target_ip: str,
    target_port: int,
    *,
    host_port_end: int = 0,
    idle_timeout: float = DEFAULT_UDP_IDLE_TIMEOUT_S,
    max_flows: int = DEFAULT_MAX_UDP_FLOWS,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Relay UDP datagrams on ``host_ip:host_port`` to ``target_ip:target_port`` and
    the answers back, one flow (one connected socket) per client address.

    Args:
        idle_timeout: seconds without a datagram either way after which a flow closes.
        max_flows: datagrams from new clients beyond this many flows are dropped.
        task_status: receives the bound port.

    Raises:
        Conflict: the port is in use (before ``started``).
        BerthError: any other bind failure (before ``started``).

    Cancellation: closes the listening socket and every flow.
    """
    listener = await _bind(stdsocket.SOCK_DGRAM, host_ip, host_port, host_port_end)
    with listener:
        port = int(listener.getsockname()[1])
        log.debug("proxy.listening", proto="udp", host_ip=host_ip, host_port=port)
        task_status.started(port)
        flows: dict[tuple[object, ...], _Flow] = {}
        send_lock = trio.Lock()  # one writer at a time on the listening socket

        def touch(flow: _Flow) -> None:
            flow.scope.deadline = trio.current_time() + idle_timeout

        async def relay_answers(flow: _Flow, client: tuple[object, ...]) -> None:
            try:
                with flow.sock, flow.scope:
                    while True:
                        try:
                            data = await flow.sock.recv(UDP_MAX_DATAGRAM)
                        except ConnectionRefusedError:
                            continue  # ICMP port unreachable for an earlier datagram
                        touch(flow)
                        async with send_lock:
                            with contextlib.suppress(OSError):
                                await listener.sendto(data, client)
            finally:
                flow.closed = True
                if flows.get(client) is flow:
                    del flows[client]

        async with trio.open_nursery() as nursery:
            while True:
                data, client = await listener.recvfrom(UDP_MAX_DATAGRAM)
                flow = flows.get(client)
                if flow is None or flow.closed:
                    if len(flows) >= max_flows:
                        log.warning("proxy.flow_refused", host_port=port, limit=max_flows)
                        continue
                    sock = trio.socket.socket(_family(target_ip), stdsocket.SOCK_DGRAM)
                    try:
                        await sock.connect((target_ip, target_port))
                    except OSError as exc:
                        sock.close()
                        log.debug(
                            "proxy.upstream_failed",
                            target=_show(target_ip, target_port),
                            error=str(exc),
                        )
                        continue
                    flow = flows[client] = _Flow(sock, idle_timeout)
                    nursery.start_soon(relay_answers, flow, client)
                touch(flow)
                with contextlib.suppress(OSError, trio.ClosedResourceError):
                    await flow.sock.send(data)


#: Protocols the proxies serve; Docker's proxy also serves SCTP, berth refuses it.
SERVED_PROTOS: Final = frozenset({"tcp", "udp"})
