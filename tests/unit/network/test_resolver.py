"""Tests for supervisor.network.resolver on real loopback sockets.

berth's server listens on 127.0.0.1 (ephemeral port); the upstreams it forwards to are
fakes served by the tests on 127.0.0.2 and 127.0.0.4; clients that berth must not
know ask from 127.0.0.3.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from ipaddress import IPv4Address

import pytest
import structlog
import structlog.testing
import trio
import trio.testing

from supervisor.errors import BerthError
from supervisor.network import dns
from supervisor.network.dns import QR, RD, TC, Rcode, RType, build_query, frame, parse_message
from supervisor.network.resolver import serve_dns

LOCAL = "127.0.0.1"
UPSTREAM = "127.0.0.2"
STRANGER = "127.0.0.3"  # a client address the lookup does not know
SECOND_UPSTREAM = "127.0.0.4"
IP = IPv4Address

NAMES = {"web": [IP("10.89.1.2")], "db": [IP("10.89.1.3"), IP("10.89.1.4")]}


class FakeNetwork:
    """The lead's lookup: names known only to clients on 127.0.0.1; records calls."""

    def __init__(self, names: dict[str, list[IPv4Address]] | None = None) -> None:
        self.names = NAMES if names is None else names
        self.calls: list[tuple[str, str]] = []

    def __call__(self, name: str, client_ip: str) -> Sequence[IPv4Address] | None:
        self.calls.append((name, client_ip))
        return self.names.get(name) if client_ip == LOCAL else None


@asynccontextmanager
async def dns_server(
    lookup: Callable[[str, str], Sequence[IPv4Address] | None] | None = None,
    upstreams: Sequence[str] = (),
    **options: float,
) -> AsyncIterator[int]:
    """serve_dns on an ephemeral port of 127.0.0.1: its port."""
    serve = partial(
        serve_dns,
        LOCAL,
        0,
        FakeNetwork() if lookup is None else lookup,
        upstreams,
        **options,  # type: ignore[arg-type]  # the tests pass only the numeric options
    )
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(serve)
        yield port
        nursery.cancel_scope.cancel()


# -- the fake upstream -----------------------------------------------------------------

#: How a fake upstream answers a query (``proto`` is "udp" or "tcp"): the datagrams or
#: messages to send back, in order; none = stay silent.
Behaviour = Callable[[dns.Query, bytes, str], Awaitable[Sequence[bytes]]]


def answer_with(address: str = "192.0.2.1", *, ttl: int = 42) -> Behaviour:
    async def behave(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        return [dns.build_answer(query, [IP(address)], ttl=ttl, max_size=65535)]

    return behave


async def silent(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
    return []


class FakeUpstream:
    def __init__(self, ip: str, behaviour: Behaviour) -> None:
        self.ip = ip
        self.port = 0
        self.behaviour = behaviour
        self.received: list[tuple[str, bytes]] = []
        self._changed = trio.Event()

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def names(self) -> list[str]:
        return [dns.parse_query(raw).question.name for _, raw in self.received]

    async def wait_received(self, count: int) -> None:
        while len(self.received) < count:
            await self._changed.wait()

    def _record(self, proto: str, raw: bytes) -> dns.Query:
        self.received.append((proto, raw))
        self._changed.set()
        self._changed = trio.Event()
        return dns.parse_query(raw)

    async def serve_udp(self, sock: trio.socket.SocketType) -> None:
        lock = trio.Lock()

        async def handle(raw: bytes, client: tuple[object, ...]) -> None:
            for reply in await self.behaviour(self._record("udp", raw), raw, "udp"):
                async with lock:
                    await sock.sendto(reply, client)

        async with trio.open_nursery() as nursery:
            while True:
                raw, client = await sock.recvfrom(65535)
                nursery.start_soon(handle, raw, client)

    async def serve_tcp(self, listener: trio.socket.SocketType) -> None:
        async def handle(sock: trio.socket.SocketType) -> None:
            async with trio.SocketStream(sock) as stream:
                raw = await receive_message(stream)
                query = self._record("tcp", raw)
                for reply in await self.behaviour(query, raw, "tcp"):
                    await stream.send_all(frame(reply))

        async with trio.open_nursery() as nursery:
            while True:
                sock, _ = await listener.accept()
                nursery.start_soon(handle, sock)


@asynccontextmanager
async def fake_upstream(
    behaviour: Behaviour | None = None, *, ip: str = UPSTREAM, tcp_too: bool = True
) -> AsyncIterator[FakeUpstream]:
    """A DNS server on ``ip`` (UDP, and TCP on the same ephemeral port unless not
    ``tcp_too``: then TCP connections are refused)."""
    upstream = FakeUpstream(ip, answer_with() if behaviour is None else behaviour)
    for _ in range(20):
        udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await udp.bind((ip, 0))
        tcp = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            await tcp.bind((ip, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        break
    with udp, tcp:
        upstream.port = udp.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(upstream.serve_udp, udp)
            if tcp_too:
                tcp.listen()
                nursery.start_soon(upstream.serve_tcp, tcp)
            yield upstream
            nursery.cancel_scope.cancel()


def dead_port(ip: str = UPSTREAM) -> int:
    """A UDP port nobody listens on (its datagrams come back as ICMP unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


# -- clients ---------------------------------------------------------------------------


async def udp_client(source: str = LOCAL) -> trio.socket.SocketType:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind((source, 0))
    return sock


async def ask_udp(port: int, data: bytes, *, source: str = LOCAL) -> bytes:
    with await udp_client(source) as sock:
        await sock.sendto(data, (LOCAL, port))
        reply, server = await sock.recvfrom(65535)
        assert server == (LOCAL, port)
        return bytes(reply)


async def receive_message(stream: trio.abc.ReceiveStream) -> bytes:
    """One length-prefixed message; fails at end of stream."""
    frames = dns.FrameBuffer()
    while (message := frames.next_message()) is None:
        data = await stream.receive_some(65535)
        assert data, "connection closed before a whole message"
        frames.feed(data)
    return message


async def receive_eof(stream: trio.abc.ReceiveStream) -> bool:
    try:
        return await stream.receive_some(65535) == b""
    except trio.BrokenResourceError:  # a reset is a close too
        return True


def rcode(reply: bytes) -> int:
    return parse_message(reply).header.rcode


def addresses(reply: bytes) -> list[IPv4Address]:
    return [IP(r.rdata) for r in parse_message(reply).answers if r.rtype == RType.A]


def query_bytes(name: str, qtype: int = RType.A, *, qid: int = 0x4242) -> bytes:
    return build_query(name, qtype, query_id=qid)


# -- answered locally ------------------------------------------------------------------


async def test_udp_known_name_is_answered_from_lookup() -> None:
    network = FakeNetwork()
    async with dns_server(network) as port:
        reply = await ask_udp(port, query_bytes("Web.", qid=7))
    message = parse_message(reply)
    assert message.header.id == 7
    assert message.header.flags & (QR | dns.AA | dns.RA) == QR | dns.AA | dns.RA
    assert addresses(reply) == [IP("10.89.1.2")]
    assert message.answers[0].ttl == dns.DEFAULT_TTL
    assert network.calls == [("web", LOCAL)]


async def test_udp_known_name_aaaa_is_empty_noerror() -> None:
    async with dns_server() as port:
        reply = await ask_udp(port, query_bytes("db", RType.AAAA))
    message = parse_message(reply)
    assert (message.header.rcode, message.answers) == (Rcode.NOERROR, ())


async def test_udp_name_known_to_other_clients_is_forwarded() -> None:
    async with fake_upstream() as upstream, dns_server(upstreams=[upstream.address]) as port:
        reply = await ask_udp(port, query_bytes("web"), source=STRANGER)
    assert addresses(reply) == [IP("192.0.2.1")]
    assert upstream.names() == ["web"]


async def test_lookup_failure_answers_servfail_and_server_survives() -> None:
    def broken(name: str, client_ip: str) -> Sequence[IPv4Address] | None:
        if name == "boom":
            raise RuntimeError("lookup bug")
        return NAMES.get(name)

    with structlog.testing.capture_logs() as logs:
        async with dns_server(broken) as port:
            assert rcode(await ask_udp(port, query_bytes("boom"))) == Rcode.SERVFAIL
            assert addresses(await ask_udp(port, query_bytes("web"))) == [IP("10.89.1.2")]
    failures = [entry for entry in logs if entry["event"] == "dns.lookup_failed"]
    assert [(f["name"], f["client"], f["log_level"]) for f in failures] == [
        ("boom", LOCAL, "error")
    ]


async def test_udp_other_opcode_is_notimp_without_lookup() -> None:
    network = FakeNetwork()
    data = bytearray(query_bytes("web"))
    struct.pack_into("!H", data, 2, (dns.Opcode.STATUS << 11) | RD)
    async with dns_server(network) as port:
        assert rcode(await ask_udp(port, bytes(data))) == Rcode.NOTIMP
    assert network.calls == []


async def test_udp_big_answer_is_truncated_to_512() -> None:
    many = {"many": [IP(f"10.1.0.{i}") for i in range(1, 101)]}
    async with dns_server(FakeNetwork(many)) as port:
        reply = await ask_udp(port, query_bytes("many"))
    assert len(reply) <= 512
    assert parse_message(reply).header.flags & TC


# -- forwarded -------------------------------------------------------------------------


async def test_udp_unknown_name_is_forwarded_and_relayed_unchanged() -> None:
    sent: list[bytes] = []

    async def distinctive(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        reply = dns.build_answer(query, [IP("192.0.2.9")], ttl=1234) + b"extra octets"
        sent.append(reply)
        return [reply]

    async with (
        fake_upstream(distinctive) as upstream,
        dns_server(upstreams=[upstream.address]) as port,
    ):
        query = build_query("Example.COM", query_id=0x5151, edns_udp_size=4096)
        reply = await ask_udp(port, query)
    assert reply == sent[0]
    assert upstream.received == [("udp", query)]  # the client's query, byte for byte


async def test_no_upstream_single_label_is_nxdomain_else_servfail() -> None:
    async with dns_server(upstreams=[]) as port:
        assert rcode(await ask_udp(port, query_bytes("nosuch"))) == Rcode.NXDOMAIN
        assert rcode(await ask_udp(port, query_bytes("example.com"))) == Rcode.SERVFAIL


async def test_upstream_timeout_answers_servfail(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        fake_upstream(silent) as upstream,
        dns_server(upstreams=[upstream.address], upstream_timeout=2.0) as port,
    ):
        reply = await ask_udp(port, query_bytes("example.com"))
        assert rcode(reply) == Rcode.SERVFAIL
        assert parse_message(reply).questions[0].name == "example.com"
        assert upstream.names() == ["example.com"]
        assert trio.current_time() >= 2.0  # it did wait for the upstream


async def test_silent_upstream_then_next_one_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        fake_upstream(silent) as first,
        fake_upstream(answer_with("192.0.2.2"), ip=SECOND_UPSTREAM) as second,
        dns_server(upstreams=[first.address, second.address]) as port,
    ):
        assert addresses(await ask_udp(port, query_bytes("example.com"))) == [IP("192.0.2.2")]
        assert (first.names(), second.names()) == (["example.com"], ["example.com"])


async def test_unreachable_upstream_is_skipped_at_once() -> None:
    # No clock: an ICMP port-unreachable ends the wait for the dead upstream.
    async with (
        fake_upstream() as upstream,
        dns_server(upstreams=[f"{UPSTREAM}:{dead_port()}", upstream.address]) as port,
    ):
        assert addresses(await ask_udp(port, query_bytes("example.com"))) == [IP("192.0.2.1")]


async def test_upstream_servfail_tries_next_and_relays_last_when_all_fail() -> None:
    async def servfail(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        return [dns.build_empty_reply(query, Rcode.SERVFAIL)]

    async with (
        fake_upstream(servfail) as failing,
        fake_upstream(ip=SECOND_UPSTREAM) as good,
        dns_server(upstreams=[failing.address, good.address]) as port,
    ):
        assert addresses(await ask_udp(port, query_bytes("example.com"))) == [IP("192.0.2.1")]
    async with (
        fake_upstream(servfail) as failing,
        dns_server(upstreams=[failing.address]) as port,
    ):
        reply = await ask_udp(port, query_bytes("example.com", qid=99))
        assert rcode(reply) == Rcode.SERVFAIL
        assert parse_message(reply).header.id == 99


async def test_foreign_datagrams_from_upstream_are_ignored() -> None:
    async def confused(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        wrong_id = bytearray(dns.build_answer(query, [IP("203.0.113.66")]))
        wrong_id[0] ^= 0xFF
        other = dns.parse_query(build_query("evil.example", query_id=query.id))
        return [
            bytes(wrong_id),
            dns.build_answer(other, [IP("203.0.113.66")]),
            b"garbage",
            dns.build_answer(query, [IP("192.0.2.5")]),
        ]

    async with (
        fake_upstream(confused) as upstream,
        dns_server(upstreams=[upstream.address]) as port,
    ):
        assert addresses(await ask_udp(port, query_bytes("example.com"))) == [IP("192.0.2.5")]


async def test_slow_upstream_blocks_no_other_client() -> None:
    release = trio.Event()

    async def slow_for_some(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        if query.question.name == "slow.example":
            await release.wait()
        return [dns.build_answer(query, [IP("192.0.2.3")])]

    async with (
        fake_upstream(slow_for_some) as upstream,
        dns_server(upstreams=[upstream.address]) as port,
    ):
        with await udp_client() as slow_client:
            await slow_client.sendto(query_bytes("slow.example"), (LOCAL, port))
            await upstream.wait_received(1)
            assert addresses(await ask_udp(port, query_bytes("web"))) == [IP("10.89.1.2")]
            fast = await ask_udp(port, query_bytes("fast.example"))
            assert addresses(fast) == [IP("192.0.2.3")]
            release.set()
            reply, _ = await slow_client.recvfrom(65535)
            assert parse_message(reply).questions[0].name == "slow.example"


async def test_forward_limit_answers_servfail_beyond_it() -> None:
    release = trio.Event()

    async def held(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        await release.wait()
        return [dns.build_answer(query, [IP("192.0.2.4")])]

    async with (
        fake_upstream(held) as upstream,
        dns_server(upstreams=[upstream.address], max_forwards=1) as port,
    ):
        with await udp_client() as first:
            await first.sendto(query_bytes("one.example"), (LOCAL, port))
            await upstream.wait_received(1)
            assert rcode(await ask_udp(port, query_bytes("two.example"))) == Rcode.SERVFAIL
            assert addresses(await ask_udp(port, query_bytes("web"))) == [IP("10.89.1.2")]
            release.set()
            reply, _ = await first.recvfrom(65535)
            assert addresses(reply) == [IP("192.0.2.4")]
        # The slot is free again.
        assert addresses(await ask_udp(port, query_bytes("three.example"))) == [IP("192.0.2.4")]
        assert upstream.names() == ["one.example", "three.example"]


async def test_upstream_equal_to_own_address_is_skipped() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        port = int(probe.getsockname()[1])
    async with trio.open_nursery() as nursery:
        own = f"{LOCAL}:{port}"
        bound = await nursery.start(serve_dns, LOCAL, port, FakeNetwork(), [own])
        assert bound == port
        # Without the skip this would loop back here and end in SERVFAIL after a timeout;
        # with no upstream left, a single-label name is NXDOMAIN at once.
        assert rcode(await ask_udp(port, query_bytes("nosuch"))) == Rcode.NXDOMAIN
        nursery.cancel_scope.cancel()


# -- malformed input -------------------------------------------------------------------


async def test_udp_short_garbage_is_dropped() -> None:
    async with dns_server() as port:
        with await udp_client() as sock:
            await sock.sendto(b"\x01\x02\x03", (LOCAL, port))
            await sock.sendto(query_bytes("web", qid=11), (LOCAL, port))
            reply, _ = await sock.recvfrom(65535)  # the first answer is the valid query's
            assert parse_message(reply).header.id == 11


async def test_udp_response_packet_is_dropped() -> None:
    async with dns_server() as port:
        with await udp_client() as sock:
            data = bytearray(query_bytes("web", qid=12))
            data[2] |= 0x80  # QR: an answer, never answered back
            await sock.sendto(bytes(data), (LOCAL, port))
            await sock.sendto(query_bytes("web", qid=13), (LOCAL, port))
            reply, _ = await sock.recvfrom(65535)
            assert parse_message(reply).header.id == 13


async def test_udp_readable_header_with_bad_body_answers_formerr() -> None:
    async with dns_server() as port:
        reply = await ask_udp(port, struct.pack("!HHHHHH", 0x7777, RD, 1, 0, 0, 0) + b"\x05ab")
    assert reply == struct.pack("!HHHHHH", 0x7777, QR | RD | dns.RA | Rcode.FORMERR, 0, 0, 0, 0)


async def test_server_survives_random_garbage() -> None:
    rng = random.Random(4)  # a fixed seed: the same packets on every run
    packets = [rng.randbytes(rng.randrange(0, 300)) for _ in range(300)]
    packets += [
        struct.pack("!HHHHHH", rng.randrange(65536), 0, 1, rng.randrange(4), 0, 0)
        + rng.randbytes(rng.randrange(0, 60))
        for _ in range(300)
    ]
    async with dns_server() as port:
        with await udp_client() as sock:
            # Small batches, each followed by a real query whose answer is awaited: a
            # flood could fill the socket's receive buffer and lose the real query too.
            for batch, start in enumerate(range(0, len(packets), 20)):
                for packet in packets[start : start + 20]:
                    await sock.sendto(packet, (LOCAL, port))
                await sock.sendto(query_bytes("web", qid=0xA000 + batch), (LOCAL, port))
                while True:  # FORMERRs (and answers) for the garbage come first
                    message = parse_message((await sock.recvfrom(65535))[0])
                    if message.header.id == 0xA000 + batch and message.answers:
                        break
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            for packet in packets[:50]:
                await stream.send_all(frame(packet))
            await stream.send_all(frame(query_bytes("web", qid=0xABC)))
            while True:
                message = parse_message(await receive_message(stream))
                if message.header.id == 0xABC and message.answers:
                    break


# -- TCP -------------------------------------------------------------------------------


async def test_tcp_several_queries_on_one_connection() -> None:
    async with fake_upstream() as upstream, dns_server(upstreams=[upstream.address]) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            # Three queries in one write, answered as they complete (RFC 7766 §6.2.1.1).
            await stream.send_all(
                frame(query_bytes("web", qid=1))
                + frame(query_bytes("example.com", qid=2))
                + frame(query_bytes("db", RType.AAAA, qid=3))
            )
            replies = {}
            for _ in range(3):
                message = parse_message(await receive_message(stream))
                replies[message.header.id] = message
            # The same connection keeps serving.
            await stream.send_all(frame(query_bytes("db", qid=4)))
            fourth = await receive_message(stream)
    assert [IP(r.rdata) for r in replies[1].answers] == [IP("10.89.1.2")]
    assert [IP(r.rdata) for r in replies[2].answers] == [IP("192.0.2.1")]
    assert (replies[3].header.rcode, replies[3].answers) == (Rcode.NOERROR, ())
    assert addresses(fourth) == [IP("10.89.1.3"), IP("10.89.1.4")]
    assert upstream.received == [("udp", query_bytes("example.com", qid=2))]


async def test_tcp_query_sent_one_octet_at_a_time() -> None:
    async with dns_server() as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            for octet in frame(query_bytes("web", qid=5)):
                await stream.send_all(bytes([octet]))
            assert addresses(await receive_message(stream)) == [IP("10.89.1.2")]


async def test_tcp_big_answer_is_not_truncated() -> None:
    many = {"many": [IP(f"10.1.0.{i}") for i in range(1, 101)]}
    async with dns_server(FakeNetwork(many)) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(query_bytes("many")))
            reply = await receive_message(stream)
    assert len(addresses(reply)) == 100
    assert not parse_message(reply).header.flags & TC


async def test_tcp_half_closed_client_still_gets_its_answers() -> None:
    async with fake_upstream() as upstream, dns_server(upstreams=[upstream.address]) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(query_bytes("example.com", qid=8)))
            await stream.send_eof()
            assert addresses(await receive_message(stream)) == [IP("192.0.2.1")]
            assert await receive_eof(stream)


async def test_tcp_garbage_frames_formerr_or_drop_then_serve() -> None:
    async with dns_server() as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(b"") + frame(b"\x00\x01"))  # dropped
            await stream.send_all(frame(struct.pack("!HHHHHH", 0x0909, 0, 0, 0, 0, 0)))
            formerr = parse_message(await receive_message(stream))
            assert (formerr.header.id, formerr.header.rcode) == (0x0909, Rcode.FORMERR)
            await stream.send_all(frame(query_bytes("web", qid=10)))
            assert addresses(await receive_message(stream)) == [IP("10.89.1.2")]


async def test_tcp_idle_connection_is_closed(autojump_clock: trio.testing.MockClock) -> None:
    async with dns_server(tcp_idle_timeout=10.0) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(query_bytes("web"))[:5])  # a query never finished
            assert await receive_eof(stream)
            assert trio.current_time() >= 10.0


async def test_tcp_connection_limit_closes_excess_connections() -> None:
    async with dns_server(max_tcp_connections=1) as port:
        first = await trio.open_tcp_stream(LOCAL, port)
        async with first:
            await first.send_all(frame(query_bytes("web")))
            assert addresses(await receive_message(first)) == [IP("10.89.1.2")]
            excess = await trio.open_tcp_stream(LOCAL, port)
            async with excess:
                assert await receive_eof(excess)
        second = await trio.open_tcp_stream(LOCAL, port)  # the slot is free again
        async with second:
            await second.send_all(frame(query_bytes("web")))
            assert addresses(await receive_message(second)) == [IP("10.89.1.2")]


async def test_truncated_upstream_answer_is_retried_over_tcp_for_tcp_clients() -> None:
    async def truncating(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        if proto == "udp":
            return [dns.build_answer(query, [IP("192.0.2.1")] * 200, max_size=512)]
        return [dns.build_answer(query, [IP("192.0.2.1")] * 200, max_size=65535)]

    async with (
        fake_upstream(truncating) as upstream,
        dns_server(upstreams=[upstream.address]) as port,
    ):
        udp_reply = await ask_udp(port, query_bytes("big.example"))
        assert parse_message(udp_reply).header.flags & TC  # relayed as is: the client retries
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(query_bytes("big.example")))
            tcp_reply = await receive_message(stream)
        assert len(addresses(tcp_reply)) == 200
        assert [proto for proto, _ in upstream.received] == ["udp", "udp", "tcp"]


def truncated_over_udp(tcp: str) -> Behaviour:
    """Truncated answers over UDP; over TCP: "full", "nothing" (close) or "hang"."""

    async def behave(query: dns.Query, raw: bytes, proto: str) -> Sequence[bytes]:
        if proto == "udp":
            return [dns.build_answer(query, [IP("192.0.2.1")] * 200, max_size=512)]
        if tcp == "hang":
            await trio.sleep_forever()
        return [] if tcp == "nothing" else [dns.build_answer(query, [], max_size=65535)]

    return behave


@pytest.mark.parametrize("failure", ["refused", "nothing", "hang"])
async def test_failed_tcp_retry_relays_the_truncated_answer(
    failure: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        fake_upstream(truncated_over_udp(failure), tcp_too=failure != "refused") as upstream,
        dns_server(upstreams=[upstream.address]) as port,
    ):
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(query_bytes("big.example", qid=21)))
            reply = parse_message(await receive_message(stream))
    # Better than SERVFAIL: what the upstream did say, and TC tells the client so.
    assert reply.header.id == 21
    assert reply.header.flags & TC
    assert len(reply.answers) == (512 - 12 - len(b"\x03big\x07example\x00") - 4) // 16


async def test_tcp_forward_limit_answers_servfail() -> None:
    async with (
        fake_upstream() as upstream,
        dns_server(upstreams=[upstream.address], max_forwards=0) as port,
    ):
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(frame(query_bytes("example.com")))
            assert rcode(await receive_message(stream)) == Rcode.SERVFAIL
            await stream.send_all(frame(query_bytes("web")))
            assert addresses(await receive_message(stream)) == [IP("10.89.1.2")]
    assert upstream.received == []


async def test_tcp_client_that_stops_reading_is_disconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 1000 queries whose answers weigh 16 KB each: far more than the socket buffers
    # hold, so berth's writes stall until the idle timeout gives up on the client.
    huge = {"huge": [IP(int(IP("10.2.0.0")) + i) for i in range(1000)]}
    async with dns_server(FakeNetwork(huge), tcp_idle_timeout=10.0) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            queries = frame(query_bytes("huge")) * 1000
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(queries)  # berth may give up before reading all
            await trio.sleep(20)  # read nothing for longer than the timeout
            received = 0
            try:
                while data := await stream.receive_some(1 << 20):
                    received += len(data)
            except trio.BrokenResourceError:
                pass  # closed with unread queries: a reset
    assert received < 1000 * 16_000


# -- binding and lifetime --------------------------------------------------------------


async def test_udp_port_in_use_raises_before_started() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOCAL, 0))
        port = taken.getsockname()[1]
        async with trio.open_nursery() as nursery:
            with pytest.raises(BerthError) as exc:
                await nursery.start(serve_dns, LOCAL, port, FakeNetwork(), [])
    assert (
        str(exc.value) == f"DNS server: listen udp 127.0.0.1:{port}: bind: address already in use"
    )


async def test_tcp_port_in_use_raises_before_started() -> None:
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with trio.open_nursery() as nursery:
            with pytest.raises(BerthError) as exc:
                await nursery.start(serve_dns, LOCAL, port, FakeNetwork(), [])
    assert (
        str(exc.value) == f"DNS server: listen tcp 127.0.0.1:{port}: bind: address already in use"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((LOCAL, port))  # the UDP socket was closed again


async def test_address_not_local_raises() -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(BerthError, match=r"^DNS server: listen udp 192\.0\.2\.1:53: bind: "):
            await nursery.start(serve_dns, "192.0.2.1", 53, FakeNetwork(), [])


@pytest.mark.parametrize(
    ("host", "upstreams"), [("gateway", []), (LOCAL, ["dns.google"])], ids=["host", "upstream"]
)
async def test_bad_arguments_raise_before_binding(host: str, upstreams: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(BerthError, match=r"^DNS server for "):
            await nursery.start(serve_dns, host, 0, FakeNetwork(), upstreams)


async def test_cancellation_closes_both_sockets_and_pending_forwards() -> None:
    async with fake_upstream(silent) as upstream:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_dns, LOCAL, 0, FakeNetwork(), [upstream.address])
            with await udp_client() as client:
                await client.sendto(query_bytes("pending.example"), (LOCAL, port))
                await upstream.wait_received(1)  # a forward is in flight
            stream = await trio.open_tcp_stream(LOCAL, port)
            nursery.cancel_scope.cancel()
        async with stream:
            assert await receive_eof(stream)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind((LOCAL, port))
        # The server closed the connection first, so it sits in TIME_WAIT: a listener
        # may bind with SO_REUSEADDR (berthd's does), which fails while one listens.
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((LOCAL, port))


async def test_ipv6_loopback_is_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    async with trio.open_nursery() as nursery:
        try:
            port = await nursery.start(serve_dns, "::1", 0, lambda n, c: NAMES.get(n), [])
        except BerthError as exc:
            pytest.skip(f"::1 unavailable: {exc}")
        with trio.socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            await sock.sendto(query_bytes("db"), ("::1", port))
            reply, _ = await sock.recvfrom(65535)
        assert addresses(reply) == [IP("10.89.1.3"), IP("10.89.1.4")]
        nursery.cancel_scope.cancel()
