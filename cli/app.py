"""The cyclopts application, generated from ``cli.argspec.SPECS``.

Theory of operation:
    cyclopts builds commands from function signatures.  Rather than writing
    forty signatures that repeat the table in ``argspec``, ``build_app``
    creates one function per command whose ``__signature__`` is made from the
    command's ``Spec`` (positionals first, then keyword-only options with
    docker's names and help).  Each function only packs its arguments into a
    ``Parsed`` and returns it: parsing is all cyclopts is asked to do.  Running
    the command is ``cli.main``'s job, whichever parser produced the
    ``Parsed``.

    This module is imported only when the fast parser declines an argv
    (``--help``, errors, unusual spellings): importing cyclopts costs more
    than the rest of a ``berth run``.
"""

from __future__ import annotations

import inspect
from typing import Annotated

from cyclopts import App, CycloptsError, Parameter, UnknownCommandError

from cli.argspec import (
    ALIASES,
    FLAG,
    GROUPS,
    INT,
    LIST,
    MANY,
    ONE,
    OPTIONAL,
    REST,
    SPECS,
    Parsed,
    Spec,
    defaults,
    insert_rest_delimiter,
    resolve_command,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HELP = """\
A Docker-compatible container engine client.

Global options (before the command):
  -H, --host unix:///PATH  Daemon socket (default: $BERTH_HOST, else a
                           unix:// $DOCKER_HOST, else the standard path
                           unix:///run/berth/berth.sock)
  -v, --version            Print version information and quit
"""


class UsageProblem(Exception):
    """A command line that cyclopts accepted but docker would reject."""


def _parameters(spec: Spec) -> list[inspect.Parameter]:
    params: list[inspect.Parameter] = []
    for arg in spec.args:
        hyphen = arg.kind == REST or arg.dash
        meta = Parameter(name=arg.metavar, help=arg.help, allow_leading_hyphen=hyphen)
        if arg.kind == ONE:
            params.append(
                inspect.Parameter(
                    arg.dest, inspect.Parameter.POSITIONAL_ONLY, annotation=Annotated[str, meta]
                )
            )
        elif arg.kind == OPTIONAL:
            params.append(
                inspect.Parameter(
                    arg.dest,
                    inspect.Parameter.POSITIONAL_ONLY,
                    default=None,
                    annotation=Annotated[str | None, meta],
                )
            )
        else:
            params.append(
                inspect.Parameter(
                    arg.dest, inspect.Parameter.VAR_POSITIONAL, annotation=Annotated[str, meta]
                )
            )
    for opt in spec.opts:
        names = list(opt.names)
        annotation: object
        if opt.kind == FLAG:
            # A flag that defaults to true (``--pause``) is turned off as
            # ``--pause=false``, which cyclopts parses like pflag.
            annotation = Annotated[
                bool, Parameter(name=names, help=opt.help, negative="", show_default=False)
            ]
            default: object = opt.default is True
        elif opt.kind == LIST:
            annotation = Annotated[
                list[str] | None,
                Parameter(name=names, help=opt.help, negative="", allow_leading_hyphen=True),
            ]
            default = None
        else:
            kind = int if opt.kind == INT else str
            annotation = Annotated[
                kind | None,
                Parameter(name=names, help=opt.help, allow_leading_hyphen=True),
            ]
            default = opt.default
        params.append(
            inspect.Parameter(
                opt.dest, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return params


def _command(spec: Spec, preset: dict[str, object]) -> Callable[..., Parsed]:
    """A function cyclopts can bind, returning the ``Parsed`` command line."""
    params = _parameters(spec)

    def command(*args: str | None, **kwargs: object) -> Parsed:
        positionals = [a for a in args if a is not None]
        if any(a.kind == MANY for a in spec.args) and not positionals:
            raise UsageProblem(f'"berth {spec.name}" requires at least 1 argument.')
        values = defaults(spec)
        for key, value in kwargs.items():
            if value is None:
                continue
            values[key] = list(value) if isinstance(value, list | tuple) else value
        for key, value in preset.items():
            if values.get(key) is None:
                values[key] = value
        return Parsed(spec.name, positionals, values)

    command.__signature__ = inspect.Signature(params, return_annotation=Parsed)  # type: ignore[attr-defined]  # read by inspect.signature
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": Parsed}
    command.__name__ = spec.name.replace(" ", "_")
    command.__qualname__ = command.__name__
    command.__doc__ = spec.help
    return command


def build_app() -> App:
    """The whole ``berth`` CLI as a cyclopts ``App``; calling it returns a ``Parsed``."""
    app = App(
        name="berth",
        help=HELP,
        help_format="plaintext",
        help_flags=["--help"],
        version_flags=[],
        result_action="return_value",
        exit_on_error=False,
        print_error=False,
    )
    for spec in SPECS.values():
        if spec.toplevel:
            app.command(_command(spec, {}), name=spec.name)
    groups: dict[str, App] = {}
    for group, text in GROUPS.items():
        groups[group] = App(name=group, help=text, help_flags=["--help"], version_flags=[])
        app.command(groups[group])
    for (group, verb), (name, preset) in ALIASES.items():
        groups[group].command(_command(SPECS[name], preset), name=verb)
    return app


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_with_cyclopts(argv: Sequence[str], *, app: App | None = None) -> Parsed | int:
    """Parse ``argv`` with cyclopts (``app`` defaults to a fresh ``build_app()``).

    Returns:
        The ``Parsed`` command line, or an exit code when cyclopts printed help
        (0) or the command line is wrong (125 for ``run``/``create``, else 2;
        one line on stderr).
    """
    from cli.commands import err

    found = resolve_command(argv)
    tokens = list(argv)
    if found is not None:
        spec, _preset, words = found
        tokens = tokens[:words] + insert_rest_delimiter(spec, tokens[words:])
    usage_code = found[0].usage_code if found else 2
    where = " ".join(argv[: found[2]]) if found else ""
    hint = f" See 'berth {where} --help'." if where else " See 'berth --help'."
    try:
        result = (app or build_app())(tokens)
    except UnknownCommandError:
        named = " ".join([t for t in argv if not t.startswith("-")][:2])
        err(f"berth: unknown command: berth {named}. Run 'berth --help' for more information.")
        return usage_code
    except CycloptsError as exc:
        err(f"berth: {_one_line(str(exc))}{hint}")
        return usage_code
    except UsageProblem as exc:
        err(f"berth: {exc}{hint}")
        return usage_code
    if isinstance(result, Parsed):
        return result
    return 0
