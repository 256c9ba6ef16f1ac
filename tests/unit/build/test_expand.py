from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.build.expand import env_map, process_heredoc, process_word, quote_word
from supervisor.errors import InvalidArgument

ENV = {"A": "x", "EMPTY": "", "SP": "a b"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "x"),
        ("${A}b", "xb"),
        ("$Ab", ""),
        ("$UNSET", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:+y}", "y"),
        ("${EMPTY:+y}", ""),
        ("${EMPTY+y}", "y"),
        ("${UNSET:+y}", ""),
        ("${A:-${UNSET:-z}}", "x"),
        ("${UNSET:-${A}}", "x"),
        ("'$A'", "$A"),
        ('"$A"', "x"),
        ('"\\$A"', "$A"),
        ('"a\\b"', "a\\b"),
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", ""),
        ('"$SP"', "a b"),
        ("it'\"s'", 'it"s'),
    ],
)
def test_process_word_table(word: str, expected: str) -> None:
    assert process_word(word, ENV) == expected


def test_process_word_backtick_escape() -> None:
    assert process_word("a`$A", ENV, escape="`") == "a$A"
    assert process_word("c:\\dir", ENV, escape="`") == "c:\\dir"


@pytest.mark.parametrize("word", ["'abc", '"abc', "${A", "${}", "${A%x}", "${UNSET:?gone}"])
def test_process_word_errors(word: str) -> None:
    with pytest.raises(InvalidArgument):
        process_word(word, ENV)


def test_process_word_required_message() -> None:
    with pytest.raises(InvalidArgument, match="UNSET: gone"):
        process_word("${UNSET:?gone}", ENV)
    assert process_word("${A:?gone}", ENV) == "x"


def test_env_map_last_wins() -> None:
    assert env_map(["A=1", "B=2=3", "A=4", "C"]) == {"A": "4", "B": "2=3", "C": ""}


@given(st.text(max_size=50), st.sampled_from(["\\", "`"]))
def test_quote_word_round_trip(text: str, escape: str) -> None:
    assert process_word(quote_word(text, escape=escape), ENV, escape=escape) == text


@given(st.text(max_size=60))
def test_process_word_never_raises_other_errors(word: str) -> None:
    with contextlib.suppress(InvalidArgument):
        process_word(word, ENV)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("echo $A\n", "echo x\n"),
        ("${A}b ${UNSET:-d}\n", "xb d\n"),
        ("say \"$A\" and '$A'\n", "say \"x\" and 'x'\n"),
        ("it's\n", "it's\n"),
        ('unbalanced "quote\n', 'unbalanced "quote\n'),
        ("\\$A\n", "$A\n"),
        ("a\\\\b\n", "a\\b\n"),
        ("a\\nb\n", "anb\n"),
        ("line\\\nnext\n", "line\nnext\n"),
        ("echo $1 $12 $@ $$\n", "echo    \n"),
        ("cost: 5$\n", "cost: 5$\n"),
        ("plain text\n", "plain text\n"),
    ],
    ids=[
        "var",
        "braced-default",
        "quotes-kept",
        "lone-apostrophe",
        "lone-double-quote",
        "escaped-dollar",
        "escaped-backslash",
        "backslash-dropped",
        "backslash-newline",
        "positional-and-special",
        "trailing-dollar",
        "plain",
    ],
)
def test_process_heredoc_table(body: str, expected: str) -> None:
    assert process_heredoc(body, ENV) == expected


def test_process_heredoc_ignores_backtick_escape_directive() -> None:
    # BuildKit lexes heredoc bodies with a fresh backslash lexer, whatever `# escape=`.
    assert process_heredoc("a`$A\n", ENV) == "a`x\n"


@pytest.mark.parametrize("body", ["${A\n", "${}\n", "${UNSET:?gone}\n"])
def test_process_heredoc_bad_substitution_raises(body: str) -> None:
    with pytest.raises(InvalidArgument):
        process_heredoc(body, ENV)


@given(st.text(alphabet=st.characters(blacklist_characters="$\\")))
def test_process_heredoc_without_dollar_or_backslash_is_identity(body: str) -> None:
    assert process_heredoc(body, ENV) == body


@given(st.text())
def test_process_heredoc_raises_only_invalid_argument(body: str) -> None:
    with contextlib.suppress(InvalidArgument):
        process_heredoc(body, ENV)


def test_process_word_positional_parameter_takes_every_digit() -> None:
    assert process_word("$12x", ENV) == "x"
