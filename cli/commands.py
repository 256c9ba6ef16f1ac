"""What each ``berth`` command does: API calls in docker's order, then output.

Theory of operation:
    Every command is ``cmd_<name>(client, parsed) -> exit code``.  It makes
    its API calls through ``cli.client``, renders with ``cli.render`` and
    writes bytes to the process's stdout/stderr.  Errors that end the command
    propagate as ``ClientError``/``InvalidArgument``/``TemplateError`` and
    ``cli.main`` prints them; commands that act on several objects (``stop a
    b``) report each failure, go on, and return 1.

    Heavy modules (rendering, templates, datetime) are imported inside the
    commands that need them, so ``berth run`` loads only the client, the
    create-body builder and the frame demultiplexer.
"""

from __future__ import annotations

import json
import os
import sys

from cli.client import Client, ClientError, ConnectError, DaemonError, check, quote
from cli.data import get_dict, get_int, get_list, get_str, normalize_reference, split_reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import tzinfo

    from cli.argspec import Parsed
    from cli.template import Template

# How long `run` waits for the daemon to acknowledge /wait before /start.
# Docker's daemon flushes the 200 head as soon as the wait is registered, so
# this normally costs nothing; it only bounds the delay with a daemon that
# answers the head late.
WAIT_REGISTER_TIMEOUT = 1.0

# Signals docker's CLI forwards to the container (--sig-proxy, on by default).
_PROXY_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


# --- output ----------------------------------------------------------------------


def out(text: str) -> None:
    """Write ``text`` to stdout (UTF-8, arguments' undecodable bytes kept)."""
    write_bytes(1, text.encode("utf-8", "surrogateescape"))


def err(text: str) -> None:
    """Write one line to stderr."""
    write_bytes(2, (text + "\n").encode("utf-8", "surrogateescape"), flush=True)


def write_bytes(stream: int, data: bytes, *, flush: bool = False) -> None:
    """Write raw bytes to stdout (1) or stderr (2)."""
    target = sys.stdout if stream == 1 else sys.stderr
    target.flush()
    target.buffer.write(data)
    if flush:
        target.buffer.flush()


def flush() -> None:
    sys.stdout.flush()
    sys.stdout.buffer.flush()


def _local_tz() -> tzinfo:
    from datetime import UTC, datetime

    return datetime.now(UTC).astimezone().tzinfo or UTC


def _now() -> float:
    import time

    return time.time()


def _template(fmt: str | None) -> Template | None:
    """Parse ``--format`` up front (docker does), ``json`` meaning ``{{json .}}``."""
    if not fmt:
        return None
    from cli.template import Template

    return Template("{{json .}}" if fmt == "json" else fmt)


def _check_table_format(fmt: str | None) -> None:
    """Reject a bad ``ps``/``images`` ``--format`` before asking the daemon."""
    if fmt and fmt not in ("table", "json"):
        from cli.render import prepare_format

        _template(prepare_format(fmt)[1])


def _cid(name: str) -> str:
    return f"/containers/{quote(name)}"


def _image_path(name: str) -> str:
    return f"/images/{quote(name, safe='/:@')}"


# --- run / create --------------------------------------------------------------------


def _read_env_file(path: str) -> bytes:
    from cli.units import InvalidArgument

    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {exc.strerror or exc}") from None


def _create(client: Client, parsed: Parsed) -> str:
    from cli.create import build_create_body

    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""  # a removed directory: relative bind sources stay relative, as in docker
    body = build_create_body(parsed, environ=os.environ, read_file=_read_env_file, cwd=cwd)
    host = body.get("HostConfig")
    if parsed.flag("tty") and isinstance(host, dict):
        from cli.interactive import console_size  # -t only: the plain run stays light

        host["ConsoleSize"] = list(console_size())  # the TTY starts at the window's size
    try:
        created = client.post("/containers/create", body, name=parsed.text("name"))
    except DaemonError as exc:
        if exc.status != 404:
            raise
        # The only 404 of /containers/create: the image is missing. Pull it, as docker
        # does (progress on stderr), then create again.
        from cli.imagecmds import pull_for_run

        err(f"Unable to find image '{normalize_reference(parsed.args[0])}' locally")
        pull_for_run(client, parsed.args[0])
        created = client.post("/containers/create", body, name=parsed.text("name"))
    for warning in get_list(created, "Warnings"):
        if isinstance(warning, str) and warning:
            err(f"WARNING: {warning}")
    cid = get_str(created, "Id")
    if not cid:
        raise ClientError("the daemon did not return a container id")
    return cid


def cmd_create(client: Client, parsed: Parsed) -> int:
    """``berth create``: create the container, print its id."""
    out(_create(client, parsed) + "\n")
    return 0


def cmd_run(client: Client, parsed: Parsed) -> int:
    """``berth run``: create, then either start and print the id (``-d``) or
    attach, wait, start, stream the output and exit with the container's code.
    """
    tty, stdin = parsed.flag("tty"), parsed.flag("interactive")
    keys: tuple[str, bytes] | None = None
    if (tty or stdin) and not parsed.flag("detach"):
        from cli.interactive import NotATerminal, check_tty, detach_keys

        try:
            check_tty(attach_stdin=stdin, tty=tty)
        except NotATerminal as exc:
            err(str(exc))
            return 1  # docker's code here, before anything is created
        keys = detach_keys(parsed.text("detach_keys"), os.environ)
    cid = _create(client, parsed)
    if parsed.flag("detach"):
        try:
            client.request("POST", f"{_cid(cid)}/start").close()
        except DaemonError as exc:
            err(str(exc))
            return start_failure_code(exc)
        out(cid + "\n")
        return 0
    return attach_start_wait(
        client,
        cid,
        tty=tty,
        stdin=stdin,
        condition="removed" if parsed.flag("rm") else "next-exit",
        run=True,
        keys=keys,
        sig_proxy=parsed.flag("sig_proxy"),
    )


def start_failure_code(exc: DaemonError) -> int:
    """``berth run``'s exit code when the daemon refuses to start the container.

    Docker's ``runStartContainerErr``: 127 when the command was not found, 126
    when it cannot be executed, 125 otherwise.
    """
    message = exc.message
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def attach_start_wait(
    client: Client,
    cid: str,
    *,
    tty: bool,
    stdin: bool,
    condition: str,
    run: bool = False,
    keys: tuple[str, bytes] | None = None,
    sig_proxy: bool = True,
) -> int:
    """Docker's foreground sequence: attach, wait, start, copy output, collect the exit code.

    1. ``POST /containers/{id}/attach?stream=1&stdout=1&stderr=1`` hijacked
       (``Upgrade: tcp`` → ``101``), so no output is lost;
    2. ``POST /containers/{id}/wait?condition=...`` sent and its head read
       (the daemon answers the head once the wait is registered), so a fast
       exit is not missed;
    3. ``POST /containers/{id}/start``;
    4. copy the stream (demultiplexed unless ``tty``) until the daemon closes it;
       with ``stdin`` or ``tty``, ``cli.interactive.pump`` also sends stdin, puts
       the terminal in raw mode and follows the window size;
    5. read the wait body and return its ``StatusCode``.

    For ``run``, a refused start exits with ``start_failure_code`` (126/127/125).
    Typing the detach keys (``keys``: the text for the API and the bytes; docker's
    default when None) ends it at once with 0, the container still running.
    Signals are forwarded with ``sig_proxy`` and no TTY, as docker does.

    Resource handling: both connections are closed before returning.
    """
    query: dict[str, object] = {"stream": 1, "stdout": 1, "stderr": 1}
    if stdin:
        query["stdin"] = 1
    interactive = stdin or tty
    if interactive and keys is None:
        from cli.interactive import detach_keys

        keys = detach_keys(None, os.environ)
    if keys is not None and keys[0]:
        query["detachKeys"] = keys[0]
    attach = client.hijack(f"{_cid(cid)}/attach", query=query)
    try:
        wait = client.send("POST", f"{_cid(cid)}/wait", query={"condition": condition})
        try:
            if wait.readable(WAIT_REGISTER_TIMEOUT):
                check(wait)
            try:
                client.request("POST", f"{_cid(cid)}/start").close()
            except DaemonError as exc:
                if not run:
                    raise
                err(str(exc))
                return start_failure_code(exc)
            with signal_proxy(client, cid, enabled=sig_proxy and not tty):
                if interactive:
                    from cli.interactive import TERMINATED, pump, resizer

                    outcome = pump(
                        attach,
                        stdin=stdin,
                        tty=tty,
                        keys=keys[1] if keys else b"",
                        resize=resizer(client, f"{_cid(cid)}/resize") if tty else None,
                    )
                    if outcome.detached:
                        return 0  # docker run: detached, quietly; the container runs on
                    if outcome.end == TERMINATED:
                        return 128 + outcome.signal
                    failure = outcome.failure
                else:
                    raw = (
                        tty
                        or attach.headers.get("content-type") == "application/vnd.docker.raw-stream"
                    )
                    failure = copy_stream(attach.iter_chunks(), raw=raw)
            check(wait)
            result = wait.json()
        finally:
            wait.close()
    finally:
        attach.close()

    message = get_str(get_dict(result, "Error"), "Message")
    if message:
        err(f"Error waiting for container: {message}")
        return 125
    if failure:
        err(failure)
    return get_int(result, "StatusCode", 125)


def copy_stream(chunks: Iterable[bytes], *, raw: bool) -> str:
    """Copy an attach/logs stream to stdout/stderr, demultiplexing unless ``raw``.

    Returns:
        "" at a clean end, else a message (framing error, daemon-side error).
    """
    if raw:
        for chunk in chunks:
            write_bytes(1, chunk, flush=True)
        return ""
    from cli.stream import SYSTEMERR, Demuxer, FrameError

    demux = Demuxer()
    try:
        for chunk in chunks:
            frames = demux.feed(chunk)
            for stream, payload in frames:
                if stream == SYSTEMERR:
                    return "error from daemon in stream: " + payload.decode("utf-8", "replace")
                write_bytes(2 if stream == 2 else 1, payload)
            if frames:
                flush()
                sys.stderr.buffer.flush()
        demux.close()
    except FrameError as exc:
        return f"error reading the output stream: {exc}"
    return ""


class signal_proxy:
    """Forward the signals docker forwards to the container while it runs
    (``--sig-proxy``; nothing when not ``enabled``)."""

    def __init__(self, client: Client, cid: str, *, enabled: bool = True) -> None:
        self.client = client
        self.cid = cid
        self.enabled = enabled
        self.saved: list[tuple[int, object]] = []

    def __enter__(self) -> None:
        if not self.enabled:
            return
        import signal

        def forward(signum: int, frame: object) -> None:
            del frame
            name = signal.Signals(signum).name
            try:
                self.client.request(
                    "POST", f"{_cid(self.cid)}/kill", query={"signal": name}
                ).close()
            except ClientError as exc:
                err(f"failed to forward {name}: {exc}")

        for name in _PROXY_SIGNALS:
            signum = getattr(signal, name)
            self.saved.append((signum, signal.getsignal(signum)))
            signal.signal(signum, forward)

    def __exit__(self, *exc: object) -> None:
        if not self.saved:
            return
        import signal

        for signum, handler in self.saved:
            signal.signal(signum, handler)  # type: ignore[arg-type]  # getsignal's own result


# --- containers ------------------------------------------------------------------------


def _each(names: list[str], action: Callable[[str], str | None]) -> int:
    """Run ``action`` per name, print its result, report failures, exit 1 if any."""
    status = 0
    for name in names:
        try:
            shown = action(name)
        except ConnectError:
            raise
        except ClientError as exc:
            flush()
            err(str(exc))
            status = 1
            continue
        if shown is not None:
            out(shown + "\n")
    return status


def cmd_start(client: Client, parsed: Parsed) -> int:
    """``berth start``: start each container, print its name (``-a``: attach to one)."""
    names = parsed.args
    if parsed.flag("attach") or parsed.flag("interactive"):
        if len(names) > 1:
            raise ClientError("you cannot start and attach multiple containers at once")

        info = client.get(f"{_cid(names[0])}/json")
        config = get_dict(info, "Config")
        keys = None
        if parsed.flag("interactive") or config.get("Tty") is True:
            from cli.interactive import detach_keys

            keys = detach_keys(parsed.text("detach_keys"), os.environ)
        return attach_start_wait(
            client,
            names[0],
            tty=config.get("Tty") is True,
            stdin=parsed.flag("interactive"),
            condition="next-exit",
            keys=keys,
        )

    def start(name: str) -> str:
        client.request("POST", f"{_cid(name)}/start").close()  # 304 (running) is fine
        return name

    return _each(names, start)


def cmd_stop(client: Client, parsed: Parsed) -> int:
    """``berth stop``: stop each container, print its name."""
    query = {"t": parsed.number("time"), "signal": parsed.text("signal")}

    def stop(name: str) -> str:
        client.request("POST", f"{_cid(name)}/stop", query=query).close()
        return name

    return _each(parsed.args, stop)


def cmd_restart(client: Client, parsed: Parsed) -> int:
    """``berth restart``: restart each container, print its name."""
    query = {"t": parsed.number("time"), "signal": parsed.text("signal")}

    def restart(name: str) -> str:
        client.request("POST", f"{_cid(name)}/restart", query=query).close()
        return name

    return _each(parsed.args, restart)


def cmd_kill(client: Client, parsed: Parsed) -> int:
    """``berth kill``: signal each container (SIGKILL by default), print its name."""
    query = {"signal": parsed.text("signal")}

    def kill(name: str) -> str:
        client.request("POST", f"{_cid(name)}/kill", query=query).close()
        return name

    return _each(parsed.args, kill)


def cmd_rm(client: Client, parsed: Parsed) -> int:
    """``berth rm``: remove each container, print its name."""
    query = {
        "force": 1 if parsed.flag("force") else None,
        "v": 1 if parsed.flag("volumes") else None,
        "link": 1 if parsed.flag("link") else None,
    }

    def remove(name: str) -> str:
        client.request("DELETE", _cid(name), query=query).close()
        return name

    return _each(parsed.args, remove)


def cmd_wait(client: Client, parsed: Parsed) -> int:
    """``berth wait``: wait for each container to stop, print its exit code."""

    def wait(name: str) -> str:
        result = client.post(f"{_cid(name)}/wait")
        return str(get_int(result, "StatusCode"))

    return _each(parsed.args, wait)


def cmd_logs(client: Client, parsed: Parsed) -> int:
    """``berth logs``: fetch (``-f``: follow) a container's logs."""
    now = _now()
    tz_offset = _utc_offset()
    query: dict[str, object] = {
        "stdout": 1,
        "stderr": 1,
        "follow": 1 if parsed.flag("follow") else None,
        "since": _timestamp(parsed.text("since"), now, tz_offset),
        "until": _timestamp(parsed.text("until"), now, tz_offset),
        "timestamps": 1 if parsed.flag("timestamps") else None,
        "details": 1 if parsed.flag("details") else None,
        "tail": parsed.text("tail"),
    }
    with client.request("GET", f"{_cid(parsed.args[0])}/logs", query=query) as response:
        raw = response.headers.get("content-type") == "application/vnd.docker.raw-stream"
        failure = copy_stream(response.iter_chunks(), raw=raw)
    flush()
    if failure:
        err(failure)
        return 1
    return 0


def _utc_offset() -> int:
    import time

    return -time.timezone if not time.localtime().tm_isdst else -time.altzone


def _timestamp(value: str | None, now: float, offset: int) -> str | None:
    if value is None:
        return None
    from cli.units import parse_timestamp

    return parse_timestamp(value, now=now, local_offset=offset)


def cmd_ps(client: Client, parsed: Parsed) -> int:
    """``berth ps``: list containers as docker's table or a ``--format`` template."""
    from cli.render import CONTAINER_HEADERS, PS_TABLE, PS_TABLE_SIZE, container_fields, render_rows
    from cli.units import parse_filters

    last = parsed.number("last")
    limit = 1 if parsed.flag("latest") else (last if last is not None and last > 0 else None)
    filters = parse_filters(parsed.texts("filter"))
    query: dict[str, object] = {
        "all": 1 if parsed.flag("all") or limit is not None else None,
        "limit": limit,
        "size": 1 if parsed.flag("size") else None,
        "filters": json.dumps(filters) if filters else None,
    }
    fmt = parsed.text("format")
    _check_table_format(fmt)
    containers = client.get("/containers/json", **query)
    rows = containers if isinstance(containers, list) else []
    if parsed.flag("quiet"):
        if fmt:
            err("WARNING: Ignoring custom format, because both --format and --quiet are set.")
        fmt = "{{.ID}}"
    default = PS_TABLE_SIZE if parsed.flag("size") else PS_TABLE
    now, tz, trunc = _now(), _local_tz(), not parsed.flag("no_trunc")
    contexts = [container_fields(c, now=now, tz=tz, trunc=trunc) for c in rows]
    out(render_rows(fmt or default, contexts, headers=CONTAINER_HEADERS, default_table=default))
    return 0


_INSPECT_TYPES = ("container", "image", "network", "volume")


def _inspect_paths(
    name: str, kind: str | None, *, size: bool
) -> list[tuple[str, str, dict[str, object]]]:
    """``(type, path, query)`` to try for ``name``, in docker's order."""
    paths: list[tuple[str, str, dict[str, object]]] = [
        ("container", f"{_cid(name)}/json", {"size": 1 if size else None}),
        ("image", f"{_image_path(name)}/json", {}),
        ("network", f"/networks/{quote(name)}", {}),
        ("volume", f"/volumes/{quote(name)}", {}),
    ]
    return [p for p in paths if kind in (None, p[0])]


def _skippable(exc: DaemonError) -> bool:
    """docker's ``isErrSkippable``: try the next type of object."""
    return (
        exc.status == 404
        or "not supported" in exc.message
        or "invalid reference format" in exc.message
    )


def cmd_inspect(client: Client, parsed: Parsed) -> int:
    """``berth inspect``: containers, then images, networks, volumes; a JSON array or a
    template per object.  ``--type`` looks at one kind only."""
    kind = parsed.text("type")
    if kind is not None and kind not in _INSPECT_TYPES:
        raise ClientError(
            f'unknown type: "{kind}": must be one of "' + '", "'.join(_INSPECT_TYPES) + '"'
        )
    template = _template(parsed.text("format"))
    found: list[object] = []
    status = 0
    for name in parsed.args:
        for what, path, query in _inspect_paths(name, kind, size=parsed.flag("size")):
            try:
                found.append(client.get(path, **query))
            except DaemonError as exc:
                if kind is None and _skippable(exc):
                    continue
                if exc.status != 404:
                    raise
                flush()
                err(f"Error: No such {kind}: {name}")
                status = 1
                break
            if parsed.flag("size") and what != "container":
                flush()
                err(f"WARNING: --size ignored for {what}")
            break
        else:
            flush()
            err(f"Error: No such object: {name}")
            status = 1
    if template is not None:
        out("".join(template.render(obj) + "\n" for obj in found))
    else:
        out(json.dumps(found, indent=4, ensure_ascii=False) + "\n")
    return status


# --- events --------------------------------------------------------------------------


def cmd_events(client: Client, parsed: Parsed) -> int:
    """``berth events``: stream daemon events, one line each."""
    from cli.render import event_line
    from cli.units import parse_filters

    now = _now()
    offset = _utc_offset()
    filters = parse_filters(parsed.texts("filter"))
    query: dict[str, object] = {
        "since": _timestamp(parsed.text("since"), now, offset),
        "until": _timestamp(parsed.text("until"), now, offset),
        "filters": json.dumps(filters) if filters else None,
    }
    template = _template(parsed.text("format"))
    tz = _local_tz()
    with client.request("GET", "/events", query=query) as response:
        for event in response.iter_json():
            line = template.render(event) if template else event_line(event, tz=tz)
            out(line + "\n")
            flush()
    return 0


# --- images ---------------------------------------------------------------------------


def cmd_images(client: Client, parsed: Parsed) -> int:
    """``berth images``: list images as docker's table or a ``--format`` template."""
    from cli.render import (
        IMAGE_HEADERS,
        IMAGES_TABLE,
        IMAGES_TABLE_DIGESTS,
        image_rows,
        render_rows,
    )
    from cli.units import parse_filters

    filters = parse_filters(parsed.texts("filter"))
    if parsed.args:
        filters.setdefault("reference", []).append(parsed.args[0])
    # As docker's ImageList: filters and all; RepoDigests come with every image.
    query: dict[str, object] = {
        "all": 1 if parsed.flag("all") else None,
        "filters": json.dumps(filters) if filters else None,
    }
    fmt = parsed.text("format")
    _check_table_format(fmt)
    images = client.get("/images/json", **query)
    digests = parsed.flag("digests")
    if parsed.flag("quiet"):
        fmt = "{{.ID}}"
    elif fmt and fmt.startswith("table") and digests and "{{.Digest}}" not in fmt:
        fmt += "\t{{.Digest}}"  # docker's NewImageFormat
    default = IMAGES_TABLE_DIGESTS if digests else IMAGES_TABLE
    need_digest = digests or "{{.Digest}}" in (fmt or "")
    now, tz, trunc = _now(), _local_tz(), not parsed.flag("no_trunc")
    rows = [
        row
        for image in (images if isinstance(images, list) else [])
        for row in image_rows(
            image, now=now, tz=tz, trunc=trunc, digests=digests, need_digest=need_digest
        )
    ]
    out(render_rows(fmt or default, rows, headers=IMAGE_HEADERS, default_table=default))
    return 0


def cmd_import(client: Client, parsed: Parsed) -> int:
    """``berth import``: upload a tarball as a new image, print its id."""

    source = parsed.args[0]
    reference = parsed.args[1] if len(parsed.args) > 1 else None
    repo, tag = split_reference(reference) if reference else (None, "")
    query: dict[str, object] = {
        "fromSrc": "-",
        "repo": repo,
        "tag": tag or None,
        "message": parsed.text("message"),
        "changes": parsed.texts("change") or None,
        "platform": parsed.text("platform"),
    }
    headers = {"Content-Type": "application/x-tar"}
    if source == "-":
        body = sys.stdin.buffer
        response = client.request("POST", "/images/create", query=query, body=body, headers=headers)
    else:
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed below, after the upload
        except OSError as exc:
            raise ClientError(f"open {source}: {exc.strerror or exc}") from None
        with handle:
            response = client.request(
                "POST", "/images/create", query=query, body=handle, headers=headers
            )
    from cli.imagecmds import show_progress

    with response:
        show_progress(response)
    return 0


def cmd_tag(client: Client, parsed: Parsed) -> int:
    """``berth tag SOURCE TARGET``."""

    repo, tag = split_reference(normalize_reference(parsed.args[1]))
    client.request(
        "POST", f"{_image_path(parsed.args[0])}/tag", query={"repo": repo, "tag": tag}
    ).close()
    return 0


def cmd_rmi(client: Client, parsed: Parsed) -> int:
    """``berth rmi``: remove images, printing ``Untagged:``/``Deleted:`` lines."""

    query = {
        "force": 1 if parsed.flag("force") else None,
        "noprune": 1 if parsed.flag("no_prune") else None,
    }

    def remove(name: str) -> str | None:
        result = client.delete(_image_path(name), **query)
        for item in result if isinstance(result, list) else []:
            for key in ("Untagged", "Deleted"):
                value = get_str(item, key)
                if value:
                    out(f"{key}: {value}\n")
        return None

    return _each(parsed.args, remove)


# --- system ---------------------------------------------------------------------------


def client_version() -> dict[str, str]:
    """The ``Client`` section of ``berth version``."""
    import platform

    from cli import __version__
    from cli.client import API_VERSION

    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "Os": sys.platform if sys.platform != "linux" else "linux",
        "Arch": arch,
    }


def cmd_version(client: Client, parsed: Parsed) -> int:
    """``berth version``: client and server versions."""
    from cli.render import version_text

    info = client_version()
    template = _template(parsed.text("format"))
    try:
        server: object = client.get("/version")
    except ClientError:
        if template is None:
            out(version_text(info, None))
            flush()
        raise
    if template is not None:
        out(template.render({"Client": info, "Server": server}) + "\n")
    else:
        out(version_text(info, server))
    return 0


def cmd_info(client: Client, parsed: Parsed) -> int:
    """``berth info``: a readable summary of ``GET /info``."""
    from cli import __version__
    from cli.render import info_text

    template = _template(parsed.text("format"))
    data = client.get("/info")
    if template is not None:
        out(template.render(data) + "\n")
    else:
        out(info_text(__version__, data))
    return 0


def _lazy(name: str, module: str = "imagecmds") -> Callable[[Client, Parsed], int]:
    """A command of ``cli.<module>``, imported only when it runs."""

    def command(client: Client, parsed: Parsed) -> int:
        import importlib

        run: Callable[[Client, Parsed], int] = getattr(
            importlib.import_module(f"cli.{module}"), name
        )
        return run(client, parsed)

    command.__name__ = name
    return command


COMMANDS: dict[str, Callable[[Client, Parsed], int]] = {
    "run": cmd_run,
    "create": cmd_create,
    "ps": cmd_ps,
    "logs": cmd_logs,
    "start": cmd_start,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "kill": cmd_kill,
    "rm": cmd_rm,
    "wait": cmd_wait,
    "inspect": cmd_inspect,
    "events": cmd_events,
    "images": cmd_images,
    "import": cmd_import,
    "tag": cmd_tag,
    "rmi": cmd_rmi,
    "version": cmd_version,
    "info": cmd_info,
    "pull": _lazy("cmd_pull"),
    "push": _lazy("cmd_push"),
    "login": _lazy("cmd_login"),
    "logout": _lazy("cmd_logout"),
    "search": _lazy("cmd_search"),
    "commit": _lazy("cmd_commit"),
    "save": _lazy("cmd_save"),
    "load": _lazy("cmd_load"),
    "export": _lazy("cmd_export"),
    "cp": _lazy("cmd_cp", "cpcmd"),
    "history": _lazy("cmd_history"),
    "image prune": _lazy("cmd_image_prune"),
    "builder prune": _lazy("cmd_builder_prune"),
    "container prune": _lazy("cmd_container_prune"),
    "port": _lazy("cmd_port", "netcmds"),
    "network create": _lazy("cmd_network_create", "netcmds"),
    "network ls": _lazy("cmd_network_ls", "netcmds"),
    "network inspect": _lazy("cmd_network_inspect", "netcmds"),
    "network rm": _lazy("cmd_network_rm", "netcmds"),
    "network prune": _lazy("cmd_network_prune", "netcmds"),
    "network connect": _lazy("cmd_network_connect", "netcmds"),
    "network disconnect": _lazy("cmd_network_disconnect", "netcmds"),
    "volume create": _lazy("cmd_volume_create", "volcmds"),
    "volume ls": _lazy("cmd_volume_ls", "volcmds"),
    "volume inspect": _lazy("cmd_volume_inspect", "volcmds"),
    "volume rm": _lazy("cmd_volume_rm", "volcmds"),
    "volume prune": _lazy("cmd_volume_prune", "volcmds"),
    "top": _lazy("cmd_top", "opscmds"),
    "stats": _lazy("cmd_stats", "opscmds"),
    "diff": _lazy("cmd_diff", "opscmds"),
    "update": _lazy("cmd_update", "opscmds"),
    "exec": _lazy("cmd_exec", "execcmd"),
    "attach": _lazy("cmd_attach", "execcmd"),
    "system df": _lazy("cmd_system_df", "opscmds"),
    "system prune": _lazy("cmd_system_prune", "opscmds"),
    "build": _lazy("cmd_build", "buildcmd"),
}
