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
