"""Tests for supervisor.network.proxy on real loopback sockets."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial

import pytest
import trio
import trio.testing

from supervisor.errors import BerthError, Conflict
from supervisor.network import proxy
from supervisor.network.proxy import serve_tcp, serve_udp

LOCAL = "127.0.0.1"
Handler = Callable[[trio.SocketStream], Awaitable[None]]


async def echo(stream: trio.SocketStream) -> None:
    """Echo until EOF, then half-close back."""
    while data := await stream.receive_some(65536):
        await stream.send_all(data)
    await stream.send_eof()


async def reply_after_eof(stream: trio.SocketStream) -> None:
    """Read everything, then answer with its size: only works if the client's FIN
    reached us while our reply can still reach the client."""
    total = 0
    while data := await stream.receive_some(65536):
        total += len(data)
    await stream.send_all(b"received %d bytes" % total)


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1: its port."""

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            with suppress(trio.BrokenResourceError):
                await handler(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host=LOCAL))
        yield int(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def tcp_proxy(
    target_port: int, *, use_splice: bool = True, max_connections: int = 1024
) -> AsyncIterator[int]:
    """serve_tcp from an ephemeral port of 127.0.0.1 to ``target_port``: its port."""
    serve = partial(
        serve_tcp,
        LOCAL,
        0,
        LOCAL,
        target_port,
        use_splice=use_splice,
        max_connections=max_connections,
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve)
        yield port
        nursery.cancel_scope.cancel()


async def receive_all(stream: trio.SocketStream) -> bytes:
    chunks = []
    while data := await stream.receive_some(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


# -- TCP -------------------------------------------------------------------------------


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "copy"])
async def test_tcp_echo_round_trip(use_splice: bool) -> None:
    async with tcp_server(echo) as target, tcp_proxy(target, use_splice=use_splice) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(b"ping")
            assert await stream.receive_some(10) == b"ping"
            await stream.send_eof()
            assert await receive_all(stream) == b""


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "copy"])
async def test_tcp_big_transfer_is_intact_both_ways(use_splice: bool) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    async with tcp_server(echo) as target, tcp_proxy(target, use_splice=use_splice) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            received = bytearray()

            async def send() -> None:
                view = memoryview(payload)
                for i in range(0, len(payload), 1 << 20):
                    await stream.send_all(view[i : i + (1 << 20)])
                await stream.send_eof()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                while data := await stream.receive_some(1 << 20):
                    received += data
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "copy"])
async def test_tcp_half_close_client_still_receives_reply(use_splice: bool) -> None:
    async with (
        tcp_server(reply_after_eof) as target,
        tcp_proxy(target, use_splice=use_splice) as port,
    ):
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(b"x" * 100_000)
            await stream.send_eof()  # shutdown(SHUT_WR) towards the proxy
            assert await receive_all(stream) == b"received 100000 bytes"


async def test_tcp_splice_refused_falls_back_to_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def no_splice(*args: object, **kwargs: object) -> int:
        nonlocal calls
        calls += 1
        raise OSError(errno.EINVAL, "splice unsupported")

    monkeypatch.setattr(os, "splice", no_splice)
    async with tcp_server(reply_after_eof) as target, tcp_proxy(target) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(b"abc")
            await stream.send_eof()
            assert await receive_all(stream) == b"received 3 bytes"
    assert calls >= 2  # both directions tried splice first


async def test_tcp_unreachable_target_closes_client() -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind((LOCAL, 0))
        dead_port = probe.getsockname()[1]
    async with tcp_proxy(dead_port) as port:
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            assert await receive_all(stream) == b""


async def test_tcp_ephemeral_port_is_reported_and_served() -> None:
    async with tcp_server(echo) as target, tcp_proxy(target) as port:
        assert 0 < port < 65536
        assert port != target
        stream = await trio.open_tcp_stream(LOCAL, port)
        async with stream:
            await stream.send_all(b"hi")
            assert await stream.receive_some(10) == b"hi"


async def test_tcp_port_in_use_raises_conflict_before_started() -> None:
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with trio.open_nursery() as nursery:
            with pytest.raises(Conflict) as exc:
                await nursery.start(serve_tcp, LOCAL, port, LOCAL, 1)
    assert str(exc.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
    assert exc.value.status == 409


async def test_udp_port_in_use_raises_conflict_before_started() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOCAL, 0))
        port = taken.getsockname()[1]
        async with trio.open_nursery() as nursery:
            with pytest.raises(Conflict, match=f"^Bind for 127.0.0.1:{port} failed"):
                await nursery.start(serve_udp, LOCAL, port, LOCAL, 1)


async def test_tcp_all_addresses_message_names_0_0_0_0() -> None:
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with trio.open_nursery() as nursery:
            with pytest.raises(Conflict) as exc:
                await nursery.start(serve_tcp, "", port, LOCAL, 1)
    assert str(exc.value) == f"Bind for 0.0.0.0:{port} failed: port is already allocated"


async def test_tcp_address_not_local_raises_berth_error() -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(BerthError) as exc:
            await nursery.start(serve_tcp, "192.0.2.123", 0, LOCAL, 1)  # TEST-NET-1
    assert not isinstance(exc.value, Conflict)
    assert str(exc.value).startswith("listen tcp 192.0.2.123:0: bind: ")


def _two_free_ports() -> tuple[socket.socket, int]:
    """A listening socket on port P where P+1 is free, and P."""
    for _ in range(50):
        taken = socket.socket()
        taken.bind((LOCAL, 0))
        port = taken.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind((LOCAL, port + 1))
            except OSError:
                taken.close()
                continue
        taken.listen()
        return taken, port
    raise AssertionError("no two consecutive free ports")


async def test_tcp_host_port_range_takes_first_free_port() -> None:
    taken, port = _two_free_ports()
    with taken:
        async with tcp_server(echo) as target, trio.open_nursery() as nursery:
            bound = await nursery.start(
                partial(serve_tcp, LOCAL, port, LOCAL, target, host_port_end=port + 1)
            )
            assert bound == port + 1
            nursery.cancel_scope.cancel()


async def test_tcp_host_port_range_all_taken_raises_conflict() -> None:
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with trio.open_nursery() as nursery:
            with pytest.raises(Conflict) as exc:
                await nursery.start(partial(serve_tcp, LOCAL, port, LOCAL, 1, host_port_end=port))
    assert str(exc.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"


async def test_tcp_ipv6_loopback_is_served() -> None:
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6")
    async with tcp_server(echo) as target, trio.open_nursery() as nursery:
        try:
            port = await nursery.start(serve_tcp, "::1", 0, LOCAL, target)
        except BerthError as exc:
            pytest.skip(f"::1 unavailable: {exc}")
        stream = await trio.open_tcp_stream("::1", port)
        async with stream:
            await stream.send_all(b"six")
            assert await stream.receive_some(10) == b"six"
        nursery.cancel_scope.cancel()


async def test_tcp_cancellation_closes_listener_and_connections() -> None:
    async with tcp_server(echo) as target:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_tcp, LOCAL, 0, LOCAL, target)
            stream = await trio.open_tcp_stream(LOCAL, port)
            await stream.send_all(b"alive")
            assert await stream.receive_some(10) == b"alive"
            nursery.cancel_scope.cancel()
        async with stream:
            try:
                rest = await stream.receive_some(10)
            except trio.BrokenResourceError:  # a reset is a close too
                rest = b""
            assert rest == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOCAL, port)).close()


async def test_tcp_connection_limit_closes_excess_then_recovers() -> None:
    async with tcp_server(echo) as target, tcp_proxy(target, max_connections=2) as port:
        first = await trio.open_tcp_stream(LOCAL, port)
        second = await trio.open_tcp_stream(LOCAL, port)
        for stream in (first, second):
            await stream.send_all(b"in")
            assert await stream.receive_some(10) == b"in"
        excess = await trio.open_tcp_stream(LOCAL, port)
        async with excess:
            assert await receive_all(excess) == b""  # accepted, then closed at once
        await first.aclose()
        await trio.testing.wait_all_tasks_blocked()
        again = await trio.open_tcp_stream(LOCAL, port)
        async with again, second:
            await again.send_all(b"back")
            assert await again.receive_some(10) == b"back"


async def test_tcp_client_reset_closes_the_upstream_connection() -> None:
    upstream_done = trio.Event()

    async def stream_forever(stream: trio.SocketStream) -> None:
        try:
            while True:
                await stream.send_all(b"x" * 65536)
        finally:
            upstream_done.set()

    async with tcp_server(stream_forever) as target, tcp_proxy(target) as port:
        client = trio.socket.socket()
        await client.connect((LOCAL, port))
        assert await client.recv(10)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST: the proxy's write to it fails
        with trio.fail_after(5):
            await upstream_done.wait()


async def test_tcp_many_concurrent_connections() -> None:
    async with tcp_server(echo) as target, tcp_proxy(target) as port:

        async def one(i: int) -> None:
            stream = await trio.open_tcp_stream(LOCAL, port)
            async with stream:
                message = b"conn %d" % i
                await stream.send_all(message)
                await stream.send_eof()
                assert await receive_all(stream) == message

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(one, i)


# -- UDP -------------------------------------------------------------------------------


@asynccontextmanager
async def udp_echo() -> AsyncIterator[int]:
    """A UDP server answering ``<data>|<client port>``: its port."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind((LOCAL, 0))

    async def serve() -> None:
        while True:
            data, addr = await sock.recvfrom(65535)
            await sock.sendto(data + b"|%d" % addr[1], addr)

    with sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            yield int(sock.getsockname()[1])
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def udp_proxy(
    target: int, *, idle_timeout: float = 90.0, max_flows: int = 1024
) -> AsyncIterator[int]:
    serve = partial(
        serve_udp, LOCAL, 0, LOCAL, target, idle_timeout=idle_timeout, max_flows=max_flows
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve)
        yield port
        nursery.cancel_scope.cancel()


async def exchange(client: trio.socket.SocketType, port: int, data: bytes) -> tuple[bytes, int]:
    """Send through the proxy; the answer and the source port the server saw."""
    await client.sendto(data, (LOCAL, port))
    answer, addr = await client.recvfrom(65535)
    assert addr == (LOCAL, port)
    body, _, seen = answer.rpartition(b"|")
    return body, int(seen)


def udp_client() -> trio.socket.SocketType:
    return trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


async def test_udp_round_trip_keeps_one_flow_per_client() -> None:
    async with udp_echo() as target, udp_proxy(target) as port:
        with udp_client() as a, udp_client() as b:
            body, flow_a = await exchange(a, port, b"hello")
            assert body == b"hello"
            assert (await exchange(a, port, b"again")) == (b"again", flow_a)
            body, flow_b = await exchange(b, port, b"other")
            assert body == b"other"
            assert flow_b != flow_a


async def test_udp_large_datagram_round_trips() -> None:
    payload = os.urandom(60_000)
    async with udp_echo() as target, udp_proxy(target) as port:
        with udp_client() as client:
            assert (await exchange(client, port, payload))[0] == payload


async def test_udp_idle_flow_expires_and_a_new_one_is_opened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with udp_echo() as target, udp_proxy(target, idle_timeout=5.0) as port:
        with udp_client() as client:
            _, first = await exchange(client, port, b"one")
            await trio.sleep(4.0)  # activity within the timeout keeps the flow
            assert (await exchange(client, port, b"two"))[1] == first
            await trio.sleep(6.0)  # idle longer than the timeout
            _, second = await exchange(client, port, b"three")
            assert second != first


async def test_udp_flow_limit_drops_new_clients() -> None:
    async with udp_echo() as target, udp_proxy(target, max_flows=1) as port:
        with udp_client() as a, udp_client() as b:
            assert (await exchange(a, port, b"a"))[0] == b"a"
            await b.sendto(b"b", (LOCAL, port))
            assert (await exchange(a, port, b"a2"))[0] == b"a2"  # proxy still serving
            with trio.move_on_after(0.05) as scope:
                await b.recvfrom(100)
            assert scope.cancelled_caught


async def test_udp_target_down_then_up_recovers() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        target = probe.getsockname()[1]
    async with udp_proxy(target) as port:
        with udp_client() as client:
            await client.sendto(b"lost", (LOCAL, port))  # ICMP unreachable inside the proxy
            await trio.testing.wait_all_tasks_blocked()
            server = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with server:
                await server.bind((LOCAL, target))
                await client.sendto(b"found", (LOCAL, port))
                data, addr = await server.recvfrom(100)
                assert data == b"found"
                await server.sendto(b"reply", addr)
                assert (await client.recvfrom(100))[0] == b"reply"


async def test_udp_cancellation_closes_socket() -> None:
    async with udp_echo() as target, trio.open_nursery() as nursery:
        port = await nursery.start(serve_udp, LOCAL, 0, LOCAL, target)
        nursery.cancel_scope.cancel()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((LOCAL, port))  # free again


def test_served_protocols() -> None:
    assert {"tcp", "udp"} == proxy.SERVED_PROTOS


class _ScriptedListener:
    """Stands in for a listening socket: ``accept`` raises or returns from a script."""

    def __init__(self, script: list[OSError | trio.socket.SocketType]) -> None:
        self._script = script

    async def accept(self) -> tuple[trio.socket.SocketType, tuple[str, int]]:
        await trio.lowlevel.checkpoint()
        if not self._script:
            await trio.sleep_forever()
        step = self._script.pop(0)
        if isinstance(step, OSError):
            raise step
        return step, ("10.0.0.7", 40000)


async def test_serve_accepted_pauses_on_emfile_then_hands_over_the_peer_ip(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ours, theirs = trio.socket.socketpair()
    seen: list[str] = []
    handled = trio.Event()

    async def handle(sock: trio.socket.SocketType, peer_ip: str) -> None:
        with sock:
            seen.append(peer_ip)
            handled.set()

    listener = _ScriptedListener([OSError(errno.EMFILE, "Too many open files"), ours])
    with theirs:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(
                    proxy.serve_accepted,
                    listener,  # type: ignore[arg-type]  # a fake: only accept() is used
                    handle,
                    max_connections=1,
                    subsystem="proxy",
                )
            )
            await handled.wait()
            nursery.cancel_scope.cancel()
    assert seen == ["10.0.0.7"]
    assert trio.current_time() >= proxy.ACCEPT_CAPACITY_SLEEP_S  # it paused first


async def test_serve_accepted_raises_other_accept_errors() -> None:
    async def handle(sock: trio.socket.SocketType, peer_ip: str) -> None:
        raise AssertionError("no connection was accepted")

    listener = _ScriptedListener([OSError(errno.EBADF, "Bad file descriptor")])
    with pytest.raises(ExceptionGroup) as info:  # from the connections' nursery
        await proxy.serve_accepted(
            listener,  # type: ignore[arg-type]  # a fake: only accept() is used
            handle,
            max_connections=1,
            subsystem="dns",
        )
    assert info.group_contains(OSError, match="Bad file descriptor")
