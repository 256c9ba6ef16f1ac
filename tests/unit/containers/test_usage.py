"""Tests for supervisor.containers.usage: the arithmetic of GET /system/df."""

from __future__ import annotations

import pytest

from supervisor.containers.usage import (
    containers_per_image,
    layers_size,
    parse_types,
    shared_sizes,
    volume_refs,
)
from supervisor.errors import InvalidArgument
from supervisor.model import ChainId, Image, ImageId

BASE, MID, TOP_A, TOP_B = (ChainId(f"sha256:{c * 64}") for c in "abcd")
SIZES = {BASE: 1000, MID: 200, TOP_A: 30, TOP_B: 4}


def image(name: str, *layers: ChainId) -> Image:
    return Image(
        id=ImageId(f"sha256:{name * 64}"),
        config={},
        raw_config=b"{}",
        created_ns=0,
        size=sum(SIZES[c] for c in layers),
        layers=layers,
    )


A = image("1", BASE, MID, TOP_A)
B = image("2", BASE, MID, TOP_B)
C = image("3", BASE)


def test_layers_size_counts_each_layer_once() -> None:
    assert layers_size([A, B, C], SIZES) == 1234
    assert layers_size([], SIZES) == 0


def test_shared_sizes_are_layers_another_image_has() -> None:
    assert shared_sizes([A, B, C], SIZES) == {A.id: 1200, B.id: 1200, C.id: 1000}
    assert shared_sizes([A], SIZES) == {A.id: 0}


def test_containers_per_image() -> None:
    counts = containers_per_image([A.id, A.id, C.id])
    assert (counts[A.id], counts[B.id], counts[C.id]) == (2, 0, 1)


def test_volume_refs_counts_containers_not_mounts() -> None:
    mounts = {
        "c1": [{"Type": "volume", "Name": "data"}, {"Type": "volume", "Name": "data"}],
        "c2": [{"Type": "volume", "Name": "data"}, {"Type": "bind", "Source": "/x"}],
        "c3": [{"Type": "volume", "Name": "logs"}],
    }
    refs = volume_refs(mounts)
    assert (refs["data"], refs["logs"], refs["none"]) == (2, 1, 0)


def test_parse_types() -> None:
    assert parse_types([]) == {"container", "image", "volume", "build-cache"}
    assert parse_types(["volume", "image"]) == {"volume", "image"}
    with pytest.raises(InvalidArgument, match="invalid type: disk"):
        parse_types(["disk"])
