"""Tests for supervisor.containers.update: Docker's update validation and the runtime's
resources."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.update import UpdatePlan, plan_update
from supervisor.errors import InvalidArgument

MIB = 1024 * 1024
CID = "c0" * 32
BASE: dict[str, Any] = {
    "Memory": 0,
    "MemorySwap": 0,
    "NanoCpus": 0,
    "CpuShares": 0,
    "PidsLimit": None,
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "NetworkMode": "default",
}
# What the docker CLI sends for `docker update --memory 64m` (every field, zeros unset).
CLI_ZEROS: dict[str, Any] = {
    "BlkioWeight": 0,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "CpuShares": 0,
    "Memory": 0,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "NanoCpus": 0,
    "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
}


def plan(
    body: dict[str, Any], hc: dict[str, Any] | None = None, *, swap: bool = True
) -> UpdatePlan:
    return plan_update({**BASE, **(hc or {})}, body, cid=CID, swap_accounting=swap, ncpu=2)


def test_memory_update_moves_the_default_swap_with_it() -> None:
    p = plan({**CLI_ZEROS, "Memory": 64 * MIB}, {"Memory": 32 * MIB})
    assert p.resources == {"memory": {"limit": 64 * MIB, "swap": 128 * MIB}}
    assert p.host_config["Memory"] == 64 * MIB and p.host_config["MemorySwap"] == 0
    assert p.warnings == []


def test_memory_without_swap_accounting_sends_no_swap() -> None:
    p = plan({"Memory": 64 * MIB}, swap=False)
    assert p.resources == {"memory": {"limit": 64 * MIB}}


def test_explicit_and_unlimited_swap() -> None:
    assert plan({"Memory": 64 * MIB, "MemorySwap": 96 * MIB}).resources == {
        "memory": {"limit": 64 * MIB, "swap": 96 * MIB}
    }
    p = plan({"MemorySwap": -1}, {"Memory": 64 * MIB})
    assert p.resources == {"memory": {"limit": 64 * MIB, "swap": -1}}
    assert p.host_config["MemorySwap"] == -1


def test_cpu_fields() -> None:
    p = plan({"NanoCpus": 500_000_000, "CpuShares": 512})
    assert p.resources == {"cpu": {"shares": 512, "period": 100_000, "quota": 50_000}}
    assert p.host_config["NanoCpus"] == 500_000_000
    q = plan({"CpuQuota": 20_000, "CpuPeriod": 50_000})
    assert q.resources == {"cpu": {"quota": 20_000, "period": 50_000}}
    assert (q.host_config["CpuQuota"], q.host_config["CpuPeriod"]) == (20_000, 50_000)


@pytest.mark.parametrize(
    ("given", "stored", "limit"),
    [(30, 30, 30), (0, None, -1), (-1, None, -1)],
    ids=["limit", "zero-unlimited", "minus-one-unlimited"],
)
def test_pids_limit(given: int, stored: int | None, limit: int) -> None:
    p = plan({"PidsLimit": given}, {"PidsLimit": 10})
    assert p.host_config["PidsLimit"] == stored
    assert p.resources == {"pids": {"limit": limit}}


def test_absent_pids_limit_is_unchanged() -> None:
    p = plan(dict(CLI_ZEROS), {"PidsLimit": 10})
    assert p.host_config["PidsLimit"] == 10 and p.resources == {}


def test_restart_policy_is_stored_and_needs_no_runtime_call() -> None:
    p = plan({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
    assert p.host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert p.resources == {}


def test_cli_zeros_change_nothing() -> None:
    p = plan(dict(CLI_ZEROS), {"Memory": 32 * MIB, "CpuShares": 100})
    assert p.host_config == {**BASE, "Memory": 32 * MIB, "CpuShares": 100}
    assert p.resources == {} and p.warnings == []


def test_unsupported_fields_are_warned_about() -> None:
    p = plan({**CLI_ZEROS, "BlkioWeight": 300, "CpusetCpus": "0"})
    assert p.warnings == [
        "berth cannot apply BlkioWeight to a container; it was ignored",
        "berth cannot apply CpusetCpus to a container; it was ignored",
    ]


@pytest.mark.parametrize(
    ("body", "hc", "message"),
    [
        ({"Memory": 1000}, {}, "Minimum memory limit allowed is 6MB"),
        ({"Memory": -5}, {}, "Minimum memory limit allowed is 6MB"),
        (
            {"Memory": 64 * MIB, "MemorySwap": 32 * MIB},
            {},
            "Minimum memoryswap limit should be larger",
        ),
        (
            {"MemorySwap": 32 * MIB},
            {"Memory": 64 * MIB},
            "Minimum memoryswap limit should be larger",
        ),
        ({"MemorySwap": 64 * MIB}, {}, "You should always set the Memory limit"),
        (
            {"Memory": 256 * MIB},
            {"Memory": 64 * MIB, "MemorySwap": 128 * MIB},
            f"Cannot update container {CID}: Memory limit should be smaller than already set memoryswap limit",
        ),
        ({"NanoCpus": 3_000_000_000}, {}, "Range of CPUs is from 0.01 to 2.00"),
        ({"NanoCpus": 1, "CpuQuota": 2000}, {}, "Nano CPUs and CPU Quota cannot both be set"),
        ({"NanoCpus": 1, "CpuPeriod": 2000}, {}, "Nano CPUs and CPU Period cannot both be set"),
        ({"NanoCpus": 10**9}, {"CpuQuota": 5000}, "Nano CPUs cannot be updated"),
        ({"CpuQuota": 5000}, {"NanoCpus": 10**9}, "CPU Quota/Period cannot be updated"),
        ({"CpuPeriod": 10}, {}, "CPU cfs period can not be less than 1ms"),
        ({"CpuQuota": 10}, {}, "CPU cfs quota can not be less than 1ms"),
        ({"CpuShares": -1}, {}, "invalid CpuShares"),
        ({"Memory": "64m"}, {}, "cannot unmarshal str"),
        ({"PidsLimit": True}, {}, "cannot unmarshal"),
        ({"RestartPolicy": {"Name": "sometimes"}}, {}, "invalid restart policy"),
        ({"RestartPolicy": "always"}, {}, "invalid restart policy"),
        (
            {"RestartPolicy": {"Name": "always"}},
            {"AutoRemove": True},
            "Restart policy cannot be updated because AutoRemove is enabled",
        ),
    ],
    ids=[
        "tiny-memory",
        "negative-memory",
        "swap-below-memory",
        "swap-below-stored-memory",
        "swap-without-memory",
        "memory-above-stored-swap",
        "too-many-cpus",
        "nano-and-quota",
        "nano-and-period",
        "nano-over-stored-quota",
        "quota-over-stored-nano",
        "short-period",
        "short-quota",
        "negative-shares",
        "memory-string",
        "pids-bool",
        "unknown-policy",
        "policy-not-object",
        "autoremove-policy",
    ],
)
def test_refusals(body: dict[str, Any], hc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        plan(body, hc)
    assert message in str(err.value)


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidArgument):
        plan_update(BASE, [], cid=CID, swap_accounting=True, ncpu=2)


def test_the_stored_host_config_is_not_mutated() -> None:
    hc = {**BASE, "Memory": 32 * MIB}
    plan_update(hc, {"Memory": 64 * MIB}, cid=CID, swap_accounting=True, ncpu=2)
    assert hc["Memory"] == 32 * MIB


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@given(
    st.dictionaries(st.sampled_from([*CLI_ZEROS, "PidsLimit", "KernelMemory"]), _values, max_size=6)
)
def test_plan_update_raises_only_invalid_argument(body: dict[str, Any]) -> None:
    try:
        p = plan(body)
    except InvalidArgument:
        return
    assert set(p.resources) <= {"memory", "cpu", "pids"}
