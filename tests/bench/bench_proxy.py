"""Bulk throughput through the TCP port proxy vs a direct connection (loopback).

    .venv/bin/python -m tests.bench.bench_proxy [MiB] [rounds]

A server process sends MiB mebibytes per connection (as ``curl`` of a big file would
receive them); a client process receives and times them. Both are separate processes,
so the proxy, running on trio in this process, has a core's worth of Python to itself.
Reports MB/s (10^6 bytes/s) for: direct, through the proxy with splice, and through the
proxy with the recv/send copy.
"""

from __future__ import annotations

import statistics
import sys
from functools import partial

import trio

from supervisor.network.proxy import serve_tcp

SERVER = r"""
import socket, sys
size = int(sys.argv[1]) << 20
buf = memoryview(bytearray(1 << 20))
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(16)
print(ls.getsockname()[1], flush=True)
while True:
    c, _ = ls.accept()
    sent = 0
    while sent < size:
        sent += c.send(buf[: min(len(buf), size - sent)])
    c.close()
"""

CLIENT = r"""
import socket, sys, time
port = int(sys.argv[1]); size = int(sys.argv[2]) << 20
buf = bytearray(1 << 20)
t = time.perf_counter()
s = socket.create_connection(("127.0.0.1", port))
got = 0
while n := s.recv_into(buf):
    got += n
elapsed = time.perf_counter() - t
assert got == size, (got, size)
print(size / elapsed / 1e6)
"""


async def measure(port: int, mib: int) -> float:
    proc = await trio.run_process(
        [sys.executable, "-c", CLIENT, str(port), str(mib)], capture_stdout=True
    )
    return float(proc.stdout)


async def main(mib: int, rounds: int) -> None:
    async with trio.open_nursery() as nursery:
        server = await trio.lowlevel.open_process(
            [sys.executable, "-c", SERVER, str(mib)], stdout=-1
        )
        assert server.stdout is not None
        line = await server.stdout.receive_some(32)
        target = int(line)
        splice_port = await nursery.start(partial(serve_tcp, "127.0.0.1", 0, "127.0.0.1", target))
        copy_port = await nursery.start(
            partial(serve_tcp, "127.0.0.1", 0, "127.0.0.1", target, use_splice=False)
        )
        results: dict[str, list[float]] = {"direct": [], "proxy splice": [], "proxy copy": []}
        for _ in range(rounds):
            results["direct"].append(await measure(target, mib))
            results["proxy splice"].append(await measure(splice_port, mib))
            results["proxy copy"].append(await measure(copy_port, mib))
        direct = statistics.median(results["direct"])
        for name, values in results.items():
            median = statistics.median(values)
            print(
                f"{name:13s} median {median:7.0f} MB/s  best {max(values):7.0f} MB/s  "
                f"({median / direct:4.2f}x direct)  [{mib} MiB x {rounds}]"
            )
        server.kill()
        await server.wait()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(
        main,
        int(sys.argv[1]) if len(sys.argv) > 1 else 100,
        int(sys.argv[2]) if len(sys.argv) > 2 else 5,
    )
