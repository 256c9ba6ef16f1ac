"""``POST /containers/{id}/update``: validate new limits, merge them into the stored
HostConfig and say what to give the runtime. Pure.

Theory of operation: Docker's update body is ``Resources`` plus ``RestartPolicy``, and
a zero (or an absent key) means *unchanged* — the docker CLI sends every field, zeros
for the flags not given (``PidsLimit`` alone is null when unchanged, and 0 or -1 there
means unlimited). :func:`plan_update` checks the body with Docker's messages (moby
``verifyContainerSettings`` and ``UpdateContainer``: 400 either way, the latter's
prefixed "Cannot update container <id>: "), and returns the :class:`UpdatePlan`:

* ``host_config``: the new HostConfig to store (the old one with the changed fields);
* ``resources``: the OCI ``LinuxResources`` for ``runc update --resources`` holding only
  what changed (the runtime leaves zero fields alone), applied when the container runs;
* ``warnings``: Docker's ``Warnings`` (fields berth accepts but cannot apply).

Swap follows the spec builder's rule: ``MemorySwap`` 0 means twice the memory limit, so a
new memory limit moves a default swap limit with it (cgroup v1 refuses a memory limit
above the memory+swap limit).

Imports: standard library, attrs and ``supervisor.containers.{config,restart}`` (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from supervisor.containers.config import MIN_MEMORY
from supervisor.containers.restart import parse_policy, to_api
from supervisor.errors import InvalidArgument

CPU_PERIOD_US = 100_000  # the period --cpus uses (runtime/spec.py)
# Fields of Docker's Resources berth stores but cannot apply to a container.
UNSUPPORTED = (
    "BlkioWeight",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "MemoryReservation",
    "KernelMemory",
    "KernelMemoryTCP",
    "MemorySwappiness",
)


@attrs.frozen
class UpdatePlan:
    host_config: dict[str, Any]
    resources: dict[str, Any]
    warnings: list[str]


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f"UpdateConfig.{key} of type int64"
        )
    return value


def _set(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    return value not in (None, 0, "", False)


def _check_values(body: Mapping[str, Any], ncpu: int) -> None:
    """moby ``verifyContainerResources`` for the fields given."""
    memory = _int(body, "Memory")
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = _int(body, "MemorySwap")
    if swap > 0 and memory > 0 and swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    nano = _int(body, "NanoCpus")
    if nano < 0 or nano > ncpu * 1_000_000_000:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )
    if nano > 0 and _int(body, "CpuPeriod") > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and _int(body, "CpuQuota") > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if _int(body, "CpuShares") < 0:
        raise InvalidArgument("invalid CpuShares: must be non-negative")
    period = _int(body, "CpuPeriod")
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    quota = _int(body, "CpuQuota")
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    pids = body.get("PidsLimit")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int)):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field UpdateConfig.PidsLimit of type int64"
        )


def plan_update(
    host_config: Mapping[str, Any],
    body: object,
    *,
    cid: str,
    swap_accounting: bool,
    ncpu: int,
) -> UpdatePlan:
    """What an update body changes.

    Args:
        host_config: the container's stored HostConfig.
        body: the request's JSON (Docker's ``UpdateConfig``).
        cid: the container's id (for Docker's messages).
        swap_accounting: whether the host limits memory+swap (v1 ``memsw``).
        ncpu: the host's CPUs (the range of ``NanoCpus``).

    Raises:
        InvalidArgument: a malformed body or values Docker refuses (400).
    """
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON body: expected an object")
    _check_values(body, ncpu)
    old = dict(host_config)
    new = dict(host_config)
    resources: dict[str, Any] = {}
    warnings = [
        f"berth cannot apply {key} to a container; it was ignored"
        for key in UNSUPPORTED
        if _set(body, key)
    ]

    def cannot(why: str) -> InvalidArgument:
        return InvalidArgument(f"Cannot update container {cid}: {why}")

    # -- memory -----------------------------------------------------------------------
    memory, swap = _int(body, "Memory"), _int(body, "MemorySwap")
    old_memory, old_swap = int(old.get("Memory") or 0), int(old.get("MemorySwap") or 0)
    if memory and old_swap > 0 and memory > old_swap and not swap:
        raise cannot(
            "Memory limit should be smaller than already set memoryswap limit, "
            "update the memoryswap at the same time"
        )
    new_memory = memory or old_memory
    if swap > 0 and not new_memory:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if swap > 0 and swap < new_memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if memory:
        new["Memory"] = memory
    if swap:
        new["MemorySwap"] = swap
    if memory or swap:
        limits: dict[str, int] = {"limit": new_memory}
        if swap_accounting:
            stored = int(new.get("MemorySwap") or 0)
            limits["swap"] = stored if stored else new_memory * 2
        resources["memory"] = limits

    # -- cpu --------------------------------------------------------------------------
    nano, quota, period = _int(body, "NanoCpus"), _int(body, "CpuQuota"), _int(body, "CpuPeriod")
    shares = _int(body, "CpuShares")
    if nano and (int(old.get("CpuQuota") or 0) > 0 or int(old.get("CpuPeriod") or 0) > 0):
        raise cannot(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set"
        )
    if (quota > 0 or period > 0) and int(old.get("NanoCpus") or 0) > 0:
        raise cannot(
            "Conflicting options: CPU Quota/Period cannot be updated as NanoCPUs has already been set"
        )
    cpu: dict[str, int] = {}
    if shares:
        new["CpuShares"] = shares
        cpu["shares"] = shares
    if nano:
        new["NanoCpus"] = nano
        cpu["period"] = CPU_PERIOD_US
        cpu["quota"] = nano * CPU_PERIOD_US // 1_000_000_000
    if quota:
        new["CpuQuota"] = quota
        cpu["quota"] = quota
    if period:
        new["CpuPeriod"] = period
        cpu["period"] = period
    if cpu:
        resources["cpu"] = cpu

    # -- pids -------------------------------------------------------------------------
    pids = body.get("PidsLimit")
    if isinstance(pids, int) and not isinstance(pids, bool):
        new["PidsLimit"] = pids if pids > 0 else None  # 0 and -1: unlimited
        resources["pids"] = {"limit": pids if pids > 0 else -1}

    # -- restart policy ---------------------------------------------------------------
    raw_policy = body.get("RestartPolicy")
    if isinstance(raw_policy, dict) and raw_policy.get("Name"):
        policy = parse_policy(raw_policy)
        if old.get("AutoRemove") and policy.name.value != "no":
            raise cannot(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        new["RestartPolicy"] = to_api(policy)
    elif raw_policy is not None and not isinstance(raw_policy, dict):
        raise InvalidArgument("invalid restart policy: expected an object")
    return UpdatePlan(host_config=new, resources=resources, warnings=warnings)
