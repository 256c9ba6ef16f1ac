"""``berth exec`` and ``berth attach``: into a running container, as docker 28's CLI does.

Theory of operation:
    ``exec``: inspect the container first (so "No such container" wins over
    everything else), refuse ``-it`` without a terminal, then
    ``POST /containers/{id}/exec`` with docker's body, and either
    ``POST /exec/{id}/start`` with ``Detach`` (``-d``) or the same request
    hijacked (``Upgrade: tcp``) and streamed by ``cli.interactive.pump``;
    finally ``GET /exec/{id}/json`` gives the exit code berth exits with.  A
    command that cannot start is reported by the daemon inside the stream and
    its exit code is 126/127, so nothing special happens here.

    ``attach``: inspect (running, not paused, not restarting: docker's three
    messages), register ``POST /containers/{id}/wait``, hijack
    ``/containers/{id}/attach``, inspect again (a container that stopped in
    between would leave the attach waiting for its next run), stream, and exit
    with the container's exit code.  stdin is attached unless ``--no-stdin``,
    and only if the container was created with ``-i`` (``OpenStdin``).

    Detaching with the keys is an error for both, as with docker: "read escape
    sequence" on stderr, exit 1 (only ``run`` detaches quietly).

    Imported only when ``exec``/``attach`` run.
"""

from __future__ import annotations

import os

from cli.client import Client, ClientError, check, checked, quote
from cli.commands import WAIT_REGISTER_TIMEOUT, err, signal_proxy
from cli.data import get_dict, get_int, get_str
from cli.interactive import (
    TERMINATED,
    check_tty,
    console_size,
    detach_keys,
    pump,
    resizer,
)
from cli.units import InvalidArgument, parse_env, parse_env_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cli.argspec import Parsed
    from cli.client import Response
    from cli.interactive import Outcome

ESCAPE_MESSAGE = "read escape sequence"  # moby/term's EscapeError, which docker prints


def read_env_file(path: str) -> bytes:
    """An ``--env-file``'s bytes.

    Raises:
        ClientError: docker's ``open PATH: <reason>`` (exit 1, before any request).
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ClientError(f"open {path}: {reason}") from None


def build_exec_body(
    parsed: Parsed,
    *,
    environ: Mapping[str, str],
    read_file: Callable[[str], bytes],
    size: tuple[int, int],
    keys: str,
) -> dict[str, object]:
    """The body of ``POST /containers/{id}/exec``, in docker's shape (``parseExec``).

    Args:
        parsed: an ``exec`` command line (CONTAINER and COMMAND in ``args``).
        environ: where a bare ``-e KEY`` and env-file ``KEY`` lines take values.
        read_file: reads an ``--env-file``.
        size: the terminal's ``(rows, columns)``, sent with ``-t`` only.
        keys: the detach keys' text ("" for the daemon's default).

    Raises:
        InvalidArgument: an env file or ``-e`` value docker would reject.
    """
    detach = parsed.flag("detach")
    tty = parsed.flag("tty")
    env: list[str] = []
    for path in parsed.texts("env_file"):
        env.extend(parse_env_file(read_file(path), environ=environ, name=path))
    env.extend(parse_env(parsed.texts("env"), environ=environ))
    body: dict[str, object] = {
        "User": parsed.text("user") or "",
        "Privileged": parsed.flag("privileged"),
        "Tty": tty,
    }
    if tty:
        body["ConsoleSize"] = list(size)
    body.update(
        {
            # -d attaches nothing; otherwise output always, input with -i.
            "AttachStdin": parsed.flag("interactive") and not detach,
            "AttachStderr": not detach,
            "AttachStdout": not detach,
            "Detach": detach,
            "DetachKeys": keys,
            "Env": env or None,
            "WorkingDir": parsed.text("workdir") or "",
            "Cmd": parsed.args[1:],
        }
    )
    return body


def start_body(*, detach: bool, tty: bool, size: tuple[int, int]) -> dict[str, object]:
    """The body of ``POST /exec/{id}/start``: ``ConsoleSize`` only with a TTY."""
    body: dict[str, object] = {"Detach": detach, "Tty": tty}
    if tty:
        body["ConsoleSize"] = list(size)
    return body


def _hijack_with_body(client: Client, path: str, payload: dict[str, object]) -> Response:
    """``Client.hijack`` with a JSON body (``/exec/{id}/start`` reads ``Tty``, ``ConsoleSize``)."""
    import json

    return checked(
        client.send(
            "POST",
            path,
            body=json.dumps(payload).encode(),
            headers={
                "Connection": "Upgrade",
                "Upgrade": "tcp",
                "Content-Type": "application/json",
            },
        )
    )


def _ended(outcome: Outcome) -> int | None:
    """The exit code for a stream that did not simply end; None when it did."""
    if outcome.detached:
        err(ESCAPE_MESSAGE)
        return 1
    if outcome.end == TERMINATED:
        return 128 + outcome.signal
    if outcome.failure:
        err(outcome.failure)
        return 1
    return None


def cmd_exec(client: Client, parsed: Parsed) -> int:
    """``berth exec``: run a command in a running container, exit with its code."""
    if len(parsed.args) < 2:
        raise InvalidArgument('"berth exec" requires at least 2 arguments')
    container = f"/containers/{quote(parsed.args[0])}"
    detach = parsed.flag("detach")
    tty = parsed.flag("tty")
    stdin = parsed.flag("interactive") and not detach
    keys_text, keys = detach_keys(parsed.text("detach_keys"), os.environ)
    size = console_size() if tty else (0, 0)
    try:
        body = build_exec_body(
            parsed, environ=os.environ, read_file=read_env_file, size=size, keys=keys_text
        )
    except InvalidArgument as exc:
        raise ClientError(str(exc)) from None  # docker: the bare message, exit 1
    client.get(f"{container}/json")  # "No such container" before anything else
    if not detach:
        check_tty(attach_stdin=stdin, tty=tty)
    created = client.post(f"{container}/exec", body)
    exec_id = get_str(created, "Id")
    if not exec_id:
        raise ClientError("exec ID empty")
    path = f"/exec/{quote(exec_id)}"
    start = start_body(detach=detach, tty=tty, size=size)
    if detach:
        client.call_json("POST", f"{path}/start", payload=start)
        return 0
    with _hijack_with_body(client, f"{path}/start", start) as response:
        outcome = pump(
            response,
            stdin=stdin,
            tty=tty,
            keys=keys,
            resize=resizer(client, f"{path}/resize") if tty else None,
        )
    code = _ended(outcome)
    if code is not None:
        return code
    # The daemon records the exit code before it ends the stream; null (still
    # running: detached by the daemon) counts as 0, as in docker.
    return get_int(client.get(f"{path}/json"), "ExitCode", 0)


def check_attachable(info: object) -> None:
    """Docker's client-side state checks before attaching.

    Raises:
        ClientError: stopped, paused or restarting, with docker's messages.
    """
    state = get_dict(info, "State")
    if state.get("Running") is not True:
        raise ClientError("You cannot attach to a stopped container, start it first")
    if state.get("Paused") is True:
        raise ClientError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting") is True:
        raise ClientError("You cannot attach to a restarting container, wait until it is running")


def cmd_attach(client: Client, parsed: Parsed) -> int:
    """``berth attach``: stream a running container's I/O; exit with its exit code."""
    name = parsed.args[0]
    container = f"/containers/{quote(name)}"
    flag = parsed.text("detach_keys")
    keys_text, keys = detach_keys(flag, os.environ)
    info = client.get(f"{container}/json")
    check_attachable(info)
    config = get_dict(info, "Config")
    tty = config.get("Tty") is True
    want_stdin = not parsed.flag("no_stdin")
    check_tty(attach_stdin=want_stdin, tty=tty)
    stdin = want_stdin and config.get("OpenStdin") is True
    query: dict[str, object] = {
        "stream": 1,
        "stdin": 1 if stdin else None,
        "stdout": 1,
        "stderr": 1,
        "detachKeys": keys_text or None,
    }
    wait = client.send("POST", f"{container}/wait")
    try:
        if wait.readable(WAIT_REGISTER_TIMEOUT):
            check(wait)
        with client.hijack(f"{container}/attach", query=query) as attach:
            check_attachable(client.get(f"{container}/json"))
            with signal_proxy(client, name, enabled=parsed.flag("sig_proxy") and not tty):
                outcome = pump(
                    attach,
                    stdin=stdin,
                    tty=tty,
                    keys=keys,
                    resize=resizer(client, f"{container}/resize") if tty else None,
                    redraw=True,
                )
        code = _ended(outcome)
        if code is not None:
            return code
        check(wait)
        result = wait.json()
    finally:
        wait.close()
    message = get_str(get_dict(result, "Error"), "Message")
    if message:
        err(message)
        return 1
    return get_int(result, "StatusCode", 0)
