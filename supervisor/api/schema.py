"""Docker Engine API JSON shapes for berth's records (the only module that deals in
Docker's loose JSON on the way out)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from supervisor.containers.health import HealthState, status_suffix
from supervisor.containers.logs import format_time
from supervisor.containers.state import Status
from supervisor.images.history import HistoryRow
from supervisor.images.reference import familiar
from supervisor.model import Container, Image


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``, which ``docker ps`` STATUS uses."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _since(rfc3339: str) -> float:
    from supervisor.containers.logs import parse_time

    try:
        return max(0.0, time.time() - parse_time(rfc3339) / 1e9)
    except ValueError:
        return 0.0


def status_text(c: Container, health: HealthState | None = None) -> str:
    st = c.state
    if st.status is Status.RUNNING:
        up = f"Up {human_duration(_since(st.started_at))}"
        return f"{up} {status_suffix(health)}" if health is not None else up
    if st.status is Status.PAUSED:
        return f"Up {human_duration(_since(st.started_at))} (Paused)"
    if st.status is Status.RESTARTING:
        return f"Restarting ({st.exit_code}) {human_duration(_since(st.finished_at))} ago"
    if st.status is Status.REMOVING:
        return "Removal In Progress"
    if st.status is Status.DEAD:
        return "Dead"
    if st.status is Status.CREATED:
        return "Created"
    return f"Exited ({st.exit_code}) {human_duration(_since(st.finished_at))} ago"


def command_text(c: Container) -> str:
    return " ".join([c.path, *c.args])


def container_summary(
    c: Container,
    *,
    ports: list[dict[str, object]] | None = None,
    networks: dict[str, Any] | None = None,
    mounts: list[dict[str, object]] | None = None,
    health: HealthState | None = None,
) -> dict[str, Any]:
    """An item of ``GET /containers/json``."""
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image_ref,
        "ImageID": c.image_id,
        "Command": command_text(c),
        "Created": c.created_ns // 1_000_000_000,
        "Ports": ports or [],
        "Labels": c.labels,
        "State": c.state.status.value,
        "Status": status_text(c, health),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": networks or {}},
        "Mounts": mounts or [],
    }


def container_inspect(
    c: Container,
    *,
    log_path: str,
    data_dir: str,
    rootfs: str,
    lowers: list[str],
    network_settings: dict[str, Any] | None = None,
    mounts: list[dict[str, object]] | None = None,
    health: HealthState | None = None,
) -> dict[str, Any]:
    st = c.state
    state: dict[str, Any] = {
        "Status": st.status.value,
        "Running": st.status in (Status.RUNNING, Status.PAUSED),
        "Paused": st.status is Status.PAUSED,
        "Restarting": st.status is Status.RESTARTING,
        "OOMKilled": st.oom_killed,
        "Dead": st.status is Status.DEAD,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
    }
    if health is not None:
        state["Health"] = health_json(health)
    return {
        "Id": c.id,
        "Created": format_time(c.created_ns),
        "Path": c.path,
        "Args": list(c.args),
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": f"{data_dir}/resolv.conf",
        "HostnamePath": f"{data_dir}/hostname",
        "HostsPath": f"{data_dir}/hosts",
        "LogPath": log_path,
        "Name": "/" + c.name,
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": c.host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join(lowers),
                "MergedDir": rootfs,
                "UpperDir": f"{data_dir}/upper",
                "WorkDir": f"{data_dir}/work",
            },
        },
        "Mounts": mounts or [],  # Docker's MountPoint objects (supervisor.volumes.mounts.to_api)
        "Config": c.config,
        "NetworkSettings": network_settings
        or {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "Ports": {},
            "SandboxKey": "",
            "IPAddress": "",
            "Gateway": "",
            "MacAddress": "",
            "Networks": {},
        },
    }


def health_json(health: HealthState) -> dict[str, Any]:
    """``State.Health`` of inspect: status, failing streak and the last probe results."""
    return {
        "Status": health.status.value,
        "FailingStreak": health.failing_streak,
        "Log": [
            {
                "Start": format_time(r.start_ns),
                "End": format_time(r.end_ns),
                "ExitCode": r.exit_code,
                "Output": r.output,
            }
            for r in health.log
        ],
    }


def _repo_tags(image: Image) -> list[str]:
    return [familiar(t) for t in image.tags]


def image_summary(image: Image) -> dict[str, Any]:
    labels = image.run_config.get("Labels") or {}
    return {
        "Id": image.id,
        "ParentId": "",
        "RepoTags": _repo_tags(image),
        "RepoDigests": [familiar(d) for d in image.repo_digests],
        "Created": image.created_s,
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": labels,
        "Containers": -1,
    }


def image_inspect(image: Image) -> dict[str, Any]:
    cfg = image.config
    return {
        "Id": image.id,
        "RepoTags": _repo_tags(image),
        "RepoDigests": [familiar(d) for d in image.repo_digests],
        "Parent": image.parent,
        "Comment": (cfg.get("history") or [{}])[-1].get("comment", ""),
        "Created": cfg.get("created", ""),
        "DockerVersion": "",
        "Author": cfg.get("author", ""),
        "Config": _image_run_config(image),
        "Architecture": cfg.get("architecture", "amd64"),
        "Os": cfg.get("os", "linux"),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "RootFS": {
            "Type": "layers",
            "Layers": list((cfg.get("rootfs") or {}).get("diff_ids") or []),
        },
        "Metadata": {"LastTagTime": format_time(image.created_ns)},
    }


def _image_run_config(image: Image) -> dict[str, Any]:
    rc = image.run_config
    return {
        "Hostname": "",
        "Domainname": "",
        "User": rc.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": rc.get("ExposedPorts"),
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": rc.get("Env"),
        "Cmd": rc.get("Cmd"),
        "Image": "",
        "Volumes": rc.get("Volumes"),
        "WorkingDir": rc.get("WorkingDir", ""),
        "Entrypoint": rc.get("Entrypoint"),
        "OnBuild": rc.get("OnBuild"),
        "Labels": rc.get("Labels"),
        **({"StopSignal": rc["StopSignal"]} if rc.get("StopSignal") else {}),
        **({"Healthcheck": rc["Healthcheck"]} if rc.get("Healthcheck") else {}),
    }


def image_history(rows: Sequence[HistoryRow]) -> list[dict[str, Any]]:
    """``GET /images/{name}/history``: the rows :func:`supervisor.images.history.history_rows`
    made, in dockerd's key order; ``Tags`` is null on a row without tags, as Go encodes
    a nil slice."""
    return [
        {
            "Comment": r.comment,
            "Created": r.created,
            "CreatedBy": r.created_by,
            "Id": r.id,
            "Size": r.size,
            "Tags": list(r.tags) or None,
        }
        for r in rows
    ]
