"""The network commands and ``port``: docker 28's requests, output and messages.

Theory of operation:
    ``cmd_network_<verb>(client, parsed) -> exit code`` for ``create``,
    ``ls``, ``inspect``, ``rm``, ``prune``, ``connect`` and ``disconnect``,
    and ``cmd_port``.  Each builds its request the way the docker 28 CLI
    does (``POST /networks/create`` with ``CheckDuplicate`` as API 1.43
    expects, ``/networks/{id}/connect`` with an ``EndpointConfig``), makes
    it, and prints what docker prints.  ``cli.commands`` imports this module
    only when one of these commands runs.

    Flag values are checked by the pure ``cli.netopts``; tables and
    templates by ``cli.render``; ``port`` lines by the daemon's pure
    ``supervisor.network.ports.port_lines`` (imported lazily), sorted in
    docker's natural order.
"""

from __future__ import annotations

import json

from cli.client import Client, ClientError, DaemonError, quote
from cli.commands import _cid, _local_tz, _template, err, flush, out
from cli.data import get_dict, get_list, get_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from cli.argspec import Parsed

PRUNE_WARNING = (
    "WARNING! This will remove all custom networks not used by at least one container.\n"
    "Are you sure you want to continue?"
)


def _net(name: str) -> str:
    return f"/networks/{quote(name)}"


def _split(values: list[str]) -> list[str]:
    """pflag's string-slice flags: each value may hold several, comma-separated."""
    return [item for value in values for item in value.split(",") if item]


def check_labels(values: list[str], flag: str = "--label") -> dict[str, str]:
    """docker's ``ValidateLabel`` then ``ConvertKVStringsToMap``."""
    from cli.units import InvalidArgument

    labels: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        stripped = key.lstrip(" \t")
        if not stripped:
            message = f"invalid label '{value}': empty name"
        elif any(ch in " \t" for ch in stripped):
            message = f"label '{stripped}' contains whitespaces"
        else:
            labels[key] = val
            continue
        raise InvalidArgument(
            f'invalid argument {json.dumps(value, ensure_ascii=False)} for "{flag}" flag: {message}'
        )
    return labels


def driver_options(values: list[str]) -> dict[str, str]:
    """docker's ``MapOpts`` (``-o k=v``; ``-o k`` maps to "")."""
    from cli.units import parse_kv

    return parse_kv(values)


# --- create ------------------------------------------------------------------------------


def network_create_body(parsed: Parsed) -> dict[str, object]:
    """The JSON body of ``POST /networks/create`` for ``berth network create``.

    Raises:
        InvalidArgument: a bad label, subnet, range or gateway (docker's words).
    """
    from cli.netopts import ipam_config
    from cli.units import InvalidArgument

    labels = check_labels(parsed.texts("label"))
    try:
        config = ipam_config(
            _split(parsed.texts("subnet")),
            _split(parsed.texts("ip_range")),
            _split(parsed.texts("gateway")),
        )
    except InvalidArgument as exc:
        raise ClientError(str(exc)) from None
    return {
        "Name": parsed.args[0],
        "CheckDuplicate": True,  # API < 1.44 wants it; docker sends it there
        "Driver": parsed.text("driver") or "bridge",
        "Scope": "",
        "IPAM": {
            "Driver": parsed.text("ipam_driver") or "default",
            "Config": config,
            "Options": {},
        },
        "Internal": parsed.flag("internal"),
        "Attachable": parsed.flag("attachable"),
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": driver_options(parsed.texts("opt")),
        "Labels": labels,
    }


def cmd_network_create(client: Client, parsed: Parsed) -> int:
    """``berth network create``: create the network, print its id."""
    created = client.post("/networks/create", network_create_body(parsed))
    out(get_str(created, "Id") + "\n")
    return 0


# --- ls / inspect -------------------------------------------------------------------------


def filters_query(values: list[str]) -> str | None:
    from cli.units import parse_filters

    filters = parse_filters(values)
    return json.dumps(filters) if filters else None


def cmd_network_ls(client: Client, parsed: Parsed) -> int:
    """``berth network ls``: NETWORK ID, NAME, DRIVER, SCOPE, sorted by name."""
    from cli.render import (
        NETWORK_HEADERS,
        NETWORKS_RAW,
        NETWORKS_TABLE,
        list_format,
        natural_less,
        network_fields,
        render_rows,
    )

    query = {"filters": filters_query(parsed.texts("filter"))}
    fmt = list_format(
        parsed.text("format"),
        quiet=parsed.flag("quiet"),
        table=NETWORKS_TABLE,
        quiet_format="{{.ID}}",
        raw=NETWORKS_RAW,
    )
    check_format(fmt)
    found = client.get("/networks", **query)
    networks = by_name(found if isinstance(found, list) else [], natural_less)
    tz = _local_tz()
    trunc = not parsed.flag("no_trunc")
    rows = [network_fields(n, tz=tz, trunc=trunc) for n in networks]
    out(render_rows(fmt, rows, headers=NETWORK_HEADERS, default_table=NETWORKS_TABLE))
    return 0


def check_format(fmt: str) -> None:
    """Reject a bad ``--format`` before asking the daemon, as docker does."""
    if fmt not in ("table", "json"):
        from cli.render import prepare_format

        _template(prepare_format(fmt)[1])


def by_name(items: list[object], less: Callable[[str, str], bool]) -> list[object]:
    """API objects sorted by their ``Name`` with ``less`` (docker: natural order)."""
    from functools import cmp_to_key

    def compare(a: object, b: object) -> int:
        x, y = get_str(a, "Name"), get_str(b, "Name")
        if less(x, y):
            return -1
        return 1 if less(y, x) else 0

    return sorted(items, key=cmp_to_key(compare))


def inspect_objects(
    client: Client, names: list[str], path: str, fmt: str | None, **query: object
) -> int:
    """docker's ``inspect.Inspect``: every object found, then every error, exit 1 if any.

    Without a template the objects print as one indented JSON array, with
    one the template runs per object.
    """
    template = _template(fmt)
    found: list[object] = []
    errors: list[str] = []
    for name in names:
        try:
            found.append(client.get(f"{path}/{quote(name)}", **query))
        except DaemonError as exc:
            errors.append(str(exc))
    if template is not None:
        out("".join(template.render(obj) + "\n" for obj in found))
    else:
        out(json.dumps(found, indent=4, ensure_ascii=False) + "\n")
    if errors:
        flush()
        err("\n".join(errors))
        return 1
    return 0


def cmd_network_inspect(client: Client, parsed: Parsed) -> int:
    """``berth network inspect``: ``GET /networks/{id}`` per network (``-v``: verbose)."""
    verbose = "true" if parsed.flag("verbose") else None
    return inspect_objects(client, parsed.args, "/networks", parsed.text("format"), verbose=verbose)


# --- rm / prune ------------------------------------------------------------------------------


def cmd_network_rm(client: Client, parsed: Parsed) -> int:
    """``berth network rm``: remove each network, print its name; ``-f`` ignores missing ones."""
    status = 0
    for name in parsed.args:
        try:
            client.request("DELETE", _net(name)).close()
        except DaemonError as exc:
            if parsed.flag("force") and exc.status == 404:
                continue
            flush()
            err(str(exc))
            status = 1
            continue
        out(name + "\n")
    return status


def cmd_network_prune(client: Client, parsed: Parsed) -> int:
    """``berth network prune``: ``POST /networks/prune``, list what went."""
    from cli.imagecmds import _confirm

    query = {"filters": filters_query(parsed.texts("filter"))}
    if not parsed.flag("force") and not _confirm(PRUNE_WARNING):
        return 0  # docker: cancelled, nothing more printed, exit 0
    report = client.post("/networks/prune", **query)
    deleted = [n for n in get_list(report, "NetworksDeleted") if isinstance(n, str)]
    if deleted:
        out("Deleted Networks:\n" + "".join(n + "\n" for n in deleted) + "\n")
    return 0


# --- connect / disconnect ---------------------------------------------------------------


def connect_body(parsed: Parsed) -> dict[str, object]:
    """The JSON body of ``POST /networks/{id}/connect`` (docker sends every field)."""
    from cli.units import InvalidArgument

    driver_opts: dict[str, str] = {}
    for item in _split(parsed.texts("driver_opt")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InvalidArgument("invalid key/value pair format in driver options")
        driver_opts[key.strip()] = value.strip()
    ipam: dict[str, object] = {}
    ip = parsed.text("ip")
    if ip:
        ipam["IPv4Address"] = ip
    return {
        "Container": parsed.args[1],
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": None,
            "Aliases": _split(parsed.texts("alias")),
            "MacAddress": "",
            "DriverOpts": driver_opts,
        },
    }


def cmd_network_connect(client: Client, parsed: Parsed) -> int:
    """``berth network connect NETWORK CONTAINER``."""
    body = connect_body(parsed)
    client.call_json("POST", f"{_net(parsed.args[0])}/connect", payload=body)
    return 0


def cmd_network_disconnect(client: Client, parsed: Parsed) -> int:
    """``berth network disconnect [-f] NETWORK CONTAINER``."""
    body = {"Container": parsed.args[1], "Force": parsed.flag("force")}
    client.call_json("POST", f"{_net(parsed.args[0])}/disconnect", payload=body)
    return 0


# --- port ---------------------------------------------------------------------------------


def _port_number_error(port: str) -> str | None:
    """docker checks the private port with ``strconv.ParseUint(port, 10, 16)``."""
    if not port or not (port.isascii() and port.isdigit()):
        return f'strconv.ParseUint: parsing "{port}": invalid syntax'
    if int(port) > 0xFFFF:
        return f'strconv.ParseUint: parsing "{port}": value out of range'
    return None


def cmd_port(client: Client, parsed: Parsed) -> int:
    """``berth port CONTAINER [PRIVATE_PORT[/PROTO]]``: ``80/tcp -> 0.0.0.0:8080`` lines.

    With a private port, only its host addresses; a port with no binding is
    an error (``Error: No public port '80/tcp' published for web``).
    """
    from cli.render import natural_sorted
    from supervisor.network.ports import port_lines

    name = parsed.args[0]
    private = parsed.args[1] if len(parsed.args) > 1 else None
    info = client.get(f"{_cid(name)}/json")
    settings = get_dict(get_dict(info, "NetworkSettings"), "Ports")
    if private is None:
        lines = port_lines(settings)
    else:
        port, _, proto = private.partition("/")
        problem = _port_number_error(port)
        if problem is not None:
            raise ClientError(f"Error: invalid port ({port}): {problem}")
        key = f"{port}/{proto or 'tcp'}"
        if not settings.get(key):
            raise ClientError(f"Error: No public port '{private}' published for {name}")
        lines = port_lines({key: settings[key]}, key)
    if lines:
        out("\n".join(natural_sorted(lines)) + "\n")
    return 0
