"""Validate a ``POST /containers/create`` body and merge it with the image config. Pure.

Theory of operation: the body is Docker's ``ContainerConfig`` with ``HostConfig``
inside. :func:`parse_create` checks types (400 on anything malformed, before anything
is stored), applies Docker's merge rules (moby ``daemon/commit.go`` ``merge``), and
returns the ``Config`` and ``HostConfig`` objects that ``inspect`` shows, plus the
resolved path and args. Limits are checked here with Docker's messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from supervisor.containers import health, hostopts
from supervisor.containers.restart import parse_policy, to_api
from supervisor.errors import InvalidArgument
from supervisor.network import etc, ports
from supervisor.runtime.spec import (
    CapabilityError,
    CommandError,
    Resources,
    merge_env,
    normalize_capabilities,
    process_args,
    resolve_command,
)

MIN_MEMORY = 6 * 1024 * 1024
_CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


def _cpu_list_top(text: str) -> int | None:
    """The highest number of a ``0-2,4`` list; None when a range runs backwards."""
    top = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if first > last:
            return None
        top = max(top, last)
    return top


LOG_DRIVERS = ("json-file", "none")
# moby jsonfilelog.ValidateLogOpt, plus the opts every driver takes (mode, max-buffer-size)
JSON_FILE_OPTS = (
    "max-size",
    "max-file",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "mode",
    "max-buffer-size",
)


@attrs.frozen
class CreateResult:
    config: dict[str, Any]
    host_config: dict[str, Any]
    path: str
    args: tuple[str, ...]


def _str_list(body: Mapping[str, Any], key: str, *, allow_string: bool = False) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if allow_string and isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {key} of type []string"
        )
    return list(value)


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {key} of type string"
        )
    return value


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {key} of type int64"
        )
    return value


def _bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {key} of type bool"
        )
    return value


def _labels(body: Mapping[str, Any], key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidArgument(
            f"json: cannot unmarshal into Go struct field {key} of type map[string]string"
        )
    return dict(value)


def _object(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {key} of type map[string]struct {{}}"
        )
    return dict(value)


def _union(image_value: object, user_value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Docker's merge of ExposedPorts and Volumes: the image's keys plus the container's."""
    merged = {**(image_value if isinstance(image_value, dict) else {}), **(user_value or {})}
    return merged or None


def parse_host_config(raw: object) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidArgument("json: cannot unmarshal into Go struct field HostConfig")
    hc: dict[str, Any] = dict(raw)
    memory = _int(hc, "Memory")
    swap = _int(hc, "MemorySwap")
    if memory != 0 and memory < MIN_MEMORY:  # negative too, as Docker
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if swap > 0 and not memory:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    nano = _int(hc, "NanoCpus")
    if nano > 0 and _int(hc, "CpuPeriod") > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and _int(hc, "CpuQuota") > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    period, quota = _int(hc, "CpuPeriod"), _int(hc, "CpuQuota")
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if quota > 0 and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")

    if nano < 0 or nano > (os.cpu_count() or 1) * 1_000_000_000:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {os.cpu_count() or 1}.00, as there are only {os.cpu_count() or 1} CPUs available"
        )
    reservation = _int(hc, "MemoryReservation")
    if reservation != 0 and reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory and reservation > memory:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    for key, what in (("CpusetCpus", "CPUs"), ("CpusetMems", "MEMs")):
        value = hc.get(key) or ""
        well_formed = isinstance(value, str) and (not value or _CPU_LIST.fullmatch(value))
        top = _cpu_list_top(value) if well_formed and value else 0
        if not well_formed or top is None:
            raise InvalidArgument(f"Invalid value {value} for cpuset {what.lower()}")
        if key == "CpusetCpus" and value:
            count = os.cpu_count() or 1
            if top >= count:
                raise InvalidArgument(
                    f"Requested CPUs are not available - requested {value}, available: 0-{count - 1}"
                )
    shares = _int(hc, "CpuShares")
    if shares < 0:
        raise InvalidArgument("invalid CpuShares: must be non-negative")
    pids = hc.get("PidsLimit")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int)):
        raise InvalidArgument("json: cannot unmarshal into Go struct field PidsLimit of type int64")
    policy = parse_policy(hc.get("RestartPolicy"))
    auto_remove = _bool(hc, "AutoRemove")
    if auto_remove and policy.name.value != "no":
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    mode = _str(hc, "NetworkMode") or "default"
    if mode == "container:" or (mode.startswith("container:") and "/" in mode):
        raise InvalidArgument(f"invalid network mode: {mode}")
    bindings = ports.from_port_bindings(hc.get("PortBindings"))
    extra_hosts = _str_list(hc, "ExtraHosts") or []
    for entry in extra_hosts:
        etc.parse_extra_host(entry)
    dns = etc.check_dns(_str_list(hc, "Dns") or [])
    log_config = hc.get("LogConfig") or {}
    if not isinstance(log_config, dict):
        raise InvalidArgument("invalid LogConfig")
    driver = log_config.get("Type") or "json-file"
    if driver not in LOG_DRIVERS:
        raise InvalidArgument(
            f"failed to create logger: logger: no log driver named '{driver}' is registered"
        )
    log_opts = _labels(log_config, "Config")
    for key in log_opts if driver == "json-file" else ():  # Docker checks no opts for "none"
        if key not in JSON_FILE_OPTS:
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    if "max-size" in log_opts and parse_human_size(log_opts["max-size"]) <= 0:
        raise InvalidArgument("max-size must be a positive number")
    if "max-file" in log_opts and not log_opts["max-file"].isdigit():
        raise InvalidArgument("invalid value for max-file")
    _bool(hc, "Init") if hc.get("Init") is not None else None
    _bool(hc, "Privileged")
    for key in ("CapAdd", "CapDrop"):
        try:
            normalize_capabilities(_str_list(hc, key, allow_string=True) or [])
        except CapabilityError as exc:
            raise InvalidArgument(f"invalid {key}: {exc}") from None
    hostopts.parse(hc)
    hc.update(
        {
            "NetworkMode": mode,
            "PortBindings": ports.to_port_bindings(bindings)
            if bindings
            else hc.get("PortBindings"),
            "PublishAllPorts": bool(hc.get("PublishAllPorts")),
            "Dns": dns,
            "DnsSearch": _str_list(hc, "DnsSearch") or [],
            "DnsOptions": _str_list(hc, "DnsOptions") or [],
            "ExtraHosts": extra_hosts or None,
            "RestartPolicy": to_api(policy),
            "AutoRemove": auto_remove,
            "LogConfig": {"Type": driver, "Config": log_opts},
            "Memory": memory,
            "MemorySwap": swap,
            "NanoCpus": nano,
            "CpuShares": shares,
            "PidsLimit": pids,
        }
    )
    return hc


def parse_human_size(text: str) -> int:
    """go-units ``FromHumanSize`` (decimal: ``10m`` = 10,000,000), which json-file's
    ``max-size`` uses, unlike ``--memory``. Raises InvalidArgument."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?", text.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * 1000 ** " kmgtp".index(m.group(2) or " "))


def parse_size(text: str) -> int:
    """Docker's RAMInBytes: ``64m``, ``1g``, ``512k``, ``100``. Raises InvalidArgument."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?", text.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    mult = 1024 ** " kmgtp".index(m.group(2) or " ")
    return int(float(m.group(1)) * mult)


def resources_of(hc: Mapping[str, Any]) -> Resources:
    return Resources(
        memory=int(hc.get("Memory") or 0),
        memory_swap=int(hc.get("MemorySwap") or 0),
        nano_cpus=int(hc.get("NanoCpus") or 0),
        cpu_shares=int(hc.get("CpuShares") or 0),
        cpu_quota=int(hc.get("CpuQuota") or 0),
        cpu_period=int(hc.get("CpuPeriod") or 0),
        pids_limit=int(hc.get("PidsLimit") or 0),
        memory_reservation=int(hc.get("MemoryReservation") or 0),
        cpuset_cpus=str(hc.get("CpusetCpus") or ""),
        cpuset_mems=str(hc.get("CpusetMems") or ""),
    )


def parse_create(
    body: object, *, image_ref: str, image_config: Mapping[str, Any], container_id: str
) -> CreateResult:
    """Validate ``body`` and merge it with ``image_config`` (the image's ``config``)."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    cmd = _str_list(body, "Cmd", allow_string=True)
    entrypoint = _str_list(body, "Entrypoint", allow_string=True)
    env = _str_list(body, "Env") or []
    for item in env:
        if item.startswith("=") or not item:
            raise InvalidArgument(f"invalid environment variable: {item}")
    labels = _labels(body, "Labels")
    host_config = parse_host_config(body.get("HostConfig"))
    ep, final_cmd = resolve_command(
        entrypoint=entrypoint,
        cmd=cmd,
        image_entrypoint=image_config.get("Entrypoint"),
        image_cmd=image_config.get("Cmd"),
    )
    try:
        args = process_args(ep, final_cmd)
    except CommandError as exc:
        raise InvalidArgument(str(exc)) from None
    stop_timeout = body.get("StopTimeout")
    if stop_timeout is not None and (
        isinstance(stop_timeout, bool) or not isinstance(stop_timeout, int)
    ):
        raise InvalidArgument("json: cannot unmarshal into Go struct field StopTimeout of type int")
    working_dir = _str(body, "WorkingDir")
    if working_dir and not working_dir.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )
    exposed_ports = _object(body, "ExposedPorts")
    ports.parse_exposed_ports(exposed_ports)  # 400 for a bad key, before anything is stored
    volumes = _object(body, "Volumes")
    hostname = _str(body, "Hostname") or container_id[:12]
    if len(hostname) > 64:
        raise InvalidArgument("invalid hostname format: hostname is too long")
    merged_labels = {**(image_config.get("Labels") or {}), **labels}
    config: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": _str(body, "Domainname"),
        "User": _str(body, "User") or image_config.get("User") or "",
        "AttachStdin": _bool(body, "AttachStdin"),
        "AttachStdout": _bool(body, "AttachStdout"),
        "AttachStderr": _bool(body, "AttachStderr"),
        "ExposedPorts": _union(image_config.get("ExposedPorts"), exposed_ports),
        "Tty": _bool(body, "Tty"),
        "OpenStdin": _bool(body, "OpenStdin"),
        "StdinOnce": _bool(body, "StdinOnce"),
        "Env": merge_env(image_config.get("Env") or [], env),
        "Cmd": final_cmd or None,
        "Image": image_ref,
        "Volumes": _union(image_config.get("Volumes"), volumes),
        "WorkingDir": working_dir or image_config.get("WorkingDir") or "",
        "Entrypoint": ep or None,
        "OnBuild": image_config.get("OnBuild"),
        "Labels": merged_labels,
        "StopSignal": _str(body, "StopSignal") or image_config.get("StopSignal") or None,
    }
    if stop_timeout is not None:
        config["StopTimeout"] = stop_timeout
    if config["StopSignal"] is None:
        del config["StopSignal"]
    healthcheck = health.merge_healthcheck(
        health.parse_healthcheck(body.get("Healthcheck")), image_config.get("Healthcheck")
    )
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    health.check_create(config, host_config)  # HealthOnFailure (berth's extension)
    return CreateResult(config=config, host_config=host_config, path=args[0], args=tuple(args[1:]))
