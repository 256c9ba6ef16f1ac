"""runtime/seccomp.py: what the default filter denies, and what capabilities give back."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from supervisor.runtime.seccomp import (
    NAMESPACE_FLAGS,
    ProfileError,
    default_profile,
    from_docker_profile,
)
from supervisor.runtime.spec import ALL_CAPABILITIES, DEFAULT_CAPABILITIES, SpecInput, build_spec


def denied(profile: dict[str, Any]) -> set[str]:
    (rule,) = [r for r in profile["syscalls"] if r["errnoRet"] == 1 and "args" not in r]
    return set(rule["names"])


def test_default_denies_the_ways_out_and_allows_the_rest() -> None:
    profile: Any = default_profile(DEFAULT_CAPABILITIES)
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = denied(profile)
    assert {"keyctl", "mount", "bpf", "init_module", "setns", "reboot", "userfaultfd"} <= names
    assert not {"ptrace", "process_vm_readv", "read", "clone", "unshare"} & names
    clone3 = [r for r in profile["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    clone_flags = [
        r["args"][0]["value"]
        for r in profile["syscalls"]
        if r["names"] == ["clone"] and "args" in r
    ]
    assert clone_flags == list(NAMESPACE_FLAGS)


def test_capabilities_give_their_calls_back() -> None:
    names = denied(default_profile((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_TIME")))
    assert not {"mount", "setns", "bpf", "clock_settime"} & names
    assert "init_module" in names and "keyctl" in names
    rules: Any = default_profile(("CAP_SYS_ADMIN",))["syscalls"]
    assert not [r for r in rules if r["names"] in (["clone"], ["unshare"])]


def test_everything_held_still_denies_the_unguarded() -> None:
    assert {"keyctl", "add_key", "kexec_load", "io_uring_setup"} <= denied(
        default_profile(ALL_CAPABILITIES)
    )


def test_the_spec_carries_it_unless_privileged_or_unconfined() -> None:
    base = SpecInput(container_id="c" * 64, args=("true",), env=())
    linux: Any = build_spec(base)["linux"]
    assert linux["seccomp"] == default_profile(DEFAULT_CAPABILITIES)
    for changed in (attrs.evolve(base, privileged=True), attrs.evolve(base, seccomp=False)):
        linux = build_spec(changed)["linux"]
        assert "seccomp" not in linux


PROFILE: Any = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"name": "arm_only", "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    ],
}  # fmt: skip


def test_a_docker_profile_reads_as_moby_reads_it() -> None:
    got: Any = from_docker_profile(PROFILE, DEFAULT_CAPABILITIES, kernel=(6, 1))
    assert got["defaultAction"] == "SCMP_ACT_ERRNO" and got["defaultErrnoRet"] == 1
    assert got["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [r["names"] for r in got["syscalls"]] == [
        ["read", "write"],
        ["ptrace"],
        ["arch_prctl"],  # Docker's own default.json names arches as Go does: amd64
        ["personality"],
    ]
    assert got["syscalls"][3]["args"] == [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
    admin: Any = from_docker_profile(PROFILE, ("CAP_SYS_ADMIN",), kernel=(4, 4))
    assert [r["names"] for r in admin["syscalls"]] == [["read", "write"], ["mount"], ["arch_prctl"]]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ([], "not a JSON object"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["X"], "archMap": [{}]}, "use either"),
        ({"defaultAction": "ALLOW"}, "invalid defaultAction"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"]}]}, "use either 'name' or 'names'"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}, "syscalls is not a list"),
    ],
)  # fmt: skip
def test_what_is_not_a_profile_is_refused(profile: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        from_docker_profile(profile, ())
