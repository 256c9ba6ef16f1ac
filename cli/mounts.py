"""Storage flags of ``run``/``create``: ``--mount``, ``-v/--volume`` and ``--tmpfs``.

Theory of operation:
    Each parser turns one flag value into the Engine API's shape the way the
    docker 28 CLI does, with its error wording, so users see the same
    messages:

    * ``read_csv_record`` is the first record of Go's ``encoding/csv``
      (``--mount`` and ``--network`` long syntax are CSV): quoted fields,
      ``""`` escapes, quoted newlines, and Go's ``parse error on line L,
      column C`` messages.
    * ``parse_mount`` is docker's ``MountOpt.Set``: one ``HostConfig.Mounts``
      entry, serialised as Go does (``omitempty`` fields left out).
    * ``parse_volume_spec`` is the compose loader's ``ParseVolume`` that
      docker uses for ``-v``; ``split_volumes`` sorts the values into
      ``HostConfig.Binds`` (a source is named) and anonymous volumes
      (``Config.Volumes``).
    * ``parse_tmpfs`` maps ``--tmpfs PATH[:OPTIONS]`` to ``HostConfig.Tmpfs``.

    Relative bind sources (``./data``) become absolute against ``cwd``, a
    parameter: the module does no I/O and imports only the standard library
    and ``cli.units``.  Every failure is ``InvalidArgument`` (the Hypothesis
    tests hold the parsers to that).
"""

from __future__ import annotations

import posixpath

from cli.units import InvalidArgument, parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_BARE_QUOTE = 'bare " in non-quoted-field'
_QUOTE = 'extraneous or missing " in quoted-field'


# --- Go's encoding/csv, one record ---------------------------------------------------


def _csv_error(start: int, line: int, column: int, what: str) -> InvalidArgument:
    where = f"parse error on line {line}, column {column}: {what}"
    if start != line:
        where = f"record on line {start}; {where}"
    return InvalidArgument(where)


def _column(text: str) -> int:
    """Go counts columns in bytes."""
    return len(text.encode("utf-8", "surrogateescape"))


def read_csv_record(text: str) -> list[str]:
    """The first record of ``text`` as Go's ``csv.Reader.Read`` returns it.

    Blank lines before the record are skipped; a quoted field may hold
    commas, ``""`` (one quote) and newlines; ``\\r\\n`` counts as ``\\n``.

    Raises:
        InvalidArgument: ``EOF`` for an empty input, Go's ``parse error`` for
            a bare or unbalanced quote.
    """
    lines = text.split("\n")
    ended = [True] * (len(lines) - 1) + [False]  # whether a newline followed
    lines = [line.removesuffix("\r") for line in lines]
    index = 0
    while index < len(lines) and lines[index] == "":
        index += 1
    if index >= len(lines):
        raise InvalidArgument("EOF")
    start = index + 1
    line = lines[index]
    col = 0
    fields: list[str] = []
    while True:
        if not line.startswith('"', col):
            comma = line.find(",", col)
            field = line[col:] if comma < 0 else line[col:comma]
            quote = field.find('"')
            if quote >= 0:
                raise _csv_error(start, index + 1, _column(line[: col + quote]) + 1, _BARE_QUOTE)
            fields.append(field)
            if comma < 0:
                return fields
            col = comma + 1
            continue
        col += 1
        parts: list[str] = []
        while True:
            quote = line.find('"', col)
            if quote < 0:
                parts.append(line[col:])
                if not ended[index] or (index + 1 == len(lines) - 1 and lines[-1] == ""):
                    extra = 2 if ended[index] else 1
                    raise _csv_error(start, index + 1, _column(line) + extra, _QUOTE)
                parts.append("\n")
                index += 1
                line = lines[index]
                col = 0
                continue
            parts.append(line[col:quote])
            col = quote + 1
            after = line[col : col + 1]
            if after == '"':
                parts.append('"')
                col += 1
                continue
            if after == ",":
                col += 1
                fields.append("".join(parts))
                break
            if after == "":
                fields.append("".join(parts))
                return fields
            raise _csv_error(start, index + 1, _column(line[:col]), _QUOTE)


# --- --mount -----------------------------------------------------------------------------

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_RECURSIVE = ("enabled", "disabled", "writable", "readonly")


def _go_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``; None when it fails."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _absolute(path: str, cwd: str) -> str:
    """docker makes ``./x`` and ``../x`` absolute (``filepath.Abs``); nothing else."""
    if path.startswith("/") or not path.startswith(".") or not cwd:
        return path
    return posixpath.normpath(posixpath.join(cwd, path))


class _Mount:
    """A ``mount.Mount`` being built; ``json()`` serialises it as Go's ``omitempty`` does."""

    def __init__(self) -> None:
        self.type = "volume"  # docker's default
        self.source = ""
        self.target = ""
        self.read_only = False
        self.consistency = ""
        self.bind: dict[str, object] | None = None
        self.volume: dict[str, object] | None = None
        self.image: dict[str, object] | None = None
        self.tmpfs: dict[str, object] | None = None

    def bind_options(self) -> dict[str, object]:
        if self.bind is None:
            self.bind = {}
        return self.bind

    def volume_options(self) -> dict[str, object]:
        if self.volume is None:
            self.volume = {"Labels": {}, "DriverConfig": {}}
        return self.volume

    def volume_map(self, key: str) -> dict[str, str]:
        """``VolumeOptions.Labels`` or ``VolumeOptions.DriverConfig.Options``."""
        options = self.volume_options()
        holder = options if key == "Labels" else options["DriverConfig"]
        assert isinstance(holder, dict)
        found = holder.setdefault(key, {})
        assert isinstance(found, dict)
        return found

    def tmpfs_options(self) -> dict[str, object]:
        if self.tmpfs is None:
            self.tmpfs = {}
        return self.tmpfs

    def json(self) -> dict[str, object]:
        out: dict[str, object] = {"Type": self.type}
        if self.source:
            out["Source"] = self.source
        out["Target"] = self.target
        if self.read_only:
            out["ReadOnly"] = True
        if self.consistency:
            out["Consistency"] = self.consistency
        for key, options in (
            ("BindOptions", self.bind),
            ("VolumeOptions", self.volume),
            ("ImageOptions", self.image),
            ("TmpfsOptions", self.tmpfs),
        ):
            if options is not None:
                out[key] = _omit_empty(options)
        return out


def _omit_empty(options: dict[str, object]) -> dict[str, object]:
    """Go's ``omitempty``: drop false, 0, "" and empty maps (nested structs stay)."""
    out: dict[str, object] = {}
    for key, value in options.items():
        if key == "DriverConfig" and isinstance(value, dict):
            out[key] = _omit_empty(value)
        elif value not in (False, 0, "", {}):
            out[key] = value
    return out


def _key_value(target: dict[str, str], text: str) -> None:
    key, _, value = text.partition("=")
    if key:
        target[key] = value


def _set_flag_field(mount: _Mount, key: str, field: str) -> None:
    """A field without ``=``: only a few options may be written bare."""
    if key in ("readonly", "ro"):
        mount.read_only = True
    elif key == "volume-nocopy":
        mount.volume_options()["NoCopy"] = True
    elif key == "bind-nonrecursive":
        mount.bind_options()["NonRecursive"] = True
    else:
        raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")


def _set_field(mount: _Mount, key: str, value: str, field: str, cwd: str) -> None:
    def boolean() -> bool:
        parsed = _go_bool(value)
        if parsed is None:
            raise InvalidArgument(f"invalid value for {key}: {value}")
        return parsed

    if key == "type":
        mount.type = value.lower()
    elif key in ("source", "src"):
        mount.source = _absolute(value, cwd)
    elif key in ("target", "dst", "destination"):
        mount.target = value
    elif key in ("readonly", "ro"):
        mount.read_only = boolean()
    elif key == "consistency":
        mount.consistency = value.lower()
    elif key == "bind-propagation":
        mount.bind_options()["Propagation"] = value.lower()
    elif key == "bind-nonrecursive":
        mount.bind_options()["NonRecursive"] = boolean()
    elif key == "bind-recursive":
        if value not in _RECURSIVE:
            raise InvalidArgument(
                f"invalid value for {key}: {value} "
                '(must be "enabled", "disabled", "writable", or "readonly")'
            )
        option = {
            "disabled": "NonRecursive",
            "writable": "ReadOnlyNonRecursive",
            "readonly": "ReadOnlyForceRecursive",
        }.get(value)
        if option is not None:  # "enabled" is the default and creates no BindOptions
            mount.bind_options()[option] = True
    elif key == "volume-subpath":
        mount.volume_options()["Subpath"] = value
    elif key == "volume-nocopy":
        parsed = _go_bool(value)
        if parsed is None:
            raise InvalidArgument(f"invalid value for volume-nocopy: {value}")
        mount.volume_options()["NoCopy"] = parsed
    elif key == "volume-label":
        _key_value(mount.volume_map("Labels"), value)
    elif key == "volume-driver":
        driver = mount.volume_options()["DriverConfig"]
        assert isinstance(driver, dict)
        driver["Name"] = value
    elif key == "volume-opt":
        _key_value(mount.volume_map("Options"), value)
    elif key == "image-subpath":
        if mount.image is None:
            mount.image = {}
        mount.image["Subpath"] = value
    elif key == "tmpfs-size":
        try:
            mount.tmpfs_options()["SizeBytes"] = parse_size(value)
        except InvalidArgument:
            raise InvalidArgument(f"invalid value for {key}: {value}") from None
    elif key == "tmpfs-mode":
        mode = _octal(value)
        if mode is None:
            raise InvalidArgument(f"invalid value for {key}: {value}")
        mount.tmpfs_options()["Mode"] = mode
    else:
        raise InvalidArgument(f"unexpected key '{key}' in '{field}'")


def _octal(text: str) -> int | None:
    """Go's ``strconv.ParseUint(text, 8, 32)``; None when it fails."""
    if not text or any(ch not in "01234567" for ch in text):
        return None
    value = int(text, 8)
    return value if value <= 0xFFFFFFFF else None


def _check(mount: _Mount) -> None:
    if not mount.type:
        raise InvalidArgument("type is required")
    if not mount.target:
        raise InvalidArgument("target is required")
    for options, kind, prefix in (
        (mount.volume, "volume", "volume"),
        (mount.image, "image", "image"),
        (mount.bind, "bind", "bind"),
        (mount.tmpfs, "tmpfs", "tmpfs"),
    ):
        if options is not None and mount.type != kind:
            raise InvalidArgument(f"cannot mix '{prefix}-*' options with mount type '{mount.type}'")
    bind = mount.bind or {}
    if bind.get("ReadOnlyNonRecursive") and not mount.read_only:
        raise InvalidArgument(
            "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
        )
    if bind.get("ReadOnlyForceRecursive"):
        if not mount.read_only:
            raise InvalidArgument(
                "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"
            )
        if bind.get("Propagation") != "rprivate":
            raise InvalidArgument(
                "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' "
                "to be specified in conjunction"
            )


def parse_mount(value: str, cwd: str = "") -> dict[str, object]:
    """One ``--mount`` value as a ``HostConfig.Mounts`` entry.

    ``type=bind|volume|tmpfs|image`` (default volume), ``source``/``src``,
    ``target``/``dst``/``destination``, ``readonly``/``ro``, ``consistency``,
    ``bind-propagation``, ``bind-recursive``, ``bind-nonrecursive``,
    ``volume-nocopy``, ``volume-subpath``, ``volume-label``,
    ``volume-driver``, ``volume-opt``, ``image-subpath``, ``tmpfs-size``,
    ``tmpfs-mode`` (octal).  Keys are case-insensitive, as in docker.

    Args:
        value: the flag's value (CSV).
        cwd: the directory a relative ``./source`` is taken from ("" keeps it).

    Raises:
        InvalidArgument: docker's message (without the flag prefix).
    """
    mount = _Mount()
    for field in read_csv_record(value):
        key, eq, val = field.partition("=")
        key = key.lower()
        if eq:
            _set_field(mount, key, val, field, cwd)
        else:
            _set_flag_field(mount, key, field)
    _check(mount)
    return mount.json()


# --- -v / --volume ---------------------------------------------------------------------


def _windows_drive(buffer: str, char: str) -> bool:
    return char == ":" and len(buffer) == 1 and buffer.isalpha()


def parse_volume_spec(spec: str) -> tuple[str, str]:
    """Split a ``-v`` value into ``(source, target)`` as docker's ``ParseVolume`` does.

    ``SRC:DST[:OPTIONS]`` or ``DST`` (anonymous volume: source ``""``); a
    one-letter drive (``c:``) does not split.  Options are not checked here
    (the daemon does).

    Raises:
        InvalidArgument: ``invalid empty volume spec``, ``invalid spec: S:
            empty section between colons``, ``invalid spec: S: too many colons``.
    """
    if not spec:
        raise InvalidArgument("invalid empty volume spec")
    if len(spec) <= 2:
        return "", spec
    source = target = ""
    buffer = ""
    for char in [*spec, ""]:
        if _windows_drive(buffer, char):
            buffer += char
        elif char in (":", ""):
            if not buffer:
                raise InvalidArgument(f"invalid spec: {spec}: empty section between colons")
            if not source and char == "":
                target = buffer
            elif not source:
                source = buffer
            elif not target:
                target = buffer
            elif char == ":":
                raise InvalidArgument(f"invalid spec: {spec}: too many colons")
            buffer = ""
        else:
            buffer += char
    return source, target


def _is_file_path(source: str) -> bool:
    if source[0] in "./~":
        return True
    if len(source) == 1:
        return False
    if source.startswith("\\\\"):
        return True
    return _windows_drive(source[0], source[1])


def split_volumes(
    values: Iterable[str], *, cwd: str = ""
) -> tuple[list[str], dict[str, dict[str, object]]]:
    """``-v`` values as ``(HostConfig.Binds, Config.Volumes)``.

    A value naming a source (a host path or a volume name) is a bind; a bind
    whose host path starts with ``.`` is made absolute against ``cwd``.  A
    value without a source is an anonymous volume, kept whole as its key.
    Repeated values count once, as in docker's map.

    Raises:
        InvalidArgument: as ``parse_volume_spec``.
    """
    binds: list[str] = []
    volumes: dict[str, dict[str, object]] = {}
    for value in dict.fromkeys(values):
        source, _ = parse_volume_spec(value)
        if not source:
            volumes[value] = {}
            continue
        bind = value
        if _is_file_path(source):
            host, colon, rest = value.partition(":")
            if colon:
                bind = f"{_absolute(host, cwd)}:{rest}"
        binds.append(bind)
    return binds, volumes


# --- --tmpfs -----------------------------------------------------------------------------


def parse_tmpfs(values: Iterable[str]) -> dict[str, str]:
    """``--tmpfs PATH[:OPTIONS]`` values as ``HostConfig.Tmpfs`` (options unchecked)."""
    tmpfs: dict[str, str] = {}
    for value in values:
        path, _, options = value.partition(":")
        tmpfs[path] = options
    return tmpfs
