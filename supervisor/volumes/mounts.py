"""A container's mounts from its create request: ``HostConfig.Binds``, ``Mounts``,
``Tmpfs``, ``VolumesFrom`` and the ``Volumes`` of its config. Pure.

Theory of operation: :func:`plan_mounts` validates everything (400 with Docker's
messages, before anything is stored) and returns the container's mount points, one per
destination, combined in Docker's order (moby ``registerMountPoints``): the mounts of
``VolumesFrom`` containers first (a later source replaces an earlier one), then
``Binds`` (two at one destination: "Duplicate mount point"), then ``Mounts`` (a clash
with a bind or another mount is a duplicate too), then ``Tmpfs``, and last an
anonymous volume for each ``Volumes`` entry nothing else mounts. The grammar of a bind
string and a ``Mounts`` object, and the checks, follow moby ``volume/mounts``'s Linux
parser:

    Binds:  dst | src:dst | src:dst:mode      src absolute → bind, else a volume name
    mode:   comma-separated, at most one of each kind: ro|rw, z|Z, a propagation,
            nocopy, consistent|cached|delegated (the labels and consistency are
            accepted and ignored, as Docker on Linux without SELinux)

Rules: destinations are cleaned like Go's ``path.Clean`` and must be absolute and not
``/``; a volume never carries bind options nor a bind volume options. Nothing here
touches the host: whether a ``Mounts`` bind source exists, and creating volumes, are
the volume manager's (I/O) business.

Imports: standard library, attrs, ``supervisor.errors``, ``supervisor.runtime.spec``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence

from supervisor.errors import InvalidArgument, NotFound, Unsupported
from supervisor.runtime.spec import BindMount, TmpfsMount, UserMount
from supervisor.volumes.model import (
    ANONYMOUS_LABEL,
    DEFAULT_PROPAGATION,
    LOCAL_DRIVER,
    MountPoint,
    MountType,
)

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_RW_MODES = ("ro", "rw")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)
_CONSISTENCY_MODES = ("consistent", "cached", "delegated")
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)  # moby oci_linux WithMounts

_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
VOLUME_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

# Mount flags as moby's pkg/mount knows them, each with the key of the flag it sets or
# clears: a later option of the same key replaces an earlier one (MergeTmpfsOptions);
# the propagation flags all share one key.
_FLAG_KEYS = {
    **dict.fromkeys(("ro", "rw"), "rdonly"),
    **dict.fromkeys(("suid", "nosuid"), "nosuid"),
    **dict.fromkeys(("dev", "nodev"), "nodev"),
    **dict.fromkeys(("exec", "noexec"), "noexec"),
    **dict.fromkeys(("sync", "async"), "sync"),
    "dirsync": "dirsync",
    "remount": "remount",
    **dict.fromkeys(("mand", "nomand"), "mand"),
    **dict.fromkeys(("atime", "noatime"), "noatime"),
    **dict.fromkeys(("diratime", "nodiratime"), "nodiratime"),
    "bind": "bind",
    "rbind": "rbind",
    **dict.fromkeys(("relatime", "norelatime"), "relatime"),
    **dict.fromkeys(("strictatime", "nostrictatime"), "strictatime"),
    **dict.fromkeys((*PROPAGATIONS, "unbindable", "runbindable"), "propagation"),
}
_TMPFS_DATA_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")


# -- small helpers ---------------------------------------------------------------------


def clean_path(p: str) -> str:
    """Go's ``path.Clean``: ``posixpath.normpath`` without POSIX's ``//`` exception."""
    if not p:
        return "."
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _check_destination(target: str) -> str | None:
    """moby ``linuxValidateNotRoot`` + ``linuxValidateAbsolute``; the error, if any."""
    target = target.replace("\\", "/")
    if clean_path(target) == "/":
        return "invalid specification: destination can't be '/'"
    if not target.startswith("/"):
        return f"invalid mount path: '{target}' mount path must be absolute"
    return None


def _check_absolute(p: str) -> str | None:
    p = p.replace("\\", "/")
    return None if p.startswith("/") else f"invalid mount path: '{p}' mount path must be absolute"


def _mode_kinds(mode: str) -> list[str] | None:
    """The kind of each option of a mode string; None when one is unknown."""
    kinds = []
    for option in mode.split(","):
        if option in _RW_MODES:
            kinds.append("rw")
        elif option in _LABEL_MODES:
            kinds.append("label")
        elif option in PROPAGATIONS:
            kinds.append("propagation")
        elif option in _COPY_MODES:
            kinds.append("copy")
        elif option in _CONSISTENCY_MODES:
            kinds.append("consistency")
        else:
            return None
    return kinds


def valid_mode(mode: str) -> bool:
    """moby ``linuxValidMountMode``: known options, at most one of each kind."""
    if mode == "":
        return True
    kinds = _mode_kinds(mode)
    return kinds is not None and len(kinds) == len(set(kinds))


def _options(mode: str) -> list[str]:
    return mode.split(",") if mode else []


def read_write(mode: str) -> bool:
    return valid_mode(mode) and "ro" not in _options(mode)


def volume_name_error(name: str) -> str | None:
    """The local driver's name check (moby ``local.validateName``); the error, if any."""
    if len(name) == 1:
        return "volume name is too short, names should be at least two alphanumeric characters"
    if not _VOLUME_NAME.match(name):
        return (
            f'"{name}" includes invalid characters for a local volume name, only '
            f'"{VOLUME_NAME_CHARS}" are allowed. If you intended to pass a host directory, '
            "use absolute path"
        )
    return None


LOCAL_OPTIONS = ("type", "device", "o", "size")  # moby local driver validOpts


def check_volume(name: str, driver: str, options: Mapping[str, str] | None) -> None:
    """What creating volume ``name`` would refuse (moby's volume store and local driver).

    Raises:
        InvalidArgument: a bad name or an unknown driver option (400).
        NotFound: a driver other than ``local`` (Docker: no such plugin, 404).
        Unsupported: the local driver's mount options (``type``, ``device``, ``o``,
            ``size``), which berth does not implement (501).
    """
    error = volume_name_error(name)
    if error:
        raise InvalidArgument(f"create {name}: {error}")
    if driver not in ("", LOCAL_DRIVER):
        raise NotFound(
            f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found'
        )
    for key in options or {}:
        if key not in LOCAL_OPTIONS:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    if options:
        raise Unsupported(
            f"create {name}: berth's local driver does not mount devices "
            "(options type, device, o and size are not supported)"
        )


def _go_quote_list(items: Sequence[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return (
        "[" + " ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "]"
    )


def tmpfs_options(data: str) -> tuple[str, ...]:
    """Docker's defaults followed by ``data`` (``--tmpfs /run:size=64m,exec``), merged as
    moby's ``MergeTmpfsOptions``: the last option of each kind wins, in its place.

    Raises:
        InvalidArgument: an unknown option (400, before the container exists).
    """
    options = [*TMPFS_DEFAULTS, *(data.split(",") if data else [])]
    seen: set[str] = set()
    kept: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        key = _FLAG_KEYS.get(option)
        if key is None:
            name, eq, _ = option.partition("=")
            if not eq or name not in _TMPFS_DATA_KEYS:
                raise InvalidArgument(
                    f"invalid tmpfs option {_go_quote_list(option.split('=', 1))}"
                )
            key = "data:" + name
        if key not in seen:
            seen.add(key)
            kept.append(option)
    return tuple(reversed(kept))


def _size_option(size: int) -> str:
    """moby ``ConvertTmpfsOptions``: the largest of g/m/k dividing ``size``."""
    for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % divisor == 0:
            return f"size={size // divisor}{suffix}"
    return f"size={size}"


# -- Binds ----------------------------------------------------------------------------


def _invalid_spec(raw: str) -> InvalidArgument:
    return InvalidArgument(f"invalid volume specification: '{raw}'")


def _mount_config_error(type_: str, message: str) -> str:
    return f'invalid mount config for type "{type_}": {message}'


def parse_bind(raw: str, *, new_name: Callable[[], str]) -> MountPoint:
    """One ``HostConfig.Binds`` entry (moby ``ParseMountRaw``).

    Raises:
        InvalidArgument: Docker's messages, e.g. ``invalid mode: xyz`` or
            ``invalid volume specification: 'a:b': invalid mount config for type
            "volume": invalid mount path: 'b' mount path must be absolute``.
    """
    if raw.count(":") > 2:
        raise _invalid_spec(raw)
    parts = raw.split(":", 2)
    if parts[0] == "":
        raise _invalid_spec(raw)
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            raise _invalid_spec(raw)  # "/foo:rw": a destination and a mode, no source
        source, target = parts
    else:
        source, target, mode = parts
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    options = _options(mode)
    type_ = MountType.BIND if source.startswith("/") else MountType.VOLUME
    error = _check_mount(
        type_,
        target=target,
        source=source,
        readonly=not read_write(mode),
        has_bind_options=any(o in PROPAGATIONS for o in options),
        has_volume_options="nocopy" in options,
        propagation=next((o for o in options if o in PROPAGATIONS), ""),
    )
    if error:
        raise InvalidArgument(f"invalid volume specification: '{raw}': {error}")
    destination = clean_path(target)
    if type_ is MountType.BIND:
        return MountPoint(
            type=type_,
            destination=destination,
            source=clean_path(source),
            mode=mode,
            rw=read_write(mode),
            propagation=next((o for o in options if o in PROPAGATIONS), DEFAULT_PROPAGATION),
            create_source=True,  # -v creates a missing host directory (moby MountPoint.Setup)
        )
    return MountPoint(
        type=type_,
        destination=destination,
        name=source or new_name(),
        driver=LOCAL_DRIVER,
        mode=mode or "z",  # moby setBindModeIfNull for the local driver
        rw=read_write(mode),
        anonymous=not source,
        copy_data="nocopy" not in options,
        volume_labels={ANONYMOUS_LABEL: ""} if not source else None,
    )


def _check_mount(
    type_: str,
    *,
    target: str,
    source: str,
    readonly: bool,
    has_bind_options: bool,
    has_volume_options: bool,
    propagation: str,
) -> str | None:
    """moby ``validateMountConfigImpl`` (less the bind source's existence): the
    ``invalid mount config for type ...`` error, if any."""

    def fail(message: str) -> str:
        return _mount_config_error(type_, message)

    if not target:
        return fail("field Target must not be empty")
    error = _check_destination(target)
    if error:
        return fail(error)
    if type_ == MountType.BIND:
        if not source:
            return fail("field Source must not be empty")
        if propagation and propagation not in PROPAGATIONS:
            return fail(f"invalid propagation mode: {propagation}")
        if has_volume_options:
            return fail("field VolumeOptions must not be specified")
        error = _check_absolute(source)
        return fail(error) if error else None
    if type_ == MountType.VOLUME:
        if has_bind_options:
            return fail("field BindOptions must not be specified")
        if readonly and not source:
            return fail("must not set ReadOnly mode when using anonymous volumes")
        return None
    if type_ == MountType.TMPFS:
        if has_bind_options:
            return fail("field BindOptions must not be specified")
        if source:
            return fail("field Source must not be specified")
        return None
    return fail("mount type unknown")


# -- Mounts ---------------------------------------------------------------------------


def _field(obj: Mapping[str, object], key: str, kind: type, go_type: str) -> object:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f"Mount.HostConfig.Mounts.{key} of type {go_type}"
        )
    return value


def _str_map(obj: Mapping[str, object], key: str) -> dict[str, str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidArgument(
            f"json: cannot unmarshal into Go struct field {key} of type map[string]string"
        )
    return dict(value)


def _sub_object(obj: Mapping[str, object], key: str) -> dict[str, object] | None:
    value = _field(obj, key, dict, f"mount.{key}")
    return value if isinstance(value, dict) else None


def parse_mount(obj: object, *, new_name: Callable[[], str]) -> MountPoint:
    """One ``HostConfig.Mounts`` object (moby ``ParseMountSpec``; ``--mount``).

    A bind's source must exist unless ``BindOptions.CreateMountpoint``; that is checked
    by the caller (``create_source`` False means "must exist").

    Raises:
        InvalidArgument: ``invalid mount config for type "bind": ...`` and JSON type errors.
    """
    if not isinstance(obj, dict):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field HostConfig.Mounts of type mount.Mount"
        )
    type_ = str(_field(obj, "Type", str, "mount.Type") or "")
    target = str(_field(obj, "Target", str, "string") or "")
    source = str(_field(obj, "Source", str, "string") or "")
    readonly = bool(_field(obj, "ReadOnly", bool, "bool"))
    bind_options = _sub_object(obj, "BindOptions")
    volume_options = _sub_object(obj, "VolumeOptions")
    tmpfs_opts = _sub_object(obj, "TmpfsOptions")
    propagation = ""
    if bind_options is not None:
        propagation = str(_field(bind_options, "Propagation", str, "mount.Propagation") or "")
    error = _check_mount(
        type_,
        target=target,
        source=source,
        readonly=readonly,
        has_bind_options=bind_options is not None,
        has_volume_options=volume_options is not None,
        propagation=propagation,
    )
    if error:
        raise InvalidArgument(error)
    destination = clean_path(target.replace("\\", "/"))
    if type_ == MountType.BIND:
        opts = bind_options or {}
        return MountPoint(
            type=MountType.BIND,
            destination=destination,
            source=clean_path(source),
            rw=not readonly,
            propagation=propagation or DEFAULT_PROPAGATION,
            create_source=bool(_field(opts, "CreateMountpoint", bool, "bool")),
            recursive=not _field(opts, "NonRecursive", bool, "bool"),
        )
    if type_ == MountType.VOLUME:
        vopts = volume_options or {}
        driver_config = _sub_object(vopts, "DriverConfig") or {}
        labels = _str_map(vopts, "Labels")
        if not source:
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        return MountPoint(
            type=MountType.VOLUME,
            destination=destination,
            name=source or new_name(),
            driver=str(_field(driver_config, "Name", str, "string") or LOCAL_DRIVER),
            mode="z",  # moby setBindModeIfNull for the local driver
            rw=not readonly,
            anonymous=not source,
            copy_data=not _field(vopts, "NoCopy", bool, "bool"),
            volume_labels=labels,
            volume_options=_str_map(driver_config, "Options"),
        )
    topts = tmpfs_opts or {}
    size = _field(topts, "SizeBytes", int, "int64")
    file_mode = _field(topts, "Mode", int, "fs.FileMode")
    data: list[str] = ["ro"] if readonly else []
    if isinstance(file_mode, int) and file_mode:
        data.append(f"mode={file_mode:o}")
    if isinstance(size, int) and size:
        if size < 0:
            raise InvalidArgument(_mount_config_error("tmpfs", f"invalid tmpfs size: {size}"))
        data.append(_size_option(size))
    return MountPoint(
        type=MountType.TMPFS,
        destination=destination,
        rw=not readonly,
        tmpfs_options=tmpfs_options(",".join(data)),
    )


# -- Tmpfs, VolumesFrom, Volumes ------------------------------------------------------------


def parse_tmpfs(destination: str, data: str) -> MountPoint:
    """One ``HostConfig.Tmpfs`` entry (``--tmpfs /run:size=64m``)."""
    error = _check_destination(destination)
    if error:
        raise InvalidArgument(error)
    return MountPoint(
        type=MountType.TMPFS,
        destination=clean_path(destination),
        rw="ro" not in data.split(","),
        tmpfs_options=tmpfs_options(data),
        from_tmpfs_map=True,
    )


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``container[:ro|rw]`` as ``(container, mode)`` (moby ``ParseVolumesFrom``):
    neither a propagation nor ``nocopy`` may be given, the mounts keep their own."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, "rw"
    options = _options(mode)
    if not valid_mode(mode) or any(o in PROPAGATIONS or o in _COPY_MODES for o in options):
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, mode


def inherit(mounts: Sequence[MountPoint], mode: str) -> list[MountPoint]:
    """What ``--volumes-from other:mode`` takes from ``other``: its mount points (not
    its ``--tmpfs``), read-only if either side says so, never copied into again."""
    writable = read_write(mode)
    return [
        MountPoint(
            type=m.type,
            destination=m.destination,
            source=m.source,
            name=m.name,
            driver=m.driver,
            rw=m.rw and writable,
            propagation=m.propagation,
            anonymous=m.anonymous,
            recursive=m.recursive,
            tmpfs_options=m.tmpfs_options,
        )
        for m in mounts
        if not m.from_tmpfs_map
    ]


def _string_list(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f"HostConfig.{field} of type []string"
        )
    return list(value)


def volumes_from_refs(host_config: Mapping[str, object]) -> list[tuple[str, str]]:
    """The ``(container, mode)`` pairs of ``HostConfig.VolumesFrom``, validated."""
    return [
        parse_volumes_from(s) for s in _string_list(host_config.get("VolumesFrom"), "VolumesFrom")
    ]


def plan_mounts(
    host_config: Mapping[str, object],
    config_volumes: object,
    *,
    volumes_from: Sequence[tuple[Sequence[MountPoint], str]] = (),
    new_name: Callable[[], str],
) -> tuple[MountPoint, ...]:
    """Every mount of a new container, one per destination, sorted by destination.

    Args:
        host_config: the create request's ``HostConfig`` (Binds, Mounts, Tmpfs).
        config_volumes: the merged ``Config.Volumes`` (image's and the request's).
        volumes_from: for each ``VolumesFrom`` entry, that container's mount points and
            the mode (from :func:`volumes_from_refs`; the caller looks them up).
        new_name: makes the name of an anonymous volume (64 hex digits, as Docker).

    Raises:
        InvalidArgument: anything malformed, with Docker's messages.
    """
    planned: dict[str, MountPoint] = {}
    for mounts, mode in volumes_from:
        for m in inherit(mounts, mode):
            planned[m.destination] = m
    tmpfs_map = host_config.get("Tmpfs")
    if tmpfs_map is not None and (
        not isinstance(tmpfs_map, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in tmpfs_map.items())
    ):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field HostConfig.Tmpfs of type map[string]string"
        )
    tmpfs = [parse_tmpfs(dest, data) for dest, data in (tmpfs_map or {}).items()]
    tmpfs_destinations = {t.destination for t in tmpfs}
    taken: set[str] = set()
    for raw in _string_list(host_config.get("Binds"), "Binds"):
        bind = parse_bind(raw, new_name=new_name)
        if bind.destination in taken or bind.destination in tmpfs_destinations:
            raise InvalidArgument(f"Duplicate mount point: {bind.destination}")
        taken.add(bind.destination)
        planned[bind.destination] = bind
    raw_mounts = host_config.get("Mounts")
    if raw_mounts is not None and not isinstance(raw_mounts, list):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field HostConfig.Mounts of type []mount.Mount"
        )
    for obj in raw_mounts or []:
        m = parse_mount(obj, new_name=new_name)
        if m.destination in taken or m.destination in tmpfs_destinations:
            target = obj.get("Target") if isinstance(obj, dict) else m.destination
            raise InvalidArgument(f"Duplicate mount point: {target}")
        taken.add(m.destination)
        planned[m.destination] = m
    for t in tmpfs:
        planned[t.destination] = t
    for m in planned.values():
        if m.type is MountType.VOLUME:
            check_volume(m.name, m.driver, m.volume_options)
    if config_volumes is not None and not isinstance(config_volumes, dict):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field Config.Volumes of type map[string]struct {}"
        )
    for target in config_volumes or {}:
        error = _check_destination(str(target))
        if error:
            raise InvalidArgument(_mount_config_error("volume", error))
        destination = clean_path(str(target))
        if destination in planned:
            continue  # something else is mounted there (also from the image: no error)
        planned[destination] = MountPoint(
            type=MountType.VOLUME,
            destination=destination,
            name=new_name(),
            driver=LOCAL_DRIVER,
            anonymous=True,
            copy_data=True,
            volume_labels={ANONYMOUS_LABEL: ""},
        )
    return tuple(planned[d] for d in sorted(planned))


# -- views -----------------------------------------------------------------------------


def to_spec(m: MountPoint, volume_path: str) -> UserMount:
    """The spec mount for ``m``; ``volume_path`` is the volume's directory (volumes)."""
    if m.type is MountType.TMPFS:
        return TmpfsMount(m.destination, m.tmpfs_options)
    source = volume_path if m.type is MountType.VOLUME else m.source
    return BindMount(
        source,
        m.destination,
        readonly=not m.rw,
        propagation=m.propagation or DEFAULT_PROPAGATION,
        recursive=m.recursive,
    )


def to_api(m: MountPoint, volume_path: str) -> dict[str, object]:
    """Docker's ``MountPoint`` JSON (inspect ``Mounts``, ``docker ps``'s ``Mounts``)."""
    out: dict[str, object] = {"Type": m.type.value}
    if m.name:
        out["Name"] = m.name
    out["Source"] = volume_path if m.type is MountType.VOLUME else m.source
    out["Destination"] = m.destination
    if m.driver:
        out["Driver"] = m.driver
    out["Mode"] = m.mode
    out["RW"] = m.rw
    out["Propagation"] = m.propagation
    return out
