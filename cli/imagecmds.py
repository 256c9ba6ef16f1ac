"""The image and registry commands: pull, push, login, logout, search, commit,
save, load, export, history, image prune, container prune.

Theory of operation:
    Each ``cmd_<name>(client, parsed) -> exit code`` makes the requests the
    docker 28 CLI makes, in its order, with its query parameters and
    headers, and prints what it prints.  ``cli.commands`` imports this
    module only when one of these commands runs, so ``berth run`` does not
    pay for it.

    Registry commands send ``X-Registry-Auth`` always (``e30=``, i.e.
    ``{}``, without stored credentials), built by ``cli.auth`` from the
    client-side ``config.json``; ``login`` verifies credentials through the
    daemon (``POST /auth``) and stores them there, ``logout`` removes them.

    JSON progress streams are rendered by ``cli.progress`` (cursor movement
    on a terminal, one line per status otherwise); an error in the stream
    is printed as is and exits 1.

    Tar streams (``save``, ``export``) go to stdout, never to a terminal, or
    with ``-o`` to a temporary file renamed into place once complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from cli.client import Client, ClientError, DaemonError, Response
from cli.commands import (
    _check_table_format,
    _cid,
    _image_path,
    _local_tz,
    _now,
    err,
    flush,
    out,
    write_bytes,
)
from cli.data import get_int, get_list, get_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from cli.argspec import Parsed
    from cli.reference import Reference

AUTH_HEADER = "X-Registry-Auth"

_REGISTER_SUGGEST = (
    "Log in with your Docker ID or email address to push and pull images from Docker Hub. "
    "If you don't have a Docker ID, head over to https://hub.docker.com/ to create one."
)
_PAT_SUGGEST = (
    "You can log in with your password or a Personal Access "
    "Token (PAT). Using a limited-scope PAT grants better security and is required "
    "for organizations using SSO. Learn more at https://docs.docker.com/go/access-tokens/"
)
_UNENCRYPTED_WARNING = """
WARNING! Your credentials are stored unencrypted in '{}'.
Configure a credential helper to remove this warning. See
https://docs.docker.com/go/credential-store/
"""
_TERMINAL_REFUSAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


# --- helpers ---------------------------------------------------------------------------


def _parse_reference(text: str) -> Reference:
    from cli.reference import InvalidReference, parse_normalized_named

    try:
        return parse_normalized_named(text)
    except InvalidReference as exc:
        raise ClientError(str(exc)) from None


def _registry_auth(domain: str) -> dict[str, str]:
    """The ``X-Registry-Auth`` header for a registry domain."""
    from cli.auth import registry_auth_header

    return {AUTH_HEADER: registry_auth_header(domain, os.environ, err)}


def _terminal_width() -> int:
    from cli.progress import DEFAULT_WIDTH

    try:
        return os.get_terminal_size(1).columns or DEFAULT_WIDTH
    except OSError:
        return DEFAULT_WIDTH


def _write_now(text: str) -> None:
    out(text)
    flush()


def show_progress(response: Response, *, quiet: bool = False) -> None:
    """Render a JSON progress stream as docker does (nothing if ``quiet``).

    Raises:
        ClientError: the stream carried an error (its message, as is).
    """
    from cli.progress import DEFAULT_WIDTH, ProgressDisplay, StreamError

    terminal = not quiet and os.isatty(1)
    display = ProgressDisplay(
        (lambda _text: None) if quiet else _write_now,
        terminal=terminal,
        width=_terminal_width() if terminal else DEFAULT_WIDTH,
    )
    try:
        for message in response.iter_json():
            display.feed(message)
    except StreamError as exc:
        flush()
        raise ClientError(str(exc)) from None
    flush()


def _note(text: str) -> str:
    """``tui.Output.PrintNote`` without a terminal: `` Info -> `` and indented lines."""
    header = " Info -> "
    lines = text.split("\n")
    body = lines[0] + "\n" + "".join(" " * len(header) + line + "\n" for line in lines[1:])
    return "\n" + header + body


def _confirm(message: str) -> bool:
    """docker's ``prompt.Confirm``: ``message [y/N] `` on stdout, a line from stdin."""
    out(message + " [y/N] ")
    flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() == "y"


def _human_size(size: int) -> str:
    from cli.progress import human_size

    return human_size(size)


# --- pull / push ----------------------------------------------------------------------


def _transfer_reference(parsed: Parsed) -> Reference:
    """The image of ``pull``/``push``, as docker's CLI takes it: ``--all-tags`` wants a
    bare name; without it a bare name gets the default tag, said unless ``--quiet``."""
    ref = _parse_reference(parsed.args[0])
    all_tags = parsed.flag("all_tags")
    if all_tags and not ref.name_only:
        raise ClientError("tag can't be used with --all-tags/-a")
    if not all_tags and ref.name_only:
        ref = ref.with_default_tag()
        if not parsed.flag("quiet"):
            out(f"Using default tag: {ref.tag}\n")
    return ref


def cmd_pull(client: Client, parsed: Parsed) -> int:
    """``berth pull``: ``POST /images/create?fromImage=&tag=``, progress, the reference."""
    ref = _transfer_reference(parsed)
    all_tags = parsed.flag("all_tags")
    quiet = parsed.flag("quiet")
    platform = parsed.text("platform") or os.environ.get("DOCKER_DEFAULT_PLATFORM") or None
    query: dict[str, object] = {
        "fromImage": ref.name,
        "tag": None if all_tags else (ref.digest or ref.tag),
        "platform": platform.lower() if platform else None,
    }
    headers = _registry_auth(ref.domain)
    with client.request("POST", "/images/create", query=query, headers=headers) as response:
        show_progress(response, quiet=quiet)
    out(f"{ref}\n")
    return 0


def pull_for_run(client: Client, image: str) -> None:
    """What ``docker run``/``create`` do for a missing image: pull it, progress on stderr.

    Raises:
        ClientError / DaemonError: the pull failed (the caller reports it, exit 125).
    """
    from cli.progress import DEFAULT_WIDTH, ProgressDisplay, StreamError

    ref = _parse_reference(image)
    if ref.name_only:
        ref = ref.with_default_tag()
    query: dict[str, object] = {"fromImage": ref.name, "tag": ref.digest or ref.tag}

    def to_stderr(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    display = ProgressDisplay(to_stderr, terminal=False, width=DEFAULT_WIDTH)
    with client.request(
        "POST", "/images/create", query=query, headers=_registry_auth(ref.domain)
    ) as response:
        try:
            for message in response.iter_json():
                display.feed(message)
        except StreamError as exc:
            raise ClientError(str(exc)) from None


def cmd_push(client: Client, parsed: Parsed) -> int:
    """``berth push``: ``POST /images/{name}/push?tag=`` with the stored credentials."""
    ref = _transfer_reference(parsed)
    all_tags = parsed.flag("all_tags")
    quiet = parsed.flag("quiet")
    headers = _registry_auth(ref.domain)
    if ref.digest:
        raise ClientError("cannot push a digest reference")
    query = {"tag": None if all_tags else ref.tag}
    path = f"{_image_path(ref.name)}/push"
    with client.request("POST", path, query=query, headers=headers) as response:
        show_progress(response, quiet=quiet)
    if quiet:
        out(f"{ref}\n")
    return 0


# --- login / logout -------------------------------------------------------------------


def _authenticate(client: Client, username: str, password: str, server: str) -> object:
    """``POST /auth``: the daemon checks the credentials against the registry."""
    body = {"username": username, "password": password, "serveraddress": server}
    return client.post("/auth", {k: v for k, v in body.items() if v})


def _store_credentials(username: str, password: str, server: str, token: str) -> None:
    """Save the login in ``config.json`` (the identity token instead of the password)."""
    from cli.auth import ConfigError, ConfigFile, config_path, os_error

    path = config_path(os.environ)
    try:
        config = ConfigFile.load(path)
    except ConfigError as exc:
        raise ClientError(f"Error saving credentials: {exc}") from None
    if token:
        password = ""
    if not config.store(server, username, password, token):
        return
    try:
        config.save()
    except OSError as exc:
        raise ClientError(f"Error saving credentials: {os_error(exc)}") from None
    if password:
        err(_UNENCRYPTED_WARNING.format(path))


def _read_line() -> str:
    return sys.stdin.readline().strip()


def _prompt_credentials(
    user: str, password: str, default_user: str, server: str
) -> tuple[str, str]:
    """docker's ``PromptUserForCredentials`` (only called with a terminal on stdin)."""
    from cli.auth import INDEX_SERVER

    if not user:
        if server == INDEX_SERVER:
            out(f"{_REGISTER_SUGGEST}\n{_PAT_SUGGEST}\n\n")
        out(f"Username ({default_user}): " if default_user else "Username: ")
        flush()
        user = _read_line() or default_user
        if not user:
            raise ClientError("Error: Non-null Username Required")
    if not password:
        import getpass

        if server == INDEX_SERVER:
            flush()
            write_bytes(
                2,
                _note(
                    "A Personal Access Token (PAT) can be used instead.\n"
                    "To create a PAT, visit https://app.docker.com/settings\n\n"
                ).encode(),
                flush=True,
            )
        flush()
        try:
            password = getpass.getpass("Password: ").strip()
        except EOFError:
            password = ""
        if not password:
            raise ClientError("Error: Password Required")
    return user, password


def cmd_login(client: Client, parsed: Parsed) -> int:
    """``berth login``: verify through ``POST /auth``, store in ``config.json``."""
    from cli.auth import INDEX_SERVER, ConfigError, ConfigFile, config_path, convert_to_hostname

    user = parsed.text("username")
    password = parsed.text("password")
    password_stdin = parsed.flag("password_stdin")
    if password_stdin:
        if password is not None:
            raise ClientError(
                "conflicting options: cannot specify both --password and --password-stdin"
            )
        if user is None:
            raise ClientError("the --password-stdin option requires --username to be set")
    if user is not None and not user:
        raise ClientError("username is empty")
    if password is not None and not password:
        raise ClientError("password is empty")
    user = (user or "").strip()
    password = password or ""
    if password:
        err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if password_stdin:
        data = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        password = data.removesuffix("\n").removesuffix("\r")
    password = password.strip()

    given = parsed.args[0] if parsed.args else ""
    server = given if given and given != "docker.io" else INDEX_SERVER
    if server != INDEX_SERVER:
        server = convert_to_hostname(server)

    status = ""
    stored: dict[str, str] = {}
    if not user and not password:
        try:
            stored = ConfigFile.load(config_path(os.environ)).credentials(server)
        except ConfigError as exc:
            err(f"WARNING: Error {exc}")
    logged_in = False
    if stored.get("username") and stored.get("password"):
        message = "Authenticating with existing credentials..."
        message += f" [Username: {stored['username']}]\n"
        message += _note(
            "To login with a different account, run 'berth logout' followed by 'berth login'"
        )
        flush()
        write_bytes(2, (message + "\n\n").encode("utf-8", "surrogateescape"), flush=True)
        try:
            answer = _authenticate(client, stored["username"], stored["password"], server)
        except DaemonError as exc:
            if exc.status == 401:
                err("Stored credentials invalid or expired")
            else:
                err(f"Login did not succeed, error: {exc}")
        else:
            _store_credentials(
                stored["username"], stored["password"], server, get_str(answer, "IdentityToken")
            )
            status = get_str(answer, "Status") or "Login Succeeded"
            logged_in = True
    if not logged_in:
        if (not user or not password) and not os.isatty(0):
            raise ClientError("Error: Cannot perform an interactive login from a non TTY device")
        user, password = _prompt_credentials(user, password, stored.get("username", ""), server)
        answer = _authenticate(client, user, password, server)
        _store_credentials(user, password, server, get_str(answer, "IdentityToken"))
        status = get_str(answer, "Status") or "Login Succeeded"
    out(status + "\n")
    return 0


def cmd_logout(client: Client, parsed: Parsed) -> int:
    """``berth logout``: remove the stored credentials of a registry (client-side only)."""
    from cli.auth import INDEX_SERVER, ConfigError, ConfigFile, config_path, convert_to_hostname

    del client
    given = parsed.args[0] if parsed.args else ""
    if not given:
        hostname = INDEX_SERVER
        servers = [INDEX_SERVER]
    else:
        hostname = convert_to_hostname(given)
        servers = [given, hostname, f"http://{hostname}", f"https://{hostname}"]
    out(f"Removing login credentials for {hostname}\n")
    try:
        config = ConfigFile.load(config_path(os.environ))
    except ConfigError as exc:
        raise ClientError(f"could not erase credentials: {exc}") from None
    changed = False
    for server in dict.fromkeys(servers):
        changed = config.erase(server) or changed
    if changed:
        try:
            config.save()
        except OSError as exc:
            flush()
            err("WARNING: could not erase credentials:")
            for server in dict.fromkeys(servers):
                err(f"{server}: {exc}")
    return 0


# --- search ---------------------------------------------------------------------------


def cmd_search(client: Client, parsed: Parsed) -> int:
    """``berth search``: ``GET /images/search``, docker 28's table."""
    from cli.reference import search_term_domain
    from cli.render import SEARCH_HEADERS, SEARCH_TABLE, render_rows, search_fields
    from cli.units import parse_filters

    fmt = parsed.text("format")
    _check_table_format(fmt)
    term = parsed.args[0]
    filters = parse_filters(parsed.texts("filter"))
    if "is-automated" in filters:
        err(
            'WARNING: the "is-automated" filter is deprecated, and searching for '
            '"is-automated=true" will not yield any results in future.'
        )
    headers = _registry_auth(search_term_domain(term))
    limit = parsed.number("limit")
    query: dict[str, object] = {
        "term": term,
        "limit": limit if limit is not None and limit > 0 else None,
        "filters": json.dumps(filters) if filters else None,
    }
    with client.request("GET", "/images/search", query=query, headers=headers) as response:
        results = response.json()
    trunc = not parsed.flag("no_trunc")
    rows = [search_fields(r, trunc=trunc) for r in (results if isinstance(results, list) else [])]
    out(render_rows(fmt or SEARCH_TABLE, rows, headers=SEARCH_HEADERS, default_table=SEARCH_TABLE))
    return 0


# --- commit ---------------------------------------------------------------------------


def cmd_commit(client: Client, parsed: Parsed) -> int:
    """``berth commit``: ``POST /commit`` with every parameter docker sends, print the id."""
    repo = tag = ""
    if len(parsed.args) > 1:
        ref = _parse_reference(parsed.args[1])
        if ref.digest:
            raise ClientError("refusing to create a tag with a digest reference")
        ref = ref.with_default_tag()
        repo, tag = ref.name, ref.tag
    query: dict[str, object] = {
        "container": parsed.args[0],
        "repo": repo,
        "tag": tag,
        "comment": parsed.text("message") or "",
        "author": parsed.text("author") or "",
        "changes": parsed.texts("change") or None,
        "pause": None if parsed.flag("pause") else "0",
    }
    result = client.post("/commit", {}, **query)
    out(get_str(result, "Id") + "\n")
    return 0


# --- save / load / export ---------------------------------------------------------------


class AtomicOutput:
    """``atomicwriter``: write a temporary file beside ``path``, rename it when complete.

    Raises ``ClientError`` (``<what>: <reason>``) when ``path`` cannot be
    written: a missing directory, a directory, a symbolic link, a device...
    """

    def __init__(self, path: str, what: str) -> None:
        import stat
        import tempfile

        from cli.auth import os_error, os_reason

        self.path = os.path.abspath(path)
        directory = os.path.dirname(path)
        if directory not in ("", ".", ".."):
            try:
                info = os.stat(directory)
            except OSError as exc:
                reason = os_reason(exc)
                raise ClientError(
                    f"{what}: invalid output path: stat {directory}: {reason}"
                ) from None
            if not stat.S_ISDIR(info.st_mode):
                raise ClientError(f"{what}: invalid output path: stat {directory}: not a directory")
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            reason = os_reason(exc)
            raise ClientError(
                f"{what}: failed to stat output path: lstat {path}: {reason}"
            ) from None
        problem = None
        if mode is not None and not stat.S_ISREG(mode):
            problem = "unknown file mode"
            for check, text in (
                (stat.S_ISDIR, "cannot write to a directory"),
                (stat.S_ISLNK, "cannot write to a symbolic link directly"),
                (stat.S_ISFIFO, "cannot write to a named pipe (FIFO)"),
                (stat.S_ISSOCK, "cannot write to a socket"),
                (stat.S_ISCHR, "cannot write to a character device file"),
                (stat.S_ISBLK, "cannot write to a block device file"),
            ):
                if check(mode):
                    problem = text
                    break
        if problem:
            raise ClientError(f"{what}: {problem}")
        try:
            fd, self.temp = tempfile.mkstemp(
                dir=os.path.dirname(self.path), prefix=".tmp-" + os.path.basename(self.path)
            )
        except OSError as exc:
            raise ClientError(f"{what}: {os_error(exc)}") from None
        self.handle: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> None:
        """Make the file appear at ``path`` (mode 0600)."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.chmod(self.temp, 0o600)
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        self.handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


def _download(client: Client, path: str, query: dict[str, object], output: str, what: str) -> int:
    """Stream a tar from ``path`` to ``output`` (a file) or stdout (never a terminal)."""
    target: AtomicOutput | None = None
    if not output:
        if os.isatty(1):
            raise ClientError(_TERMINAL_REFUSAL)
    else:
        target = AtomicOutput(output, what)
    try:
        with client.request("GET", path, query=query) as response:
            for chunk in response.iter_chunks():
                if target is None:
                    write_bytes(1, chunk)
                else:
                    target.write(chunk)
        if target is not None:
            target.commit()
            target = None
    except OSError as exc:
        from cli.auth import os_error

        if isinstance(exc, BrokenPipeError) and target is None:
            raise
        raise ClientError(f"{what}: {os_error(exc)}") from None
    finally:
        if target is not None:
            target.abort()
    flush()
    return 0


def cmd_save(client: Client, parsed: Parsed) -> int:
    """``berth save``: ``GET /images/get?names=...`` to ``-o FILE`` or stdout."""
    return _download(
        client,
        "/images/get",
        {"names": list(parsed.args)},
        parsed.text("output") or "",
        "failed to save image",
    )


def cmd_export(client: Client, parsed: Parsed) -> int:
    """``berth export``: ``GET /containers/{id}/export`` to ``-o FILE`` or stdout."""
    return _download(
        client,
        f"{_cid(parsed.args[0])}/export",
        {},
        parsed.text("output") or "",
        "failed to export container",
    )


def cmd_load(client: Client, parsed: Parsed) -> int:
    """``berth load``: ``POST /images/load?quiet=`` with the tar, show the daemon's messages."""
    from cli.auth import os_error

    source = parsed.text("input")
    if not source:
        if os.isatty(0):
            raise ClientError("requested load from stdin, but stdin is empty")
        body: BinaryIO = sys.stdin.buffer
    else:
        try:
            body = open(source, "rb")  # noqa: SIM115 - closed below, after the upload
        except OSError as exc:
            raise ClientError(os_error(exc, source)) from None
    quiet = parsed.flag("quiet") or not os.isatty(1)
    headers = {"Content-Type": "application/x-tar"}
    try:
        response = client.request(
            "POST",
            "/images/load",
            query={"quiet": "1" if quiet else "0"},
            body=body,
            headers=headers,
        )
    finally:
        if body is not sys.stdin.buffer:
            body.close()
    with response:
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/json":
            show_progress(response)
        else:
            for chunk in response.iter_chunks():
                write_bytes(1, chunk)
    flush()
    return 0


# --- history --------------------------------------------------------------------------


def cmd_history(client: Client, parsed: Parsed) -> int:
    """``berth history``: ``GET /images/{name}/history`` as docker's table."""
    from cli.render import (
        HISTORY_HEADERS,
        HISTORY_TABLE,
        HISTORY_TABLE_NON_HUMAN,
        history_fields,
        render_rows,
    )

    fmt = parsed.text("format")
    _check_table_format(fmt)
    items = client.get(f"{_image_path(parsed.args[0])}/history")
    human = parsed.flag("human")
    default = HISTORY_TABLE if human else HISTORY_TABLE_NON_HUMAN
    if not fmt or fmt == "table":
        fmt = "{{.ID}}" if parsed.flag("quiet") else default
    now, tz, trunc = _now(), _local_tz(), not parsed.flag("no_trunc")
    rows = [
        history_fields(item, now=now, tz=tz, trunc=trunc, human=human)
        for item in (items if isinstance(items, list) else [])
    ]
    out(render_rows(fmt, rows, headers=HISTORY_HEADERS, default_table=default))
    return 0


# --- prune ----------------------------------------------------------------------------

_DANGLING_WARNING = (
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
)
_ALL_IMAGES_WARNING = (
    "WARNING! This will remove all images without at least one container associated to them.\n"
    "Are you sure you want to continue?"
)
_CONTAINERS_WARNING = (
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
)


def _prune_report(title: str, lines: list[str], reclaimed: int) -> None:
    if lines:
        out(title + "\n" + "".join(line + "\n" for line in lines) + "\n")
    out(f"Total reclaimed space: {_human_size(reclaimed)}\n")


def cmd_image_prune(client: Client, parsed: Parsed) -> int:
    """``berth image prune``: ``POST /images/prune?filters={"dangling":["true"]}``."""
    from cli.units import parse_filters

    filters = parse_filters(parsed.texts("filter"))
    dangling = "false" if parsed.flag("all") else "true"
    values = filters.setdefault("dangling", [])
    if dangling not in values:
        values.append(dangling)
    warning = _ALL_IMAGES_WARNING if parsed.flag("all") else _DANGLING_WARNING
    if not parsed.flag("force") and not _confirm(warning):
        return 0  # docker: "cancelled", nothing printed, exit 0
    report = client.post("/images/prune", filters=json.dumps(filters))
    lines: list[str] = []
    for item in get_list(report, "ImagesDeleted"):
        untagged = get_str(item, "Untagged")
        lines.append(
            f"untagged: {untagged}" if untagged else f"deleted: {get_str(item, 'Deleted')}"
        )
    _prune_report("Deleted Images:", lines, get_int(report, "SpaceReclaimed") if lines else 0)
    return 0


_BUILD_CACHE_WARNING = "WARNING! This will remove all dangling build cache."
_ALL_BUILD_CACHE_WARNING = "WARNING! This will remove all build cache."


def cmd_builder_prune(client: Client, parsed: Parsed) -> int:
    """``berth builder prune``: ``POST /build/prune``."""
    from cli.units import parse_filters

    filters = parse_filters(parsed.texts("filter"))
    warning = _ALL_BUILD_CACHE_WARNING if parsed.flag("all") else _BUILD_CACHE_WARNING
    if not parsed.flag("force") and not _confirm(warning):
        return 0
    report = client.post(
        "/build/prune",
        all="1" if parsed.flag("all") else None,
        filters=json.dumps(filters) if filters else None,
    )
    deleted = [str(c) for c in get_list(report, "CachesDeleted")]
    _prune_report(
        "Deleted build cache objects:", deleted, get_int(report, "SpaceReclaimed") if deleted else 0
    )
    return 0


def cmd_container_prune(client: Client, parsed: Parsed) -> int:
    """``berth container prune``: ``POST /containers/prune``."""
    from cli.units import parse_filters

    filters = parse_filters(parsed.texts("filter"))
    if not parsed.flag("force") and not _confirm(_CONTAINERS_WARNING):
        return 0
    report = client.post("/containers/prune", filters=json.dumps(filters) if filters else None)
    lines = [c for c in get_list(report, "ContainersDeleted") if isinstance(c, str)]
    _prune_report("Deleted Containers:", lines, get_int(report, "SpaceReclaimed") if lines else 0)
    return 0
