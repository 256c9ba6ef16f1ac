"""The volume commands: docker 28's requests, output and messages.

Theory of operation:
    ``cmd_volume_<verb>(client, parsed) -> exit code`` for ``create``,
    ``ls``, ``inspect``, ``rm`` and ``prune``.  Each makes the request the
    docker 28 CLI makes and prints what it prints: ``create`` the volume's
    name, ``ls`` DRIVER and VOLUME NAME in natural order, ``rm`` each name
    removed and every error at the end, ``prune`` "Deleted Volumes:" and
    "Total reclaimed space:".  ``cli.commands`` imports this module only
    when one of these commands runs.
"""

from __future__ import annotations

from cli.client import Client, ClientError, DaemonError, quote
from cli.commands import err, flush, out
from cli.data import get_int, get_list, get_str
from cli.netcmds import check_format, check_labels, driver_options, filters_query, inspect_objects

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cli.argspec import Parsed

PRUNE_WARNING = (
    "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
    "Are you sure you want to continue?"
)
PRUNE_ALL_WARNING = (
    "WARNING! This will remove all local volumes not used by at least one container.\n"
    "Are you sure you want to continue?"
)


def volume_create_body(parsed: Parsed) -> dict[str, object]:
    """The JSON body of ``POST /volumes/create`` (docker leaves empty fields out).

    Raises:
        ClientError: a name given both as ``--name`` and as the argument.
        InvalidArgument: a bad ``--label``.
    """
    name = parsed.text("name") or ""
    if parsed.args:
        if name:
            raise ClientError(
                "conflicting options: cannot specify a volume-name through both "
                "--name and as a positional arg"
            )
        name = parsed.args[0]
    body: dict[str, object] = {"Driver": parsed.text("driver") or "local"}
    options = driver_options(parsed.texts("opt"))
    if options:
        body["DriverOpts"] = options
    labels = check_labels(parsed.texts("label"))
    if labels:
        body["Labels"] = labels
    if name:
        body["Name"] = name
    return body


def cmd_volume_create(client: Client, parsed: Parsed) -> int:
    """``berth volume create``: create the volume, print its name."""
    created = client.post("/volumes/create", volume_create_body(parsed))
    out(get_str(created, "Name") + "\n")
    return 0


def cmd_volume_ls(client: Client, parsed: Parsed) -> int:
    """``berth volume ls``: DRIVER and VOLUME NAME, sorted by name."""
    from cli.netcmds import by_name
    from cli.render import (
        VOLUME_HEADERS,
        VOLUMES_RAW,
        VOLUMES_TABLE,
        list_format,
        natural_less,
        render_rows,
        volume_fields,
    )

    fmt = list_format(
        parsed.text("format"),
        quiet=parsed.flag("quiet"),
        table=VOLUMES_TABLE,
        quiet_format="{{.Name}}",
        raw=VOLUMES_RAW,
    )
    check_format(fmt)
    listing = client.get("/volumes", filters=filters_query(parsed.texts("filter")))
    volumes = by_name(get_list(listing, "Volumes"), natural_less)
    rows = [volume_fields(v) for v in volumes]
    out(render_rows(fmt, rows, headers=VOLUME_HEADERS, default_table=VOLUMES_TABLE))
    return 0


def cmd_volume_inspect(client: Client, parsed: Parsed) -> int:
    """``berth volume inspect``: ``GET /volumes/{name}`` per volume."""
    return inspect_objects(client, parsed.args, "/volumes", parsed.text("format"))


def cmd_volume_rm(client: Client, parsed: Parsed) -> int:
    """``berth volume rm``: remove each volume, print its name; the errors come last."""
    query = {"force": 1 if parsed.flag("force") else None}
    errors: list[str] = []
    for name in parsed.args:
        try:
            client.request("DELETE", f"/volumes/{quote(name)}", query=query).close()
        except DaemonError as exc:
            errors.append(str(exc))
            continue
        out(name + "\n")
    if errors:
        flush()
        err("\n".join(errors))
        return 1
    return 0


def cmd_volume_prune(client: Client, parsed: Parsed) -> int:
    """``berth volume prune``: anonymous unused volumes (``-a``: all unused ones)."""
    from cli.imagecmds import _confirm, _prune_report
    from cli.units import parse_filters

    filters = parse_filters(parsed.texts("filter"))
    warning = PRUNE_WARNING
    if parsed.flag("all"):
        if "all" in filters:
            raise ClientError("conflicting options: cannot specify both --all and --filter all=1")
        filters["all"] = ["true"]
        warning = PRUNE_ALL_WARNING
    if not parsed.flag("force") and not _confirm(warning):
        return 0  # docker: cancelled, nothing more printed, exit 0
    import json

    report = client.post("/volumes/prune", filters=json.dumps(filters) if filters else None)
    deleted = [v for v in get_list(report, "VolumesDeleted") if isinstance(v, str)]
    _prune_report("Deleted Volumes:", deleted, get_int(report, "SpaceReclaimed") if deleted else 0)
    return 0
