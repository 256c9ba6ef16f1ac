"""``.dockerignore`` as the docker CLI reads and applies it (moby ``patternmatcher``).

Theory of operation:
    Reading (``parse_dockerignore``, docker's ``ignorefile.ReadAll``): one pattern per
    line; a UTF-8 BOM on the first line is dropped; a line whose *first column* is
    ``#`` is a comment; the rest is stripped of surrounding white space, blank lines
    are skipped; a leading ``!`` (white space after it allowed) marks an exception;
    the pattern is cleaned like Go's ``filepath.Clean`` and a leading ``/`` dropped, so
    ``/foo``, ``./foo`` and ``foo/`` all mean ``foo``.

    Compiling (``Matcher``, ``NewPatternMatcher``): a lone ``!`` is refused
    (``illegal exclusion pattern: "!"``), and so is a pattern Go's ``filepath.Match``
    calls malformed (``syntax error in pattern``: an unclosed or empty ``[...]``, a
    trailing ``\\``, a class range running backwards).

    Glob language (Go's ``filepath.Match`` plus ``**``, as a regular expression
    anchored at both ends):

    * ``*`` is any run of characters but ``/``; ``?`` one character but ``/``;
    * ``[...]`` a class (``^`` negates it, ``\\`` escapes inside it, ``a-z`` ranges);
    * ``\\x`` is ``x`` taken literally;
    * ``**`` (with the ``/`` after it, if any) is any number of directories, none
      included, so ``**/foo`` is ``foo`` at any depth but not ``xfoo``; a trailing
      ``**`` is anything, so ``a/**`` matches what is under ``a`` but not ``a``.

    Deciding: each pattern matches a path when it matches the path itself or one of its
    parent directories; the *last* pattern that matches decides (an exception
    re-includes).  ``matches`` is that rule (docker's ``Matches``, used to decide whether
    the Dockerfile and ``.dockerignore`` need an exception added,
    ``trim_build_files``).

    The context walk uses docker's incremental form instead, ``match_walk``
    (``MatchesUsingParentResults``): a child reuses, per pattern, what its parent
    directory found, but a pattern the parent did not evaluate (the loop skips an
    exception while nothing matched yet, and an inclusion once something did) is then
    tried on the child's own path only.  The two differ in corner cases, and the
    docker CLI really sends what the walk decides: with ``a/b`` then ``!a``, ``a/b`` is
    left out although ``matches("a/b")`` is false.  A left-out directory is still
    descended into, without an entry of its own, when an exception pattern lies
    inside it (``descend_excluded``).

    Pure module: stdlib only (``re``, ``posixpath`` string functions).
"""

from __future__ import annotations

import posixpath
import re
import warnings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_BOM = "\ufeff"


class IgnoreError(ValueError):
    """A pattern docker refuses; the message is docker's."""


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` (``""`` is ``.``, ``//a`` is ``/a``)."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def parse_dockerignore(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, exceptions kept as ``!pattern``."""
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix(_BOM) if number == 0 else raw
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


# -- validating: Go's filepath.Match ---------------------------------------------------------


def _bad() -> IgnoreError:
    return IgnoreError("syntax error in pattern")


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """Go's ``scanChunk``: leading stars, then the chunk up to the next star outside
    a class."""
    stripped = pattern.lstrip("*")
    star = len(stripped) != len(pattern)
    in_range = False
    i = 0
    while i < len(stripped):
        ch = stripped[i]
        if ch == "\\":
            if i + 1 < len(stripped):
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return star, stripped[:i], stripped[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    """Go's ``getEsc``: one (possibly escaped) class character, never the last one."""
    if not chunk or chunk[0] in "-]":
        raise _bad()
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _bad()
    if len(chunk) < 2:
        raise _bad()
    return chunk[0], chunk[1:]


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    """Go's ``matchChunk``: after a mismatch it goes on checking the chunk's syntax."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        ch = chunk[0]
        if ch == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            hit = False
            count = 0
            while True:
                if chunk.startswith("]") and count:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if not failed and lo <= r <= hi:
                    hit = True
                count += 1
            if hit == negated:
                failed = True
        elif ch == "?":
            if not failed:
                failed = s[0] == "/"
                s = s[1:]
            chunk = chunk[1:]
        else:
            if ch == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise _bad()
            if not failed:
                failed = chunk[0] != s[0]
                s = s[1:]
            chunk = chunk[1:]
    return ("", False) if failed else (s, True)


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match`` (as of Go 1.24): docker calls it on ``"."`` only to
    reject malformed patterns, which it does only as far as matching gets.

    Raises:
        IgnoreError: the pattern is malformed where ``Match`` looked.
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        rest, ok = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        if star:
            matched = False
            for i in range(len(name)):
                if name[i] == "/":
                    break
                rest, ok = _match_chunk(chunk, name[i + 1 :])
                if ok:
                    if not pattern and rest:
                        continue
                    name = rest
                    matched = True
                    break
            if matched:
                continue
        return False
    return not name


# -- compiling: docker's translation, then RE2 read as Python's re ---------------------------

_REGEX_ESCAPED = frozenset(".+()|{}$")  # escaped by docker; the rest goes through raw
_ESCAPES = {c: "\\" + c for c in "afnrtvdDsSwWbBA"} | {"z": r"\Z"}
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
EXACT = "exact"
PREFIX = "prefix"
REGEX = "regex"


def translate(pattern: str) -> tuple[str, str]:
    """Docker's pattern compilation: ``(EXACT, text)``, ``(PREFIX, text)`` for a literal
    followed by a trailing ``**``, or ``(REGEX, source)`` with RE2 syntax.

    Outside the regex characters docker escapes, what the pattern says goes to RE2 as is:
    ``[...]`` is an RE2 class (``[[:alpha:]]`` included) and ``\\d`` is a digit.
    """
    out: list[str] = []
    kind = EXACT
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == EXACT:
                        kind = PREFIX
                    else:
                        out.append(".*")
                        kind = REGEX
                else:
                    out.append("(?:.*/)?")
                    kind = REGEX
                continue
            out.append("[^/]*")
            kind = REGEX
        elif ch == "?":
            out.append("[^/]")
            kind = REGEX
        elif ch in _REGEX_ESCAPED:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = REGEX
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = REGEX
        else:
            out.append(ch)
    if kind == EXACT:
        return EXACT, pattern
    if kind == PREFIX:
        return PREFIX, pattern[:-2]
    return REGEX, "".join(out)


def _escape(source: str, i: int, *, in_class: bool) -> tuple[str, int]:
    """One RE2 escape at ``source[i]`` (after the backslash) as Python regex text."""
    if i >= len(source):
        raise _bad()
    ch = source[i]
    if ch in _ESCAPES and not (in_class and ch in "bBAz"):
        return _ESCAPES[ch], i + 1
    if ch == "x":
        if source.startswith("{", i + 1):
            end = source.find("}", i + 2)
            digits = source[i + 2 : end] if end > 0 else ""
            after = end + 1
        else:
            digits = source[i + 1 : i + 3]
            after = i + 3
        try:
            code = int(digits, 16) if digits.isascii() and digits.isalnum() else -1
        except ValueError:
            code = -1
        if code < 0 or code > 0x10FFFF or (len(digits) != 2 and source[i + 1 : i + 2] != "{"):
            raise _bad()
        return re.escape(chr(code)), after
    if ch in "01234567":
        end = i + 1
        while end < len(source) and end - i < 3 and source[end] in "01234567":
            end += 1
        if ch != "0" and end == i + 1:
            raise _bad()  # \1..\7 alone is a backreference: RE2 has none
        return re.escape(chr(int(source[i:end], 8))), end
    if ch.isascii() and not ch.isalnum():
        return re.escape(ch), i + 1
    raise _bad()  # \Q, \p, \C, \u, \Z... : rejected (RE2 rejects most of them too)


def _class_source(source: str, i: int) -> tuple[str, int]:
    """An RE2 class starting after ``[`` at ``source[i]``, as Python regex text."""
    negated = source.startswith("^", i)
    if negated:
        i += 1
    items: list[str] = []
    first = True
    while True:
        if i >= len(source):
            raise _bad()  # missing closing ]
        ch = source[i]
        if ch == "]" and not first:
            return ("[^" if negated else "[") + "".join(items) + "]", i + 1
        first = False
        if source.startswith("[:", i):
            end = source.find(":]", i + 2)
            name = source[i + 2 : end] if end > 0 else ""
            inverted = name.startswith("^")
            ranges = _POSIX.get(name.lstrip("^"))
            if ranges is not None:
                if inverted:
                    raise _bad()  # [[:^alpha:]] inside a class: see below
                items.append(ranges)
                i = end + 2
                continue
        if ch == "\\":
            text, i = _escape(source, i + 1, in_class=True)
        else:
            text, i = re.escape(ch), i + 1
        if source.startswith("-", i) and not source.startswith("-]", i) and len(text) <= 2:
            if i + 1 >= len(source):
                raise _bad()
            if source[i + 1] == "\\":
                high, i = _escape(source, i + 2, in_class=True)
            else:
                high, i = re.escape(source[i + 1]), i + 2
            text = f"{text}-{high}"
        items.append(text)


def _python_source(source: str) -> str:
    """RE2 source (as ``translate`` makes it) rewritten for Python's ``re``."""
    out: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            text, i = _escape(source, i + 1, in_class=False)
            out.append(text)
        elif ch == "[":
            negated_posix = re.match(r"\[\[:\^(\w+):\]\]", source[i:])
            if negated_posix and negated_posix.group(1) in _POSIX:
                out.append(f"[^{_POSIX[negated_posix.group(1)]}]")
                i += negated_posix.end()
                continue
            text, i = _class_source(source, i + 1)
            out.append(text)
        elif ch == "]":
            out.append(r"\]")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The pattern as a Python regex with the meaning docker's RE2 regex has (used with
    ``fullmatch``).

    Raises:
        IgnoreError: RE2 would refuse it (``syntax error in pattern``).
    """
    kind, text = translate(pattern)
    if kind == EXACT:
        source = re.escape(text)
    elif kind == PREFIX:
        source = re.escape(text) + "(?s:.*)"
    else:
        source = _python_source(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set": RE2 has none
            return re.compile(source, re.ASCII)
    except re.error:
        raise _bad() from None


class Pattern:
    """One pattern: its cleaned text, whether it is an exception, its regex (compiled
    when first used: docker reports an RE2 error only for a pattern it evaluates)."""

    __slots__ = ("_regex", "exclusion", "text")

    def __init__(self, text: str, *, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self._regex: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        """Whether the pattern matches ``path`` itself.

        Raises:
            IgnoreError: the pattern does not compile.
        """
        if self._regex is None:
            self._regex = compile_glob(self.text)
        return self._regex.fullmatch(path) is not None

    def match_or_parent(self, path: str) -> bool:
        """Whether the pattern matches ``path`` or one of its parent directories."""
        if self.match(path):
            return True
        parts = path.split("/")[:-1]
        return any(self.match("/".join(parts[: k + 1])) for k in range(len(parts)))

    def __repr__(self) -> str:
        return f"Pattern({'!' if self.exclusion else ''}{self.text!r})"


class WalkState:
    """What a directory's match found, per pattern, for its children (``MatchInfo``)."""

    __slots__ = ("matched",)

    def __init__(self, matched: tuple[bool, ...] = ()) -> None:
        self.matched = matched


ROOT = WalkState()  # the context root: nothing known, parents are checked in full


class Matcher:
    """A compiled list of patterns (docker's ``PatternMatcher``)."""

    __slots__ = ("exclusions", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        """Compile ``patterns`` (as ``parse_dockerignore`` gives them).

        Raises:
            IgnoreError: a lone ``!`` or a malformed pattern (docker's messages).
        """
        compiled: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise IgnoreError('illegal exclusion pattern: "!"')
                text = text[1:]
            go_match(text, ".")  # docker's syntax check
            compiled.append(Pattern(text, exclusion=exclusion))
        self.patterns = tuple(compiled)
        self.exclusions = any(p.exclusion for p in compiled)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated) is excluded: the last pattern
        matching it or a parent decides (docker's ``Matches``)."""
        path = go_clean(path)
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # it could not change the answer
            if pattern.match_or_parent(path):
                matched = not pattern.exclusion
        return matched

    def match_walk(self, path: str, parent: WalkState) -> tuple[bool, WalkState]:
        """Whether the walk leaves ``path`` out, given its directory's state
        (``MatchesUsingParentResults``); the state is for ``path``'s own children."""
        path = go_clean(path)
        known = parent.matched
        found = [False] * len(self.patterns)
        matched = False
        for i, pattern in enumerate(self.patterns):
            hit = bool(known) and known[i]
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match_or_parent(path) if not known else pattern.match(path)
            found[i] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, WalkState(tuple(found))

    def descend_excluded(self, directory: str) -> bool:
        """Whether a left-out ``directory`` must still be walked: an exception pattern
        starts inside it (docker compares the pattern text, not a glob)."""
        if not self.exclusions:
            return False
        prefix = go_clean(directory) + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


def trim_build_files(patterns: Sequence[str], dockerfile: str, *, from_stdin: bool) -> list[str]:
    """Docker's ``TrimBuildFilesFromExcludes``: exceptions so that ``.dockerignore`` and
    the Dockerfile are sent even when ignored (the daemon needs them; ``COPY`` still
    leaves them out).  A Dockerfile read from standard input needs none.  Malformed
    patterns add nothing here (docker ignores the error; the walk reports it).
    """
    result = list(patterns)
    if _matches_quietly(result, ".dockerignore"):
        result.append("!.dockerignore")
    if not from_stdin and _matches_quietly(result, dockerfile):
        result.append("!" + dockerfile)
    return result


def _matches_quietly(patterns: Sequence[str], path: str) -> bool:
    try:
        return Matcher(patterns).matches(path)
    except IgnoreError:
        return False
