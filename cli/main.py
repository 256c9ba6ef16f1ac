"""``berth`` entry point: global options, parsing, dispatch, errors, exit codes.

Theory of operation:
    1. Global options before the command (``-H/--host``, ``-v/--version``)
       are taken off argv here.
    2. ``argspec.parse_argv`` parses the command line without cyclopts; when
       it declines, ``cli.app`` (cyclopts) parses it, prints help, or reports
       a usage error in one line.
    3. ``commands.COMMANDS[name]`` runs it against ``Client(host)``.

    Exit codes follow docker: the container's code for ``run`` (and
    ``start -a``); 125 when ``run``/``create`` fail before the container
    runs; 1 for failures of other commands; usage errors 125 for
    ``run``/``create``, 2 elsewhere (cyclopts' code).  Errors are one line on
    stderr, never a traceback (set ``BERTH_DEBUG=1`` to get one).

    Start-up matters (``berth run`` runs in shell loops): this module imports
    only the stdlib, ``argspec`` and, once a command runs, ``client`` and
    ``commands``; cyclopts is imported only on the slow path.
"""

from __future__ import annotations

import os
import sys

from cli.argspec import SPECS, Parsed, parse_argv

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class _GlobalOptions:
    __slots__ = ("host", "version")

    def __init__(self) -> None:
        self.host: str | None = None
        self.version = False


def split_global_options(argv: Sequence[str]) -> tuple[_GlobalOptions, list[str]] | str:
    """Take ``-H/--host`` and ``-v/--version`` off the front of ``argv``.

    Returns:
        ``(options, remaining argv)``, or an error message.
    """
    options = _GlobalOptions()
    args = list(argv)
    while args:
        tok = args[0]
        if tok in ("-H", "--host"):
            if len(args) < 2:
                return f"flag needs an argument: {tok}"
            options.host = args[1]
            del args[:2]
        elif tok.startswith("--host="):
            options.host = tok.partition("=")[2]
            del args[0]
        elif tok.startswith("-H") and len(tok) > 2:
            options.host = tok[2:].removeprefix("=")
            del args[0]
        elif tok in ("-v", "--version"):
            options.version = True
            del args[0]
        elif tok == "-h":
            args[0] = "--help"  # -h is help only before the command (run -h is --hostname)
            break
        else:
            break
    return options, args


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``berth`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        return 130


def entrypoint() -> None:
    """The ``berth`` console script: run, flush, and leave without interpreter teardown.

    ``berth`` runs in shell loops; finalising modules and objects costs ~10 ms and does
    nothing for a process that has already written its output.
    """
    import os

    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code)


def _main(args: list[str]) -> int:
    split = split_global_options(args)
    if isinstance(split, str):
        sys.stderr.write(f"berth: {split}. See 'berth --help'.\n")
        return 2
    options, args = split
    if options.version:
        from cli import __version__

        sys.stdout.write(f"berth version {__version__}\n")
        return 0
    parsed = parse_argv(args)
    if parsed is None:
        from cli.app import parse_with_cyclopts

        result = parse_with_cyclopts(args)
        if isinstance(result, int):
            return result
        parsed = result
    return execute(parsed, options.host)


def execute(parsed: Parsed, host: str | None) -> int:
    """Run a parsed command; map exceptions to docker's messages and exit codes."""
    from cli.client import Client, ClientError, resolve_host
    from cli.commands import COMMANDS, err, flush
    from cli.template import TemplateError
    from cli.units import InvalidArgument

    spec = SPECS[parsed.command]
    failure = 125 if parsed.command in ("run", "create") else 1
    try:
        try:
            client = Client(resolve_host(host, os.environ))
            code = COMMANDS[parsed.command](client, parsed)
            flush()
        except ClientError as exc:
            flush()
            err(str(exc))
            return failure
        except InvalidArgument as exc:
            flush()
            err(f"berth: {exc}. See 'berth {parsed.command} --help'.")
            return spec.usage_code
        except TemplateError as exc:
            flush()
            msg = str(exc)
            err(msg if "executing" in msg else f"template parsing error: {msg}")
            return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`berth ps | head -1`): stop quietly, as Go's
        # SIGPIPE death does for docker.  Point stdout at /dev/null so the
        # interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # the CLI promises one line, never a traceback
        if os.environ.get("BERTH_DEBUG"):
            raise
        err(f"berth: unexpected error: {type(exc).__name__}: {exc}")
        return failure
    return code


if __name__ == "__main__":
    sys.exit(main())
