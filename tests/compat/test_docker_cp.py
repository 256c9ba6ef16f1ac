"""``docker cp`` through the real docker CLI, and docker-py's ``put_archive`` /
``get_archive``, against berthd."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, env_with_host

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.compat]


def run_docker(
    d: Daemon, cli: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [cli, *args],
        env=env_with_host(d),
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[object]:
    c = docker.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


@pytest.fixture
def ctr(compat_daemon: Daemon, docker_cli: str) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(*, start: bool = True) -> str:
        name = f"cp-{uuid.uuid4().hex[:10]}"
        verb = ["run", "-d"] if start else ["create"]
        proc = run_docker(
            compat_daemon, docker_cli, *verb, "--name", name, "busybox", "sleep", "600"
        )
        assert proc.returncode == 0, proc.stderr
        made.append(name)
        return name

    yield make
    for n in made:
        run_docker(compat_daemon, docker_cli, "rm", "-f", n)


@pytest.mark.parametrize("start", [True, False], ids=["running", "stopped"])
def test_docker_cli_cp_both_ways(
    compat_daemon: Daemon, docker_cli: str, ctr: Callable[..., str], tmp_path: Path, start: bool
) -> None:
    c = ctr(start=start)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_bytes(b"file\n")
    (src / "sub" / "g").write_bytes(b"g\n")
    os.symlink("f", src / "link")

    def cp(*args: str) -> None:
        proc = run_docker(compat_daemon, docker_cli, "cp", *args)
        assert proc.returncode == 0, (args, proc.stderr)

    cp(str(src), f"{c}:/tmp/")  # a directory into a directory
    cp(str(src / "f"), f"{c}:/tmp/renamed")  # a file to a new name
    cp(f"{src}/.", f"{c}:/tmp/contents")  # a directory's content
    out = tmp_path / "out"
    out.mkdir()
    cp(f"{c}:/tmp/src", str(out / "back"))
    cp(f"{c}:/tmp/renamed", str(out))
    cp(f"{c}:/tmp/contents/.", str(out / "contents"))
    assert (out / "back" / "sub" / "g").read_bytes() == b"g\n"
    assert os.readlink(out / "back" / "link") == "f"
    assert (out / "renamed").read_bytes() == b"file\n"
    assert sorted(os.listdir(out / "contents")) == ["f", "link", "sub"]


def test_docker_cli_cp_tar_streams_and_follow_link(
    compat_daemon: Daemon, docker_cli: str, ctr: Callable[..., str], tmp_path: Path
) -> None:
    c = ctr()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("streamed")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("ln")
        link.type, link.linkname = tarfile.SYMTYPE, "streamed"
        tar.addfile(link)
    proc = run_docker(compat_daemon, docker_cli, "cp", "-", f"{c}:/tmp", stdin=buf.getvalue())
    assert proc.returncode == 0, proc.stderr
    proc = run_docker(compat_daemon, docker_cli, "cp", f"{c}:/tmp/streamed", "-")
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        assert tar.getnames() == ["streamed"]
    proc = run_docker(compat_daemon, docker_cli, "cp", "-L", f"{c}:/tmp/ln", str(tmp_path / "f"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "f").read_bytes() == b"abc"  # the target, not the link


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{c}:/nonexist", "{tmp}"], "Error response from daemon: Could not find the file"),
        (["{tmp}/f", "{c}:/nonexist/x"], "Could not find the file /nonexist in container"),
        (["{tmp}/f", "{c}:/nonexist/"], "no such directory"),
        (["{tmp}", "{c}:/bin/busybox"], "cannot copy directory"),
    ],
    ids=["get-missing", "put-missing", "no-dir", "dir-onto-file"],
)
def test_docker_cli_cp_errors(
    compat_daemon: Daemon,
    docker_cli: str,
    ctr: Callable[..., str],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    c = ctr(start=False)
    proc = run_docker(compat_daemon, docker_cli, "cp", *(a.format(c=c, tmp=tmp_path) for a in args))
    assert proc.returncode != 0
    assert message in proc.stderr.decode()


def test_docker_py_put_and_get_archive(client, ctr: Callable[..., str]) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.get(ctr())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        info.mode = 0o640
        tar.addfile(info, io.BytesIO(b"hello\n"))
    assert c.put_archive("/tmp", buf.getvalue()) is True
    stream, stat = c.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt"
    assert stat["size"] == 6
    assert stat["mode"] == 0o640
    assert stat["linkTarget"] == ""
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile("hello.txt")
        assert f is not None
        assert f.read() == b"hello\n"
    _, dir_stat = c.get_archive("/tmp")
    assert dir_stat["mode"] & (1 << 31)
    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/nonexist")
    with pytest.raises(docker.errors.NotFound):
        c.put_archive("/nonexist", buf.getvalue())
