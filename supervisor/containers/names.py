"""Container names and ids: validation, generation, lookup rules. Pure."""

from __future__ import annotations

import random
import re
import secrets

from supervisor.errors import InvalidArgument

_VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = (
    "admiring",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "funny",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "loving",
    "lucid",
    "modest",
    "nice",
    "nifty",
    "optimistic",
    "peaceful",
    "practical",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "sweet",
    "tender",
    "trusting",
    "upbeat",
    "vibrant",
    "wizardly",
    "zealous",
)
_RIGHT = (
    "albattani",
    "babbage",
    "banach",
    "bell",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamport",
    "leakey",
    "liskov",
    "lovelace",
    "mccarthy",
    "meitner",
    "mirzakhani",
    "newton",
    "noether",
    "pascal",
    "pike",
    "poincare",
    "ritchie",
    "shannon",
    "sinoussi",
    "thompson",
    "torvalds",
    "turing",
    "wilson",
    "wozniak",
)


def new_id() -> str:
    return secrets.token_hex(32)


def validate_name(name: str) -> str:
    """Strip the leading '/' and check Docker's name pattern. Raises InvalidArgument."""
    if not _VALID.fullmatch(name):  # fullmatch: "$" alone accepts a trailing newline
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def generate_name(taken: set[str], rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    for attempt in range(100):
        name = f"{rng.choice(_LEFT)}_{rng.choice(_RIGHT)}"
        if attempt > 10:
            name += str(rng.randint(0, 99))
        if name not in taken:
            return name
    return "berth_" + secrets.token_hex(6)


def match(ref: str, ids_and_names: list[tuple[str, str]]) -> str | None:
    """Docker's lookup order: full id, then exact name, then unique id prefix.

    Raises:
        InvalidArgument: a prefix matching several containers.
    """
    if not ref:
        return None
    name = ref.lstrip("/")
    for cid, _ in ids_and_names:
        if cid == ref:
            return cid
    for cid, cname in ids_and_names:
        if cname == name:
            return cid
    found = [cid for cid, _ in ids_and_names if cid.startswith(ref)]
    if len(found) > 1:
        raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
    return found[0] if found else None
