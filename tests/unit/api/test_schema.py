from __future__ import annotations

import json
import time
from typing import Any

import attrs
import pytest

from supervisor.api.schema import (
    container_inspect,
    container_summary,
    human_duration,
    image_history,
    status_text,
)
from supervisor.containers.health import HealthState, HealthStatus, ProbeResult
from supervisor.containers.logs import format_time
from supervisor.containers.state import Status
from supervisor.images.history import MISSING, HistoryRow
from supervisor.model import Container, ContainerId, ContainerState, ImageId


def test_image_history_json_as_dockerd() -> None:
    """dockerd's keys (Go's struct order) and a null ``Tags`` where a row has none."""
    rows = [
        HistoryRow(
            id="sha256:" + "a" * 64,
            created=1704067200,
            created_by="CMD",
            tags=("x:1",),
            size=0,
            comment="c",
        ),
        HistoryRow(id=MISSING, created=0, created_by="", tags=(), size=30, comment=""),
    ]
    assert image_history(rows) == [
        {
            "Comment": "c",
            "Created": 1704067200,
            "CreatedBy": "CMD",
            "Id": "sha256:" + "a" * 64,
            "Size": 0,
            "Tags": ["x:1"],
        },
        {"Comment": "", "Created": 0, "CreatedBy": "", "Id": "<missing>", "Size": 30, "Tags": None},
    ]
    assert list(image_history(rows)[0]) == ["Comment", "Created", "CreatedBy", "Id", "Size", "Tags"]


def test_human_duration_wording() -> None:
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(90) == "About a minute"
    assert human_duration(3600) == "About an hour"


def _running(started_at: str) -> Container:
    return Container(
        id=ContainerId("c" * 64),
        name="web",
        created_ns=0,
        image_ref="busybox",
        image_id=ImageId("sha256:" + "0" * 64),
        config={},
        host_config={},
        path="httpd",
        args=(),
        state=ContainerState(status=Status.RUNNING, started_at=started_at),
    )


@pytest.mark.parametrize(
    ("health", "suffix"),
    [
        (None, ""),
        (HealthState(HealthStatus.STARTING), " (health: starting)"),
        (HealthState(HealthStatus.HEALTHY), " (healthy)"),
        (HealthState(HealthStatus.UNHEALTHY), " (unhealthy)"),
    ],
    ids=["no-check", "starting", "healthy", "unhealthy"],
)
def test_status_text_shows_health_of_a_running_container(
    health: HealthState | None, suffix: str
) -> None:
    c = _running(format_time(time.time_ns() - 3 * 60 * 1_000_000_000))
    assert status_text(c, health) == "Up 3 minutes" + suffix
    assert container_summary(c, health=health)["Status"] == "Up 3 minutes" + suffix


def test_status_text_hides_health_of_a_paused_container() -> None:
    c = _running(format_time(time.time_ns()))
    paused = attrs.evolve(c, state=attrs.evolve(c.state, status=Status.PAUSED))
    assert status_text(paused, HealthState(HealthStatus.HEALTHY)).endswith("(Paused)")


def test_container_inspect_health_shape() -> None:
    c = _running(format_time(0))
    kw: dict[str, Any] = {"log_path": "", "data_dir": "", "rootfs": "", "lowers": []}
    assert "Health" not in container_inspect(c, **kw)["State"]
    state = HealthState(
        HealthStatus.UNHEALTHY,
        2,
        (ProbeResult(1_000_000_000, 1_500_000_000, 1, "down\n"),),
    )
    assert container_inspect(c, health=state, **kw)["State"]["Health"] == {
        "Status": "unhealthy",
        "FailingStreak": 2,
        "Log": [
            {
                "Start": "1970-01-01T00:00:01.000000000Z",
                "End": "1970-01-01T00:00:01.500000000Z",
                "ExitCode": 1,
                "Output": "down\n",
            }
        ],
    }
    assert json.loads(json.dumps(container_inspect(c, health=state, **kw)))["State"]["Health"]
