"""Volume and mount-point values shared by the parser, the store and the manager. Pure.

Theory of operation: a :class:`Volume` is a named directory berth owns
(``<data-root>/volumes/<name>/_data``, local driver only); a :class:`MountPoint` is one
thing a container mounts — a host path (bind), a volume, or a tmpfs — as Docker's
``MountPoint`` records it. Mount points are decided once, at container create, and stored
with the container; starting a container only turns them into spec mounts.

Imports: standard library and attrs only.
"""

from __future__ import annotations

import enum

import attrs

LOCAL_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # moby volume/service AnonymousLabel
DEFAULT_PROPAGATION = "rprivate"


class MountType(enum.StrEnum):
    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"


@attrs.frozen
class Volume:
    name: str
    driver: str = LOCAL_DRIVER
    created_ns: int = 0
    labels: dict[str, str] | None = None  # None: none were given (Docker shows null)
    options: dict[str, str] | None = None

    @property
    def anonymous(self) -> bool:
        """Created without a name (by a container, or ``volume create`` with none)."""
        return self.labels is not None and ANONYMOUS_LABEL in self.labels


@attrs.frozen
class MountPoint:
    """One of a container's mounts, as decided at create.

    ``source`` is the host path of a bind (empty for volumes: the volume's directory is
    found by ``name`` when the container starts, and for tmpfs). ``mode`` is the mode
    string as the user wrote it (``inspect`` shows it; ``z`` for a local volume given
    none, as Docker). ``anonymous`` volumes (no name given) go with ``rm -v``.
    """

    type: MountType
    destination: str
    source: str = ""
    name: str = ""
    driver: str = ""
    mode: str = ""
    rw: bool = True
    propagation: str = ""
    anonymous: bool = False
    copy_data: bool = False  # volume: copy the image's files into it when it is empty
    create_source: bool = False  # bind: create a missing source directory at start
    recursive: bool = True  # bind: rbind (False: BindOptions.NonRecursive)
    tmpfs_options: tuple[str, ...] = ()  # tmpfs: final mount options
    from_tmpfs_map: bool = False  # HostConfig.Tmpfs: not in inspect Mounts, not inherited
    volume_labels: dict[str, str] | None = attrs.field(default=None, eq=False)
    volume_options: dict[str, str] | None = attrs.field(default=None, eq=False)


def mount_to_json(m: MountPoint) -> dict[str, object]:
    """A JSON object for the store (round-trips through :func:`mount_from_json`)."""
    out = attrs.asdict(m, recurse=False)
    out["type"] = m.type.value
    out["tmpfs_options"] = list(m.tmpfs_options)
    return out


def mount_from_json(data: dict[str, object]) -> MountPoint:
    options = data.get("tmpfs_options")
    return MountPoint(
        type=MountType(str(data["type"])),
        destination=str(data["destination"]),
        source=str(data.get("source") or ""),
        name=str(data.get("name") or ""),
        driver=str(data.get("driver") or ""),
        mode=str(data.get("mode") or ""),
        rw=bool(data.get("rw", True)),
        propagation=str(data.get("propagation") or ""),
        anonymous=bool(data.get("anonymous")),
        copy_data=bool(data.get("copy_data")),
        create_source=bool(data.get("create_source")),
        recursive=bool(data.get("recursive", True)),
        tmpfs_options=tuple(str(o) for o in options) if isinstance(options, list) else (),
        from_tmpfs_map=bool(data.get("from_tmpfs_map")),
        volume_labels=_str_map(data.get("volume_labels")),
        volume_options=_str_map(data.get("volume_options")),
    )


def _str_map(value: object) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items()}
