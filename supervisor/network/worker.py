"""Run the blocking plumbing of ``netlink`` from trio: worker threads, one call at a time.

pyroute2's synchronous API runs a private asyncio loop in the calling thread, so it must
never be called from trio's thread; ``netlink``'s check-then-act functions must not
interleave. One :class:`NetlinkWorker` per daemon serializes them.

Cancellation: a call that has started runs to completion (``abandon_on_cancel`` is
off), so a cancelled ``docker run`` never leaves a veth half-configured; the awaiting
task sees ``Cancelled`` once the call returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import trio

P = ParamSpec("P")
T = TypeVar("T")


class NetlinkWorker:
    def __init__(self) -> None:
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``await worker.run(netlink.attach_container, ns, bridge=..., ...)``."""
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self._limiter
        )
