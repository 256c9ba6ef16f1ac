"""Volume commands against a fake Engine API: requests and output.

The request bodies and output were compared with the docker 28.2.2 CLI's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.cli.fakeengine import FakeEngine, serve
from tests.unit.cli.test_image_commands import stdin_from

VOLUME = {
    "Name": "data",
    "Driver": "local",
    "Mountpoint": "/var/lib/berth/volumes/data/_data",
    "CreatedAt": "2024-05-01T10:00:00Z",
    "Labels": {"team": "infra", "app": "web"},
    "Scope": "local",
    "Options": None,
}
ANON = "3f" * 32


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    yield from serve()


def run(engine: FakeEngine, *argv: str) -> int:
    return main(["-H", engine.host, *argv])


# --- create -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "body"),
    [
        ([], {"Driver": "local"}),
        (["--name", "v2"], {"Driver": "local", "Name": "v2"}),
        (
            ["--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", "-d", "local", "v1"],
            {
                "Driver": "local",
                "DriverOpts": {"type": "tmpfs", "device": "tmpfs"},
                "Labels": {"a": "b"},
                "Name": "v1",
            },
        ),
    ],
    ids=["anonymous", "name-flag", "everything"],
)
def test_volume_create_bodies(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str], argv: list[str], body: object
) -> None:
    engine.on("POST", "/volumes/create", status=201, json={**VOLUME, "Name": "made"})
    assert run(engine, "volume", "create", *argv) == 0
    assert capfd.readouterr().out == "made\n"
    request = engine.only()
    assert (request.method, request.path, request.json()) == ("POST", "/volumes/create", body)


def test_volume_create_name_twice(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    assert run(engine, "volume", "create", "--name", "a", "b") == 1
    assert capfd.readouterr().err == (
        "conflicting options: cannot specify a volume-name through both --name and as a "
        "positional arg\n"
    )
    assert engine.requests == []


def test_volume_create_bad_label(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    assert run(engine, "volume", "create", "--label", "=x") == 2
    assert capfd.readouterr().err == (
        'berth: invalid argument "=x" for "--label" flag: invalid label \'=x\': empty name. '
        "See 'berth volume create --help'.\n"
    )


# --- ls / inspect -------------------------------------------------------------------------


def test_volume_ls_table_in_natural_order(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on(
        "GET",
        "/volumes",
        json={
            "Volumes": [
                {**VOLUME, "Name": "vol10"},
                {**VOLUME, "Name": "vol9"},
                {**VOLUME, "Name": ANON},
            ],
            "Warnings": None,
        },
    )
    assert run(engine, "volume", "ls") == 0
    assert capfd.readouterr().out == (
        f"DRIVER    VOLUME NAME\nlocal     {ANON}\nlocal     vol9\nlocal     vol10\n"
    )
    assert engine.only().query == {}


def test_volume_ls_quiet_filter_and_format(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.on("GET", "/volumes", json={"Volumes": [VOLUME], "Warnings": []})
    assert run(engine, "volume", "list", "-q", "-f", "dangling=true") == 0
    assert capfd.readouterr().out == "data\n"
    assert json.loads(engine.only().query["filters"][0]) == {"dangling": ["true"]}
    fmt = '{{.Name}}: {{.Mountpoint}} {{.Labels}} {{.Label "app"}} {{.Size}} {{.Links}}'
    assert run(engine, "volume", "ls", "--format", fmt) == 0
    assert capfd.readouterr().out == (
        "data: /var/lib/berth/volumes/data/_data app=web,team=infra web N/A N/A\n"
    )
    assert run(engine, "volume", "ls", "--format", "json") == 0
    assert json.loads(capfd.readouterr().out) == {
        "Availability": "N/A",
        "Driver": "local",
        "Group": "N/A",
        "Labels": "app=web,team=infra",
        "Links": "N/A",
        "Mountpoint": "/var/lib/berth/volumes/data/_data",
        "Name": "data",
        "Scope": "local",
        "Size": "N/A",
        "Status": "N/A",
    }


def test_volume_ls_empty(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/volumes", json={"Volumes": None, "Warnings": None})
    assert run(engine, "volume", "ls") == 0
    assert capfd.readouterr().out == "DRIVER    VOLUME NAME\n"


def test_volume_inspect(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("GET", "/volumes/data", json=VOLUME)
    engine.on("GET", "/volumes/nope", status=404, json={"message": "get nope: no such volume"})
    assert run(engine, "volume", "inspect", "-f", "{{.Mountpoint}}", "data", "nope") == 1
    assert capfd.readouterr() == (
        "/var/lib/berth/volumes/data/_data\n",
        "Error response from daemon: get nope: no such volume\n",
    )
    assert run(engine, "volume", "inspect", "data") == 0
    assert json.loads(capfd.readouterr().out) == [VOLUME]


# --- rm / prune ---------------------------------------------------------------------------


def test_volume_rm_names_then_errors(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("DELETE", "/volumes/a", status=204)
    engine.on("DELETE", "/volumes/b", status=204)
    engine.on(
        "DELETE",
        "/volumes/used",
        status=409,
        json={"message": "remove used: volume is in use - [4f2a9c0e1b7d]"},
    )
    assert run(engine, "volume", "rm", "a", "used", "b") == 1
    assert capfd.readouterr() == (
        "a\nb\n",
        "Error response from daemon: remove used: volume is in use - [4f2a9c0e1b7d]\n",
    )
    assert all(r.query == {} for r in engine.requests)
    assert run(engine, "volume", "remove", "-f", "a") == 0
    assert engine.requests[-1].query == {"force": ["1"]}


def test_volume_prune_forced(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on(
        "POST", "/volumes/prune", json={"VolumesDeleted": [ANON, "old"], "SpaceReclaimed": 4096}
    )
    assert run(engine, "volume", "prune", "-f") == 0
    assert capfd.readouterr().out == (
        f"Deleted Volumes:\n{ANON}\nold\n\nTotal reclaimed space: 4.096kB\n"
    )
    assert engine.only().query == {}
    assert run(engine, "volume", "prune", "-f", "-a", "--filter", "label=x") == 0
    assert json.loads(engine.requests[1].query["filters"][0]) == {"label": ["x"], "all": ["true"]}


def test_volume_prune_nothing(engine: FakeEngine, capfd: pytest.CaptureFixture[str]) -> None:
    engine.on("POST", "/volumes/prune", json={"VolumesDeleted": None, "SpaceReclaimed": 0})
    assert run(engine, "volume", "prune", "--force") == 0
    assert capfd.readouterr().out == "Total reclaimed space: 0B\n"


def test_volume_prune_all_conflicts_with_all_filter(
    engine: FakeEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run(engine, "volume", "prune", "-af", "--filter", "all=1") == 1
    assert capfd.readouterr().err == (
        "conflicting options: cannot specify both --all and --filter all=1\n"
    )
    assert engine.requests == []


@pytest.mark.parametrize(
    ("flags", "warning"),
    [
        (
            [],
            "WARNING! This will remove anonymous local volumes not used by at least one container.",
        ),
        (["-a"], "WARNING! This will remove all local volumes not used by at least one container."),
    ],
)
def test_volume_prune_asks_first(
    engine: FakeEngine,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    flags: list[str],
    warning: str,
) -> None:
    with stdin_from(tmp_path, b"N\n"):
        assert run(engine, "volume", "prune", *flags) == 0
    assert capfd.readouterr() == (
        warning + "\nAre you sure you want to continue? [y/N] ",
        "",
    )
    assert engine.requests == []
