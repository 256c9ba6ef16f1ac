"""``berth build``: upload a context to ``POST /build`` and show the build as docker does.

Theory of operation:
    This is the docker 28 CLI's classic builder (``DOCKER_BUILDKIT=0``, ``runBuild``):

    1. ``--iidfile`` is removed first, so a failed build never leaves a stale id.
    2. ``cli.buildcontext`` decides the context (a directory, ``-``, ``-f -``).
    3. Options become the query (``build_query``): ``t`` repeated, ``dockerfile``,
       ``buildargs``/``labels`` as JSON (``--build-arg K`` takes ``K`` from the
       environment, or ``null`` when unset), ``rm=0`` only for ``--rm=false`` (the
       daemon's default is on), the other flags as ``1``; ``X-Registry-Config`` carries
       every stored credential for the ``FROM`` pulls, as docker sends it.
    4. The tar streams in the request body (chunked); ``Sending build context to Docker
       daemon  7.68kB`` counts it: live on a terminal (every 512 KiB, at most ten times
       a second), the final figure otherwise.
    5. The answer is docker's JSON message stream.  ``stream`` text (``Step 1/3 : FROM
       busybox``, `` ---> abc``, RUN output, ``Successfully built``/``tagged``) and pull
       progress are printed as ``docker`` prints them (``cli.progress``); ``aux.ID`` is
       the image id; an ``errorDetail`` prints its message on stderr and the exit code
       is its ``code`` (a failing RUN's status) or 1.
    6. ``-q`` (``q=1``) keeps everything in a buffer: on success it prints the buffer
       (the daemon's ``sha256:...`` line), on failure it prints it to stderr before the
       error.  ``--iidfile`` receives the id (with ``-q``: the printed line).
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time

from cli.client import ClientError, check
from cli.commands import err, flush, out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import BinaryIO

    from cli.argspec import Parsed
    from cli.client import Client

SENDING = "Sending build context to Docker daemon"
UPDATE_EVERY = 512 * 1024  # docker's progressreader: bytes between two updates
UPDATE_INTERVAL = 0.1  # and at most one update per 100 ms
_CHUNK = 1 << 16


class BuildFailed(ClientError):
    """The build stream ended with an error; ``code`` is docker's exit code for it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- options -> query ------------------------------------------------------------------------


def parse_build_args(values: list[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """``--build-arg`` values: ``K=V``; ``K`` alone takes ``$K``, or null when unset.

    Raises:
        InvalidArgument: an empty name (docker's flag error).
    """
    from cli.units import InvalidArgument

    result: dict[str, str | None] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(
                f'invalid argument "{item}" for "--build-arg" flag: '
                f"invalid environment variable: {item}"
            )
        if eq:
            result[key] = value
        else:
            result[key] = environ.get(key)
    return result


def validate_tags(tags: list[str]) -> None:
    """Every ``-t`` must be a valid reference (docker's ``validateTag``).

    Raises:
        InvalidArgument: docker's flag error.
    """
    from cli.reference import InvalidReference, parse_normalized_named
    from cli.units import InvalidArgument

    for tag in tags:
        try:
            parse_normalized_named(tag)
        except InvalidReference as exc:
            raise InvalidArgument(f'invalid argument "{tag}" for "-t, --tag" flag: {exc}') from None


def build_query(
    parsed: Parsed, *, dockerfile: str | None, environ: Mapping[str, str]
) -> dict[str, object]:
    """The ``POST /build`` query for the command line, as the docker CLI sends it.

    Raises:
        InvalidArgument: a bad tag, build argument or label.
    """
    from cli.units import parse_labels

    tags = parsed.texts("tag")
    validate_tags(tags)
    build_args = parse_build_args(parsed.texts("build_arg"), environ)
    labels = parse_labels(parsed.texts("label"))
    query: dict[str, object] = {}
    if tags:
        query["t"] = tags
    if parsed.texts("add_host"):
        query["extrahosts"] = parsed.texts("add_host")
    if parsed.flag("quiet"):
        query["q"] = "1"
    if parsed.flag("no_cache"):
        query["nocache"] = "1"
    if not parsed.flag("rm"):
        query["rm"] = "0"
    if parsed.flag("force_rm"):
        query["forcerm"] = "1"
    if parsed.flag("pull"):
        query["pull"] = "1"
    network = parsed.text("network")
    if network:
        query["networkmode"] = network
    if dockerfile:
        query["dockerfile"] = dockerfile
    if build_args:
        query["buildargs"] = json.dumps(build_args, separators=(",", ":"))
    if labels:
        query["labels"] = json.dumps(labels, separators=(",", ":"))
    if parsed.texts("cache_from"):
        query["cachefrom"] = json.dumps(parsed.texts("cache_from"), separators=(",", ":"))
    target = parsed.text("target")
    if target:
        query["target"] = target
    platform = parsed.text("platform")
    if platform:
        query["platform"] = platform
    query["version"] = "1"  # the classic builder
    return query


def registry_config(environ: Mapping[str, str]) -> str:
    """``X-Registry-Config``: every stored credential, base64url JSON (``e30=`` if none)."""
    from cli.auth import load_config

    config = load_config(environ, err)
    fields = ("username", "password", "serveraddress", "identitytoken", "registrytoken")
    auths: dict[str, dict[str, str]] = {}
    for key in config.auths():
        found = config.credentials(key)
        auths[key] = {f: found[f] for f in fields if found.get(f)}
    text = json.dumps(auths, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogateescape")).decode()


# -- upload progress -------------------------------------------------------------------------


def sending_line(size: int) -> str:
    """One ``Sending build context`` update (docker's raw progress formatter)."""
    from cli.progress import DEFAULT_WIDTH, progress_text

    figure = progress_text({"current": size}, width=DEFAULT_WIDTH, now=0.0)
    return f"{SENDING} {figure}\r" if figure else f"{SENDING} \r\n"


class UploadProgress:
    """Counts the context as it is sent; writes docker's ``Sending build context`` line.

    ``live`` (a terminal) shows updates while sending; ``done`` always writes the final
    figure followed by docker's ``\\r\\n``.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.live = live
        self.clock = clock
        self.total = 0
        self._shown_bytes = 0
        self._shown_at: float | None = None

    def add(self, n: int) -> None:
        self.total += n
        if not self.live or self.total - self._shown_bytes <= UPDATE_EVERY:
            return
        now = self.clock()
        if self._shown_at is not None and now - self._shown_at < UPDATE_INTERVAL:
            return
        self._shown_at = now
        self._shown_bytes = self.total
        self.write(sending_line(self.total))

    def done(self) -> None:
        self.write(sending_line(self.total) + "\r\n")


# -- the answer ------------------------------------------------------------------------------


def stream_error(message: object) -> tuple[str, int] | None:
    """``(message, exit code)`` of an error message in the stream, else None."""
    if not isinstance(message, dict):
        return None
    detail = message.get("errorDetail")
    legacy = message.get("error")
    if detail is None and not legacy:
        return None
    text = ""
    code = 0
    if isinstance(detail, dict):
        found = detail.get("message")
        text = found if isinstance(found, str) else ""
        raw_code = detail.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
    if not text and isinstance(legacy, str):
        text = legacy
    return text, code or 1


class BuildOutput:
    """Feeds the daemon's messages to docker's display; keeps the image id.

    Raises (from ``feed``):
        BuildFailed: an error message.
    """

    def __init__(self, write: Callable[[str], None], *, terminal: bool, width: int) -> None:
        from cli.progress import ProgressDisplay

        self.image_id = ""
        self.display = ProgressDisplay(write, terminal=terminal, width=width, aux=self._aux)

    def _aux(self, aux: object) -> None:
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]

    def feed(self, message: object) -> None:
        failure = stream_error(message)
        if failure is not None:
            raise BuildFailed(*failure)
        self.display.feed(message)


# -- the command -----------------------------------------------------------------------------


def _write_now(text: str) -> None:
    out(text)
    flush()


def _terminal_width() -> int:
    from cli.progress import DEFAULT_WIDTH

    try:
        return os.get_terminal_size(1).columns or DEFAULT_WIDTH
    except OSError:
        return DEFAULT_WIDTH


def _remove_iidfile(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ClientError(f"Removing image ID file: {_reason(exc, path, 'remove')}") from None


def _reason(exc: OSError, path: str, op: str) -> str:
    text = exc.strerror or str(exc)
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


def cmd_build(client: Client, parsed: Parsed) -> int:
    """``berth build [OPTIONS] PATH | -``: see the module docstring."""
    from cli.buildcontext import open_build_context

    quiet = parsed.flag("quiet")
    iidfile = parsed.text("iidfile")
    if iidfile:
        _remove_iidfile(iidfile)
    context = open_build_context(parsed.args[0], parsed.text("file"), stdin=sys.stdin.buffer)
    query = build_query(parsed, dockerfile=context.dockerfile, environ=os.environ)
    terminal = os.isatty(1)
    sent: list[str] = []  # with -q, the progress and the build output are held back
    built: list[str] = []
    progress = UploadProgress(sent.append if quiet else _write_now, live=terminal and not quiet)
    from cli.chunks import ChunkReader

    body: BinaryIO = io.BufferedReader(ChunkReader(context.chunks, progress.add), _CHUNK)
    headers = {
        "Content-Type": "application/x-tar",
        "X-Registry-Config": registry_config(os.environ),
    }
    try:
        response = client.send("POST", "/build", query=query, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ClientError(
            f"error during connect: the daemon closed the connection while the build "
            f"context was being sent: {exc.strerror or exc}"
        ) from None
    with response:
        progress.done()
        check(response)
        output = BuildOutput(
            built.append if quiet else _write_now,
            terminal=terminal and not quiet,
            width=_terminal_width() if terminal else 200,
        )
        try:
            for message in response.iter_json():
                output.feed(message)
        except BuildFailed as exc:
            flush()
            if quiet:
                sys.stderr.write("".join(sent + built))
            err(exc.message)
            return exc.code
    image_id = output.image_id
    if quiet:
        image_id = "".join(built)
        out(image_id)
    flush()
    if iidfile:
        if not image_id:
            raise ClientError(f"Server did not provide an image ID. Cannot write {iidfile}")
        try:
            with open(iidfile, "w", encoding="utf-8") as handle:
                handle.write(image_id)
        except OSError as exc:
            raise ClientError(_reason(exc, iidfile, "open")) from None
    return 0
