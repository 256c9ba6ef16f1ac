"""``docker history`` of a classic build, on a real dockerd and on berthd, side by side.

The same busybox rootfs is ``docker import``ed on both under a fresh name, the same
multi-step Dockerfile built with ``DOCKER_BUILDKIT=0``, and the history compared row by
row, through the docker CLI (``--no-trunc``) and the raw ``GET /images/{name}/history``:
each row names the image its step made (the image's ``Parent`` chain, down to the base
image) or ``<missing>`` in the same places on both, with the same Tags, CreatedBy,
Comment and per-layer Size. Image ids differ between the engines (created times), so
ids are compared as positions in each engine's own parent chain.

Where dockerd is missing the module is skipped, saying so; under ``CI=true`` it fails.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import REPO, Daemon, env_with_host
from tests.dockerd import DockerdUnavailable, running_dockerd

pytestmark = [pytest.mark.root, pytest.mark.compat]

# No COPY: its created_by names the file's hash, which differs between the engines.
DOCKERFILE = """\
FROM {base}
ENV GREETING=hi
RUN printf 12345 > /five && mkdir /d && printf abc > /d/three
WORKDIR /d
RUN rm /d/three
CMD ["sh"]
"""


class Engine:
    """The docker CLI and the raw API at one daemon."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**env, "DOCKER_BUILDKIT": "0"}
        self.sock = env["DOCKER_HOST"].removeprefix("unix://")

    def docker(self, *args: str, stdin: bytes = b"") -> str:
        proc = subprocess.run(
            ["docker", *args], env=self.env, input=stdin, capture_output=True, timeout=120
        )
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout.decode()

    def get(self, path: str) -> object:
        conn = http.client.HTTPConnection("localhost", timeout=60)
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(self.sock)
        conn.sock = raw
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == 200, (path, body[:2000])
        return json.loads(body)

    def chain(self, ref: str) -> list[str]:
        """``ref``'s id, its parent's, ... down to an image with no parent."""
        ids = [self.docker("image", "inspect", "--format", "{{.Id}}", ref).strip()]
        while parent := self.docker("image", "inspect", "--format", "{{.Parent}}", ids[-1]).strip():
            ids.append(parent)
        return ids


@pytest.fixture(scope="module")
def dockerd_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    ci = os.environ.get("CI") == "true"
    try:
        with running_dockerd() as running:
            yield Engine(running.env(tmp_path_factory.mktemp("docker-at-dockerd")))
    except DockerdUnavailable as exc:
        if ci:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def busybox_tar() -> bytes:
    sys.path.insert(0, str(REPO / "deploy"))
    from busybox_tar import write_busybox_tar

    buf = io.BytesIO()
    write_busybox_tar(buf)
    return buf.getvalue()


def normalised(rows: object, chain: list[str]) -> list[dict[str, object]]:
    """API rows with each id replaced by its place in the engine's parent chain."""
    assert isinstance(rows, list)
    out = []
    for row in rows:
        assert isinstance(row, dict)
        ident = row["Id"]
        at = f"chain[{chain.index(ident)}]" if ident in chain else ident
        out.append({**row, "Id": at, "Created": None})
    return out


def test_docker_history_of_a_classic_build_matches_dockerd(
    dockerd_engine: Engine, compat_daemon: Daemon, docker_cli: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:10]
    base = f"hb{uid}:base"
    names = [f"zz{uid}:1", f"localhost:5000/aa{uid}:1", f"mm{uid}:2"]
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    tar = busybox_tar()
    berthd = Engine({**env_with_host(compat_daemon), "DOCKER_CONFIG": str(tmp_path / "cfg")})
    seen = {}
    for label, engine in (("dockerd", dockerd_engine), ("berthd", berthd)):
        engine.docker("import", "-", base, stdin=tar)
        tags = [arg for name in names for arg in ("-t", name)]
        engine.docker("build", "-q", *tags, str(tmp_path))
        chain = engine.chain(names[0])
        api = normalised(engine.get(f"/images/{names[0]}/history"), chain)
        cli = [
            line.split("|")
            for line in engine.docker(
                "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}", names[0]
            ).splitlines()
        ]
        cli_ids = [f"chain[{chain.index(i)}]" if i in chain else i for i, *_ in cli]
        seen[label] = (api, cli_ids, [rest for _, *rest in cli])
    d_api, d_ids, d_cli = seen["dockerd"]
    b_api, b_ids, b_cli = seen["berthd"]
    assert [r["Id"] for r in d_api] == [f"chain[{i}]" for i in range(6)]  # five steps + base
    assert b_ids == d_ids == [r["Id"] for r in d_api]
    assert b_cli == d_cli
    # Every field of the build's rows; the base row's Size differs (symlink bytes).
    assert b_api[:5] == d_api[:5]
    assert {k: v for k, v in b_api[5].items() if k != "Size"} == {
        k: v for k, v in d_api[5].items() if k != "Size"
    }
