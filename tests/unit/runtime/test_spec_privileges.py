"""CapAdd/CapDrop/Privileged in the OCI spec: moby's TweakCapabilities rules, its error
words, and what --privileged changes (paths, sysfs, devices)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.runtime.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    CapabilityError,
    Device,
    SpecInput,
    build_spec,
    container_capabilities,
    normalize_capabilities,
)

BASE = SpecInput(container_id="c" * 64, args=("true",), env=())


def caps(add: list[str], drop: list[str], *, privileged: bool = False) -> tuple[str, ...]:
    return container_capabilities(add, drop, privileged=privileged, available=None)


def test_names_in_any_case_with_or_without_the_prefix() -> None:
    assert normalize_capabilities(["net_admin", "CAP_SYS_ADMIN", "all"]) == [
        "CAP_NET_ADMIN",
        "CAP_SYS_ADMIN",
        "ALL",
    ]


def test_an_unknown_name_is_refused_in_mobys_words() -> None:
    with pytest.raises(CapabilityError, match=r'^unknown capability: "CAP_FOO"$'):
        normalize_capabilities(["foo"])


def test_defaults_minus_dropped_plus_added() -> None:
    got = caps(["NET_ADMIN", "chown"], ["CHOWN", "KILL"])
    assert got == (
        *(c for c in DEFAULT_CAPABILITIES if c not in ("CAP_CHOWN", "CAP_KILL")),
        "CAP_NET_ADMIN",
        "CAP_CHOWN",
    )


def test_drop_all_keeps_only_the_added() -> None:
    assert caps(["NET_BIND_SERVICE"], ["ALL"]) == ("CAP_NET_BIND_SERVICE",)
    assert caps([], ["all"]) == ()


def test_add_all_keeps_everything_but_the_dropped() -> None:
    assert caps(["ALL"], ["SYS_ADMIN"]) == tuple(
        c for c in ALL_CAPABILITIES if c != "CAP_SYS_ADMIN"
    )


def test_privileged_gets_everything_the_daemon_holds() -> None:
    assert caps([], ["ALL"], privileged=True) == ALL_CAPABILITIES
    held = frozenset({"CAP_CHOWN", "CAP_SYS_ADMIN"})
    got = container_capabilities([], [], privileged=True, available=held)
    assert got == ("CAP_CHOWN", "CAP_SYS_ADMIN")


@given(
    add=st.lists(st.sampled_from([*ALL_CAPABILITIES, "ALL"]), max_size=5),
    drop=st.lists(st.sampled_from([*ALL_CAPABILITIES, "ALL"]), max_size=5),
)
def test_never_duplicates_and_never_grants_what_is_not_available(
    add: list[str], drop: list[str]
) -> None:
    available = frozenset(ALL_CAPABILITIES[:20])
    got = container_capabilities(add, drop, privileged=False, available=available)
    assert len(got) == len(set(got)) and set(got) <= available
    if "ALL" not in add:
        assert not set(got) & (set(drop) - set(add))


def spec(**changes: Any) -> dict[str, Any]:
    return build_spec(attrs.evolve(BASE, **changes))


def linux(**changes: Any) -> dict[str, Any]:
    return spec(**changes)["linux"]  # type: ignore[no-any-return]


def test_the_spec_carries_the_capabilities_given() -> None:
    process = spec(capabilities=("CAP_KILL",))["process"]
    assert process["capabilities"]["bounding"] == ["CAP_KILL"]


def test_privileged_unmasks_paths_and_allows_every_device() -> None:
    tty0 = Device(path="/dev/tty0", type="c", major=4, minor=0, file_mode=0o620, uid=0, gid=5)
    got = linux(privileged=True, devices=(tty0,))
    assert "maskedPaths" not in got and "readonlyPaths" not in got
    assert got["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert got["devices"] == [
        {
            "path": "/dev/tty0",
            "type": "c",
            "major": 4,
            "minor": 0,
            "fileMode": 0o620,
            "uid": 0,
            "gid": 5,
        }
    ]
    mounts = {m["destination"]: m for m in spec(privileged=True)["mounts"]}
    assert "rw" in mounts["/sys"]["options"] and "rw" in mounts["/sys/fs/cgroup"]["options"]


def test_unprivileged_keeps_the_masks_and_read_only_sysfs() -> None:
    got = linux()
    assert got["maskedPaths"] and got["readonlyPaths"] and "devices" not in got
    assert got["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
