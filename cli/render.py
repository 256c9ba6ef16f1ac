"""Turning API objects into docker's text: tables, sizes, durations, event lines.

Theory of operation:
    Everything here is a pure function of its arguments: the current time and
    local timezone come in as parameters (``now`` seconds, ``tz``), so the
    output is reproducible in tests.

    * ``tabwrite`` is Go's ``text/tabwriter`` as docker configures it
      (minwidth 10, padding 3, spaces): column widths are computed per block
      of consecutive lines that have that column; the last cell of a line is
      never padded.
    * ``human_duration``/``human_size``/``bytes_size`` follow go-units.
    * ``container_fields``/``image_rows`` build the ``Fields`` contexts that
      ``--format`` templates see (docker's ``ContainerContext`` and
      ``imageContext``), and ``CONTAINER_HEADERS``/``IMAGE_HEADERS`` are the
      header titles of their table columns.
    * ``render_rows`` implements docker's formatter: ``table`` prefix, ``\\t``
      and ``\\n`` escapes, ``json`` shorthand, one line per row.
    * ``network_fields``/``volume_fields`` are docker's networkContext and
      volumeContext (``network ls``/``volume ls``), ``list_format`` their
      ``--format``/``-q`` choice, ``natural_less`` the ``sortorder`` natural
      order those lists (and ``port``) are sorted in.

    Pure module: stdlib only, no I/O.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

from cli.data import get_dict, get_int, get_list, get_str, split_reference
from cli.template import Fields, Template, go_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

# --- Go text/tabwriter -------------------------------------------------------------


def tabwrite(text: str, *, minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-separated cells like Go's tabwriter (docker's settings)."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            for j, cell in enumerate(cells):
                out.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    out.append(" " * (widths[j] - len(cell)))
            if i + 1 < len(lines):
                out.append("\n")

    def format_block(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            format_block(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    format_block(0, len(lines))
    return "".join(out)


# --- go-units -------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: "Less than a second", "About a minute", "3 days"."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # d.Round(time.Hour), half away from zero
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
    return f"{int(seconds / 3600) // 24 // 365} years"


_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(size: float, base: float, units: tuple[str, ...], precision: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision`` (decimal: ``4.26MB``); docker uses 3."""
    return _scaled(float(size), 1000.0, _DECIMAL, precision)


def bytes_size(size: float) -> str:
    """go-units ``BytesSize`` (binary, 4 digits: ``7.632GiB``)."""
    return _scaled(float(size), 1024.0, _BINARY, 4)


# --- small string helpers ---------------------------------------------------------

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, Go escapes, printable runes kept."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def ellipsis(text: str, width: int) -> str:
    """docker's ``formatter.Ellipsis``: cut to ``width`` runes ending in "…"."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return text[0]
    return text[: width - 1] + "\u2026"


def truncate_id(ident: str) -> str:
    """docker's ``stringid.TruncateID``: drop ``sha256:``, keep 12 characters."""
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def go_time(stamp: float, tz: tzinfo) -> str:
    """Go's ``time.Time.String()`` for a unix time: ``2024-01-02 15:04:05 +0000 UTC``."""
    when = datetime.fromtimestamp(int(stamp), tz)
    zone = when.tzname() or when.strftime("%z")
    return when.strftime("%Y-%m-%d %H:%M:%S %z ") + zone


def rfc3339_nano(nanos: int, tz: tzinfo) -> str:
    """docker's ``RFC3339NanoFixed``: ``2024-01-02T15:04:05.000000000Z``."""
    seconds, frac = divmod(nanos, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, tz)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}{_rfc3339_zone(when)}"


def _rfc3339_zone(when: datetime) -> str:
    """RFC 3339's zone: ``Z`` for UTC, else ``+01:00`` / ``-05:30``."""
    offset = when.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


# --- the formatter ---------------------------------------------------------------


def prepare_format(fmt: str) -> tuple[bool, str]:
    """Split docker's ``table`` prefix off and expand ``\\t``/``\\n``.

    Returns:
        ``(is_table, template_source)``.
    """
    is_table = fmt.startswith("table")
    body = fmt[len("table") :] if is_table else fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return is_table, body


def render_rows(
    fmt: str,
    rows: Sequence[object],
    *,
    headers: Mapping[str, str],
    default_table: str,
) -> str:
    """Render ``rows`` with a ``--format`` value as docker's formatter does.

    ``"table"`` alone means ``default_table``; ``"json"`` means ``{{json .}}``.

    Raises:
        TemplateError: the format does not parse or fails on a row.
    """
    if fmt == "table":
        fmt = default_table
    elif fmt == "json":
        fmt = "{{json .}}"
    is_table, source = prepare_format(fmt)
    template = Template(source)
    if not is_table:
        return "".join(template.render(row) + "\n" for row in rows)
    lines = [template.render(dict(headers), header=True)]
    lines.extend(template.render(row) for row in rows)
    return tabwrite("\n".join(lines) + "\n")


# --- containers (docker's ContainerContext) -------------------------------------------

PS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
PS_TABLE_SIZE = PS_TABLE + "\t{{.Size}}"

CONTAINER_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Label": "LABEL",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
}


def _port_sort_key(port: object) -> tuple[int, str, int, str]:
    return (
        get_int(port, "PrivatePort"),
        get_str(port, "IP"),
        get_int(port, "PublicPort"),
        get_str(port, "Type"),
    )


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def display_ports(ports: Sequence[object]) -> str:
    """docker's ``DisplayablePorts``: ``0.0.0.0:8080->80/tcp, 53/udp``, ranges grouped."""
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []

    def form_group(key: str, first: int, last: int) -> str:
        ip, _, kind = key.rpartition("/")
        group = str(first) if first == last else f"{first}-{last}"
        if ip:
            group = f"{_join_host_port(ip, group)}->{group}"
        return f"{group}/{kind}"

    for port in sorted(ports, key=_port_sort_key):
        private = get_int(port, "PrivatePort")
        public = get_int(port, "PublicPort")
        ip = get_str(port, "IP")
        kind = get_str(port, "Type")
        key = kind
        if ip:
            if public != private:
                host = _join_host_port(ip, str(public))
                mappings.append(f"{host}->{private}/{kind}")
                continue
            key = f"{ip}/{kind}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(form_group(key, group[0], group[1]))
            groups[key] = [private, private]
    result.extend(form_group(k, groups[k][0], groups[k][1]) for k in order)
    result.extend(mappings)
    return ", ".join(result)


def container_fields(c: object, *, now: float, tz: tzinfo, trunc: bool = True) -> Fields:
    """The ``--format`` context of one ``GET /containers/json`` entry."""
    ident = get_str(c, "Id")
    names = [n.removeprefix("/") for n in get_list(c, "Names") if isinstance(n, str)]
    if trunc:
        # Hide link names (a/b) like docker: show the first plain name.
        plain = [n for n in names if "/" not in n]
        names = plain[:1] if plain else names
    image = get_str(c, "Image")
    if trunc:
        if image.startswith("sha256:"):
            image = truncate_id(image)
        elif "@" in image:
            image = image.split("@", 1)[0]
    command = get_str(c, "Command")
    created = get_int(c, "Created")
    labels = {k: v for k, v in get_dict(c, "Labels").items() if isinstance(v, str)}
    mounts: list[str] = []
    local_volumes = 0
    for mount in get_list(c, "Mounts"):
        name = get_str(mount, "Name") or get_str(mount, "Source")
        mounts.append(ellipsis(name, 15) if trunc else name)
        if get_str(mount, "Driver") == "local":
            local_volumes += 1
    networks = sorted(get_dict(get_dict(c, "NetworkSettings"), "Networks"))
    size_rw = get_int(c, "SizeRw")
    size_root = get_int(c, "SizeRootFs")
    size = human_size(size_rw)
    if size_root > 0:
        size = f"{size} (virtual {human_size(size_root)})"

    def label(name: object) -> str:
        return labels.get(name, "") if isinstance(name, str) else ""

    return Fields(
        "*formatter.ContainerContext",
        {
            "ID": truncate_id(ident) if trunc else ident,
            "Names": ",".join(names),
            "Image": image,
            "Command": go_quote(ellipsis(command, 20) if trunc else command),
            "CreatedAt": go_time(created, tz),
            "RunningFor": human_duration(now - created) + " ago",
            "Ports": display_ports(get_list(c, "Ports")),
            "State": get_str(c, "State"),
            "Status": get_str(c, "Status"),
            "Size": size,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "Label": label,
            "Mounts": ",".join(mounts),
            "Networks": ",".join(networks),
            "LocalVolumes": str(local_volumes),
        },
    )


# --- images (docker's imageContext) ----------------------------------------------------

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_TABLE_DIGESTS = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)

IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "VIRTUAL SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}


def image_rows(
    image: object,
    *,
    now: float,
    tz: tzinfo,
    trunc: bool = True,
    digests: bool = False,
    need_digest: bool | None = None,
) -> list[Fields]:
    """The ``--format`` contexts of one ``GET /images/json`` entry: a row per tag.

    ``digests`` is ``--digests`` (a row per digest, digest-only references
    too); ``need_digest`` (default: ``digests``) is docker's ``needDigest``,
    also true when the format shows ``{{.Digest}}``: tagged rows then carry
    their digests.
    """
    if need_digest is None:
        need_digest = digests
    repo_tags: dict[str, list[str]] = {}
    for ref in get_list(image, "RepoTags"):
        if not isinstance(ref, str) or ref == "<none>:<none>":
            continue
        repo, tag = split_reference(ref)
        if tag:
            repo_tags.setdefault(repo, []).append(tag)
    repo_digests: dict[str, list[str]] = {}
    for ref in get_list(image, "RepoDigests"):
        if not isinstance(ref, str) or ref.startswith("<none>@"):
            continue
        repo, at, digest = ref.partition("@")
        if at:
            repo_digests.setdefault(repo, []).append(digest)

    pairs: list[tuple[str, str, str]] = []
    for repo, tags in repo_tags.items():
        dgsts = repo_digests.pop(repo, []) if need_digest else []
        repo_digests.pop(repo, None)
        for tag in tags:
            if not dgsts:
                pairs.append((repo, tag, "<none>"))
            pairs.extend((repo, tag, d) for d in dgsts)
    for repo, dgsts in repo_digests.items():
        if digests:
            pairs.extend((repo, "<none>", d) for d in dgsts)
        else:
            pairs.append((repo, "<none>", ""))
    if not pairs:
        pairs.append(("<none>", "<none>", "<none>"))

    ident = get_str(image, "Id")
    created = get_int(image, "Created")
    size = get_int(image, "Size")
    shared = get_int(image, "SharedSize", -1)
    containers = get_int(image, "Containers", -1)
    common: dict[str, object] = {
        "ID": truncate_id(ident) if trunc else ident,
        "CreatedSince": human_duration(now - created) + " ago",
        "CreatedAt": go_time(created, tz),
        "Size": human_size(size),
        "VirtualSize": human_size(size),
        "SharedSize": "N/A" if shared < 0 else human_size(shared),
        "UniqueSize": "N/A" if shared < 0 else human_size(size - shared),
        "Containers": "N/A" if containers < 0 else str(containers),
    }
    return [
        Fields(
            "*formatter.imageContext",
            {"Repository": repo, "Tag": tag, "Digest": digest, **common},
        )
        for repo, tag, digest in pairs
    ]


# --- image history (docker's historyContext) ---------------------------------------------

HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_NON_HUMAN = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}

_Y2K = 946684800  # docker shows "N/A" for layers created before 2000-01-01


def rfc3339(stamp: float, tz: tzinfo) -> str:
    """Go's ``time.RFC3339``: ``2024-01-02T15:04:05Z`` or ``...+01:00``."""
    when = datetime.fromtimestamp(int(stamp), tz)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + _rfc3339_zone(when)


def history_fields(
    item: object, *, now: float, tz: tzinfo, trunc: bool = True, human: bool = True
) -> Fields:
    """The ``--format`` context of one ``GET /images/{name}/history`` entry."""
    ident = get_str(item, "Id")
    created = get_int(item, "Created")
    created_at = rfc3339(created, tz)
    if not human:
        since = created_at
    elif created <= _Y2K:
        since = "N/A"
    else:
        since = human_duration(now - created) + " ago"
    created_by = get_str(item, "CreatedBy").replace("\t", " ")
    size = get_int(item, "Size")
    return Fields(
        "*image.historyContext",
        {
            "Comment": get_str(item, "Comment"),
            "CreatedAt": created_at,
            "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
            "CreatedSince": since,
            "ID": truncate_id(ident) if trunc else ident,
            "Size": human_size(size) if human else str(size),
        },
    )


# --- natural order (fvbommel/sortorder, used by docker's ls commands) ----------------------


def natural_less(a: str, b: str) -> bool:
    """``sortorder.NaturalLess``: digit runs compare as numbers, digits before other bytes."""
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    i = j = 0
    while i < len(x) and j < len(y):
        dx, dy = 48 <= x[i] <= 57, 48 <= y[j] <= 57
        if dx != dy:
            return dx
        if not dx:
            if x[i] != y[j]:
                return x[i] < y[j]
            i += 1
            j += 1
            continue
        while i < len(x) and x[i] == 48:
            i += 1
        while j < len(y) and y[j] == 48:
            j += 1
        nx, ny = i, j
        while i < len(x) and 48 <= x[i] <= 57:
            i += 1
        while j < len(y) and 48 <= y[j] <= 57:
            j += 1
        if i - nx != j - ny:
            return i - nx < j - ny
        if x[nx:i] != y[ny:j]:
            return x[nx:i] < y[ny:j]
        if nx != ny:
            return nx < ny
    return len(x) < len(y)


def natural_sorted(items: Sequence[str]) -> list[str]:
    """``items`` in docker's natural order."""
    from functools import cmp_to_key

    def compare(a: str, b: str) -> int:
        if natural_less(a, b):
            return -1
        return 1 if natural_less(b, a) else 0

    return sorted(items, key=cmp_to_key(compare))


# --- networks and volumes (docker's networkContext and volumeContext) ------------------

NETWORKS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORKS_RAW = (
    "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n",
    "network_id: {{.ID}}",
)

NETWORK_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}

VOLUMES_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUMES_RAW = ("name: {{.Name}}\ndriver: {{.Driver}}\n", "name: {{.Name}}")

VOLUME_HEADERS = {
    "ID": "ID",
    "Name": "VOLUME NAME",
    "Group": "GROUP",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Availability": "AVAILABILITY",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Status": "STATUS",
}


def list_format(
    fmt: str | None, *, quiet: bool, table: str, quiet_format: str, raw: tuple[str, str]
) -> str:
    """docker's ``NewFormat`` for ``network ls``/``volume ls``: ``--format`` and ``-q``.

    No format (or ``table``) is the default table, or just the ids with
    ``-q``; ``raw`` is docker's raw format ``(full, quiet)``; any other
    format is used as is, even with ``-q``.
    """
    if not fmt or fmt == "table":
        return quiet_format if quiet else table
    if fmt == "raw":
        return raw[1] if quiet else raw[0]
    return fmt


def _labels_text(labels: Mapping[str, object]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str))


def _label_lookup(labels: Mapping[str, object]) -> Callable[[object], str]:
    def label(name: object) -> str:
        value = labels.get(name) if isinstance(name, str) else None
        return value if isinstance(value, str) else ""

    return label


def _flag(obj: object, key: str) -> str:
    return "true" if _is_true(obj, key) else "false"


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)"
)


def go_time_string(text: str, tz: tzinfo) -> str:
    """Go's ``time.Time.String()`` of an RFC 3339 time from the API.

    ``2024-01-02 15:04:05.5 +0000 UTC``: fraction without trailing zeros; a
    ``Z`` time is UTC; an offset that is the local zone's (``tz``) takes its
    name, any other is written ``+0100 +0100`` as Go does.  The zero time
    for a missing value; unparseable text unchanged.
    """
    if not text:
        return "0001-01-01 00:00:00 +0000 UTC"
    match = _RFC3339.fullmatch(text)
    if match is None:
        return text
    year, month, day, hour, minute, second, frac, zone = match.groups()
    stamp = f"{year}-{month}-{day} {hour}:{minute}:{second}"
    digits = (frac or "")[:9].rstrip("0")
    if digits:
        stamp += "." + digits
    if zone in ("Z", "z"):
        return stamp + " +0000 UTC"
    sign = 1 if zone[0] == "+" else -1
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
    compact = zone[0] + zone[1:3] + zone[4:6]
    name = compact
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=timezone(offset),
        )  # fmt: skip
        local = when.astimezone(tz)
    except (ValueError, OverflowError):
        local = None
    if local is not None and local.utcoffset() == offset:
        name = local.tzname() or compact
    return f"{stamp} {compact} {name}"


def network_fields(network: object, *, tz: tzinfo, trunc: bool = True) -> Fields:
    """The ``--format`` context of one ``GET /networks`` entry (docker's networkContext)."""
    ident = get_str(network, "Id")
    labels = get_dict(network, "Labels")
    return Fields(
        "*network.networkContext",
        {
            "CreatedAt": go_time_string(get_str(network, "Created"), tz),
            "Driver": get_str(network, "Driver"),
            "ID": truncate_id(ident) if trunc else ident,
            "IPv4": _flag(network, "EnableIPv4"),
            "IPv6": _flag(network, "EnableIPv6"),
            "Internal": _flag(network, "Internal"),
            "Label": _label_lookup(labels),
            "Labels": _labels_text(labels),
            "Name": get_str(network, "Name"),
            "Scope": get_str(network, "Scope"),
        },
    )


def volume_fields(volume: object) -> Fields:
    """The ``--format`` context of one ``GET /volumes`` entry (docker's volumeContext).

    ``Links`` and ``Size`` come from ``UsageData`` (``N/A`` without it); the
    cluster fields are ``N/A`` (berth has no cluster volumes).
    """
    labels = get_dict(volume, "Labels")
    usage = get_dict(volume, "UsageData")
    return Fields(
        "*formatter.volumeContext",
        {
            "Availability": "N/A",
            "Driver": get_str(volume, "Driver"),
            "Group": "N/A",
            "Label": _label_lookup(labels),
            "Labels": _labels_text(labels),
            "Links": str(get_int(usage, "RefCount")) if usage else "N/A",
            "Mountpoint": get_str(volume, "Mountpoint"),
            "Name": get_str(volume, "Name"),
            "Scope": get_str(volume, "Scope"),
            "Size": human_size(get_int(usage, "Size"), 4) if usage else "N/A",  # units.HumanSize
            "Status": "N/A",
        },
    )


# --- search results (docker's searchContext) ------------------------------------------

SEARCH_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"

SEARCH_HEADERS = {
    "Name": "NAME",
    "Description": "DESCRIPTION",
    "StarCount": "STARS",
    "IsOfficial": "OFFICIAL",
}


def search_fields(result: object, *, trunc: bool = True) -> Fields:
    """The ``--format`` context of one ``GET /images/search`` result.

    ``IsOfficial`` is ``[OK]`` or "" in tables, ``true``/``false`` in ``{{json .}}``.
    """
    description = get_str(result, "description").replace("\n", " ").replace("\r", " ")
    if trunc:
        description = ellipsis(description, 45)
    official = isinstance(result, dict) and result.get("is_official") is True
    values: dict[str, object] = {
        "Description": description,
        "IsOfficial": "[OK]" if official else "",
        "Name": get_str(result, "name"),
        "StarCount": str(get_int(result, "star_count")),
    }
    as_json = dict(values, IsOfficial="true" if official else "false")
    return Fields("*registry.searchContext", values, json_values=as_json)


# --- events --------------------------------------------------------------------------------


def event_line(event: object, *, tz: tzinfo) -> str:
    """docker's default ``events`` line (without the newline)::

    2024-01-01T00:00:00.000000000Z container start <id> (image=busybox, name=x)
    """
    nanos = get_int(event, "timeNano")
    if not nanos:
        nanos = get_int(event, "time") * 1_000_000_000
    actor = get_dict(event, "Actor")
    line = (
        f"{rfc3339_nano(nanos, tz)} {get_str(event, 'Type')} "
        f"{get_str(event, 'Action')} {get_str(actor, 'ID')}"
    )
    attrs = get_dict(actor, "Attributes")
    if attrs:
        line += " (" + ", ".join(f"{k}={_plain(attrs[k])}" for k in sorted(attrs)) + ")"
    return line


def _plain(value: object) -> str:
    return value if isinstance(value, str) else go_json(value)


# --- version and info ---------------------------------------------------------------------


def _aligned(pairs: Sequence[tuple[str, object]], indent: str) -> list[str]:
    return [f"{indent}{key}:\t{value}" for key, value in pairs]


def version_text(client: Mapping[str, str], server: object | None) -> str:
    """``berth version``: a Client section and, if reachable, a Server section."""
    lines = ["Client:"]
    lines += _aligned(
        [
            ("Version", client.get("Version", "")),
            ("API version", client.get("ApiVersion", "")),
            ("Python version", client.get("PythonVersion", "")),
            ("OS/Arch", client.get("Os", "") + "/" + client.get("Arch", "")),
        ],
        " ",
    )
    if server is None:
        return tabwrite("\n".join(lines) + "\n", minwidth=20, padding=1)
    platform = get_str(get_dict(server, "Platform"), "Name") or "berth"
    api = get_str(server, "ApiVersion")
    min_api = get_str(server, "MinAPIVersion")
    lines += ["", f"Server: {platform}", " Engine:"]
    lines += _aligned(
        [
            ("Version", get_str(server, "Version")),
            ("API version", f"{api} (minimum version {min_api})" if min_api else api),
            ("Git commit", get_str(server, "GitCommit")),
            ("Built", get_str(server, "BuildTime")),
            ("OS/Arch", f"{get_str(server, 'Os')}/{get_str(server, 'Arch')}"),
            ("Experimental", "true" if _is_true(server, "Experimental") else "false"),
        ],
        "  ",
    )
    for comp in get_list(server, "Components"):
        name = get_str(comp, "Name")
        if not name or name == "Engine":
            continue
        lines.append(f" {name}:")
        lines += _aligned([("Version", get_str(comp, "Version"))], "  ")
    # docker renders this template through tabwriter(minwidth 20, padding 1).
    return tabwrite("\n".join(lines) + "\n", minwidth=20, padding=1)


def _is_true(obj: object, key: str) -> bool:
    return isinstance(obj, dict) and obj.get(key) is True


def info_text(client_version: str, info: object) -> str:
    """``berth info``: the readable summary of ``GET /info``."""
    lines = ["Client:", f" Version:    {client_version}", " Context:    default", ""]
    lines.append("Server:")
    lines.append(f" Containers: {get_int(info, 'Containers')}")
    lines.append(f"  Running: {get_int(info, 'ContainersRunning')}")
    lines.append(f"  Paused: {get_int(info, 'ContainersPaused')}")
    lines.append(f"  Stopped: {get_int(info, 'ContainersStopped')}")
    lines.append(f" Images: {get_int(info, 'Images')}")
    fields: list[tuple[str, Callable[[], str]]] = [
        ("Server Version", lambda: get_str(info, "ServerVersion")),
        ("Storage Driver", lambda: get_str(info, "Driver")),
        ("Logging Driver", lambda: get_str(info, "LoggingDriver")),
        ("Cgroup Driver", lambda: get_str(info, "CgroupDriver")),
        ("Cgroup Version", lambda: get_str(info, "CgroupVersion")),
        ("Default Runtime", lambda: get_str(info, "DefaultRuntime")),
        ("Kernel Version", lambda: get_str(info, "KernelVersion")),
        ("Operating System", lambda: get_str(info, "OperatingSystem")),
        ("OSType", lambda: get_str(info, "OSType")),
        ("Architecture", lambda: get_str(info, "Architecture")),
        ("CPUs", lambda: str(get_int(info, "NCPU")) if _has(info, "NCPU") else ""),
        (
            "Total Memory",
            lambda: bytes_size(get_int(info, "MemTotal")) if _has(info, "MemTotal") else "",
        ),
        ("Name", lambda: get_str(info, "Name")),
        ("ID", lambda: get_str(info, "ID")),
        ("Docker Root Dir", lambda: get_str(info, "DockerRootDir")),
        ("Debug Mode", lambda: "true" if _is_true(info, "Debug") else "false"),
    ]
    for title, value in fields:
        text = value()
        if text:
            lines.append(f" {title}: {text}")
    for warning in get_list(info, "Warnings"):
        if isinstance(warning, str):
            lines.append(warning)
    return "\n".join(lines) + "\n"


def _has(obj: object, key: str) -> bool:
    return isinstance(obj, dict) and key in obj
