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


# -- compiling one pattern -----------------------------------------------------------------


def _class(pattern: str, start: int) -> tuple[str, int]:
    """Translate the ``[...]`` class opening at ``pattern[start]``; returns the regex and
    the index after ``]``.

    Raises:
        IgnoreError: the class is malformed by Go's ``filepath.Match`` rules.
    """
    i = start + 1
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    parts: list[str] = []
    while True:
        if i < len(pattern) and pattern[i] == "]" and parts:
            return ("[^" if negated else "[") + "".join(parts) + "]", i + 1
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":  # _class_char guarantees a next character
            hi, i = _class_char(pattern, i + 1)
        if hi < lo:
            raise IgnoreError("syntax error in pattern")
        parts.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """Go's ``getEsc``: one (possibly escaped) class character, never the last one."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise IgnoreError("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise IgnoreError("syntax error in pattern")
    if i + 1 >= len(pattern):
        raise IgnoreError("syntax error in pattern")  # the class is never closed
    return pattern[i], i + 1


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression of one cleaned pattern (without its ``!``).

    Raises:
        IgnoreError: a malformed class or a trailing ``\\``.
    """
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            text, i = _class(pattern, i)
            out.append(text)
            continue
        elif ch == "\\":
            if i + 1 >= n:
                raise IgnoreError("syntax error in pattern")
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


class Pattern:
    """One compiled pattern: its cleaned text, whether it is an exception, its regex."""

    __slots__ = ("exclusion", "regex", "text")

    def __init__(self, text: str, *, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.regex = compile_glob(text)

    def match(self, path: str) -> bool:
        """Whether the pattern matches ``path`` itself."""
        return self.regex.fullmatch(path) is not None

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
    leaves them out).  A Dockerfile read from standard input needs none.

    Raises:
        IgnoreError: a pattern is malformed.
    """
    result = list(patterns)
    if Matcher(result).matches(".dockerignore"):
        result.append("!.dockerignore")
    if not from_stdin and Matcher(result).matches(dockerfile):
        result.append("!" + dockerfile)
    return result
