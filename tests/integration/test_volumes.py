"""Volumes and mounts against a real berthd: the /volumes API, binds, named and anonymous
volumes with copy-up, tmpfs, --volumes-from, rm -v, and persistence across restarts."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import ApiError, Client, Daemon

pytestmark = pytest.mark.root


def run(api: Client, cmd: str, **config: Any) -> tuple[int, str]:
    """Run ``sh -c cmd`` to completion; (exit code, stdout+stderr)."""
    cid = api.create(cmd=["sh", "-c", cmd], **config)
    api.call("POST", f"/containers/{cid}/start")
    code = api.wait(cid)
    out = b"".join(data for _, data in api.logs(cid)).decode()
    api.call("DELETE", f"/containers/{cid}", params={"v": 1})
    return code, out


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(api: Client, method: str, path: str, body: Any = None, **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        api.call(method, path, body, **kw)
    return info.value


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="berth-vol-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def volume_image(daemon: Daemon) -> str:
    """An image with ``VOLUME /data`` whose /data holds a seed file owned by 1234."""
    api = daemon.client
    cid = api.create(
        cmd=[
            "sh",
            "-c",
            "mkdir -p /data/sub && echo seed > /data/seed && ln -s /etc/passwd /data/link && chown -R 1234:1234 /data",
        ]
    )
    api.call("POST", f"/containers/{cid}/start")
    assert api.wait(cid) == 0
    api.call(
        "POST",
        "/commit",
        params={"container": cid, "repo": "volimg", "tag": "latest", "changes": "VOLUME /data"},
    )
    api.call("DELETE", f"/containers/{cid}")
    return "volimg:latest"


# -- the /volumes API ---------------------------------------------------------------------


def test_volume_create_inspect_list_remove(api: Client, daemon: Daemon) -> None:
    name = unique("api")
    created = api.call("POST", "/volumes/create", {"Name": name, "Labels": {"tier": "db"}})
    assert created["Name"] == name and created["Driver"] == "local" and created["Scope"] == "local"
    assert created["Mountpoint"] == str(daemon.data_root / "volumes" / name / "_data")
    assert created["Labels"] == {"tier": "db"} and created["Options"] is None
    assert Path(created["Mountpoint"]).is_dir()
    assert created["CreatedAt"].endswith("Z")
    assert api.call("GET", f"/volumes/{name}") == created
    again = api.call("POST", "/volumes/create", {"Name": name, "Labels": {"other": "x"}})
    assert again == created  # an existing volume is returned as it is
    listed = api.call("GET", "/volumes", params={"filters": '{"label":["tier=db"]}'})
    assert [v["Name"] for v in listed["Volumes"]] == [name] and listed["Warnings"] == []
    assert name not in [
        v["Name"]
        for v in api.call("GET", "/volumes", params={"filters": '{"dangling":["false"]}'})[
            "Volumes"
        ]
    ]
    api.call("DELETE", f"/volumes/{name}")
    assert not Path(created["Mountpoint"]).exists()
    e = error(api, "GET", f"/volumes/{name}")
    assert (e.status, e.message) == (404, f"get {name}: no such volume")
    assert error(api, "DELETE", f"/volumes/{name}").status == 404
    api.call("DELETE", f"/volumes/{name}", params={"force": 1})  # force: a missing one is fine


def test_volume_create_without_name_is_anonymous(api: Client) -> None:
    v = api.call("POST", "/volumes/create", {})
    assert len(v["Name"]) == 64 and v["Labels"] == {"com.docker.volume.anonymous": ""}
    api.call("DELETE", f"/volumes/{v['Name']}")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"Name": "a"},
            400,
            "create a: volume name is too short, names should be at least two alphanumeric characters",
        ),
        (
            {"Name": "x/y"},
            400,
            'create x/y: "x/y" includes invalid characters for a local volume name',
        ),
        (
            {"Name": "vv", "Driver": "nfs"},
            404,
            'create vv: error looking up volume plugin nfs: plugin "nfs" not found',
        ),
        ({"Name": "vv", "DriverOpts": {"bogus": "1"}}, 400, 'create vv: invalid option: "bogus"'),
    ],
    ids=["short-name", "bad-chars", "unknown-driver", "bad-option"],
)
def test_volume_create_bad_input(
    api: Client, body: dict[str, Any], status: int, message: str
) -> None:
    e = error(api, "POST", "/volumes/create", body)
    assert e.status == status and e.message.startswith(message)


def test_volume_list_bad_filter_is_400(api: Client) -> None:
    assert (
        error(api, "GET", "/volumes", params={"filters": '{"colour":["x"]}'}).message
        == "invalid filter 'colour'"
    )
    assert error(api, "GET", "/volumes", params={"filters": '{"dangling":["maybe"]}'}).status == 400


def test_volume_in_use_by_any_container_is_409_until_it_is_removed(api: Client) -> None:
    name = unique("used")
    cid = api.create(cmd=["true"], HostConfig={"Binds": [f"{name}:/data"]})  # never started
    e = error(api, "DELETE", f"/volumes/{name}", params={"force": 1})
    assert (e.status, e.message) == (409, f"remove {name}: volume is in use - [{cid}]")
    prune = api.call("POST", "/volumes/prune", params={"filters": '{"all":["true"]}'})
    assert name not in (prune["VolumesDeleted"] or [])
    api.call("DELETE", f"/containers/{cid}", params={"v": 1})  # named: kept by rm -v
    api.call("GET", f"/volumes/{name}")
    api.call("DELETE", f"/volumes/{name}")


def test_volume_prune_anonymous_only_unless_all(api: Client) -> None:
    named = unique("keep")
    api.call("POST", "/volumes/create", {"Name": named})
    anonymous = api.call("POST", "/volumes/create", {})["Name"]
    result = api.call("POST", "/volumes/prune")
    assert anonymous in result["VolumesDeleted"] and named not in result["VolumesDeleted"]
    result = api.call(
        "POST", "/volumes/prune", params={"filters": '{"all":["1"], "label!":["keep"]}'}
    )
    assert named in result["VolumesDeleted"]
    assert (
        error(api, "POST", "/volumes/prune", params={"filters": '{"until":["1h"]}'}).status == 400
    )


# -- binds, volumes and tmpfs in containers --------------------------------------------------


def test_named_volume_persists_across_containers(api: Client, daemon: Daemon) -> None:
    name = unique("data")
    assert run(api, "echo hello > /data/f", HostConfig={"Binds": [f"{name}:/data"]}) == (0, "")
    assert run(api, "cat /data/f", HostConfig={"Binds": [f"{name}:/data:ro"]}) == (0, "hello\n")
    assert (daemon.data_root / "volumes" / name / "_data" / "f").read_text() == "hello\n"
    events = api.events(
        since="0",
        until=f"{time.time():.9f}",
        filters=json.dumps({"type": ["volume"], "volume": [name]}),
    )
    actions = [e["Action"] for e in events]
    assert actions[0] == "create" and actions.count("mount") == 2 and actions.count("unmount") == 2
    mount_event = next(e for e in events if e["Action"] == "mount")
    assert mount_event["Actor"]["Attributes"]["destination"] == "/data"
    api.call("DELETE", f"/volumes/{name}")


def test_read_only_bind_is_read_only_and_inspect_shows_mounts(api: Client, host_dir: Path) -> None:
    (host_dir / "file").write_text("host\n")
    cid = api.create(
        cmd=["sh", "-c", "cat /h/file; echo x > /h/new; echo rc=$?"],
        HostConfig={"Binds": [f"{host_dir}:/h:ro"], "Tmpfs": {"/scratch": "size=1m"}},
    )
    api.call("POST", f"/containers/{cid}/start")
    api.wait(cid)
    out = b"".join(d for _, d in api.logs(cid)).decode()
    assert "host\n" in out and "rc=1" in out and "Read-only file system" in out, out
    assert not (host_dir / "new").exists()
    info = api.inspect(cid)
    assert info["Mounts"] == [
        {
            "Type": "bind",
            "Source": str(host_dir),
            "Destination": "/h",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        }
    ]
    assert info["HostConfig"]["Binds"] == [f"{host_dir}:/h:ro"]  # as given
    listed = [c for c in api.call("GET", "/containers/json", params={"all": 1}) if c["Id"] == cid]
    assert listed[0]["Mounts"] == info["Mounts"]
    api.call("DELETE", f"/containers/{cid}")


def test_bind_source_created_for_binds_but_400_for_mounts(api: Client, host_dir: Path) -> None:
    missing = host_dir / "made" / "here"
    assert run(api, "touch /m/x", HostConfig={"Binds": [f"{missing}:/m"]}) == (0, "")
    assert (missing / "x").exists()
    e = error(
        api,
        "POST",
        "/containers/create",
        {
            "Image": "busybox",
            "Cmd": ["true"],
            "HostConfig": {
                "Mounts": [{"Type": "bind", "Source": str(host_dir / "nope"), "Target": "/m"}]
            },
        },
    )
    assert (e.status, e.message) == (
        400,
        f'invalid mount config for type "bind": bind source path does not exist: {host_dir / "nope"}',
    )


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        (
            {"Binds": ["/tmp:relative"]},
            "invalid mount path: 'relative' mount path must be absolute",
        ),
        ({"Binds": ["/tmp:/x", "/var:/x"]}, "Duplicate mount point: /x"),
        ({"Binds": ["/tmp:/x:bogus"]}, "invalid mode: bogus"),
        ({"Binds": ["/tmp:/"]}, "destination can't be '/'"),
        (
            {"Mounts": [{"Type": "bind", "Source": "rel", "Target": "/x"}]},
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        ({"VolumesFrom": ["no-such-container-here"]}, "No such container: no-such-container-here"),
    ],
    ids=[
        "relative-destination",
        "duplicate",
        "bad-mode",
        "root",
        "mount-relative-source",
        "volumes-from-unknown",
    ],
)
def test_bad_mounts_are_400_and_store_nothing(
    api: Client, host_config: dict[str, Any], message: str
) -> None:
    before = len(api.call("GET", "/containers/json", params={"all": 1}))
    e = error(
        api,
        "POST",
        "/containers/create",
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config},
    )
    assert e.status == 400 and message in e.message
    assert len(api.call("GET", "/containers/json", params={"all": 1})) == before


def test_tmpfs_mounts_from_map_and_mounts(api: Client) -> None:
    code, out = run(
        api,
        "grep -E ' /(run|t2) ' /proc/mounts",
        HostConfig={
            "Tmpfs": {"/run": "size=1m,exec"},
            "Mounts": [
                {
                    "Type": "tmpfs",
                    "Target": "/t2",
                    "TmpfsOptions": {"SizeBytes": 2 << 20, "Mode": 0o700},
                }
            ],
        },
    )
    assert code == 0, out
    run_line = next(line for line in out.splitlines() if " /run " in line)
    t2_line = next(line for line in out.splitlines() if " /t2 " in line)
    assert run_line.startswith("tmpfs") and "size=1024k" in run_line and "noexec" not in run_line
    assert "size=2048k" in t2_line and "mode=700" in t2_line and "noexec" in t2_line


def test_image_volume_copy_up_and_rm_v(api: Client, daemon: Daemon, volume_image: str) -> None:
    cid = api.create(
        volume_image, cmd=["sh", "-c", "ls -ln /data; cat /data/seed; readlink /data/link"]
    )
    info = api.inspect(cid)
    (mount,) = info["Mounts"]
    name = mount["Name"]
    assert mount["Type"] == "volume" and mount["Destination"] == "/data" and len(name) == 64
    assert api.call("GET", f"/volumes/{name}")["Labels"] == {"com.docker.volume.anonymous": ""}
    api.call("POST", f"/containers/{cid}/start")
    assert api.wait(cid) == 0
    out = b"".join(d for _, d in api.logs(cid)).decode()
    assert "seed\n" in out and "/etc/passwd\n" in out and "1234" in out
    data = daemon.data_root / "volumes" / name / "_data"
    assert data.stat().st_uid == 1234  # the directory's owner comes along too
    assert os.readlink(data / "link") == "/etc/passwd"  # a link stays a link
    # A named volume that is empty is filled too; nocopy leaves it empty.
    named, empty = unique("filled"), unique("nocopy")
    assert run(
        api, "cat /data/seed", Image=volume_image, HostConfig={"Binds": [f"{named}:/data"]}
    ) == (0, "seed\n")
    code, out = run(
        api, "ls /data | wc -l", Image=volume_image, HostConfig={"Binds": [f"{empty}:/data:nocopy"]}
    )
    assert (code, out.strip()) == (0, "0")
    api.call("DELETE", f"/containers/{cid}", params={"v": 1})
    assert error(api, "GET", f"/volumes/{name}").status == 404  # anonymous: removed with -v
    for v in (named, empty):
        api.call("DELETE", f"/volumes/{v}")  # named: kept


def test_copy_up_happens_once_not_at_every_start(api: Client, volume_image: str) -> None:
    cid = api.create(volume_image, cmd=["sh", "-c", "cat /data/seed 2>&1; rm -f /data/seed"])
    for expected in ("seed\n", "No such file"):
        api.call("POST", f"/containers/{cid}/start")
        assert api.wait(cid) in (0, 1)
        assert expected in b"".join(d for _, d in api.logs(cid, tail="1")).decode()
    api.call("DELETE", f"/containers/{cid}", params={"v": 1})


def test_volumes_from_shares_volumes_and_respects_ro(api: Client, host_dir: Path) -> None:
    name = unique("shared")
    source = api.create(cmd=["true"], HostConfig={"Binds": [f"{name}:/shared", f"{host_dir}:/h"]})
    assert run(
        api, "echo v > /shared/f && echo h > /h/f", HostConfig={"VolumesFrom": [source]}
    ) == (0, "")
    code, out = run(
        api, "cat /shared/f /h/f; touch /shared/g", HostConfig={"VolumesFrom": [f"{source}:ro"]}
    )
    # stdout and stderr come through separate pipes: their order in the log is not fixed.
    lines = out.splitlines()
    assert code == 1 and lines.count("v") == 1 and lines.count("h") == 1
    assert "Read-only file system" in out
    api.call("DELETE", f"/containers/{source}", params={"v": 1})
    api.call("DELETE", f"/volumes/{name}")


def test_autoremove_removes_anonymous_volumes(api: Client) -> None:
    cid = api.create(cmd=["true"], HostConfig={"AutoRemove": True, "Binds": ["/anon"]})
    (mount,) = api.inspect(cid)["Mounts"]
    api.call("POST", f"/containers/{cid}/start")
    api.wait(cid, condition="removed")
    assert error(api, "GET", f"/volumes/{mount['Name']}").status == 404


# -- daemon restarts -------------------------------------------------------------------------


def test_volumes_and_mounts_survive_a_daemon_restart(fresh_daemon: Daemon) -> None:
    api = fresh_daemon.client
    cid = api.create(
        cmd=["sh", "-c", "cat /data/f 2>/dev/null || echo kept > /data/f"],
        HostConfig={"Binds": ["keepme:/data"]},
    )
    api.call("POST", f"/containers/{cid}/start")
    assert api.wait(cid) == 0
    fresh_daemon.stop()
    fresh_daemon.start()
    assert api.call("GET", "/volumes/keepme")["Name"] == "keepme"
    assert error(api, "DELETE", "/volumes/keepme").status == 409  # still in use after restart
    assert api.inspect(cid)["Mounts"][0]["Name"] == "keepme"
    api.call("POST", f"/containers/{cid}/start")
    assert api.wait(cid) == 0
    assert b"kept\n" in b"".join(d for _, d in api.logs(cid))
    api.call("DELETE", f"/containers/{cid}")
    api.call("DELETE", "/volumes/keepme")
    assert not (fresh_daemon.data_root / "volumes" / "keepme").exists()
