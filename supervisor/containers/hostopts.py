"""HostConfig options that shape a container's process and namespaces. Pure.

``SecurityOpt`` (``no-new-privileges``; ``seccomp=unconfined`` to run without berth's
default filter, ``seccomp=<a Docker profile's JSON>`` for another, ``apparmor`` only as ``unconfined``, which is what berth gives;
``label`` accepted and, as on any host without SELinux, without effect), ``Ulimits``, ``Sysctls``, ``ShmSize``,
``OomScoreAdj``, and ``PidMode``/``IpcMode``/``UTSMode`` ``host``. :func:`parse`
checks them at create with Docker's words where Docker has them, and gives the spec
what it needs; anything berth cannot honour is refused rather than ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import attrs

from supervisor.errors import InvalidArgument
from supervisor.runtime.seccomp import ProfileError, from_docker_profile

T = TypeVar("T")

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
RLIM_INFINITY = 2**64 - 1

# Every RLIMIT_* a container may set (go-units' ulimit names).
ULIMITS = {
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}

# Namespaced sysctls (what the kernel scopes to a container's IPC or network namespace).
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


@attrs.frozen
class DeviceRequest:
    """``--device host[:container[:permissions]]``."""

    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


@attrs.frozen
class HostOptions:
    no_new_privileges: bool = False
    seccomp: bool = True  # False with seccomp=unconfined
    seccomp_profile: dict[str, Any] | None = None  # a Docker profile: seccomp=<json>
    rlimits: tuple[tuple[str, int, int], ...] = ()  # (RLIMIT_*, soft, hard)
    sysctls: tuple[tuple[str, str], ...] = ()
    shm_size: int = DEFAULT_SHM_SIZE
    oom_score_adj: int = 0
    host_pid: bool = False
    host_ipc: bool = False
    host_uts: bool = False
    no_shm: bool = False  # --ipc none: no /dev/shm at all
    group_add: tuple[str, ...] = ()  # gids or group names of the container's /etc/group
    devices: tuple[DeviceRequest, ...] = ()


# HostConfig fields berth does not implement: a value other than the field's default is
# refused, never dropped (a client asking for a limit must not get a container without).
_UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "BlkioWeight": (0,),
    "BlkioWeightDevice": (),
    "BlkioDeviceReadBps": (),
    "BlkioDeviceWriteBps": (),
    "BlkioDeviceReadIOps": (),
    "BlkioDeviceWriteIOps": (),
    "CgroupParent": (),
    "CpuCount": (0,),
    "CpuPercent": (0,),
    "CpuRealtimePeriod": (0,),
    "CpuRealtimeRuntime": (0,),
    "DeviceCgroupRules": (),
    "DeviceRequests": (),
    "IOMaximumBandwidth": (0,),
    "IOMaximumIOps": (0,),
    "KernelMemory": (0,),
    "KernelMemoryTCP": (0,),
    "Links": (),
    "MemorySwappiness": (-1,),
    "OomKillDisable": (False,),
    "StorageOpt": (),
    "UsernsMode": ("host",),
    "VolumeDriver": ("local",),
}


def refuse_unsupported(hc: Mapping[str, Any]) -> None:
    """Raises InvalidArgument (400) for a field of :data:`_UNSUPPORTED` that is set."""
    for key, defaults in _UNSUPPORTED.items():
        value = hc.get(key)
        if value in (None, "", [], {}) or value in defaults:
            continue
        raise InvalidArgument(f"HostConfig.{key} is not supported by berth (got {value!r})")


def parse(hc: Mapping[str, Any], *, stored: bool = False) -> HostOptions:
    """The options of HostConfig ``hc``. Raises InvalidArgument (400).

    ``stored``: ``hc`` is a container's, accepted at create by an older berth that did
    not read every field; a field it would now refuse keeps its default (what that
    container always ran with) instead of keeping the container from starting.
    """
    if not stored:
        refuse_unsupported(hc)
    defaults = HostOptions()

    def read(field: str, reader: Callable[[], T]) -> T:
        try:
            return reader()
        except InvalidArgument:
            if not stored:
                raise
            if field == "security":
                return cast("T", (defaults.no_new_privileges, defaults.seccomp, None))
            return cast("T", getattr(defaults, field))

    host_ipc = read(
        "host_ipc",
        lambda: _mode(hc, "IpcMode", ("", "private", "shareable", "none", "host"), "IPC"),
    )
    host_network = str(hc.get("NetworkMode") or "") == "host"
    no_new_privileges, seccomp, profile = read(
        "security", lambda: _security_opts(hc.get("SecurityOpt"))
    )
    return HostOptions(
        no_new_privileges=no_new_privileges,
        seccomp=seccomp,
        seccomp_profile=profile,
        rlimits=read("rlimits", lambda: _ulimits(hc.get("Ulimits"))),
        sysctls=read(
            "sysctls",
            lambda: _sysctls(hc.get("Sysctls"), host_ipc=host_ipc, host_network=host_network),
        ),
        shm_size=read("shm_size", lambda: _shm_size(hc.get("ShmSize"))),
        oom_score_adj=read("oom_score_adj", lambda: _oom_score_adj(hc.get("OomScoreAdj"))),
        host_pid=read("host_pid", lambda: _pid_mode(hc)),
        host_ipc=host_ipc,
        no_shm=hc.get("IpcMode") == "none",
        host_uts=read("host_uts", lambda: _mode(hc, "UTSMode", ("", "host"), "UTS")),
        group_add=read("group_add", lambda: _strings(hc.get("GroupAdd"), "GroupAdd")),
        devices=read("devices", lambda: _devices(hc.get("Devices"))),
    )


def _strings(raw: object, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise InvalidArgument(f"json: cannot unmarshal into Go struct field {key} of type []string")
    return tuple(raw)


def _devices(raw: object) -> tuple[DeviceRequest, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field Devices of type []container.DeviceMapping"
        )
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidArgument(
                "json: cannot unmarshal into Go struct field Devices of type container.DeviceMapping"
            )
        host = item.get("PathOnHost")
        inside = item.get("PathInContainer") or host
        perms = item.get("CgroupPermissions") or "rwm"
        if not isinstance(host, str) or not host.startswith("/") or not isinstance(inside, str):
            raise InvalidArgument(f"invalid device mapping: {item!r}")
        if not inside.startswith("/"):
            raise InvalidArgument(f"{inside} is not an absolute path")
        if not isinstance(perms, str) or not perms or set(perms) - set("rwm"):
            raise InvalidArgument(f"invalid device cgroup permissions: {perms!r}")
        out.append(DeviceRequest(host, inside, perms))
    return tuple(out)


def _pid_mode(hc: Mapping[str, Any]) -> bool:
    """``--pid host`` is refused for now: the container's processes would be orphaned to
    berthd (the subreaper) outside any pid namespace of a container, where its orphan
    sweep (runtime/orphans.py) cannot tell them from its own children."""
    if _mode(hc, "PidMode", ("", "host"), "PID"):
        raise InvalidArgument(
            "PidMode host is not supported by berth: orphans of the container would be "
            "left unreaped in the daemon"
        )
    return False


def _mode(hc: Mapping[str, Any], key: str, allowed: tuple[str, ...], what: str) -> bool:
    """Whether the mode is ``host``; ``container:<id>`` and the unknown are refused."""
    value = hc.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"json: cannot unmarshal into Go struct field {key} of type string")
    if value.startswith("container:"):
        raise InvalidArgument(
            f"{key} {value}: joining another container's {what} namespace is not supported by berth"
        )
    if value not in allowed:
        raise InvalidArgument(f"invalid {what} mode: {value}")
    return value == "host"


def _security_opts(raw: object) -> tuple[bool, bool, dict[str, Any] | None]:
    """moby's parseSecurityOpt; returns (no-new-privileges, seccomp, its profile)."""
    if raw is None:
        return False, True, None
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field SecurityOpt of type []string"
        )
    no_new_privileges, seccomp, profile = False, True, None
    for opt in raw:
        if opt == "no-new-privileges":
            no_new_privileges = True
            continue
        if opt == "disable":  # label=disable's legacy spelling
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        key, value = opt.split(sep, 1)
        if key == "label":
            continue  # SELinux labels: without SELinux on the host, Docker ignores them too
        if key == "seccomp":
            if value == "unconfined":
                seccomp = False
            else:
                profile = _seccomp_profile(value)
            continue
        if key == "apparmor":
            if value != "unconfined":
                raise InvalidArgument(
                    "apparmor profiles are not supported by berth: containers run without "
                    "one (only apparmor=unconfined is accepted)"
                )
            continue
        if key == "no-new-privileges":
            parsed = _parse_bool(value)
            if parsed is None:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            no_new_privileges = parsed
            continue
        raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return no_new_privileges, seccomp, profile


def _seccomp_profile(text: str) -> dict[str, Any]:
    """A Docker seccomp profile's JSON (the docker CLI sends the file's contents)."""
    try:
        profile = json.loads(text)
        from_docker_profile(profile, ())  # its shape; which rules apply is chosen at start
    except ProfileError as exc:
        raise InvalidArgument(str(exc)) from None
    except ValueError as exc:
        raise InvalidArgument(f"decoding seccomp profile failed: {exc}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("decoding seccomp profile failed: not a JSON object")
    return profile


def _parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _ulimits(raw: object) -> tuple[tuple[str, int, int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field Ulimits of type []*units.Ulimit"
        )
    out: dict[str, tuple[str, int, int]] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidArgument(
                "json: cannot unmarshal into Go struct field Ulimits of type units.Ulimit"
            )
        name, soft, hard = item.get("Name"), _as_int(item.get("Soft")), _as_int(item.get("Hard"))
        if not isinstance(name, str) or name not in ULIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        if soft is None or hard is None or soft < -1 or hard < -1:
            raise InvalidArgument(f"invalid ulimit {name}: Soft and Hard must be integers >= -1")
        # -1 is unlimited, as Docker reads it (RLIM_INFINITY, the largest uint64).
        soft, hard = (RLIM_INFINITY if v == -1 else v for v in (soft, hard))
        if soft > hard:
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
        out[name] = (ULIMITS[name], soft, hard)
    return tuple(out.values())


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sysctls(raw: object, *, host_ipc: bool, host_network: bool) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field Sysctls of type map[string]string"
        )
    for key in raw:
        ipc = key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")
        if not ipc and not key.startswith("net."):
            raise InvalidArgument(
                f"sysctl '{key}' is not allowed: only namespaced sysctls (kernel.msg*, "
                "kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set for a container"
            )
        if ipc and host_ipc:
            raise InvalidArgument(f"sysctl '{key}' is not allowed with the host's IPC namespace")
        if not ipc and host_network:
            raise InvalidArgument(
                f"sysctl '{key}' is not allowed with the host's network namespace"
            )
    return tuple(sorted(raw.items()))


def _shm_size(raw: object) -> int:
    if raw is None or raw == 0:
        return DEFAULT_SHM_SIZE
    size = _as_int(raw)
    if size is None:
        raise InvalidArgument("json: cannot unmarshal into Go struct field ShmSize of type int64")
    if size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    return size


def _oom_score_adj(raw: object) -> int:
    if raw is None:
        return 0
    value = _as_int(raw)
    if value is None:
        raise InvalidArgument("json: cannot unmarshal into Go struct field OomScoreAdj of type int")
    if not -1000 <= value <= 1000:
        raise InvalidArgument(f"Invalid value {value}, range for oom score adj is [-1000, 1000]")
    return value
