"""Tests for the pure parts of supervisor.network.netlink (names) and the worker.

The kernel-facing functions are exercised as root in
tests/integration/test_network_plumbing.py.
"""

from __future__ import annotations

import threading
import time

import pytest
import trio

from supervisor.errors import InvalidArgument
from supervisor.network.netlink import IFNAMSIZ, check_ifname, netns_path
from supervisor.network.worker import NetlinkWorker


@pytest.mark.parametrize("name", ["eth0", "berth0", "bv0123456789a", "a" * IFNAMSIZ, "br-x.1"])
def test_check_ifname_accepts_kernel_names(name: str) -> None:
    assert check_ifname(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a" * (IFNAMSIZ + 1), ".", "..", "a/b", "a:b", "a b", "a\tb"],
    ids=["empty", "too-long", "dot", "dotdot", "slash", "colon", "space", "tab"],
)
def test_check_ifname_refuses_what_the_kernel_refuses(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid interface name"):
        check_ifname(name)


def test_netns_path_refuses_path_tricks() -> None:
    assert str(netns_path("berth-abc")) == "/run/netns/berth-abc"
    for bad in ("", ".", "..", "a/b", "../etc"):
        with pytest.raises(InvalidArgument):
            netns_path(bad)


async def test_worker_runs_calls_in_another_thread_with_keywords() -> None:
    worker = NetlinkWorker()

    def where(a: int, *, b: int) -> tuple[int, int]:
        return threading.get_ident(), a + b

    ident, total = await worker.run(where, 1, b=2)
    assert ident != threading.get_ident()
    assert total == 3


async def test_worker_serializes_calls() -> None:
    worker = NetlinkWorker()
    active = 0
    peak = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.002)
        with lock:
            active -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(worker.run, call)
    assert peak == 1


async def test_worker_propagates_errors() -> None:
    def fail() -> None:
        raise InvalidArgument("nope")

    with pytest.raises(InvalidArgument, match="nope"):
        await NetlinkWorker().run(fail)
