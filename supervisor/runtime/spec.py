"""Build an OCI runtime ``config.json`` from what berth knows about a container. Pure.

Theory of operation: :func:`build_spec` takes a :class:`SpecInput` — every fact it
needs, host facts included (STYLE.md §2 rule 4: no hidden host inputs, unlike runc's
``specconv.Example``) — and returns the spec as plain data. :func:`resolve_command`
applies Docker's entrypoint/cmd rules and :func:`merge_env` its environment rules, so
the API layer and the spec agree on one answer. The defaults (capabilities, masked and
read-only paths, mounts) are Docker's, from moby's ``oci/defaults.go``.

Imports: standard library, attrs and runtime/seccomp.py (pure too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from supervisor.runtime.seccomp import default_profile, from_docker_profile

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_PATH = "/sbin/docker-init"  # where Docker binds its init (tini) too

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

CPU_PERIOD_US = 100_000


class CommandError(ValueError):
    """No command could be resolved (Docker: 400 "No command specified")."""


class CapabilityError(ValueError):
    """A ``CapAdd``/``CapDrop`` name the kernel does not know (Docker: 400)."""


@attrs.frozen
class Resources:
    memory: int = 0  # bytes, 0 = unlimited
    memory_swap: int = 0  # memory+swap bytes; 0 = Docker's default (2x memory); -1 = unlimited
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0  # µs per period (--cpu-quota); 0 = none; NanoCpus wins when both
    cpu_period: int = 0  # µs (--cpu-period); 0 = the kernel's default (100 ms)
    pids_limit: int = 0  # 0 or negative = unlimited
    memory_reservation: int = 0  # bytes (soft limit), 0 = none
    cpuset_cpus: str = ""  # "0-1,3"
    cpuset_mems: str = ""


@attrs.frozen
class BindMount:
    """A bind mount: ``rbind`` (or ``bind`` when not ``recursive``), its propagation,
    ``ro`` or ``rw`` — the options moby's ``WithMounts`` gives user binds and volumes."""

    source: str
    destination: str
    readonly: bool = False
    propagation: str = "rprivate"
    recursive: bool = True


@attrs.frozen
class TmpfsMount:
    """A tmpfs at ``destination``; ``options`` are final (see
    ``supervisor.volumes.mounts.tmpfs_options``: Docker's defaults merged with the user's)."""

    destination: str
    options: tuple[str, ...] = ("noexec", "nosuid", "nodev", "rprivate")


UserMount = BindMount | TmpfsMount


@attrs.frozen
class Device:
    """A host device node a privileged container gets (OCI ``linux.devices``)."""

    path: str
    type: str  # "c" or "b"
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int


@attrs.frozen
class SpecInput:
    container_id: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    hostname: str = ""
    domainname: str = ""
    readonly_rootfs: bool = False
    tty: bool = False
    rootfs: str = "rootfs"
    init: bool = False
    init_source: str = "/usr/bin/tini-static"
    cgroups_path: str = ""
    resources: Resources = Resources()
    network_mode: str = "none"  # "none" | "host" | a netns path
    binds: tuple[BindMount, ...] = ()  # berth's own (/etc/hosts...): a user mount replaces one
    mounts: tuple[UserMount, ...] = ()  # the user's binds, volumes and tmpfs mounts
    nofile: tuple[int, int] = (1048576, 1048576)  # already capped to the daemon's hard limit
    swap_accounting: bool = True
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES  # see container_capabilities
    # --privileged: no masked or read-only paths, /sys and cgroups writable, every device
    # allowed and the host's device nodes (``devices``) made in the container's /dev.
    privileged: bool = False
    devices: tuple[Device, ...] = ()  # made in /dev: the host's (privileged) or --device's
    device_rules: tuple[tuple[str, int, int, str], ...] = ()  # (type, major, minor, access)
    # The HostConfig options of containers/hostopts.py.
    no_new_privileges: bool = False
    rlimits: tuple[tuple[str, int, int], ...] = ()  # (RLIMIT_*, soft, hard); NOFILE wins
    sysctls: tuple[tuple[str, str], ...] = ()
    shm_size: int = 64 * 1024 * 1024
    oom_score_adj: int = 0
    host_pid: bool = False
    host_ipc: bool = False
    host_uts: bool = False
    no_shm: bool = False  # --ipc none
    seccomp: bool = True  # berth's default filter (runtime/seccomp.py) unless privileged
    seccomp_profile: dict[str, Any] | None = None  # a Docker profile instead of the default
    machine: str = "x86_64"  # the host's architecture and kernel, for the filter
    kernel: tuple[int, int] = (0, 0)


def resolve_command(
    *,
    entrypoint: Sequence[str] | None,
    cmd: Sequence[str] | None,
    image_entrypoint: Sequence[str] | None,
    image_cmd: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """Docker's rules for the process to run, as (entrypoint, cmd) to store in Config.

    - A non-empty entrypoint given with the container replaces the image's and drops the
      image's CMD (moby ``daemon/commit.go`` ``merge``).
    - Otherwise the container's CMD, if any, replaces the image's CMD, and the image's
      entrypoint stays unless the container sent an empty list (``"Entrypoint": []``).
    - Last, ``[""]`` (``--entrypoint ""``) means none (moby ``mergeAndVerifyConfig``).
    """
    if entrypoint:
        ep, final_cmd = list(entrypoint), list(cmd or [])
    else:
        ep = list(image_entrypoint or []) if entrypoint is None else []
        final_cmd = list(cmd) if cmd else list(image_cmd or [])
    return ([] if ep == [""] else ep), final_cmd


def process_args(entrypoint: Sequence[str], cmd: Sequence[str]) -> list[str]:
    """The argv: entrypoint + cmd. Raises CommandError when empty."""
    args = [*entrypoint, *cmd]
    if not args or args[0] == "":
        raise CommandError("No command specified")
    return args


def merge_env(image_env: Sequence[str], env: Sequence[str]) -> list[str]:
    """The container's env, then the image's for keys it lacks (moby ``merge``), PATH defaulted.

    A key the container repeats keeps its first place and its last value, as Docker's
    ``ReplaceOrAppendEnvValues`` leaves the process environment.
    """
    merged: dict[str, str] = {}
    for item in env:
        merged[item.split("=", 1)[0]] = item
    own = set(merged)
    for item in image_env:
        key = item.split("=", 1)[0]
        if key not in own:
            merged[key] = item
    if "PATH" not in merged:
        merged = {"PATH": f"PATH={DEFAULT_PATH}", **merged}
    return list(merged.values())


def _resources(r: Resources, *, swap_accounting: bool) -> dict[str, object]:
    out: dict[str, object] = {"devices": [{"allow": False, "access": "rwm"}]}
    memory: dict[str, object] = {}
    if r.memory > 0:
        memory["limit"] = r.memory
        if swap_accounting:
            if r.memory_swap == 0:
                memory["swap"] = r.memory * 2  # Docker's default: as much swap as memory
            elif r.memory_swap > 0:
                memory["swap"] = r.memory_swap
            else:
                memory["swap"] = -1
    if r.memory_reservation > 0:
        memory["reservation"] = r.memory_reservation
    if memory:
        out["memory"] = memory
    cpu: dict[str, object] = {}
    if r.nano_cpus > 0:
        cpu["period"] = CPU_PERIOD_US
        cpu["quota"] = r.nano_cpus * CPU_PERIOD_US // 1_000_000_000
    else:
        if r.cpu_quota > 0:
            cpu["quota"] = r.cpu_quota
        if r.cpu_period > 0:
            cpu["period"] = r.cpu_period
    if r.cpu_shares > 0:
        cpu["shares"] = r.cpu_shares
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit > 0:
        out["pids"] = {"limit": r.pids_limit}
    return out


def _mounts(inp: SpecInput) -> list[dict[str, object]]:
    mounts: list[dict[str, object]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "rw" if inp.privileged else "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["rw" if inp.privileged else "ro", "nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "bind",
            "source": "/dev/shm",
            "options": ["rbind", "rprivate", "rw"],
        }
        if inp.host_ipc  # Docker shares the host's /dev/shm with --ipc host
        else {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={inp.shm_size}"],
        },
    ]
    if inp.no_shm:
        mounts = [m for m in mounts if m["destination"] != "/dev/shm"]
    if inp.init:
        mounts.append(
            {
                "destination": INIT_PATH,
                "type": "bind",
                "source": inp.init_source,
                "options": ["rbind", "ro"],
            }
        )
    # moby ``WithMounts``: a user mount replaces a default one at the same destination
    # (one on /dev replaces everything below /dev too), and the user's mounts plus
    # berth's own binds are sorted by depth so a parent is mounted before its children.
    user = {m.destination for m in inp.mounts}
    if user:
        mounts = [
            m
            for m in mounts
            if m["destination"] not in user
            and not ("/dev" in user and str(m["destination"]).startswith("/dev/"))
        ]
    own: list[UserMount] = [b for b in inp.binds if b.destination not in user]
    for m in sorted([*own, *inp.mounts], key=_depth):
        mounts.append(_mount_entry(m))
    return mounts


def _device_entry(d: Device) -> dict[str, object]:
    return {
        "path": d.path,
        "type": d.type,
        "major": d.major,
        "minor": d.minor,
        "fileMode": d.file_mode,
        "uid": d.uid,
        "gid": d.gid,
    }


def _depth(m: UserMount) -> int:
    return len([p for p in m.destination.split("/") if p])


def _mount_entry(m: UserMount) -> dict[str, object]:
    if isinstance(m, TmpfsMount):
        return {
            "destination": m.destination,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": list(m.options),
        }
    options = ["rbind" if m.recursive else "bind", m.propagation or "rprivate"]
    options.append("ro" if m.readonly else "rw")
    return {"destination": m.destination, "type": "bind", "source": m.source, "options": options}


def build_spec(inp: SpecInput) -> dict[str, object]:
    """The OCI runtime spec (``config.json``) for ``inp``."""
    args = [INIT_PATH, "--", *inp.args] if inp.init else list(inp.args)
    caps = list(inp.capabilities)
    shared = {"pid": inp.host_pid, "ipc": inp.host_ipc, "uts": inp.host_uts}
    namespaces: list[dict[str, str]] = [
        {"type": t} for t in ("pid", "ipc", "uts", "mount") if not shared.get(t)
    ]
    if inp.network_mode == "none":
        namespaces.append({"type": "network"})
    elif inp.network_mode != "host":
        namespaces.append({"type": "network", "path": inp.network_mode})
    resources = _resources(inp.resources, swap_accounting=inp.swap_accounting)
    linux: dict[str, object] = {"namespaces": namespaces}
    if inp.devices:
        linux["devices"] = [_device_entry(d) for d in inp.devices]
    if inp.privileged:
        resources["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        resources["devices"] = [
            {"allow": False, "access": "rwm"},
            *(
                {"allow": True, "type": kind, "major": major, "minor": minor, "access": access}
                for kind, major, minor, access in inp.device_rules
            ),
        ]
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    linux["resources"] = resources
    if inp.seccomp and not inp.privileged:
        linux["seccomp"] = (
            default_profile(caps, inp.machine)
            if inp.seccomp_profile is None
            else from_docker_profile(
                inp.seccomp_profile, caps, machine=inp.machine, kernel=inp.kernel
            )
        )
    if inp.cgroups_path:
        linux["cgroupsPath"] = inp.cgroups_path
    sysctl = dict(inp.sysctls)
    if inp.domainname and not inp.host_uts:
        # runc before 1.2 ignores the top-level "domainname"; the sysctl reaches the
        # container's UTS namespace with any runtime.
        sysctl["kernel.domainname"] = inp.domainname
    if sysctl:
        linux["sysctl"] = sysctl
    rlimits = {"RLIMIT_NOFILE": (inp.nofile[0], inp.nofile[1])}
    rlimits.update({kind: (soft, hard) for kind, soft, hard in inp.rlimits})
    process: dict[str, object] = {
        "terminal": inp.tty,
        "user": {
            "uid": inp.uid,
            "gid": inp.gid,
            **({"additionalGids": list(inp.additional_gids)} if inp.additional_gids else {}),
        },
        "args": args,
        "env": list(inp.env),
        "cwd": inp.cwd or "/",
        "capabilities": dict.fromkeys(("bounding", "effective", "permitted"), caps),
        "rlimits": [
            {"type": kind, "soft": soft, "hard": hard} for kind, (soft, hard) in rlimits.items()
        ],
        "noNewPrivileges": inp.no_new_privileges,
        "oomScoreAdj": inp.oom_score_adj,
    }
    uts: dict[str, object] = {}  # a hostname needs a UTS namespace of the container's own
    if not inp.host_uts:
        uts["hostname"] = inp.hostname
        if inp.domainname:
            uts["domainname"] = inp.domainname
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": inp.readonly_rootfs},
        **uts,
        "mounts": _mounts(inp),
        "linux": linux,
    }


#: Capability numbers (linux/capability.h), for reading a process's capability masks.
CAPABILITY_NUMBERS = {
    name: number
    for number, name in enumerate(
        (
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_MKNOD",
            "CAP_LEASE",
            "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ",
        )
    )
}


#: Every capability the kernel knows of (``--privileged``): Docker grants them all.
#: Docker's defaults first, then the others in kernel order.
ALL_CAPABILITIES = (
    *DEFAULT_CAPABILITIES,
    *(name for name in CAPABILITY_NUMBERS if name not in DEFAULT_CAPABILITIES),
)


def normalize_capabilities(names: Sequence[str]) -> list[str]:
    """Docker's reading of ``CapAdd``/``CapDrop`` names: any case, ``CAP_`` optional,
    ``ALL`` for every capability.

    Raises:
        CapabilityError: ``unknown capability: "CAP_FOO"`` (moby's words).
    """
    out = []
    for name in names:
        cap = name.upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap != "ALL" and cap not in CAPABILITY_NUMBERS:
            raise CapabilityError(f'unknown capability: "{cap}"')
        out.append(cap)
    return out


def container_capabilities(
    add: Sequence[str],
    drop: Sequence[str],
    *,
    privileged: bool,
    available: frozenset[str] | None,
) -> tuple[str, ...]:
    """A container's capabilities, by moby's rules (``TweakCapabilities``): privileged
    gets them all; ``--cap-add ALL`` all but the dropped; ``--cap-drop ALL`` only the
    added; otherwise Docker's defaults minus the dropped plus the added. Only what
    ``available`` holds (the daemon's bounding set) is kept: more cannot be granted, and
    crun refuses a spec that asks (runc drops them silently).

    Raises:
        CapabilityError: an unknown name.
    """
    adds, drops = normalize_capabilities(add), normalize_capabilities(drop)
    if privileged or "ALL" in adds:
        caps = [c for c in ALL_CAPABILITIES if privileged or c not in drops]
    elif "ALL" in drops:
        caps = list(dict.fromkeys(adds))
    else:
        caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
        caps += [c for c in dict.fromkeys(adds) if c not in caps]
    return tuple(c for c in caps if available is None or c in available)


def capabilities_in_mask(mask: int) -> frozenset[str]:
    """The capability names set in a mask such as ``CapBnd`` of /proc/PID/status."""
    return frozenset(name for name, bit in CAPABILITY_NUMBERS.items() if mask >> bit & 1)


def exec_process(
    base: dict[str, Any],
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: tuple[int, int, tuple[int, ...]] | None,
    tty: bool,
    privileged: bool,
    grantable: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The OCI process of ``docker exec``: the container's own process (``base``, from
    its ``config.json``) with the exec's command, environment (``env`` entries replace
    the container's of the same name), working directory, user and terminal.
    ``privileged`` grants every capability in ``grantable`` (the daemon's own bounding
    set: no runtime can grant more, and crun refuses to try).

    Raises:
        CommandError: an empty command.
    """
    if not args or not args[0]:
        raise CommandError("No exec command specified")
    process = dict(base)
    process["args"] = list(args)
    process["env"] = merge_env(list(base.get("env") or []), env)
    process["cwd"] = cwd or str(base.get("cwd") or "/")
    process["terminal"] = tty
    if user is not None:
        uid, gid, extra = user
        process["user"] = {
            "uid": uid,
            "gid": gid,
            **({"additionalGids": list(extra)} if extra else {}),
        }
    if privileged:
        caps = [c for c in ALL_CAPABILITIES if grantable is None or c in grantable]
        process["capabilities"] = {
            key: list(caps) for key in ("bounding", "effective", "permitted")
        }
    process.pop("consoleSize", None)
    return process
