"""Reading a running container's counters for ``stats`` (the I/O edge of
:mod:`supervisor.containers.stats`).

A sample is a handful of small reads: the container's cgroup counter files
(:meth:`CgroupLayout.stats_files`), ``/proc/stat`` and the container's
``/proc/<pid>/net/dev`` — which lists the interfaces of the process's own network
namespace, so the container's ``eth0`` is read without entering the namespace (no
netlink socket, no worker thread). procfs and cgroupfs reads do not block; they run on
the trio thread, which keeps ``stats`` for twenty containers cheap.

Host facts (``USER_HZ``, online CPUs, the machine's memory) are read once.
"""

from __future__ import annotations

import os
import time

from supervisor.containers.stats import Reading, reading_from_files
from supervisor.runtime.cgroups import CgroupLayout, read_small


class Sampler:
    def __init__(self, cgroups: CgroupLayout) -> None:
        self._cgroups = cgroups
        self._clk_tck = os.sysconf("SC_CLK_TCK")
        self._online_cpus = os.sysconf("SC_NPROCESSORS_ONLN")
        self._machine_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    def read(self, cid: str, *, pid: int, networks: bool) -> Reading | None:
        """One sample of container ``cid`` whose init is ``pid``; ``networks``: read its
        namespace's interfaces. None when the container is gone (it exited meanwhile)."""
        files = self._cgroups.stats_files(cid)
        if files is None:
            return None
        net_dev = read_small(f"/proc/{pid}/net/dev") if networks and pid > 0 else None
        return reading_from_files(
            files,
            v2=self._cgroups.v2,
            time_ns=time.time_ns(),
            proc_stat=read_small("/proc/stat") or "",
            net_dev=net_dev,
            clk_tck=self._clk_tck,
            online_cpus=self._online_cpus,
            machine_memory=self._machine_memory,
        )
