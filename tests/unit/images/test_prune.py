"""``supervisor.images.prune``: dockerd's choice of prune candidates and of the parents
a deletion takes along."""

from __future__ import annotations

import pytest

from supervisor.images.prune import (
    children_index,
    is_intermediate,
    prunable_parent,
    prune_candidates,
)
from supervisor.model import Image, ImageId


def _image(
    name: str, *, parent: str = "", tags: tuple[str, ...] = (), digests: tuple[str, ...] = ()
) -> Image:
    return Image(
        id=ImageId(name),
        config={},
        raw_config=b"{}",
        created_ns=0,
        size=0,
        layers=(),
        tags=tags,
        repo_digests=digests,
        parent=parent,
    )


# base (tagged) <- s1 <- s2 <- app (tagged) <- c1 (untagged head)
#                         \- dangling (untagged head)
# pulled (digest only), lone (untagged, no parent)
IMAGES = [
    _image("c1", parent="app"),
    _image("dangling", parent="s2"),
    _image("app", parent="s2", tags=("app:1",)),
    _image("s2", parent="s1"),
    _image("s1", parent="base"),
    _image("base", tags=("base:1",)),
    _image("pulled", digests=("r@sha256:1",)),
    _image("lone"),
]


def _ids(images: list[Image]) -> list[str]:
    return [i.id for i in images]


def test_children_index_maps_parents_to_children() -> None:
    assert children_index(IMAGES) == {
        "app": ["c1"],
        "s2": ["dangling", "app"],
        "s1": ["s2"],
        "base": ["s1"],
    }


@pytest.mark.parametrize(
    ("dangling_only", "expected"),
    [
        (True, ["c1", "dangling", "pulled", "lone"]),
        (False, ["c1", "dangling", "app", "base", "pulled", "lone"]),
    ],
    ids=["dangling", "all"],
)
def test_prune_candidates_skip_intermediate_images(
    dangling_only: bool, expected: list[str]
) -> None:
    assert _ids(prune_candidates(IMAGES, dangling_only=dangling_only)) == expected


def test_prune_candidates_dangling_skips_tagged_parent_with_children() -> None:
    assert "app" not in _ids(prune_candidates(IMAGES, dangling_only=True))


@pytest.mark.parametrize(
    ("image", "children", "expected"),
    [
        (_image("s"), ["c"], True),
        (_image("s"), [], False),
        (_image("s", tags=("t:1",)), ["c"], False),
        (_image("s", digests=("r@sha256:1",)), ["c"], False),
    ],
    ids=["untagged-parent", "childless", "tagged", "digest-only"],
)
def test_is_intermediate(image: Image, children: list[str], expected: bool) -> None:
    assert is_intermediate(image, children) is expected


@pytest.mark.parametrize(
    ("image", "children", "users", "expected"),
    [
        (_image("p"), [], [], True),
        (_image("p", tags=("t:1",)), [], [], False),
        (_image("p", digests=("r@sha256:1",)), [], [], False),
        (_image("p"), ["other"], [], False),
        (_image("p"), [], ["ctr"], False),
    ],
    ids=["untagged-unused", "tagged", "digest", "other-child", "in-use"],
)
def test_prunable_parent(
    image: Image, children: list[str], users: list[str], expected: bool
) -> None:
    assert prunable_parent(image, children=children, users=users) is expected
