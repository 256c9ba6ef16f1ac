"""What the API handlers reach: the daemon's services, in one object."""

from __future__ import annotations

import attrs

from supervisor.build.builder import BuildCache
from supervisor.config import DaemonConfig
from supervisor.containers.execs import ExecManager
from supervisor.containers.manager import ContainerManager
from supervisor.events.log import EventLog
from supervisor.images.distribution import Distribution
from supervisor.images.store import ImageStore
from supervisor.images.transfer import Archives
from supervisor.network.manager import NetworkManager
from supervisor.volumes.manager import VolumeManager


@attrs.define
class Backend:
    config: DaemonConfig
    containers: ContainerManager
    execs: ExecManager
    networks: NetworkManager
    volumes: VolumeManager
    images: ImageStore
    distribution: Distribution
    archives: Archives
    events: EventLog
    runtime_name: str
    cgroup_version: str
    started_ns: int
    builds: BuildCache | None = None  # the classic builder's step cache
