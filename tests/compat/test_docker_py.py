"""docker-py (PyPI ``docker``) against berthd."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator

import pytest

from tests.daemon import REPO, Daemon

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.compat]


@pytest.fixture
def client(compat_daemon: Daemon) -> Iterator[object]:
    c = docker.DockerClient(base_url=compat_daemon.host, version="auto")
    yield c
    c.close()


def test_ping_version_info(client) -> None:  # type: ignore[no-untyped-def]
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.43"
    info = client.info()
    assert info["OSType"] == "linux" and info["Images"] >= 1


def test_run_returns_output(client) -> None:  # type: ignore[no-untyped-def]
    out = client.containers.run("busybox", ["sh", "-c", "echo hi"], remove=True)
    assert out == b"hi\n"


def test_run_failure_raises_container_error(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"])
    assert err.value.exit_status == 3
    err.value.container.remove()


def test_detached_lifecycle(client) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.run(
        "busybox",
        ["sh", "-c", "echo started; sleep 300"],
        detach=True,
        name="py-web",
        labels={"x": "y"},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    )
    deadline = time.monotonic() + 10
    while b"started" not in c.logs():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    c.reload()
    assert c.status == "running" and c.name == "py-web" and c.labels == {"x": "y"}
    assert [x.id for x in client.containers.list(filters={"label": "x=y"})] == [c.id]
    c.stop(timeout=1)
    c.reload()
    assert c.status == "exited"
    assert c.wait()["StatusCode"] == 137
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("py-web")


def test_images_import_tag_remove(client) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "deploy"))
    from busybox_tar import write_busybox_tar

    buf = io.BytesIO()
    write_busybox_tar(buf)
    client.api.import_image_from_data(buf.getvalue(), repository="py-import", tag="v1")
    image = client.images.get("py-import:v1")
    assert "py-import:v1" in image.tags
    image.tag("py-import", "v2")
    assert sorted(client.images.get("py-import:v2").tags) == ["py-import:v1", "py-import:v2"]
    client.images.remove("py-import:v1")
    client.images.remove("py-import:v2")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("py-import:v2")


def test_events_decode(client) -> None:  # type: ignore[no-untyped-def]
    since = int(time.time()) - 1
    client.containers.run("busybox", "true", remove=True, name="py-ev")
    events = list(
        client.events(
            since=since, until=int(time.time()) + 1, decode=True, filters={"container": "py-ev"}
        )
    )
    actions = [e["Action"] for e in events]
    assert "create" in actions and "start" in actions and "die" in actions and "destroy" in actions


def test_not_found_errors(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("nope")
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("nope:latest", "true")


def test_absent_features_answer_as_docker(client, compat_daemon: Daemon) -> None:  # type: ignore[no-untyped-def]
    """Swarm, plugins: what tools ask on any engine gets Docker's answers."""
    with pytest.raises(docker.errors.APIError) as leave:
        client.swarm.leave()
    assert leave.value.response.status_code == 503
    assert "not part of a swarm" in str(leave.value)
    with pytest.raises(docker.errors.APIError) as nodes:
        client.nodes.list()
    assert nodes.value.response.status_code == 503
    assert client.plugins.list() == []
    with pytest.raises(docker.errors.NotFound):
        client.plugins.get("vieux/sshfs")
    status, _ = compat_daemon.client.request("GET", "/services")
    assert status == 503
