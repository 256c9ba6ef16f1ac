from __future__ import annotations

import json

from supervisor.api.schema import human_duration, image_history
from supervisor.model import Image, ImageId


def _image(history: list[dict[str, object]]) -> Image:
    config = {"created": "2024-01-02T03:04:05Z", "history": history, "rootfs": {"diff_ids": []}}
    return Image(
        id=ImageId("sha256:" + "a" * 64),
        config=config,
        raw_config=json.dumps(config).encode(),
        created_ns=0,
        size=30,
        layers=(),
        tags=("docker.io/library/x:1",),
    )


def test_image_history_sizes_follow_non_empty_layers_newest_first() -> None:
    image = _image(
        [
            {"created": "2024-01-01T00:00:00Z", "created_by": "import"},
            {"created": "2024-01-01T00:00:01Z", "created_by": "ENV", "empty_layer": True},
            {"created": "2024-01-01T00:00:02Z", "created_by": "RUN", "comment": "c"},
        ]
    )
    rows = image_history(image, [10, 20])
    assert [r["CreatedBy"] for r in rows] == ["RUN", "ENV", "import"]
    assert [r["Size"] for r in rows] == [20, 0, 10]
    assert rows[0]["Id"] == image.id and rows[0]["Tags"] == ["x:1"] and rows[0]["Comment"] == "c"
    assert rows[1]["Id"] == "<missing>"
    assert rows[2]["Created"] == 1704067200


def test_image_history_without_history_has_one_row() -> None:
    rows = image_history(_image([]), [])
    assert len(rows) == 1 and rows[0]["Size"] == 30


def test_human_duration_wording() -> None:
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(90) == "About a minute"
    assert human_duration(3600) == "About an hour"
