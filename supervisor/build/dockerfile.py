"""The Dockerfile parser. Pure.

Theory of operation: :func:`parse` turns Dockerfile text into a :class:`Dockerfile`: the
parser directives (``# escape=``, ``# syntax=``) and a list of :class:`Instruction`.
Nothing is substituted here (variables depend on the build's scope, see ``expand.py``)
and instructions are not validated beyond their shape: the builder checks what each one
means. The rules follow Docker's parser:

- directives are recognised only before the first comment, blank line or instruction;
- a line ending in the escape character continues on the next one; comment lines and
  blank lines inside a continuation are dropped;
- the first word is the keyword (any case); leading ``--name=value`` words are flags;
- RUN, CMD, ENTRYPOINT, COPY, ADD, VOLUME and SHELL take a JSON array (the "exec" form)
  or, when the text is not a JSON array of strings, the shell form (SHELL accepts only
  JSON);
- RUN, COPY and ADD may carry heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``) whose bodies
  are the lines after the instruction up to the terminator.

Errors are :class:`DockerfileParseError` (400), worded as Docker's classic builder:
``Dockerfile parse error line N: ...``. This module never imports I/O.
"""

from __future__ import annotations

import json
import re

import attrs

from supervisor.errors import InvalidArgument

KEYWORDS = frozenset(
    {
        "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
        "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume",
        "workdir",
    }
)  # fmt: skip
JSON_KEYWORDS = frozenset({"run", "cmd", "entrypoint", "copy", "add", "volume", "shell"})
HEREDOC_KEYWORDS = frozenset({"run", "copy", "add"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")


class DockerfileParseError(InvalidArgument):
    """A Dockerfile the builder cannot read (400); the message names the line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"Dockerfile parse error line {line}: {message}")
        self.line = line
        self.detail = message


@attrs.frozen
class Heredoc:
    name: str
    content: str  # every body line followed by "\n"
    expand: bool = True  # False for a quoted terminator (<<"EOF")
    chomp: bool = False  # <<-: leading tabs were stripped from the body


@attrs.frozen
class Instruction:
    """One instruction as written.

    ``args`` depends on the keyword: the JSON items (``json`` true) or the shell-form
    text as a single item for RUN/CMD/ENTRYPOINT/SHELL; whitespace-separated words for
    COPY/ADD/VOLUME/EXPOSE/ARG/FROM; alternating raw names and values for ENV/LABEL
    (quotes still in the values: substitution removes them); the whole text for
    USER/WORKDIR/STOPSIGNAL/MAINTAINER/ONBUILD; for HEALTHCHECK ``("NONE",)`` or
    ``("CMD", ...)`` followed by the command in the RUN shape.
    """

    keyword: str  # lower case
    args: tuple[str, ...]
    line: int
    original: str  # the instruction text, continuations joined (what "Step N/M" shows)
    flags: tuple[tuple[str, str], ...] = ()
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        for k, v in self.flags:
            if k == name:
                return v
        return None


@attrs.frozen
class Dockerfile:
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    syntax: str = ""


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile.

    Errors: DockerfileParseError (400) naming the line.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    escape, syntax, i = _directives(lines)
    out: list[Instruction] = []
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts = [_strip_escape(lines[i], escape)]
        continued = _continues(lines[i], escape)
        i += 1
        while continued and i < len(lines):
            nxt = lines[i]
            i += 1
            s = nxt.strip()
            if not s or s.startswith("#"):
                continue  # Docker drops comments and (with a warning) blank lines here
            parts.append(_strip_escape(nxt, escape))
            continued = _continues(nxt, escape)
        joined = "".join(parts).strip()
        instruction, i = _instruction(joined, start + 1, escape, lines, i)
        out.append(instruction)
    return Dockerfile(instructions=tuple(out), escape=escape, syntax=syntax)


def parse_line(text: str, *, line: int, escape: str = "\\") -> Instruction:
    """One instruction (an ONBUILD trigger, a ``--change``) without heredoc bodies."""
    instruction, _ = _instruction(text.strip(), line, escape, [], 0)
    return instruction


def _directives(lines: list[str]) -> tuple[str, str, int]:
    escape, syntax = "\\", ""
    seen: set[str] = set()
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].strip()) if lines[i].lstrip().startswith("#") else None
        if m is None:
            break
        name, value = m.group(1).lower(), m.group(2)
        if name not in ("escape", "syntax", "check"):
            break  # an unknown directive is a comment, and ends the directives
        if name in seen:
            raise DockerfileParseError(i + 1, f"only one {name} parser directive can be used")
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileParseError(i + 1, f"invalid ESCAPE '{value}'. Must be ` or \\")
            escape = value
        elif name == "syntax":
            syntax = value
        i += 1
    return escape, syntax, i


def _continues(line: str, escape: str) -> bool:
    return line.rstrip().endswith(escape)


def _strip_escape(line: str, escape: str) -> str:
    if _continues(line, escape):
        return line.rstrip()[: -len(escape)]
    return line


def _instruction(
    text: str, line: int, escape: str, lines: list[str], i: int
) -> tuple[Instruction, int]:
    word, _, rest = text.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest if rest else more
    keyword = word.lower()
    if keyword not in KEYWORDS:
        raise DockerfileParseError(line, f"unknown instruction: {word.upper()}")
    rest = rest.strip()
    flags, rest = _flags(rest, line)
    heredocs: list[Heredoc] = []
    if keyword in HEREDOC_KEYWORDS:
        for m in _HEREDOC.finditer(rest):
            if keyword == "run" and rest.lstrip().startswith("["):
                break
            body, i = _heredoc_body(lines, i, m.group(3), chomp=m.group(1) == "-", line=line)
            heredocs.append(
                Heredoc(
                    name=m.group(3), content=body, expand=not m.group(2), chomp=m.group(1) == "-"
                )
            )
    args, is_json = _args(keyword, rest, line, escape)
    if keyword in ("copy", "add") and len(args) < 2 and not heredocs:
        raise DockerfileParseError(line, f"{keyword.upper()} requires at least two arguments")
    return (
        Instruction(
            keyword=keyword,
            args=args,
            line=line,
            original=text,
            flags=flags,
            json=is_json,
            heredocs=tuple(heredocs),
        ),
        i,
    )


def _flags(rest: str, line: int) -> tuple[tuple[tuple[str, str], ...], str]:
    flags: list[tuple[str, str]] = []
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        if word == "--":
            rest = after.strip()
            break
        m = _FLAG.match(word)
        if m is None:
            raise DockerfileParseError(line, f"invalid flag: {word}")
        flags.append((m.group(1), m.group(2) if m.group(2) is not None else "true"))
        rest = after.strip()
    return tuple(flags), rest


def _heredoc_body(
    lines: list[str], i: int, name: str, *, chomp: bool, line: int
) -> tuple[str, int]:
    body: list[str] = []
    while i < len(lines):
        current = lines[i]
        i += 1
        if chomp:
            current = current.lstrip("\t")
        if current == name:
            return "".join(b + "\n" for b in body), i
        body.append(current)
    raise DockerfileParseError(line, f"unterminated heredoc {name}")


def _json_list(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _args(keyword: str, rest: str, line: int, escape: str) -> tuple[tuple[str, ...], bool]:
    if keyword in ("run", "cmd", "entrypoint", "shell"):
        items = _json_list(rest)
        if items is not None:
            return tuple(items), True
        if keyword == "shell":
            raise DockerfileParseError(line, "SHELL requires the arguments to be in JSON form")
        if keyword == "run" and not rest:
            raise DockerfileParseError(line, "RUN requires at least one argument")
        return ((rest,) if rest else ()), False
    if keyword in ("copy", "add", "volume"):
        items = _json_list(rest)
        if items is not None:
            return tuple(items), True
        return tuple(rest.split()), False
    if keyword in ("env", "label"):
        return _name_values(keyword, rest, line, escape), False
    if keyword == "healthcheck":
        head, _, cmd = rest.partition(" ")
        if head.upper() == "NONE":
            if cmd.strip():
                raise DockerfileParseError(line, "HEALTHCHECK NONE takes no arguments")
            return ("NONE",), False
        if head.upper() != "CMD":
            raise DockerfileParseError(
                line, "Unknown type for healthcheck: " + (head.upper() or '""')
            )
        cmd = cmd.strip()
        items = _json_list(cmd)
        if items is not None:
            return ("CMD", *items), True
        if not cmd:
            raise DockerfileParseError(line, "Missing command after HEALTHCHECK CMD")
        return ("CMD", cmd), False
    if keyword in ("user", "workdir", "stopsignal", "maintainer", "onbuild"):
        if not rest:
            raise DockerfileParseError(line, f"{keyword.upper()} requires exactly one argument")
        return (rest,), False
    words = tuple(rest.split())
    if keyword == "from" and not words:
        raise DockerfileParseError(line, "FROM requires either one or three arguments")
    if keyword in ("arg", "expose") and not words:
        raise DockerfileParseError(line, f"{keyword.upper()} requires at least one argument")
    return words, False


def split_words(text: str, escape: str) -> list[str]:
    """Split at whitespace outside quotes, keeping quotes and escapes (Docker's
    ``parseWords``): ``a="b c" d`` is two words."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text) and quote != "'":
            word.append(ch + text[i + 1])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            word.append(ch)
        elif ch in "\"'":
            quote = ch
            word.append(ch)
        elif ch.isspace():
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(ch)
        i += 1
    if word:
        words.append("".join(word))
    return words


def _name_values(keyword: str, rest: str, line: int, escape: str) -> tuple[str, ...]:
    what = keyword.upper()
    words = split_words(rest, escape)
    if not words:
        raise DockerfileParseError(line, f"{what} requires at least one argument")
    if "=" not in words[0]:
        # The legacy form: ENV name value with spaces.
        name, _, value = rest.partition(" ")
        name = name.split("\t")[0]
        value = rest[len(name) :].strip()
        if not value:
            raise DockerfileParseError(line, f"{what} must have two arguments")
        return name, value
    out: list[str] = []
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            raise DockerfileParseError(
                line, f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        if not name:
            raise DockerfileParseError(line, f"{what} names can not be blank")
        out += [name, value]
    return tuple(out)


def render(df: Dockerfile) -> str:
    """Dockerfile text that :func:`parse` reads back as ``df`` (for tests and tools)."""
    head = []
    if df.escape != "\\":
        head.append(f"# escape={df.escape}")
    if df.syntax:
        head.append(f"# syntax={df.syntax}")
    body: list[str] = []
    for ins in df.instructions:
        body.append(ins.original)
        for doc in ins.heredocs:
            body.append(doc.content + doc.name)
    return "\n".join([*head, *body]) + "\n"
