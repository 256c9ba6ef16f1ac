"""berth's default seccomp filter (OCI ``linux.seccomp``). Pure.

Docker confines every container that is not privileged with a seccomp profile; this is
berth's, written for berth. Where Docker's is an allow-list of ~350 system calls,
berth's denies the calls that are a container's way out or into the kernel's least
hardened corners, and allows the rest, so a program using a system call newer than the
profile still runs. Each denied call fails with ``EPERM``, as Docker's do.

A call that a capability guards is denied only while the container lacks that
capability, as in Docker's profile (``--cap-add SYS_ADMIN`` gives ``mount`` back, for
instance). ``clone``/``unshare`` are denied only with a namespace flag (creating a user
namespace needs no capability and would hand the process every capability inside it),
and ``clone3``, whose flags a filter cannot see, fails with ``ENOSYS`` so the C
library falls back to ``clone``.

Not applied to ``--privileged`` containers or with ``--security-opt seccomp=unconfined``.
"""

from __future__ import annotations

from collections.abc import Collection

EPERM = 1
ENOSYS = 38

# x86-64 and the two 32-bit ABIs it runs (a call made through int 0x80 or x32 is
# filtered too); other hosts get their native and compat architectures.
ARCHITECTURES = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}

# Denied unless the container holds the capability (None: always denied).
_GUARDED: dict[str | None, tuple[str, ...]] = {
    None: (
        "add_key",  # the kernel keyring is not namespaced
        "keyctl",
        "request_key",
        "kexec_file_load",
        "kexec_load",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "nfsservctl",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
        "vm86",
        "vm86old",
        "io_uring_setup",  # io_uring: a large, fast-moving attack surface
        "io_uring_enter",
        "io_uring_register",
    ),
    "CAP_SYS_ADMIN": (
        "bpf",
        "fanotify_init",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "lookup_dcookie",
        "mount",
        "mount_setattr",
        "move_mount",
        "open_tree",
        "perf_event_open",
        "pivot_root",
        "quotactl",
        "quotactl_fd",
        "setdomainname",
        "sethostname",
        "setns",
        "swapoff",
        "swapon",
        "umount",
        "umount2",
    ),
    "CAP_SYS_MODULE": ("delete_module", "finit_module", "init_module"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("ioperm", "iopl"),
    "CAP_SYS_TIME": ("clock_settime", "settimeofday", "stime"),
    # ptrace and process_vm_* stay allowed, as in Docker since kernel 4.8 (strace, gdb).
    "CAP_SYS_PTRACE": ("kcmp", "userfaultfd"),
    "CAP_DAC_READ_SEARCH": ("name_to_handle_at", "open_by_handle_at"),
    "CAP_SYSLOG": ("syslog",),
}

# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (linux/sched.h)
NAMESPACE_FLAGS = (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000)


def default_profile(capabilities: Collection[str], machine: str = "x86_64") -> dict[str, object]:
    """The OCI ``linux.seccomp`` for a container holding ``capabilities``."""
    denied = sorted(
        name
        for cap, names in _GUARDED.items()
        if cap is None or cap not in capabilities
        for name in names
    )
    syscalls: list[dict[str, object]] = [
        {"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]
    if "CAP_SYS_ADMIN" not in capabilities:
        # One rule per flag: a filter rule can test bits equal, not "any of them set".
        for name, index in (("clone", 0), ("unshare", 0)):
            syscalls.extend(
                {
                    "names": [name],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": EPERM,
                    "args": [
                        {
                            "index": index,
                            "value": flag,
                            "valueTwo": flag,
                            "op": "SCMP_CMP_MASKED_EQ",
                        }
                    ],
                }
                for flag in NAMESPACE_FLAGS
            )
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": list(ARCHITECTURES.get(machine, ())),
        "syscalls": syscalls,
    }


class ProfileError(ValueError):
    """A ``--security-opt seccomp=<profile>`` that is not a Docker seccomp profile."""


# The seccomp names of the architectures berth runs on (moby's nativeToSeccomp), and the
# names a profile's includes/excludes use for them (Go's GOARCH: "amd64", "arm64").
NATIVE = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def from_docker_profile(
    profile: object,
    capabilities: Collection[str],
    *,
    machine: str = "x86_64",
    kernel: tuple[int, int] = (0, 0),
) -> dict[str, object]:
    """A Docker seccomp profile (what ``docker run --security-opt seccomp=file.json``
    sends) as OCI ``linux.seccomp``, as moby's ``setupSeccomp`` reads it: ``archMap``
    entries for this machine, and only the rules whose ``includes``/``excludes`` (caps,
    arches, minKernel) fit this container and host.

    Raises:
        ProfileError: not a profile, with moby's words where it has them.
    """
    if not isinstance(profile, dict):
        raise ProfileError("decoding seccomp profile failed: not a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise ProfileError(
            "'architectures' and 'archMap' were specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    native = NATIVE.get(machine, "")
    arches: list[str] = list(_strings(profile.get("architectures"), "architectures"))
    for entry in _list(profile.get("archMap"), "archMap"):
        if isinstance(entry, dict) and entry.get("architecture") == native:
            arches.append(native)
            arches.extend(_strings(entry.get("subArchitectures"), "subArchitectures"))
    action = profile.get("defaultAction")
    if not isinstance(action, str) or not action.startswith("SCMP_ACT_"):
        raise ProfileError(f"invalid defaultAction in seccomp profile: {action!r}")
    out: dict[str, object] = {"defaultAction": action, "architectures": arches}
    if isinstance(profile.get("defaultErrnoRet"), int):
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    rules = []
    for call in _list(profile.get("syscalls"), "syscalls"):
        if not isinstance(call, dict):
            raise ProfileError("decoding seccomp profile failed: a syscall is not an object")
        if call.get("name") and call.get("names"):
            raise ProfileError(
                "'name' and 'names' were specified in the seccomp profile, use either "
                "'name' or 'names'"
            )
        if not _applies(call, capabilities, GOARCH.get(machine, machine), kernel):
            continue
        names = [call["name"]] if call.get("name") else list(_strings(call.get("names"), "names"))
        rule: dict[str, object] = {"names": names, "action": str(call.get("action") or "")}
        for key in ("errnoRet", "args"):
            if call.get(key) is not None:
                rule[key] = call[key]
        rules.append(rule)
    out["syscalls"] = rules
    return out


def _applies(
    call: dict[str, object], capabilities: Collection[str], goarch: str, kernel: tuple[int, int]
) -> bool:
    includes = call.get("includes") or {}
    excludes = call.get("excludes") or {}
    if not isinstance(includes, dict) or not isinstance(excludes, dict):
        raise ProfileError("decoding seccomp profile failed: includes/excludes not objects")
    if goarch in _strings(excludes.get("arches"), "arches"):
        return False
    wanted_arches = _strings(includes.get("arches"), "arches")
    if wanted_arches and goarch not in wanted_arches:
        return False
    if set(_strings(excludes.get("caps"), "caps")) & set(capabilities):
        return False
    if not set(_strings(includes.get("caps"), "caps")) <= set(capabilities):
        return False
    minimum = includes.get("minKernel")
    if isinstance(minimum, str) and minimum:
        parts = minimum.split(".")
        try:
            wanted = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
        except ValueError:
            raise ProfileError(f"invalid kernel version: {minimum}") from None
        if kernel < wanted:
            return False
    return True


def _list(value: object, key: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f"decoding seccomp profile failed: {key} is not a list")
    return value


def _strings(value: object, key: str) -> tuple[str, ...]:
    items = _list(value, key)
    if not all(isinstance(v, str) for v in items):
        raise ProfileError(f"decoding seccomp profile failed: {key} holds a non-string")
    return tuple(str(v) for v in items)
