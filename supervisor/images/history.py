"""The rows of ``GET /images/{name}/history``, as dockerd (20.10+) builds them. Pure.

Theory of operation: the rows come from the image config's ``history``, newest first,
one per entry. An entry without ``empty_layer`` made the next layer of ``rootfs``, and
its row carries that layer's size (Docker's layer ``Size``); an ``empty_layer`` entry
(ENV, CMD, ...) is metadata only and shows 0.

The row ids come from the *image chain*, not from the config: the top row is the image
itself, the row below it its ``parent``, the next that image's parent, and so on, one
image per row, for as long as the chain goes on locally (moby's ``ImageHistory`` walks
``Parent`` the same way). The classic builder commits one image per step, each the
parent of the next and each adding one history entry, so a build's step rows show the
step images and the base image's top row shows the base image. Every row past the end
of the chain (what a pulled or loaded image's own history recorded, or a parent deleted
since) is ``<missing>``. A row with an id carries that image's tags (familiar form,
sorted by the full reference as dockerd's reference store lists them), others none.

An image whose config has no history has no rows (dockerd answers ``[]``). An entry's
``created`` that is missing or not RFC 3339 shows 0, which the CLI renders as ``N/A``.

This module never imports I/O: the API handler resolves the ancestors and the layer
sizes and calls :func:`history_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from supervisor.images.reference import familiar
from supervisor.model import Image

MISSING = "<missing>"


@attrs.frozen
class HistoryRow:
    """One entry of ``docker history``: Docker's ``HistoryResponseItem``."""

    id: str  # an image id, or MISSING
    created: int  # unix seconds; 0 when the entry has no usable time
    created_by: str
    tags: tuple[str, ...]  # familiar references; empty on MISSING rows
    size: int
    comment: str


def history_length(image: Image) -> int:
    """How many rows ``image``'s history has, so how many images of its chain (itself
    included) can name one; the handler resolves no more ancestors than this."""
    return len(_entries(image))


def history_rows(
    image: Image, *, layer_sizes: Sequence[int], ancestors: Sequence[Image]
) -> list[HistoryRow]:
    """The history rows of ``image``, newest first.

    Args:
        image: the image asked about.
        layer_sizes: the sizes of ``image.layers``, bottom first; an entry whose layer
            is not there (a config with more non-empty entries than layers) shows 0.
        ancestors: ``image``'s parent, that image's parent, ... as far as they exist
            locally (may be empty, may be longer than needed).

    Returns:
        One row per history entry; the top ``1 + len(ancestors)`` of them name an image.
    """
    rows: list[HistoryRow] = []
    layer = 0
    for entry in _entries(image):
        size = 0
        if not entry.get("empty_layer"):
            size = layer_sizes[layer] if layer < len(layer_sizes) else 0
            layer += 1
        rows.append(
            HistoryRow(
                id=MISSING,
                created=parse_created(entry.get("created")),
                created_by=str(entry.get("created_by") or ""),
                tags=(),
                size=size,
                comment=str(entry.get("comment") or ""),
            )
        )
    rows.reverse()
    chain = [image, *ancestors]
    return [
        attrs.evolve(row, id=chain[i].id, tags=display_tags(chain[i])) if i < len(chain) else row
        for i, row in enumerate(rows)
    ]


def display_tags(image: Image) -> tuple[str, ...]:
    """``image``'s tags as a history row shows them: familiar, sorted by full name
    (``docker.io/library/zz:1`` sorts before ``localhost:5000/aa:1``)."""
    return tuple(familiar(t) for t in sorted(image.tags))


def parse_created(value: object) -> int:
    """An RFC 3339 ``created`` as unix seconds (floored, as Go's ``Time.Unix``); 0 when
    missing or unparsable. A time without an offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return math.floor(when.timestamp())


def _entries(image: Image) -> list[dict[str, object]]:
    history = image.config.get("history")
    if not isinstance(history, list):
        return []
    return [h for h in history if isinstance(h, dict)]
