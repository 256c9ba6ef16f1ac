"""``top``, ``stats``, ``diff``, ``update``, ``system df`` and ``system prune``.

Theory of operation:
    ``cmd_<name>(client, parsed) -> exit code``, each making the requests the docker 28
    CLI makes and printing what it prints.  The arithmetic is in small pure functions
    (``stats_row``, ``df_summary``...) tested on their own:

    * ``stats`` reads Docker's ``StatsResponse`` as the docker CLI does: CPU % from
      ``cpu_stats`` against ``precpu_stats`` (``Δcontainer / Δsystem * online CPUs``),
      memory without the inactive file cache (v1 ``total_inactive_file``, v2
      ``inactive_file``), block I/O as the sum of the ``Read``/``Write`` entries.
      ``--no-stream`` sends every container's request before reading any answer, so the
      daemon's one-second priming runs for all of them at once.  Streaming re-reads
      ``one-shot`` samples every second and computes CPU % against the sample of the
      previous round (the first round is a primed ``stream=0`` read).
    * ``system prune`` calls the prune endpoints in docker's order (containers,
      networks, volumes with ``--volumes``, images, build cache) and adds up the space.

    ``cli.commands`` imports this module only when one of these commands runs.
"""

from __future__ import annotations

import json
import sys

from cli.client import Client, ClientError, DaemonError, Response, check, quote
from cli.commands import err, flush, out
from cli.data import get_dict, get_int, get_list, get_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cli.argspec import Parsed
    from cli.template import Fields

STATS_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}"
    "\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
)
STATS_HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}
DF_IMAGES_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    "\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
)
DF_CONTAINERS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}"
    "\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
)
DF_VOLUMES_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
DF_BUILD_CACHE_HEADER = "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n"
CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}


# --- top ---------------------------------------------------------------------------------


def top_text(processes: object) -> str:
    """docker's ``top`` output: Titles and rows through a tabwriter (min width 20)."""
    from cli.render import tabwrite

    titles = [str(t) for t in get_list(processes, "Titles")]
    lines = ["\t".join(titles)]
    for row in get_list(processes, "Processes"):
        if isinstance(row, list):
            lines.append("\t".join(str(f) for f in row))
    return tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3)


def cmd_top(client: Client, parsed: Parsed) -> int:
    """``berth top CONTAINER [ps OPTIONS]``."""
    container, *ps_args = parsed.args
    query = {"ps_args": " ".join(ps_args)} if ps_args else {}
    processes = client.get(f"/containers/{quote(container)}/top", **query)
    out(top_text(processes))
    return 0


# --- diff --------------------------------------------------------------------------------


def diff_text(changes: object) -> str:
    """``C /etc``, ``A /etc/new``, ``D /etc/old``: one line per change."""
    lines = []
    for change in changes if isinstance(changes, list) else []:
        kind = CHANGE_KINDS.get(get_int(change, "Kind"), "?")
        lines.append(f"{kind} {get_str(change, 'Path')}\n")
    return "".join(lines)


def cmd_diff(client: Client, parsed: Parsed) -> int:
    """``berth diff CONTAINER``."""
    out(diff_text(client.get(f"/containers/{quote(parsed.args[0])}/changes")))
    return 0


# --- update ------------------------------------------------------------------------------

_UPDATE_INTS = (
    ("blkio_weight", "BlkioWeight"),
    ("cpu_period", "CpuPeriod"),
    ("cpu_quota", "CpuQuota"),
    ("cpu_rt_period", "CpuRealtimePeriod"),
    ("cpu_rt_runtime", "CpuRealtimeRuntime"),
    ("cpu_shares", "CpuShares"),
)


def update_body(parsed: Parsed) -> dict[str, object]:
    """Docker's ``UpdateConfig``: every resource (0: unchanged), ``PidsLimit`` only
    when given, the restart policy (empty name: unchanged).

    Raises:
        ClientError: no flag at all (docker's message).
        InvalidArgument: a bad size, CPU count or restart policy.
    """
    from cli.units import parse_cpus, parse_memory_swap, parse_restart_policy, parse_size

    given = [dest for dest, value in parsed.opts.items() if value not in (None, False, [])]
    if not given:
        raise ClientError("you must provide one or more flags when using this command")
    body: dict[str, object] = {}
    for dest, key in _UPDATE_INTS:
        body[key] = parsed.number(dest) or 0
    body["CpusetCpus"] = parsed.text("cpuset_cpus") or ""
    body["CpusetMems"] = parsed.text("cpuset_mems") or ""
    memory = parsed.text("memory")
    body["Memory"] = parse_size(memory) if memory else 0
    reservation = parsed.text("memory_reservation")
    body["MemoryReservation"] = parse_size(reservation) if reservation else 0
    swap = parsed.text("memory_swap")
    body["MemorySwap"] = parse_memory_swap(swap) if swap else 0
    cpus = parsed.text("cpus")
    body["NanoCpus"] = parse_cpus(cpus) if cpus else 0
    pids = parsed.number("pids_limit")
    if pids is not None:
        body["PidsLimit"] = pids
    restart = parsed.text("restart")
    body["RestartPolicy"] = (
        parse_restart_policy(restart) if restart else {"Name": "", "MaximumRetryCount": 0}
    )
    return body


def cmd_update(client: Client, parsed: Parsed) -> int:
    """``berth update [OPTIONS] CONTAINER...``: print each name updated; warnings to
    stderr; the errors at the end."""
    body = update_body(parsed)
    errors: list[str] = []
    for name in parsed.args:
        try:
            result = client.post(f"/containers/{quote(name)}/update", body)
        except DaemonError as exc:
            errors.append(str(exc))
            continue
        for warning in get_list(result, "Warnings"):
            flush()
            err(str(warning))
        out(name + "\n")
    if errors:
        flush()
        err("\n".join(errors))
        return 1
    return 0


# --- stats -------------------------------------------------------------------------------


class StatsRow:
    """One container's figures, as the docker CLI computes them from a sample."""

    __slots__ = (
        "blk_read",
        "blk_write",
        "cpu",
        "id",
        "limit",
        "mem",
        "name",
        "net_rx",
        "net_tx",
        "pids",
    )

    def __init__(
        self,
        *,
        id: str,  # noqa: A002 - docker's field name
        name: str,
        cpu: float,
        mem: float,
        limit: float,
        net_rx: float,
        net_tx: float,
        blk_read: float,
        blk_write: float,
        pids: int,
    ) -> None:
        self.id = id
        self.name = name
        self.cpu = cpu
        self.mem = mem
        self.limit = limit
        self.net_rx = net_rx
        self.net_tx = net_tx
        self.blk_read = blk_read
        self.blk_write = blk_write
        self.pids = pids

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # compared, never hashed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatsRow) and self._key() == other._key()

    def __repr__(self) -> str:
        return "StatsRow(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    @property
    def mem_percent(self) -> float:
        return self.mem / self.limit * 100.0 if self.limit else 0.0


def cpu_percent(cpu: object, precpu: object) -> float:
    """docker's ``calculateCPUPercentUnix`` for two ``cpu_stats`` objects."""
    usage = get_dict(cpu, "cpu_usage")
    cpu_delta = get_int(usage, "total_usage") - get_int(
        get_dict(precpu, "cpu_usage"), "total_usage"
    )
    system_delta = get_int(cpu, "system_cpu_usage") - get_int(precpu, "system_cpu_usage")
    cpus = get_int(cpu, "online_cpus") or len(get_list(usage, "percpu_usage"))
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * cpus * 100.0


def memory_usage(memory: object) -> int:
    """docker's ``calculateMemUsageUnixNoCache``: usage less the inactive file cache."""
    usage = get_int(memory, "usage")
    stats = get_dict(memory, "stats")
    for key in ("total_inactive_file", "inactive_file"):  # cgroup v1, then v2
        value = stats.get(key)
        if isinstance(value, int) and value < usage:
            return usage - value
    return usage


def stats_row(sample: object, precpu: object | None = None) -> StatsRow:
    """The figures of one ``StatsResponse``; ``precpu``: the ``cpu_stats`` to compare
    with instead of the sample's own ``precpu_stats``."""
    rx = tx = 0
    for counters in get_dict(sample, "networks").values():
        rx += get_int(counters, "rx_bytes")
        tx += get_int(counters, "tx_bytes")
    read = write = 0
    for entry in get_list(get_dict(sample, "blkio_stats"), "io_service_bytes_recursive"):
        op = get_str(entry, "op")[:1]
        if op in ("r", "R"):
            read += get_int(entry, "value")
        elif op in ("w", "W"):
            write += get_int(entry, "value")
    cpu = get_dict(sample, "cpu_stats")
    memory = get_dict(sample, "memory_stats")
    return StatsRow(
        id=get_str(sample, "id"),
        name=get_str(sample, "name").removeprefix("/"),
        cpu=cpu_percent(cpu, get_dict(sample, "precpu_stats") if precpu is None else precpu),
        mem=memory_usage(memory),
        limit=get_int(memory, "limit"),
        net_rx=rx,
        net_tx=tx,
        blk_read=read,
        blk_write=write,
        pids=get_int(get_dict(sample, "pids_stats"), "current"),
    )


def stats_fields(row: StatsRow, *, container: str, trunc: bool = True) -> Fields:
    """docker's ``statsContext`` for ``--format``."""
    from cli.render import bytes_size, human_size
    from cli.template import Fields

    ident = row.id[:12] if trunc else row.id
    values: dict[str, object] = {
        "Container": container,
        "Name": row.name or "--",
        "ID": ident,
        "CPUPerc": f"{row.cpu:.2f}%",
        "MemUsage": f"{bytes_size(row.mem)} / {bytes_size(row.limit)}",
        "MemPerc": f"{row.mem_percent:.2f}%",
        "NetIO": f"{human_size(row.net_rx, 3)} / {human_size(row.net_tx, 3)}",
        "BlockIO": f"{human_size(row.blk_read, 3)} / {human_size(row.blk_write, 3)}",
        "PIDs": str(row.pids),
    }
    # docker marshals the context as a map: {{json .}} shows the keys sorted
    return Fields("*formatter.statsContext", values, dict(sorted(values.items())))


def _stats_targets(client: Client, parsed: Parsed) -> list[str]:
    if parsed.args:
        return list(parsed.args)
    listing = client.get("/containers/json", all=1 if parsed.flag("all") else None)
    return [get_str(c, "Id") for c in (listing if isinstance(listing, list) else [])]


def fetch_stats(
    client: Client, names: Sequence[str], *, one_shot: bool
) -> tuple[dict[str, object], list[str]]:
    """One sample per container, all requests sent before any answer is read (the
    daemon primes each for a second, concurrently). Returns (samples by name, errors)."""
    query: dict[str, object] = {"stream": 0, "one-shot": 1 if one_shot else None}
    pending: list[tuple[str, Response | None, str]] = []
    for name in names:
        try:
            pending.append(
                (name, client.send("GET", f"/containers/{quote(name)}/stats", query=query), "")
            )
        except ClientError as exc:
            pending.append((name, None, str(exc)))
    samples: dict[str, object] = {}
    errors: list[str] = []
    for name, response, error in pending:
        if response is None:
            errors.append(error)
            continue
        try:
            check(response)
            samples[name] = response.json()
        except DaemonError as exc:
            errors.append(str(exc))
        finally:
            response.close()
    return samples, errors


def _stats_format(parsed: Parsed) -> str:
    from cli.commands import _check_table_format

    fmt = parsed.text("format") or "table"
    _check_table_format(fmt)  # a bad template fails before any request
    return fmt


def _render_stats(
    fmt: str, names: Sequence[str], rows: Mapping[str, StatsRow], *, trunc: bool
) -> str:
    from cli.render import render_rows

    contexts = [stats_fields(rows[n], container=n, trunc=trunc) for n in names if n in rows]
    return render_rows(fmt, contexts, headers=STATS_HEADERS, default_table=STATS_TABLE)


def cmd_stats(client: Client, parsed: Parsed) -> int:
    """``berth stats [--no-stream] [-a] [--format] [CONTAINER...]``."""
    fmt = _stats_format(parsed)
    trunc = not parsed.flag("no_trunc")
    if parsed.flag("no_stream"):
        names = _stats_targets(client, parsed)
        samples, errors = fetch_stats(client, names, one_shot=False)
        out(_render_stats(fmt, names, {n: stats_row(s) for n, s in samples.items()}, trunc=trunc))
        if errors:
            flush()
            err("\n".join(errors))
            return 1
        return 0
    return _stream_stats(client, parsed, fmt, trunc=trunc)


def _stream_stats(client: Client, parsed: Parsed, fmt: str, *, trunc: bool) -> int:
    """Refresh the table every second until interrupted (or every named container is
    gone)."""
    import select
    import time

    previous: dict[str, object] = {}
    first = True
    clear = sys.stdout.isatty()
    while True:
        started = time.monotonic()
        names = _stats_targets(client, parsed)
        samples, errors = fetch_stats(client, names, one_shot=not first)
        rows = {n: stats_row(s, previous.get(n) if not first else None) for n, s in samples.items()}
        previous = {n: get_dict(s, "cpu_stats") for n, s in samples.items()}
        first = False
        if clear:
            out("\033[H\033[J")
        out(_render_stats(fmt, names, rows, trunc=trunc))
        flush()
        if errors and parsed.args and not samples:
            err("\n".join(errors))
            return 1
        # The CLI is a plain blocking program (no trio): wait out the rest of the second.
        select.select([], [], [], max(0.0, 1.0 - (time.monotonic() - started)))


# --- system df ---------------------------------------------------------------------------


def _share(reclaimable: int, total: int) -> str:
    from cli.progress import human_size

    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def _active_container(c: object) -> bool:
    state = get_str(c, "State")
    return any(s in state for s in ("running", "paused", "restarting"))


def df_summary(usage: object) -> list[Fields]:
    """The four rows of ``system df`` (docker's ``diskUsage*Context``)."""
    from cli.progress import human_size
    from cli.template import Fields

    images = get_list(usage, "Images")
    layers = get_int(usage, "LayersSize")
    used = 0
    for i in images:
        size, shared = get_int(i, "Size", -1), get_int(i, "SharedSize", -1)
        if get_int(i, "Containers") != 0 and size != -1 and shared != -1:
            used += size - shared
    containers = get_list(usage, "Containers")
    c_size = sum(max(get_int(c, "SizeRw"), 0) for c in containers)
    c_free = sum(get_int(c, "SizeRw") for c in containers if not _active_container(c))
    volumes = get_list(usage, "Volumes")
    v_size = v_free = 0
    for v in volumes:
        data = get_dict(v, "UsageData")
        size = get_int(data, "Size", -1)
        if size != -1:
            v_size += size
            if get_int(data, "RefCount") == 0:
                v_free += size
    cache = get_list(usage, "BuildCache")
    cache_size = sum(get_int(b, "Size") for b in cache)
    cache_free = sum(get_int(b, "Size") for b in cache if not get_int(b, "InUse"))

    def row(kind: str, total: int, active: int, size: int, free: str) -> Fields:
        return Fields(
            "*formatter.diskUsageContext",
            {
                "Type": kind,
                "TotalCount": str(total),
                "Active": str(active),
                "Size": human_size(size),
                "Reclaimable": free,
            },
        )

    return [
        row(
            "Images",
            len(images),
            sum(1 for i in images if get_int(i, "Containers") > 0),
            layers,
            _share(layers - used, layers),
        ),
        row(
            "Containers",
            len(containers),
            sum(1 for c in containers if _active_container(c)),
            c_size,
            _share(c_free, c_size),
        ),
        row(
            "Local Volumes",
            len(volumes),
            sum(1 for v in volumes if get_int(get_dict(v, "UsageData"), "RefCount") > 0),
            v_size,
            _share(v_free, v_size),
        ),
        row(
            "Build Cache",
            len(cache),
            sum(1 for b in cache if get_int(b, "InUse")),
            cache_size,
            human_size(cache_free),
        ),
    ]


def df_verbose_text(usage: object, *, now: float) -> str:
    """``system df -v``: images, containers, volumes and build cache, each a table."""
    from cli.commands import _local_tz
    from cli.progress import human_size
    from cli.render import (
        CONTAINER_HEADERS,
        IMAGE_HEADERS,
        container_fields,
        image_rows,
        render_rows,
        tabwrite,
    )
    from cli.render import human_size as human_size_3
    from cli.template import Fields

    tz = _local_tz()
    image_contexts = []
    for image in get_list(usage, "Images"):
        row = image_rows(image, now=now, tz=tz)[0]  # docker shows the first tag only
        shared = get_int(image, "SharedSize", -1)
        if shared >= 0:  # unlike `images`, df rounds the unique size to 4 digits
            row["UniqueSize"] = human_size(get_int(image, "Size") - shared)
        image_contexts.append(row)
    containers = []
    for c in get_list(usage, "Containers"):
        row = container_fields(c, now=now, tz=tz)
        row["Size"] = human_size_3(get_int(c, "SizeRw"))  # no "(virtual ...)" here
        containers.append(row)
    volumes = [
        Fields(
            "*formatter.volumeContext",
            {
                "Name": get_str(v, "Name"),
                "Links": str(get_int(get_dict(v, "UsageData"), "RefCount")),
                "Size": human_size(get_int(get_dict(v, "UsageData"), "Size")),
            },
        )
        for v in get_list(usage, "Volumes")
    ]
    cache = sum(get_int(b, "Size") for b in get_list(usage, "BuildCache"))
    parts = [
        "Images space usage:\n\n",
        render_rows(DF_IMAGES_TABLE, image_contexts, headers=IMAGE_HEADERS, default_table=""),
        "\nContainers space usage:\n\n",
        render_rows(DF_CONTAINERS_TABLE, containers, headers=CONTAINER_HEADERS, default_table=""),
        "\nLocal Volumes space usage:\n\n",
        render_rows(
            DF_VOLUMES_TABLE,
            volumes,
            headers={"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"},
            default_table="",
        ),
        f"\nBuild cache usage: {human_size(cache)}\n\n",
        tabwrite(DF_BUILD_CACHE_HEADER),
    ]
    return "".join(parts)


def cmd_system_df(client: Client, parsed: Parsed) -> int:
    """``berth system df [-v] [--format]``."""
    from cli.commands import _check_table_format
    from cli.render import render_rows

    fmt = parsed.text("format")
    _check_table_format(fmt)
    usage = client.get("/system/df")
    if parsed.flag("verbose") and not fmt:
        import time

        out(df_verbose_text(usage, now=time.time()))
        return 0
    out(render_rows(fmt or "table", df_summary(usage), headers=DF_HEADERS, default_table=DF_TABLE))
    return 0


# --- system prune ------------------------------------------------------------------------


def prune_warning(*, all_images: bool, volumes: bool, filters: Mapping[str, list[str]]) -> str:
    """docker's confirmation message for ``system prune``."""
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    warnings.append(
        "all images without at least one container associated to them"
        if all_images
        else "all dangling images"
    )
    warnings.append("all build cache" if all_images else "unused build cache")
    shown = sorted(f"{k}={v}" for k in ("label", "label!", "until") for v in filters.get(k, []))
    text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n"
        text += "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue?"


def _section(title: str, lines: Sequence[str]) -> str:
    return title + "\n" + "".join(line + "\n" for line in lines) if lines else ""


def cmd_system_prune(client: Client, parsed: Parsed) -> int:
    """``berth system prune [-a] [--volumes] [-f] [--filter]``."""
    from cli.imagecmds import _confirm
    from cli.progress import human_size
    from cli.units import parse_filters

    filters = parse_filters(parsed.texts("filter"))
    all_images, volumes = parsed.flag("all"), parsed.flag("volumes")
    warning = prune_warning(all_images=all_images, volumes=volumes, filters=filters)
    if not parsed.flag("force") and not _confirm(warning):
        return 0
    encoded = json.dumps(filters) if filters else None
    reclaimed = 0
    outputs: list[str] = []

    report = client.post("/containers/prune", filters=encoded)
    deleted = [str(c) for c in get_list(report, "ContainersDeleted")]
    reclaimed += get_int(report, "SpaceReclaimed") if deleted else 0
    outputs.append(_section("Deleted Containers:", deleted))

    report = client.post("/networks/prune", filters=encoded)
    outputs.append(
        _section("Deleted Networks:", [str(n) for n in get_list(report, "NetworksDeleted")])
    )

    if volumes:
        report = client.post("/volumes/prune", filters=encoded)
        deleted = [str(v) for v in get_list(report, "VolumesDeleted")]
        reclaimed += get_int(report, "SpaceReclaimed") if deleted else 0
        outputs.append(_section("Deleted Volumes:", deleted))

    image_filters = {k: list(v) for k, v in filters.items()}
    image_filters.setdefault("dangling", []).append("false" if all_images else "true")
    report = client.post("/images/prune", filters=json.dumps(image_filters))
    lines = []
    for item in get_list(report, "ImagesDeleted"):
        untagged = get_str(item, "Untagged")
        lines.append(
            f"untagged: {untagged}" if untagged else f"deleted: {get_str(item, 'Deleted')}"
        )
    reclaimed += get_int(report, "SpaceReclaimed") if lines else 0
    outputs.append(_section("Deleted Images:", lines))

    report = client.post("/build/prune", all=1 if all_images else None, filters=encoded)
    cache = [str(c) for c in get_list(report, "CachesDeleted")]
    reclaimed += get_int(report, "SpaceReclaimed")
    outputs.append(_section("Deleted build cache objects:", cache))

    for text in outputs:
        if text:
            out(text + "\n")
    out(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0
