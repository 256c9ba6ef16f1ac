"""Tests for supervisor.containers.names: Docker's name rules and lookup order."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.names import _LEFT, _RIGHT, generate_name, match, new_id, validate_name
from supervisor.errors import InvalidArgument

ID_A = "abc" + "1" * 61
ID_B = "abd" + "2" * 61
ID_C = "f00" + "3" * 61
TABLE = [(ID_A, "web"), (ID_B, "db"), (ID_C, "abd")]


# -- validate_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("web", "web"),
        ("/web", "web"),
        ("ab", "ab"),
        ("a_b.c-d", "a_b.c-d"),
        ("0day", "0day"),
        ("Web1", "Web1"),
        ("x" * 200, "x" * 200),
    ],
    ids=[
        "plain",
        "leading-slash",
        "two-chars",
        "punctuation",
        "leading-digit",
        "mixed-case",
        "long",
    ],
)
def test_validate_name_valid_strips_slash(name: str, stored: str) -> None:
    assert validate_name(name) == stored


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "/a",
        "-web",
        "_web",
        ".web",
        "we b",
        "web/1",
        "//web",
        "web\n",
        "\nweb",
        "wéb",
        "web:1",
        "/",
    ],
    ids=[
        "empty",
        "one-char",
        "slash-one-char",
        "leading-dash",
        "leading-underscore",
        "leading-dot",
        "space",
        "inner-slash",
        "double-slash",
        "trailing-newline",
        "leading-newline",
        "non-ascii",
        "colon",
        "slash",
    ],
)
def test_validate_name_invalid_raises_docker_message(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_name(name)
    assert str(info.value) == (
        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


@given(st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", fullmatch=True))
def test_validate_name_docker_pattern_always_accepted(name: str) -> None:
    assert validate_name(name) == name
    assert validate_name("/" + name) == name


# -- new_id / generate_name -------------------------------------------------------------------


def test_new_id_is_64_lower_hex_and_unique() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)


def test_generate_name_is_adjective_underscore_surname() -> None:
    name = generate_name(set(), random.Random(1))
    left, _, right = name.partition("_")
    assert left in _LEFT
    assert right in _RIGHT
    validate_name(name)


def test_generate_name_same_seed_same_name() -> None:
    assert generate_name(set(), random.Random(7)) == generate_name(set(), random.Random(7))


def test_generate_name_avoids_taken_names() -> None:
    first = generate_name(set(), random.Random(3))
    second = generate_name({first}, random.Random(3))
    assert second != first


def test_generate_name_all_pairs_taken_adds_digits() -> None:
    taken = {f"{left}_{right}" for left in _LEFT for right in _RIGHT}
    name = generate_name(taken, random.Random(0))
    assert name not in taken
    validate_name(name)


def test_generate_name_everything_taken_falls_back_to_random_hex() -> None:
    taken = {
        f"{left}_{right}{suffix}"
        for left in _LEFT
        for right in _RIGHT
        for suffix in ["", *map(str, range(100))]
    }
    name = generate_name(taken, random.Random(0))
    assert re.fullmatch(r"berth_[0-9a-f]{12}", name)


# -- match --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (ID_A, ID_A),
        ("web", ID_A),
        ("/web", ID_A),
        ("db", ID_B),
        ("abd", ID_C),
        ("abc", ID_A),
        ("f", ID_C),
        ("abd2", ID_B),
        ("nope", None),
        ("", None),
        ("/", None),
        ("web1", None),
        ("we", None),
    ],
    ids=[
        "full-id",
        "name",
        "slash-name",
        "other-name",
        "name-beats-prefix",
        "unique-prefix",
        "one-char-prefix",
        "longer-prefix",
        "unknown",
        "empty",
        "slash-only",
        "name-plus",
        "name-prefix-is-not-a-match",
    ],
)
def test_match_lookup_order_is_id_name_prefix(ref: str, expected: str | None) -> None:
    assert match(ref, TABLE) == expected


def test_match_full_id_beats_a_name_equal_to_it() -> None:
    table = [(ID_B, ID_A), (ID_A, "web")]
    assert match(ID_A, table) == ID_A


def test_match_ambiguous_prefix_raises_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as info:
        match("ab", TABLE)
    assert str(info.value) == "multiple IDs found with provided prefix: ab"
    assert info.value.status == 400


def test_match_no_containers_gives_none() -> None:
    assert match("web", []) is None
