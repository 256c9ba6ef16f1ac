"""Variable substitution in Dockerfile words (Docker's shell lexer). Pure.

Theory of operation: :func:`process_word` reads one word the way Docker's builder does
for the instructions that substitute (:data:`EXPANDING`): quotes are removed, the escape
character escapes the next character, and ``$VAR``, ``${VAR}``, ``${VAR:-word}``,
``${VAR-word}``, ``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?message}`` and
``${VAR?message}`` are replaced from the given environment. Inside single quotes nothing
is special; inside double quotes only ``$`` and the escape character are, and the escape
only escapes ``"``, ``$`` and itself. An unset variable is empty. RUN, CMD and
ENTRYPOINT are not substituted by the builder: their shell does it.

:func:`process_heredoc` reads a COPY/ADD heredoc body the way BuildKit's
``ExpandRaw`` does (moby/buildkit#2442): the same ``$`` substitutions, but quotes are
ordinary characters (the body is a file, often a script, not a Dockerfile word) and
the escape is always the backslash, which still escapes the next character and is
dropped (``\\$HOME`` gives ``$HOME``, ``\\\\`` gives ``\\``). A quoted delimiter
(``<<"EOF"``) turns all of this off; the parser records that in ``Heredoc.expand``.

:func:`quote_word` is the inverse used by tests and by tools writing Dockerfiles:
``process_word(quote_word(s), {}) == s``. Errors are ``InvalidArgument`` (400); this
module never imports I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from supervisor.errors import InvalidArgument

# Docker's builder substitutes in these (dispatchers' replaceEnvAllowed list).
EXPANDING = frozenset(
    {
        "add",
        "arg",
        "copy",
        "env",
        "expose",
        "from",
        "label",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)


class _Lexer:
    def __init__(
        self, word: str, env: Mapping[str, str], escape: str, *, quotes: bool = True
    ) -> None:
        self.s = word
        self.i = 0
        self.env = env
        self.escape = escape
        self.quotes = quotes  # False: ' and " are plain characters (heredoc bodies)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    def word(self, stop: str = "") -> str:
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.peek()
            if stop and ch in stop:
                break
            self.i += 1
            if ch == self.escape:
                if self.i < len(self.s):
                    out.append(self.next())
                continue
            if ch == "'" and self.quotes:
                out.append(self.single())
            elif ch == '"' and self.quotes:
                out.append(self.double())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)
        return "".join(out)

    def single(self) -> str:
        end = self.s.find("'", self.i)
        if end < 0:
            raise InvalidArgument(
                "unexpected end of statement while looking for matching single-quote"
            )
        text = self.s[self.i : end]
        self.i = end + 1
        return text

    def double(self) -> str:
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise InvalidArgument(
                    "unexpected end of statement while looking for matching double-quote"
                )
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                out.append(self.next())
            elif ch == "$":
                out.append(self.dollar())
            else:
                out.append(ch)

    def name(self) -> str:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] in _NAME_CHARS:
            self.i += 1
        return self.s[start : self.i]

    def dollar(self) -> str:
        if self.peek() == "{":
            self.i += 1
            return self.braced()
        if self.peek().isdigit():
            # Positional parameters ($1, $12): nothing in a build; Docker drops them,
            # every digit of the number.
            while self.peek().isdigit():
                self.i += 1
            return ""
        if self.peek() and self.peek() in "@*#?$!-":
            # Special parameters: nothing in a build either.
            self.i += 1
            return ""
        name = self.name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise InvalidArgument(
                f"bad substitution: missing or invalid variable name in {self.s!r}"
            )
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier ({ch or 'end'}) in substitution")
        word = self.word(stop="}")
        if self.next() != "}":
            raise InvalidArgument("syntax error: missing '}'")
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else word
        if ch == "+":
            return word if is_set else ""
        if not is_set:
            raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
        return value or ""


_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def process_word(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """One word with quotes removed and variables substituted.

    Errors: InvalidArgument (400) for an unterminated quote or a bad ``${...}``.
    """
    lexer = _Lexer(word, env, escape)
    return lexer.word()


def process_heredoc(body: str, env: Mapping[str, str]) -> str:
    """A COPY/ADD heredoc body (unquoted delimiter) with variables substituted.

    Quotes stay as written; ``\\`` escapes the next character whatever the Dockerfile's
    escape directive (BuildKit lexes bodies with a fresh backslash lexer).

    Errors: InvalidArgument (400) for a bad ``${...}``.
    """
    return _Lexer(body, env, "\\", quotes=False).word()


def quote_word(text: str, *, escape: str = "\\") -> str:
    """A word :func:`process_word` reads back as ``text`` (with any environment)."""
    out = []
    for ch in text:
        if ch in ("'", '"', "$", escape) or ch.isspace():
            out.append(escape + ch)
        else:
            out.append(ch)
    return "".join(out)


def env_map(env: list[str]) -> dict[str, str]:
    """A config's ``Env`` list (``K=V``) as a mapping; the last value of a name wins."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out
