"""Tests for cli.dockerignore: reading, the glob language, the two matching rules.

Expected results were checked against the docker 28.2.2 CLI: it was pointed at a fake
daemon that recorded the context tar, over hundreds of random trees and patterns.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.build.dockerignore import (
    ROOT,
    IgnoreError,
    Matcher,
    WalkState,
    compile_glob,
    go_clean,
    go_match,
    parse_dockerignore,
    trim_build_files,
)

# -- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("", []),
        ("a\nb\n", ["a", "b"]),
        ("# comment\na", ["a"]),
        ("  # not a comment (column 2)", ["# not a comment (column 2)"]),
        ("\n\n   \n\t\n", []),
        ("  spaced  \n", ["spaced"]),
        ("!keep", ["!keep"]),
        ("! keep ", ["!keep"]),
        ("/abs/path", ["abs/path"]),
        ("./rel", ["rel"]),
        ("dir/", ["dir"]),
        ("a/../b", ["b"]),
        ("a//b/./c", ["a/b/c"]),
        ("!/abs", ["!abs"]),
        ("!", ["!"]),
        ("/", ["/"]),
        ("\ufeffbom\n\ufeffsecond", ["bom", "\ufeffsecond"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("..", [".."]),
        ("../x", ["../x"]),
    ],
    ids=[
        "empty",
        "two-lines",
        "comment",
        "hash-not-in-column-1",
        "blank-lines",
        "trimmed",
        "exception",
        "exception-space",
        "leading-slash",
        "dot-slash",
        "trailing-slash",
        "dotdot-cleaned",
        "double-slash",
        "exception-leading-slash",
        "lone-bang",
        "root",
        "bom-first-line-only",
        "crlf",
        "dotdot",
        "dotdot-prefix",
    ],
)
def test_parse_dockerignore_table(text: str, patterns: list[str]) -> None:
    assert parse_dockerignore(text) == patterns


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [("", "."), ("a/", "a"), ("//a", "/a"), ("/../a", "/a"), ("a/./b/../c", "a/c"), (".", ".")],
)
def test_go_clean_matches_go(path: str, cleaned: str) -> None:
    assert go_clean(path) == cleaned


# -- the glob language ---------------------------------------------------------------------


def _match(pattern: str, path: str) -> bool:
    return compile_glob(pattern).fullmatch(path) is not None


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("a", "a", True),
        ("a", "ab", False),
        ("*", "abc", True),
        ("*", "a/b", False),
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),
        ("?", "a", True),
        ("?", "/", False),
        ("?", "ab", False),
        ("a?c", "abc", True),
        ("[ab]", "a", True),
        ("[ab]", "c", False),
        ("[^ab]", "c", True),
        ("[^ab]", "a", False),
        ("[!a]", "!", True),  # Go has no ! negation: ! is a member
        ("[!a]", "b", False),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("\\a", "a", False),  # RE2's \a is BEL: docker passes escapes to RE2
        ("\\a", "\x07", True),
        ("\\d", "7", True),
        ("\\x61", "a", True),
        ("[[:alpha:]]", "Q", True),
        ("[[:alpha:]]", "1", False),
        ("[[:^alpha:]]", "1", True),
        ("[*]", "]", True),  # RE2 reads docker's "[[^/]*]" as a class then "*]"
        ("a$", "a$", True),
        ("a^b", "a^b", True),  # no glob character: compared as text
        ("a**", "a.b", True),
        ("a**", "b", False),
        ("[\\]]", "]", True),
        ("a.b", "a.b", True),
        ("a.b", "axb", False),
        ("a+(b)", "a+(b)", True),
        ("**", "a/b/c", True),
        ("**", "", True),
        ("**/foo", "foo", True),
        ("**/foo", "a/b/foo", True),
        ("**/foo", "xfoo", False),
        ("**foo", "a/foo", True),
        ("**foo", "xfoo", False),
        ("a/**", "a/b", True),
        ("a/**", "a/b/c", True),
        ("a/**", "a", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("a*/b", "abc/b", True),
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("**/*.go", "x.go", True),
        ("**/*.go", "a/b/x.go", True),
        ("*", "a\nb", True),
        ("**", "a\nb", True),  # a trailing ** is a prefix test, newlines included
        ("*/**", "a/b\nc", False),  # but a regex otherwise: . stops at a newline
    ],
)
def test_compile_glob_table(pattern: str, path: str, expected: bool) -> None:
    assert _match(pattern, path) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "[",
        "[a",
        "[]",
        "[]a]",
        "[^]",
        "[a-]",
        "[-a]",
        "a\\",
        "\\",
        "[\\",
        "[\\]",
        "x[",
        "[a-b",
        "*[a-]",
    ],
)
def test_matcher_refuses_what_go_match_refuses(pattern: str) -> None:
    with pytest.raises(IgnoreError, match="syntax error in pattern"):
        Matcher([pattern])


@pytest.mark.parametrize("pattern", ["x*[a-]", "?/**/a/[a-]", "a*[a-]"])
def test_matcher_accepts_what_go_match_never_reaches(pattern: str) -> None:
    # Go's Match stops at the first chunk that fails against "."; docker 28 accepts these.
    Matcher([pattern])


@pytest.mark.parametrize("pattern", ["\\y", "\\1", "\\Z", "\\u0061", "[z-a]", "\\é"])
def test_compile_glob_refuses_what_re2_refuses(pattern: str) -> None:
    with pytest.raises(IgnoreError, match="syntax error in pattern"):
        compile_glob(pattern)


def test_re2_errors_surface_when_the_pattern_is_used() -> None:
    matcher = Matcher(["\\y"])  # Go's Match accepts it; RE2 does not
    with pytest.raises(IgnoreError):
        matcher.matches("a")


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "abc", True),
        ("*", "a/b", False),
        ("a*b", "axxb", True),
        ("a*b", "ax/b", False),
        ("[a-c]?", "bz", True),
        ("[^a]", "a", False),
        ("\\*", "*", True),
        ("*.go", "x.go", True),
        ("a*/b", "ab/b", True),
        ("*x", "axbx", True),
    ],
)
def test_go_match_table(pattern: str, name: str, expected: bool) -> None:
    assert go_match(pattern, name) is expected


def test_matcher_lone_bang_is_illegal_exclusion() -> None:
    with pytest.raises(IgnoreError, match='illegal exclusion pattern: "!"'):
        Matcher(["!"])


def test_matcher_bad_pattern_reports_syntax_error() -> None:
    with pytest.raises(IgnoreError, match="syntax error in pattern"):
        Matcher(["ok", "x["])


# -- deciding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ([], "a", False),
        (["a"], "a", True),
        (["a"], "a/b/c", True),  # a parent matches
        (["a"], "b/a", False),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "x.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-x.md", False),
        (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
        (["*", "!keep"], "keep", False),
        (["*", "!keep"], "keep/sub", False),
        (["*", "!keep"], "other", True),
        (["a/b", "!a"], "a/b", False),  # the rule; the walk decides otherwise
        (["**"], "anything/at/all", True),
        (["/"], "a", False),
    ],
)
def test_matcher_matches_last_matching_pattern_wins(
    patterns: list[str], path: str, excluded: bool
) -> None:
    assert Matcher(patterns).matches(path) is excluded


def _walk(matcher: Matcher, path: str) -> bool:
    """``match_walk`` as the context walk calls it: directory by directory."""
    state: WalkState = ROOT
    parts = path.split("/")
    skip = False
    for k in range(len(parts)):
        skip, state = matcher.match_walk("/".join(parts[: k + 1]), state)
    return skip


def test_match_walk_reuses_parent_results_like_docker() -> None:
    # docker 28 leaves a/b out of the tar with these patterns although Matches says no:
    # the parent "a" never evaluated "!a" (nothing matched yet), so the child checks
    # "!a" against its own path only.
    matcher = Matcher(["a/b", "!a"])
    assert _walk(matcher, "a") is False
    assert _walk(matcher, "a/b") is True
    assert _walk(matcher, "a/c") is False


def test_match_walk_parent_match_carries_to_children() -> None:
    matcher = Matcher(["node_modules"])
    assert _walk(matcher, "node_modules") is True
    assert _walk(matcher, "node_modules/x/y") is True
    assert _walk(matcher, "src/node_modules") is False


def test_match_walk_top_level_checks_like_matches() -> None:
    matcher = Matcher(["*.md", "!README.md"])
    assert matcher.match_walk("README.md", ROOT)[0] is False
    assert matcher.match_walk("x.md", ROOT)[0] is True


@pytest.mark.parametrize(
    ("patterns", "directory", "descend"),
    [
        (["docs"], "docs", False),  # no exceptions at all
        (["docs", "!docs/keep.md"], "docs", True),
        (["docs", "!docs/sub/keep.md"], "docs/sub", True),
        (["docs", "!other"], "docs", False),
        (["docs", "!docs"], "docs", True),
        (["docs", "!*/keep.md"], "docs", False),  # docker compares text, not globs
        (["doc", "!docs/x"], "doc", False),  # "docs/x/" does not start with "doc/"
    ],
)
def test_descend_excluded_needs_an_exception_inside(
    patterns: list[str], directory: str, descend: bool
) -> None:
    assert Matcher(patterns).descend_excluded(directory) is descend


@pytest.mark.parametrize(
    ("patterns", "dockerfile", "from_stdin", "result"),
    [
        ([], "Dockerfile", False, []),
        (["*"], "Dockerfile", False, ["*", "!.dockerignore", "!Dockerfile"]),
        (["Dockerfile"], "Dockerfile", True, ["Dockerfile"]),
        (["docs"], "docs/Dockerfile", False, ["docs", "!docs/Dockerfile"]),
        (["*.md"], "Dockerfile", False, ["*.md"]),
        ([".dockerignore"], "Dockerfile", False, [".dockerignore", "!.dockerignore"]),
    ],
)
def test_trim_build_files_keeps_dockerfile_and_ignore_file(
    patterns: list[str], dockerfile: str, from_stdin: bool, result: list[str]
) -> None:
    assert trim_build_files(patterns, dockerfile, from_stdin=from_stdin) == result


# -- properties --------------------------------------------------------------------------------

_NAME = st.text(alphabet="abc.-_ xyz", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..") and s.strip() == s
)
_PATH = st.lists(_NAME, min_size=1, max_size=4).map("/".join)
_GLOB_ATOM = st.sampled_from(["a", "b", "*", "?", "**", "[ab]", "[^a]", ".", "x*", "\\*"])
_PATTERN = st.lists(_GLOB_ATOM, min_size=1, max_size=3).map("/".join)


@given(st.text(max_size=200))
def test_parse_and_compile_never_raise_anything_but_ignore_error(text: str) -> None:
    patterns = parse_dockerignore(text)
    assert all(p and p == p.strip() for p in patterns)
    try:
        matcher = Matcher(patterns)
        matcher.matches("a/b")
        matcher.match_walk("a", ROOT)
    except IgnoreError:
        return


@given(_PATH)
def test_literal_pattern_matches_exactly_itself(path: str) -> None:
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", path)
    assert _match(pattern, path)
    assert not _match(pattern, path + "x")
    assert Matcher([pattern]).matches(path + "/child")


@given(st.lists(_PATTERN, max_size=4), _PATH)
def test_walk_equals_rule_without_exceptions(patterns: list[str], path: str) -> None:
    # The corner cases only come from exceptions; without them both rules agree.
    matcher = Matcher(patterns)
    assert _walk(matcher, path) is matcher.matches(path)


@given(_PATH)
def test_star_never_crosses_a_slash(path: str) -> None:
    assert _match("*", path) is ("/" not in path)


@given(st.lists(_PATTERN, max_size=4), _PATH)
def test_an_exception_for_the_path_itself_always_includes_it(
    patterns: list[str], path: str
) -> None:
    assert Matcher([*patterns, "!" + re.sub(r"([*?\[\]\\])", r"\\\1", path)]).matches(path) is False
