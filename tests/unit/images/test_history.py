"""``supervisor.images.history``: dockerd's history rows, ids taken from the image chain."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.images.history import (
    MISSING,
    HistoryRow,
    display_tags,
    history_length,
    history_rows,
    parse_created,
)
from supervisor.model import Image, ImageId


def _entry(by: str, *, empty: bool = False, t: int = 0, comment: str = "") -> dict[str, object]:
    entry: dict[str, object] = {"created": f"2024-01-01T00:00:{t:02d}Z", "created_by": by}
    if empty:
        entry["empty_layer"] = True
    if comment:
        entry["comment"] = comment
    return entry


def _image(
    name: str,
    history: list[dict[str, object]] | None,
    *,
    parent: str = "",
    tags: tuple[str, ...] = (),
) -> Image:
    config: dict[str, object] = {"created": "2024-01-02T03:04:05Z"}
    if history is not None:
        config["history"] = history
    return Image(
        id=ImageId(name),
        config=config,
        raw_config=json.dumps(config).encode(),
        created_ns=0,
        size=0,
        layers=(),
        tags=tags,
        parent=parent,
    )


# busybox (imported: one entry), then a classic build: ENV, RUN, CMD, each step an image
# whose parent is the previous one, only the last one tagged.
BASE_HISTORY = [_entry("", comment="Imported from -")]
BUSYBOX = _image(
    "sha256:base",
    BASE_HISTORY,
    tags=("docker.io/library/busybox:latest", "docker.io/library/busybox:other"),
)
ENV_HISTORY = [*BASE_HISTORY, _entry("ENV", empty=True, t=1)]
RUN_HISTORY = [*ENV_HISTORY, _entry("RUN", t=2)]
STEP_ENV = _image("sha256:env", ENV_HISTORY, parent="sha256:base")
STEP_RUN = _image("sha256:run", RUN_HISTORY, parent="sha256:env")
APP = _image(
    "sha256:app",
    [*RUN_HISTORY, _entry("CMD", empty=True, t=3)],
    parent="sha256:run",
    tags=("localhost:5000/aa:1", "docker.io/library/zz:1", "docker.io/library/mm:2"),
)


def test_history_rows_build_steps_name_their_images_newest_first() -> None:
    rows = history_rows(APP, layer_sizes=[1985695, 6], ancestors=[STEP_RUN, STEP_ENV, BUSYBOX])
    assert [(r.id, r.created_by, r.size) for r in rows] == [
        ("sha256:app", "CMD", 0),
        ("sha256:run", "RUN", 6),
        ("sha256:env", "ENV", 0),
        ("sha256:base", "", 1985695),
    ]
    assert [r.tags for r in rows] == [
        ("mm:2", "zz:1", "localhost:5000/aa:1"),
        (),
        (),
        ("busybox:latest", "busybox:other"),
    ]
    assert rows[-1].comment == "Imported from -"
    assert [r.created for r in rows] == [1704067203, 1704067202, 1704067201, 1704067200]


@pytest.mark.parametrize(
    ("ancestors", "ids"),
    [
        ([], ["sha256:app", MISSING, MISSING, MISSING]),
        (["run"], ["sha256:app", "sha256:run", MISSING, MISSING]),
        (["run", "env"], ["sha256:app", "sha256:run", "sha256:env", MISSING]),
    ],
    ids=["pulled-or-parent-gone", "chain-stops-at-step", "chain-stops-below-base"],
)
def test_history_rows_past_the_local_chain_are_missing(
    ancestors: list[str], ids: list[str]
) -> None:
    chain = {"run": STEP_RUN, "env": STEP_ENV}
    rows = history_rows(APP, layer_sizes=[1, 2], ancestors=[chain[a] for a in ancestors])
    assert [r.id for r in rows] == ids
    assert all(r.tags == () for r in rows if r.id == MISSING)


def test_history_rows_ignore_ancestors_beyond_the_history() -> None:
    rows = history_rows(STEP_ENV, layer_sizes=[5], ancestors=[BUSYBOX, APP, STEP_RUN])
    assert [r.id for r in rows] == ["sha256:env", "sha256:base"]


def test_history_rows_without_history_are_empty() -> None:
    """dockerd answers ``[]`` (and ``docker history`` prints only its header)."""
    for image in (_image("sha256:x", None), _image("sha256:x", [])):
        assert history_rows(image, layer_sizes=[3], ancestors=[]) == []
        assert history_length(image) == 0


def test_history_rows_non_empty_entry_without_its_layer_shows_zero() -> None:
    image = _image("sha256:x", [_entry("a"), _entry("b"), _entry("c")])
    rows = history_rows(image, layer_sizes=[10], ancestors=[])
    assert [r.size for r in rows] == [0, 0, 10]


def test_history_rows_skip_entries_that_are_not_objects() -> None:
    image = _image("sha256:x", [_entry("a"), "junk", 7])  # type: ignore[list-item]  # hostile config
    assert history_length(image) == 1
    assert history_rows(image, layer_sizes=[4], ancestors=[]) == [
        HistoryRow(id="sha256:x", created=1704067200, created_by="a", tags=(), size=4, comment="")
    ]


def test_display_tags_sort_by_full_reference_then_shorten() -> None:
    image = _image("sha256:x", [], tags=("localhost:5000/aa:1", "docker.io/library/zz:1"))
    assert display_tags(image) == ("zz:1", "localhost:5000/aa:1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", 1704067200),
        ("2024-01-01T00:00:00.999999999Z", 1704067200),
        ("2024-01-01T02:00:00+02:00", 1704067200),
        ("2024-01-01T00:00:00", 1704067200),
        ("1969-12-31T23:59:59.5Z", -1),
        ("", 0),
        ("yesterday", 0),
        (None, 0),
        (17, 0),
    ],
    ids=[
        "utc",
        "nanoseconds",
        "offset",
        "naive-is-utc",
        "floor-before-epoch",
        "empty",
        "junk",
        "missing",
        "number",
    ],
)
def test_parse_created(text: object, expected: int) -> None:
    assert parse_created(text) == expected


@given(st.one_of(st.text(), st.none(), st.integers(), st.datetimes().map(lambda d: d.isoformat())))
def test_parse_created_never_raises(value: object) -> None:
    assert isinstance(parse_created(value), int)
