"""Volumes and mounts through the real docker CLI and docker-py against berthd."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, env_with_host

pytestmark = [pytest.mark.root, pytest.mark.compat]


def docker(d: Daemon, cli: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [cli, *args], env=env_with_host(d), capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="berth-compat-vol-") as d:
        yield Path(d)


# -- docker CLI -----------------------------------------------------------------------------


def test_cli_volume_lifecycle(compat_daemon: Daemon, docker_cli: str) -> None:
    name = unique("cli")
    assert (
        docker(
            compat_daemon, docker_cli, "volume", "create", "--label", "team=a", name
        ).stdout.strip()
        == name
    )
    listed = docker(
        compat_daemon,
        docker_cli,
        "volume",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Driver}} {{.Name}}",
    ).stdout
    assert f"local {name}" in listed.splitlines()
    mountpoint = docker(
        compat_daemon, docker_cli, "volume", "inspect", "--format", "{{.Mountpoint}}", name
    ).stdout.strip()
    assert mountpoint == str(compat_daemon.data_root / "volumes" / name / "_data")
    docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "-v",
        f"{name}:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f",
    )
    out = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "-v",
        f"{name}:/data:ro",
        "busybox",
        "cat",
        "/data/f",
    ).stdout
    assert out == "hi\n"
    cid = docker(
        compat_daemon, docker_cli, "create", "-v", f"{name}:/data", "busybox", "true"
    ).stdout.strip()
    r = docker(compat_daemon, docker_cli, "volume", "rm", name, check=False)
    assert r.returncode != 0 and f"remove {name}: volume is in use - [{cid}]" in r.stderr
    docker(compat_daemon, docker_cli, "rm", "-v", cid)
    assert docker(compat_daemon, docker_cli, "volume", "rm", name).stdout.strip() == name
    r = docker(compat_daemon, docker_cli, "volume", "inspect", name, check=False)
    assert r.returncode != 0 and "no such volume" in r.stderr


def test_cli_volume_prune_anonymous_then_all(compat_daemon: Daemon, docker_cli: str) -> None:
    named = unique("named")
    docker(compat_daemon, docker_cli, "volume", "create", named)
    cid = docker(
        compat_daemon, docker_cli, "create", "-v", "/anon", "busybox", "true"
    ).stdout.strip()
    anon = docker(
        compat_daemon, docker_cli, "inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", cid
    ).stdout.strip()
    docker(compat_daemon, docker_cli, "rm", cid)  # without -v: the anonymous volume stays
    out = docker(compat_daemon, docker_cli, "volume", "prune", "-f").stdout
    assert anon in out and named not in out and "Total reclaimed space" in out
    out = docker(
        compat_daemon,
        docker_cli,
        "volume",
        "prune",
        "-a",
        "-f",
        "--filter",
        f"label!=nothing-{named}",
    ).stdout
    assert named in out


def test_cli_run_binds_tmpfs_and_mount_errors(
    compat_daemon: Daemon, docker_cli: str, host_dir: Path
) -> None:
    (host_dir / "in").write_text("from host\n")
    r = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "-v",
        f"{host_dir}:/h:ro",
        "busybox",
        "sh",
        "-c",
        "cat /h/in; touch /h/new",
        check=False,
    )
    assert r.returncode == 1 and r.stdout == "from host\n" and "Read-only file system" in r.stderr
    out = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "--tmpfs",
        "/run:size=1m",
        "--mount",
        f"type=bind,src={host_dir},dst=/m",
        "busybox",
        "sh",
        "-c",
        "grep ' /run ' /proc/mounts; cat /m/in",
    ).stdout
    assert (
        out.startswith("tmpfs /run tmpfs") and "size=1024k" in out and out.endswith("from host\n")
    )
    r = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "--mount",
        f"type=bind,src={host_dir}/missing,dst=/m",
        "busybox",
        "true",
        check=False,
    )
    assert r.returncode != 0
    assert (
        f'invalid mount config for type "bind": bind source path does not exist: {host_dir}/missing'
        in r.stderr
    )


def test_cli_volumes_from_and_inspect_mounts(compat_daemon: Daemon, docker_cli: str) -> None:
    name = unique("from")
    src = docker(
        compat_daemon,
        docker_cli,
        "create",
        "--name",
        name,
        "-v",
        f"{name}-vol:/shared",
        "busybox",
        "true",
    ).stdout.strip()
    mounts = docker(
        compat_daemon,
        docker_cli,
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
        src,
    ).stdout.strip()
    assert mounts == f"volume {name}-vol /shared true"
    docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "--volumes-from",
        name,
        "busybox",
        "sh",
        "-c",
        "echo x > /shared/f",
    )
    r = docker(
        compat_daemon,
        docker_cli,
        "run",
        "--rm",
        "--volumes-from",
        f"{name}:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f; touch /shared/g",
        check=False,
    )
    assert r.stdout == "x\n" and "Read-only file system" in r.stderr
    docker(compat_daemon, docker_cli, "rm", name)
    docker(compat_daemon, docker_cli, "volume", "rm", f"{name}-vol")


# -- docker-py ------------------------------------------------------------------------------


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[object]:
    docker_py = pytest.importorskip("docker")
    c = docker_py.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_docker_py_volumes(client) -> None:  # type: ignore[no-untyped-def]
    import docker as docker_py

    name = unique("py")
    v = client.volumes.create(name=name, labels={"k": "v"})
    assert v.name == name and v.attrs["Labels"] == {"k": "v"} and v.attrs["Driver"] == "local"
    assert client.volumes.get(name).attrs["Mountpoint"].endswith(f"/volumes/{name}/_data")
    assert [x.name for x in client.volumes.list(filters={"label": "k=v"})] == [name]
    out = client.containers.run(
        "busybox",
        ["sh", "-c", "echo py > /d/f && cat /d/f"],
        volumes={name: {"bind": "/d", "mode": "rw"}},
        remove=True,
    )
    assert out == b"py\n"
    c = client.containers.create("busybox", ["true"], volumes=[f"{name}:/d"])
    assert c.attrs["Mounts"][0]["Name"] == name
    with pytest.raises(docker_py.errors.APIError) as err:
        v.remove()
    assert err.value.status_code == 409
    c.remove(v=True)
    v.remove()
    with pytest.raises(docker_py.errors.NotFound):
        client.volumes.get(name)
    anonymous = client.volumes.create()
    assert anonymous.name in (client.volumes.prune()["VolumesDeleted"] or [])
