"""The embedded DNS server of a user-defined network, as one trio task inside berthd.

It listens on the network's gateway address (UDP and TCP, port 53) in the host's
network namespace; the containers' resolv.conf names that address. Start it with
``nursery.start`` so the network is announced only once both sockets are bound::

    port = await network_nursery.start(
        resolver.serve_dns, "10.89.1.1", 53, lookup, dns.upstreams_from_resolv_conf(text)
    )

Each message goes through :func:`dns.parse_query` and :func:`dns.respond`, the pure
decisions. A message berth answers itself (a container name, FORMERR, NOTIMP) is
answered at once by the receiving task, so names on the network resolve even while
every upstream is slow. A question berth does not know is forwarded in a task of its
own: the raw query goes to each upstream in order over UDP (``upstream_timeout`` each)
and the first answer that matches the query's id and question is relayed unchanged. An
upstream answering SERVFAIL, NOTIMP or REFUSED makes berth ask the next one (glibc
does the same with several nameservers) and that answer is relayed only if nobody does
better. A truncated answer is relayed as is to a UDP client, which then asks again over
TCP; for a TCP client berth asks the same upstream again over TCP. When nobody answers,
the client gets SERVFAIL (NXDOMAIN for a single-label name when there is no upstream).

Resource handling: the sockets, every TCP connection and every forwarded query live in
the task's nursery; cancelling the task closes them all. At most ``max_forwards``
forwarded queries are in flight (beyond that the client gets SERVFAIL at once) and at
most ``max_tcp_connections`` TCP clients are served (more are accepted and closed). A
TCP connection carries any number of queries, answered as they complete (RFC 7766
§6.2.1.1), and closes after ``tcp_idle_timeout`` seconds without a complete query, or
when the client stops reading its answers for that long.

Errors: a bind failure raises ``BerthError`` (500) before ``task_status.started``, with
the address and the system's reason. Everything after that is logged, never raised: a
malformed message, a failed upstream or a failing ``lookup`` (SERVFAIL) never stops
the server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket as stdsocket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, ip_address
from typing import Final

import structlog
import trio

from supervisor.errors import BerthError
from supervisor.network import dns
from supervisor.network.proxy import serve_accepted

log = structlog.get_logger()

#: ``lookup(name, client_ip)``: the addresses of ``name`` (lower-case, no trailing dot)
#: as seen by the container at ``client_ip``, or None when berth does not know it.
Lookup = Callable[[str, str], Sequence[IPv4Address] | None]

DEFAULT_UPSTREAM_TIMEOUT_S: Final = 2.0
DEFAULT_TCP_IDLE_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_FORWARDS: Final = 256
DEFAULT_MAX_TCP_CONNECTIONS: Final = 128
_RECEIVE_SIZE: Final = 65535
#: With port 0 the UDP port is the kernel's choice; the TCP port must be the same one
#: and may be taken, so the pair is tried this many times.
_EPHEMERAL_ATTEMPTS: Final = 20

Upstream = tuple[str, int]


def _family(ip: str) -> stdsocket.AddressFamily:
    return stdsocket.AF_INET6 if ":" in ip else stdsocket.AF_INET


def _show(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def serve_dns(
    host: str,
    port: int,
    lookup: Lookup,
    upstreams: Sequence[str],
    *,
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT_S,
    tcp_idle_timeout: float = DEFAULT_TCP_IDLE_TIMEOUT_S,
    max_forwards: int = DEFAULT_MAX_FORWARDS,
    max_tcp_connections: int = DEFAULT_MAX_TCP_CONNECTIONS,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve DNS on ``host:port`` over UDP and TCP until cancelled.

    Args:
        host: the address to listen on (the network's gateway), IPv4 or IPv6.
        port: 53 in production; 0 for an ephemeral port (the same for UDP and TCP).
        lookup: called on the trio thread for each class IN question; must not block.
        upstreams: servers for every other question, in order of preference, as
            ``dns.parse_upstream`` reads them (``"1.1.1.1"``, ``"[::1]:5353"``). An
            upstream equal to this server's own address and port is skipped, so a
            query can never come back here.
        upstream_timeout: seconds to wait for each upstream.
        tcp_idle_timeout: seconds a TCP client may stay silent (or not read).
        max_forwards: forwarded queries in flight at once.
        max_tcp_connections: TCP clients served at once.
        task_status: receives the bound port once UDP and TCP both listen.

    Raises:
        BerthError: ``host`` is not an IP address, an upstream is malformed, or a
            socket cannot be bound (before ``started``).

    Cancellation: closes both sockets, every connection and every upstream query.
    """
    try:
        listen_ip = ip_address(host)
        servers = [dns.parse_upstream(u) for u in upstreams]
    except ValueError as exc:
        raise BerthError(f"DNS server for {host}: {exc}") from exc
    udp, tcp = await _open_sockets(host, port)
    with udp, tcp:
        tcp.listen(stdsocket.SOMAXCONN)
        bound = int(udp.getsockname()[1])
        targets = [s for s in servers if (ip_address(s[0]), s[1]) != (listen_ip, bound)]
        if len(targets) < len(servers):
            log.warning("dns.upstream_skipped", host=host, port=bound, reason="own address")
        server = _Server(
            lookup,
            targets,
            upstream_timeout=upstream_timeout,
            tcp_idle_timeout=tcp_idle_timeout,
            max_forwards=max_forwards,
            max_tcp_connections=max_tcp_connections,
        )
        log.debug("dns.listening", host=host, port=bound, upstreams=[_show(*t) for t in targets])
        task_status.started(bound)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_udp, udp)
            nursery.start_soon(server.serve_tcp, tcp)


async def _open_sockets(
    host: str, port: int
) -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    attempts = _EPHEMERAL_ATTEMPTS if port == 0 else 1
    for attempt in range(1, attempts + 1):
        udp = await _bind(stdsocket.SOCK_DGRAM, host, port)
        bound = int(udp.getsockname()[1])
        try:
            tcp = await _bind(stdsocket.SOCK_STREAM, host, bound)
        except OSError as exc:
            udp.close()
            if exc.errno == errno.EADDRINUSE and attempt < attempts:
                continue
            raise _bind_error("tcp", host, bound, exc) from exc
        return udp, tcp
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


async def _bind(kind: stdsocket.SocketKind, host: str, port: int) -> trio.socket.SocketType:
    """A socket bound to ``host:port``; a UDP failure is raised as BerthError, a TCP one
    as the OSError (the caller may retry another port)."""
    sock = trio.socket.socket(_family(host), kind)
    try:
        if kind == stdsocket.SOCK_STREAM:
            # A restarted berthd binds again while old connections sit in TIME_WAIT.
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
        await sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if kind == stdsocket.SOCK_STREAM:
            raise
        raise _bind_error("udp", host, port, exc) from exc
    return sock


def _bind_error(proto: str, host: str, port: int, exc: OSError) -> BerthError:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return BerthError(f"DNS server: listen {proto} {_show(host, port)}: bind: {reason}")


class _Server:
    """The state one ``serve_dns`` task shares between its UDP and TCP sides."""

    def __init__(
        self,
        lookup: Lookup,
        upstreams: Sequence[Upstream],
        *,
        upstream_timeout: float,
        tcp_idle_timeout: float,
        max_forwards: int,
        max_tcp_connections: int,
    ) -> None:
        self._lookup = lookup
        self._upstreams = tuple(upstreams)
        self._upstream_timeout = upstream_timeout
        self._idle_timeout = tcp_idle_timeout
        self._max_forwards = max_forwards
        self._max_connections = max_tcp_connections
        self._forwards = 0

    # -- deciding ----------------------------------------------------------------------

    def _triage(self, data: bytes, client_ip: str, *, tcp: bool) -> bytes | dns.Query | None:
        """The reply to send now, the query to forward, or None to drop ``data``."""
        try:
            query = dns.parse_query(data)
        except dns.DnsFormatError as exc:
            log.debug("dns.malformed_query", client=client_ip, error=str(exc))
            return dns.formerr_response(exc)
        max_size = dns.MAX_MESSAGE_SIZE if tcp else query.max_udp_size
        try:
            reply = dns.respond(
                query, lambda name: self._lookup(name, client_ip), max_size=max_size
            )
        except Exception:
            log.exception("dns.lookup_failed", client=client_ip, name=query.question.name)
            return dns.build_empty_reply(query, dns.Rcode.SERVFAIL)
        return query if reply is None else reply

    def _reserve_forward(self, query: dns.Query) -> bool:
        if self._forwards >= self._max_forwards:
            log.warning("dns.forward_refused", name=query.question.name, limit=self._max_forwards)
            return False
        self._forwards += 1
        return True

    # -- forwarding --------------------------------------------------------------------

    async def _forward(self, query: dns.Query, raw: bytes, *, tcp: bool) -> bytes:
        """The answer to relay for ``query`` (its bytes ``raw``). The caller has reserved
        a forward slot; this releases it."""
        try:
            fallback: bytes | None = None
            for upstream in self._upstreams:
                result = await self._ask_udp(upstream, query, raw)
                if tcp and result is not None and result[0] is dns.Verdict.TRUNCATED:
                    fallback = result[1]
                    result = await self._ask_tcp(upstream, query, raw)
                if result is None:
                    continue
                verdict, answer = result
                if verdict is dns.Verdict.TRY_NEXT:
                    fallback = answer
                    continue
                return answer
            if fallback is not None:
                return fallback
            return dns.unreachable_response(query, had_upstreams=bool(self._upstreams))
        finally:
            self._forwards -= 1

    async def _ask_udp(
        self, upstream: Upstream, query: dns.Query, raw: bytes
    ) -> tuple[dns.Verdict, bytes] | None:
        """The upstream's answer over UDP with its verdict, or None (no answer in time,
        or the upstream is unreachable). Datagrams that do not answer the query (a
        late answer to an earlier one, a spoofing attempt) are ignored."""
        ip, port = upstream
        with trio.move_on_after(self._upstream_timeout):
            sock = trio.socket.socket(_family(ip), stdsocket.SOCK_DGRAM)
            with sock:
                try:
                    await sock.connect((ip, port))  # only this upstream's datagrams
                    await sock.send(raw)
                    while True:
                        answer = await sock.recv(_RECEIVE_SIZE)
                        verdict = dns.judge_upstream_answer(query, answer)
                        if verdict is not dns.Verdict.FOREIGN:
                            return verdict, answer
                except OSError as exc:  # ICMP unreachable, no route...
                    log.debug("dns.upstream_failed", upstream=_show(ip, port), error=str(exc))
                    return None
        log.debug("dns.upstream_timed_out", upstream=_show(ip, port), proto="udp")
        return None

    async def _ask_tcp(
        self, upstream: Upstream, query: dns.Query, raw: bytes
    ) -> tuple[dns.Verdict, bytes] | None:
        """The upstream's answer over TCP with its verdict, or None."""
        ip, port = upstream
        with trio.move_on_after(self._upstream_timeout):
            try:
                stream = await trio.open_tcp_stream(ip, port)
                async with stream:
                    await stream.send_all(dns.frame(raw))
                    answer = await _receive_message(stream, dns.FrameBuffer())
            except (OSError, trio.BrokenResourceError) as exc:
                log.debug("dns.upstream_failed", upstream=_show(ip, port), error=str(exc))
                return None
            verdict = dns.Verdict.FOREIGN
            if answer is not None:
                verdict = dns.judge_upstream_answer(query, answer)
            if answer is None or verdict is dns.Verdict.FOREIGN:
                log.debug("dns.upstream_failed", upstream=_show(ip, port), error="no answer")
                return None
            return verdict, answer
        log.debug("dns.upstream_timed_out", upstream=_show(ip, port), proto="tcp")
        return None

    # -- UDP ---------------------------------------------------------------------------

    async def serve_udp(self, sock: trio.socket.SocketType) -> None:
        send_lock = trio.Lock()  # one writer at a time on the shared socket

        async def send(reply: bytes, client: tuple[object, ...]) -> None:
            async with send_lock:
                with contextlib.suppress(OSError):
                    await sock.sendto(reply, client)

        async def forward(query: dns.Query, raw: bytes, client: tuple[object, ...]) -> None:
            await send(await self._forward(query, raw, tcp=False), client)

        async with trio.open_nursery() as nursery:
            while True:
                try:
                    data, client = await sock.recvfrom(_RECEIVE_SIZE)
                except OSError as exc:  # an ICMP error queued on the socket
                    log.debug("dns.receive_failed", proto="udp", error=str(exc))
                    continue
                outcome = self._triage(data, str(client[0]), tcp=False)
                if isinstance(outcome, bytes):
                    await send(outcome, client)
                elif outcome is not None:
                    if self._reserve_forward(outcome):
                        nursery.start_soon(forward, outcome, data, client)
                    else:
                        await send(dns.build_empty_reply(outcome, dns.Rcode.SERVFAIL), client)

    # -- TCP ---------------------------------------------------------------------------

    async def serve_tcp(self, listener: trio.socket.SocketType) -> None:
        async def handle(sock: trio.socket.SocketType, client_ip: str) -> None:
            await self._serve_connection(trio.SocketStream(sock), client_ip)

        await serve_accepted(
            listener, handle, max_connections=self._max_connections, subsystem="dns"
        )

    async def _serve_connection(self, stream: trio.SocketStream, client_ip: str) -> None:
        """Answer the queries of one TCP client until it closes or stays idle."""
        frames = dns.FrameBuffer()
        send_lock = trio.Lock()
        async with stream, trio.open_nursery() as connection:

            async def reply(answer: bytes) -> None:
                try:
                    async with send_lock:
                        with trio.fail_after(self._idle_timeout):
                            await stream.send_all(dns.frame(answer))
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                    connection.cancel_scope.cancel()  # the client is gone or not reading

            async def forward(query: dns.Query, raw: bytes) -> None:
                await reply(await self._forward(query, raw, tcp=True))

            while True:
                raw: bytes | None = None
                with trio.move_on_after(self._idle_timeout) as idle:
                    with contextlib.suppress(trio.BrokenResourceError):  # a reset: done
                        raw = await _receive_message(stream, frames)
                if idle.cancelled_caught:
                    log.debug("dns.connection_idle", client=client_ip)
                if raw is None:
                    break
                outcome = self._triage(raw, client_ip, tcp=True)
                if isinstance(outcome, bytes):
                    await reply(outcome)
                elif outcome is not None:
                    if self._reserve_forward(outcome):
                        connection.start_soon(forward, outcome, raw)
                    else:
                        await reply(dns.build_empty_reply(outcome, dns.Rcode.SERVFAIL))
            # Leaving the nursery waits for the answers still being forwarded.


async def _receive_message(stream: trio.abc.ReceiveStream, frames: dns.FrameBuffer) -> bytes | None:
    """The next length-prefixed message from ``stream``, or None at end of stream."""
    while (message := frames.next_message()) is None:
        data = await stream.receive_some(_RECEIVE_SIZE)
        if not data:
            return None
        frames.feed(data)
    return message
