"""``docker save`` / ``load`` round trips between a real dockerd and berthd.

dockerd (tests/dockerd.py: Debian's docker.io on private paths, no networking) makes a
multi-layer image with deletions: ``docker import`` of the busybox rootfs, then a legacy
builder (``DOCKER_BUILDKIT=0``) ``RUN`` that deletes a file, replaces a directory (an
opaque one) and writes another, plus ``ENV``/``WORKDIR``/``CMD``. Its ``docker save``
output goes into berth (``berth load`` and the docker CLI's ``POST /images/load`` at
berthd) and must run there with the same config and the same image id. The other way,
an image berth committed is ``berth save``d, ``docker load``ed into dockerd and run by
dockerd's runc. Repository names (with a registry host) and tags survive both ways.

Where dockerd is missing the module is skipped, saying so; under ``CI=true`` it fails
(.ci/run installs docker.io).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import REPO, Daemon, env_with_host
from tests.dockerd import DockerdUnavailable, RunningDockerd, dockerd_binary, running_dockerd

pytestmark = [pytest.mark.root, pytest.mark.compat]

BERTH = str(Path(sys.executable).with_name("berth"))

DOCKERFILE = """\
FROM interop-base:{uid}
RUN rm /bin/vi && rm -rf /usr/sbin && mkdir -p /usr/sbin /data \\
 && echo kept > /usr/sbin/only && echo from-dockerd > /data/greeting
ENV GREETING=hello-interop
WORKDIR /data
CMD ["cat", "greeting"]
"""


@pytest.fixture(scope="session")
def dockerd() -> Iterator[RunningDockerd]:
    """A private dockerd for the session, started only when a test here needs it."""
    ci = os.environ.get("CI") == "true"
    if dockerd_binary() is None:
        reason = "no dockerd on PATH (apt-get install docker.io): save/load interop untested"
        if ci:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        with running_dockerd() as running:
            yield running
    except DockerdUnavailable as exc:
        if ci:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def run(
    argv: list[str], env: dict[str, str], *, stdin: bytes = b"", cwd: Path | None = None
) -> str:
    proc = subprocess.run(
        argv, env=env, input=stdin, capture_output=True, timeout=120, check=False, cwd=cwd
    )
    assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout.decode()


class Engines:
    """The docker CLI at dockerd (``d``), at berthd (``b``), and the berth CLI (``berth``)."""

    def __init__(self, dockerd: RunningDockerd, daemon: Daemon, config: Path) -> None:
        self.denv = dockerd.env(config / "docker-at-dockerd")
        self.benv = {**env_with_host(daemon), "DOCKER_CONFIG": str(config / "docker-at-berthd")}
        self.berth_env = {**env_with_host(daemon), "BERTH_CONFIG": str(config / "berth")}

    def d(self, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> str:
        return run(["docker", *args], self.denv, stdin=stdin, cwd=cwd)

    def b(self, *args: str, stdin: bytes = b"") -> str:
        return run(["docker", *args], self.benv, stdin=stdin)

    def berth(self, *args: str, stdin: bytes = b"") -> str:
        return run([BERTH, *args], self.berth_env, stdin=stdin)


@pytest.fixture(scope="module")
def engines(
    dockerd: RunningDockerd, compat_daemon: Daemon, tmp_path_factory: pytest.TempPathFactory
) -> Engines:
    return Engines(dockerd, compat_daemon, tmp_path_factory.mktemp("interop-config"))


@pytest.fixture(scope="module")
def uid() -> str:
    return uuid.uuid4().hex[:10]


def busybox_tar() -> bytes:
    sys.path.insert(0, str(REPO / "deploy"))
    from busybox_tar import write_busybox_tar

    buf = io.BytesIO()
    write_busybox_tar(buf)
    return buf.getvalue()


def inspect(run_docker: object, ref: str) -> dict[str, object]:
    assert callable(run_docker)
    doc = json.loads(run_docker("image", "inspect", ref))
    assert isinstance(doc, list)
    image = doc[0]
    assert isinstance(image, dict)
    return image


def config_of(image: dict[str, object]) -> tuple[object, ...]:
    config = image["Config"]
    assert isinstance(config, dict)
    rootfs = image["RootFS"]
    assert isinstance(rootfs, dict)
    return (config["Cmd"], config["Env"], config["WorkingDir"], rootfs["Layers"])


@pytest.fixture(scope="module")
def docker_archive(
    engines: Engines, uid: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], dict[str, object]]:
    """dockerd's ``docker save`` of a two-layer image under two names: (archive, the
    names, dockerd's inspect of it)."""
    work = tmp_path_factory.mktemp("dockerd-build")
    engines.d("import", "-", f"interop-base:{uid}", stdin=busybox_tar())
    (work / "Dockerfile").write_text(DOCKERFILE.format(uid=uid))
    names = [f"interop-{uid}/app:1", f"registry.example:5000/team-{uid}/app:v2"]
    engines.d(
        "build", "--network", "none", "-q", "-t", names[0], "-t", names[1], str(work),
    )  # fmt: skip
    archive = work / "app.tar"
    engines.d("save", "-o", str(archive), *names)
    return archive, names, inspect(engines.d, names[0])


def test_dockerd_image_has_two_layers_and_deletions(
    docker_archive: tuple[Path, list[str], dict[str, object]],
) -> None:
    _archive, _names, image = docker_archive
    _cmd, _env, _workdir, layers = config_of(image)
    assert isinstance(layers, list) and len(layers) == 2


def test_berth_load_of_docker_save_runs_with_its_config(
    engines: Engines, docker_archive: tuple[Path, list[str], dict[str, object]]
) -> None:
    archive, names, dockerd_image = docker_archive
    out = engines.berth("load", "-i", str(archive))
    assert out.splitlines() == [f"Loaded image: {name}" for name in names], out
    try:
        berth_image = inspect(engines.b, names[1])
        assert berth_image["Id"] == dockerd_image["Id"]
        assert config_of(berth_image) == config_of(dockerd_image)
        assert engines.berth("run", "--rm", names[0]) == "from-dockerd\n"
        script = (
            'test ! -e /bin/vi && ls /usr/sbin && echo "$GREETING" && pwd && cat /usr/sbin/only'
        )
        assert engines.berth("run", "--rm", names[1], "sh", "-c", script) == (
            "only\nhello-interop\n/data\nkept\n"
        )
    finally:
        engines.berth("rmi", *names)


def test_docker_cli_load_at_berthd_keeps_names_and_runs(
    engines: Engines, docker_archive: tuple[Path, list[str], dict[str, object]]
) -> None:
    archive, names, dockerd_image = docker_archive
    out = engines.b("load", "-i", str(archive))
    assert [line for line in out.splitlines() if line.startswith("Loaded image")] == [
        f"Loaded image: {name}" for name in names
    ], out
    try:
        tags = inspect(engines.b, names[0])["RepoTags"]
        assert isinstance(tags, list) and sorted(tags) == sorted(names)
        assert inspect(engines.b, names[0])["Id"] == dockerd_image["Id"]
        assert engines.b("run", "--rm", names[1]) == "from-dockerd\n"
    finally:
        engines.b("rmi", *names)


@pytest.fixture(scope="module")
def berth_archive(
    engines: Engines, compat_daemon: Daemon, uid: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[str], dict[str, object]]]:
    """``berth save`` of a commit (a deletion and a new file over busybox) under two
    names: (archive, the names, berthd's inspect of it)."""
    writer = f"interop-writer-{uid}"
    engines.berth(
        "run", "--name", writer, "busybox", "sh", "-c", "rm /bin/vi && echo from-berth > /made",
    )  # fmt: skip
    names = [f"interop-{uid}/committed:3", f"registry.example:5000/team-{uid}/committed:v4"]
    engines.berth("commit", "-c", 'CMD ["cat", "/made"]', "-c", "ENV WHO=berth", writer, names[0])
    engines.berth("tag", names[0], names[1])
    archive = tmp_path_factory.mktemp("berth-save") / "committed.tar"
    engines.berth("save", "-o", str(archive), *names)
    image = inspect(engines.b, names[0])
    yield archive, names, image
    engines.berth("rm", writer)
    engines.berth("rmi", *names)


def test_docker_load_of_berth_save_runs_in_dockerd(
    engines: Engines, berth_archive: tuple[Path, list[str], dict[str, object]]
) -> None:
    archive, names, berth_image = berth_archive
    out = engines.d("load", "-i", str(archive))
    assert [line for line in out.splitlines() if line.startswith("Loaded image")] == [
        f"Loaded image: {name}" for name in names
    ], out
    try:
        dockerd_image = inspect(engines.d, names[1])
        assert dockerd_image["Id"] == berth_image["Id"]
        tags = dockerd_image["RepoTags"]
        assert isinstance(tags, list) and sorted(tags) == sorted(names)
        assert config_of(dockerd_image) == config_of(berth_image)
        assert engines.d("run", "--rm", "--network", "none", names[0]) == "from-berth\n"
        script = 'test ! -e /bin/vi && echo "$WHO"'
        assert engines.d("run", "--rm", "--network", "none", names[1], "sh", "-c", script) == (
            "berth\n"
        )
    finally:
        engines.d("rmi", *names)
