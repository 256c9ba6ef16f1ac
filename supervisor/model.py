"""Value types shared by every layer: ids, container and image records, events.

Everything here is immutable (``attrs.frozen``); change a value with ``attrs.evolve``.
Docker-shaped JSON objects (a container's ``Config`` and ``HostConfig``, an image's
config) are kept as plain dicts because the API returns them as they were given; typed
views of the parts berth acts on are parsed from them at the edges.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs

from supervisor.containers.state import Status
from supervisor.network.ports import PortBinding

ContainerId = NewType("ContainerId", str)
ImageId = NewType("ImageId", str)  # "sha256:<hex>"
ChainId = NewType("ChainId", str)  # "sha256:<hex>"

JSONObject = dict[str, Any]

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as Docker prints it


@attrs.frozen
class ContainerState:
    """The mutable half of a container (podman keeps config and state apart too)."""

    status: Status = Status.CREATED
    pid: int = 0
    pid_start: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    manually_stopped: bool = False
    ports: tuple[PortBinding, ...] = ()  # what the current run published, as bound


@attrs.frozen
class Container:
    id: ContainerId
    name: str  # without the leading "/"
    created_ns: int
    image_ref: str
    image_id: ImageId
    config: JSONObject  # Docker "Config", merged with the image config
    host_config: JSONObject  # Docker "HostConfig"
    path: str
    args: tuple[str, ...]
    state: ContainerState = attrs.field(factory=ContainerState)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})


@attrs.frozen
class Layer:
    chain_id: ChainId
    diff_id: str
    parent: ChainId | None
    size: int  # Docker's layer Size: the regular files' bytes
    tar_size: int = 0  # the uncompressed tar's bytes (when known)


@attrs.frozen
class Image:
    id: ImageId
    config: JSONObject  # the OCI image config (rootfs, history, config...)
    raw_config: bytes  # byte-exact, hashes to ``id``
    created_ns: int
    size: int
    layers: tuple[ChainId, ...]  # bottom first
    tags: tuple[str, ...] = ()  # normalised references
    repo_digests: tuple[str, ...] = ()  # "registry/repo@sha256:..." (normalised)
    parent: str = ""  # the image this one was committed from, if local

    @property
    def run_config(self) -> JSONObject:
        return dict(self.config.get("config") or {})

    @property
    def created_s(self) -> int:
        """The config's ``created`` as unix seconds (what ``docker images`` shows)."""
        from datetime import datetime

        text = str(self.config.get("created") or "")
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return self.created_ns // 1_000_000_000


@attrs.frozen
class Event:
    """One row of the durable event log (ARCHITECTURE.md §7)."""

    id: int
    time_ns: int
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str]


@attrs.frozen
class Network:
    """A network: the built-in ``bridge`` (berth0), ``host`` and ``none``, or a
    user-defined bridge network."""

    id: str
    name: str
    driver: str  # "bridge" | "host" | "null"
    created_ns: int
    bridge: str | None = None  # the host's bridge interface
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    internal: bool = False
    builtin: bool = False
    labels: dict[str, str] = attrs.field(factory=dict)
    options: dict[str, str] = attrs.field(factory=dict)

    @property
    def user_defined(self) -> bool:
        return not self.builtin


@attrs.frozen
class Endpoint:
    """A container's attachment to a network; ``ip`` is set only while it runs."""

    container_id: str
    network_id: str
    id: str
    position: int
    aliases: tuple[str, ...] = ()
    requested_ip: str = ""
    mac_address: str = ""
    ip: str | None = None
