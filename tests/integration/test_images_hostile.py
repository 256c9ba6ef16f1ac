"""Pulls that must fail cleanly: hostile layers, corrupt blobs, a registry that goes away,
bad references and unknown tags.

The images here are made by hand (tars built in memory, blobs, config and manifest sent
straight to a real registry over HTTP), never by berth, so they can be as wrong as a
hostile registry would serve them. After each failure: a clear error, no image
registered, nothing written outside the daemon's data root, no half-written layer or
blob under a final name.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import Client, Daemon, UnixHTTPConnection, env_with_host
from tests.tarhelpers import make_tar

pytestmark = pytest.mark.root

ANONYMOUS = "e30="
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


# -- images made by hand, uploaded over raw HTTP ------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    return info, b""


def hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info, b""


def layer_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """An uncompressed tar of exactly these members (names kept verbatim, even hostile)."""
    return make_tar(*members)


def _http(
    address: str, method: str, target: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(address, timeout=60)
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def upload_blob(address: str, repo: str, data: bytes) -> str:
    digest = sha256(data)
    status, headers, body = _http(address, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, body
    location = urllib.parse.urlsplit(headers["location"])
    query = location.query + ("&" if location.query else "") + f"digest={digest}"
    status, _, body = _http(
        address,
        "PUT",
        f"{location.path}?{query}",
        data,
        **{"Content-Type": "application/octet-stream"},
    )
    assert status == 201, body
    return digest


def upload_image(address: str, repo: str, tag: str, layers: list[bytes]) -> dict[str, Any]:
    """Upload ``layers`` (uncompressed tars, gzipped here), a config and a schema2 manifest.

    Returns the manifest as a dict (its ``layers`` descriptors name the blobs).
    """
    diff_ids = [sha256(tar) for tar in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/x"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "hand-made"} for _ in layers],
        }
    ).encode()
    descs = []
    for tar in layers:
        blob = gzip.compress(tar, compresslevel=1, mtime=0)
        descs.append(
            {
                "mediaType": DOCKER_LAYER,
                "digest": upload_blob(address, repo, blob),
                "size": len(blob),
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "digest": upload_blob(address, repo, config),
            "size": len(config),
        },
        "layers": descs,
    }
    raw = json.dumps(manifest).encode()
    status, _, body = _http(
        address, "PUT", f"/v2/{repo}/manifests/{tag}", raw, **{"Content-Type": DOCKER_MANIFEST}
    )
    assert status == 201, body
    return manifest


# -- berth API -------------------------------------------------------------------------------


def pull(api: Client, image: str, tag: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """``POST /images/create``: (status, messages), the error body for an error status."""
    params = {"fromImage": image, **({"tag": tag} if tag is not None else {})}
    conn = UnixHTTPConnection(api.socket_path, timeout=120)
    try:
        conn.request(
            "POST",
            "/images/create?" + urllib.parse.urlencode(params),
            headers={"X-Registry-Auth": ANONYMOUS},
        )
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status >= 400:
        return resp.status, [json.loads(body)]
    return resp.status, [json.loads(line) for line in body.splitlines() if line.strip()]


def failure(status: int, msgs: list[dict[str, Any]]) -> str:
    """The error of a failed pull: an error status, or in-band as the last message."""
    if status >= 400:
        assert status in (400, 500), (status, msgs)
        return str(msgs[0]["message"])
    assert status == 200 and "error" in msgs[-1], msgs
    assert msgs[-1]["errorDetail"]["message"] == msgs[-1]["error"]
    return str(msgs[-1]["error"])


def image_ids(api: Client) -> set[str]:
    return {i["Id"] for i in api.call("GET", "/images/json", params={"all": 1})}


def assert_not_registered(api: Client, ref: str, before: set[str]) -> None:
    status, body = api.request("GET", f"/images/{ref}/json")
    assert status == 404, body
    assert image_ids(api) == before


def image_dir(daemon: Daemon) -> Path:
    return daemon.data_root / "image"


def blob_file(daemon: Daemon, digest: str) -> Path:
    return image_dir(daemon) / "blobs" / "sha256" / digest.removeprefix("sha256:")


def partial_file(daemon: Daemon, digest: str) -> Path:
    return image_dir(daemon) / "ingest" / f"{digest.removeprefix('sha256:')}.partial"


def remove_image(api: Client, name: str) -> None:
    status, body = api.request("DELETE", f"/images/{name}", params={"force": 1})
    assert status in (200, 404), body


# -- (a) hostile layers --------------------------------------------------------------------------

DEEP = "../" * 24  # far more than the data root is deep: from any layer dir, up to /


def _hostile(uid: str) -> dict[str, tuple[list[tuple[tarfile.TarInfo, bytes]], list[Path]]]:
    """Layers by name: (members, host paths that must not exist afterwards)."""
    dotdot = f"/tmp/berth-dotdot-{uid}"
    near = f"berth-near-{uid}"  # one level up: would land inside the data root's tmp/
    absolute = f"/tmp/berth-abs-{uid}"
    via_link = f"/tmp/berth-link-{uid}"
    ok = regular("ok", b"fine\n")
    return {
        "dotdot": ([ok, regular(f"{DEEP}{dotdot[1:]}", b"x")], [Path(dotdot)]),
        "dotdot-near": ([ok, regular(f"../{near}", b"x")], []),
        "absolute": ([ok, regular(absolute, b"x")], [Path(absolute)]),
        "symlink": (
            [ok, symlink("link", "/"), regular(f"link{via_link}", b"x")],
            [Path(via_link)],
        ),
        "symlink-dir": (
            # a directory entry, then a file below it, through the link
            [symlink("link", "/tmp"), regular(f"link/berth-linkdir-{uid}/f", b"x")],
            [Path(f"/tmp/berth-linkdir-{uid}")],
        ),
        "hardlink-via-symlink": (
            [symlink("link", "/"), hardlink("stolen", "link/etc/hostname")],
            [],
        ),
        "hardlink-dotdot": ([ok, hardlink("stolen", f"{DEEP}etc/hostname")], []),
        "all": (
            [
                ok,
                regular(f"{DEEP}{dotdot[1:]}", b"x"),
                regular(absolute, b"x"),
                symlink("link", "/"),
                regular(f"link{via_link}", b"x"),
            ],
            [Path(dotdot), Path(absolute), Path(via_link)],
        ),
    }


HOSTILE_CASES = list(_hostile("x"))


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_hostile_layer_is_refused(daemon: Daemon, api: Client, registry: str, case: str) -> None:
    uid = uuid.uuid4().hex[:12]
    members, targets = _hostile(uid)[case]
    tar = layer_tar(members)
    repo = f"hostile/{case}"
    manifest = upload_image(registry, repo, uid, [tar])
    hostname_links = os.stat("/etc/hostname").st_nlink
    before = image_ids(api)

    status, msgs = pull(api, f"{registry}/{repo}", uid)

    message = failure(status, msgs)
    assert "invalid tar member" in message, message
    assert_not_registered(api, f"{registry}/{repo}:{uid}", before)
    for target in targets:
        assert not target.exists(), f"{target} was written by a hostile layer"
    assert os.stat("/etc/hostname").st_nlink == hostname_links
    # Nor anywhere in the data root (its tmp/ is one "../" away), nor a final layer.
    assert not list(daemon.data_root.rglob(f"*{uid}*")), "hostile layer content left behind"
    assert not (image_dir(daemon) / "layers" / sha256(tar)[7:]).exists()
    assert not list((image_dir(daemon) / "tmp").glob("layer-*"))
    # The blob itself was fine (its digest matched): what was refused is its content.
    assert manifest["layers"][0]["digest"]


# -- (b) corrupt blob -------------------------------------------------------------------------------


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Any]:
    from tests.registry import RegistryUnavailable, running_registry

    try:
        with running_registry(root=tmp_path / "registry") as reg:
            yield reg
    except RegistryUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"registry needed under CI: {exc}")
        pytest.skip(str(exc))


def test_corrupt_blob_is_refused(daemon: Daemon, api: Client, own_registry: Any) -> None:
    uid = uuid.uuid4().hex[:12]
    tar = layer_tar([regular(f"file-{uid}", os.urandom(256 << 10))])
    manifest = upload_image(own_registry.address, "hostile/corrupt", "v1", [tar])
    digest = manifest["layers"][0]["digest"]
    data_path = own_registry.blob_data_path(digest)
    good = data_path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF  # same size: only the digest can tell
    data_path.write_bytes(bytes(bad))
    before = image_ids(api)
    ref = f"{own_registry.address}/hostile/corrupt"

    message = failure(*pull(api, ref, "v1"))

    assert "digest mismatch" in message, message
    assert digest in message
    assert_not_registered(api, f"{ref}:v1", before)
    assert not blob_file(daemon, digest).exists()
    assert not partial_file(daemon, digest).exists()
    assert not list(daemon.data_root.rglob(f"*{uid}*"))
    # Nothing poisoned: once the registry serves the right bytes, the pull succeeds.
    data_path.write_bytes(good)
    status, msgs = pull(api, ref, "v1")
    assert status == 200 and "error" not in msgs[-1], msgs
    assert blob_file(daemon, digest).read_bytes() == good
    remove_image(api, f"{ref}:v1")


# -- (c) registry unreachable mid-pull, then resume --------------------------------------------------


class Registry:
    """docker-registry on a fixed port and storage, so it can be killed and restarted."""

    def __init__(self, base: Path) -> None:
        from tests.registry import _config, _free_port

        self.base = base
        self.storage = base / "storage"
        self.storage.mkdir(parents=True)
        self.port = _free_port()
        self.config = base / "config.yml"
        self.config.write_text(_config(self.port, self.storage, None))
        self.log_path = base / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from tests.registry import REGISTRY_BINARY, _answers

        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(REGISTRY_BINARY), "serve", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while not _answers(self.port):
            assert self.proc.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "registry did not start"
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Proxy:
    """A TCP proxy in front of the registry: throttles what it sends back (so a pull is
    slow enough to be cut midway), records what clients send, and drops every connection
    with a reset when closed."""

    def __init__(self, upstream: int, *, port: int = 0, rate: float | None = None) -> None:
        self.upstream = upstream
        self.rate = rate  # bytes per second towards the client, None: unthrottled
        self.listener = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR
        self.listener.settimeout(0.05)
        self.port = int(self.listener.getsockname()[1])
        self.sent = bytearray()  # everything clients sent
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            for args in ((client, upstream, False), (upstream, client, True)):
                thread = threading.Thread(target=self._pump, args=args, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while data := src.recv(16384):
                if not downstream:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)
                if downstream and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed.set()
        # shutdown() first: a listener closed while accept() polls it lingers until the
        # poll returns, accepting (then resetting) connections; shut down, it refuses them.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._threads[0].join(timeout=5)
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def killable_registry() -> Iterator[Registry]:
    from tests.registry import registry_available

    if not registry_available():
        if os.environ.get("CI") == "true":
            pytest.fail("docker-registry needed under CI")
        pytest.skip("docker-registry not found (apt-get install docker-registry)")
    base = Path(tempfile.mkdtemp(prefix="berth-registry-"))
    reg = Registry(base)
    reg.start()
    try:
        yield reg
    finally:
        reg.kill()
        shutil.rmtree(base, ignore_errors=True)


def test_registry_gone_mid_pull_then_resume(
    daemon: Daemon, api: Client, killable_registry: Registry
) -> None:
    reg = killable_registry
    size = 20 << 20
    tar = layer_tar([regular("big", os.urandom(size))])
    manifest = upload_image(reg.address, "hostile/big", "v1", [tar])
    digest = manifest["layers"][0]["digest"]
    blob_size = manifest["layers"][0]["size"]
    proxy = Proxy(reg.port, rate=8 << 20)
    ref = f"127.0.0.1:{proxy.port}/hostile/big"
    before = image_ids(api)

    conn = UnixHTTPConnection(api.socket_path, timeout=60)
    msgs: list[dict[str, Any]] = []
    try:
        params = urllib.parse.urlencode({"fromImage": ref, "tag": "v1"})
        conn.request("POST", f"/images/create?{params}", headers={"X-Registry-Auth": ANONYMOUS})
        resp = conn.getresponse()
        assert resp.status == 200
        while line := resp.readline():
            if line.strip():
                msgs.append(json.loads(line))
            if msgs and msgs[-1].get("status") == "Downloading":
                break
        # The registry goes away mid-download: connections reset, the process dies.
        proxy.close()
        reg.kill()
        msgs += [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        conn.close()
        proxy.close()
    assert any(m.get("status") == "Downloading" for m in msgs), msgs
    message = failure(200, msgs)
    # Go's wording, as Docker: 'Get "http://127.0.0.1:PORT/v2/...": dial tcp ...: connect:
    # connection refused' (the resume attempt found nobody listening).
    assert message.startswith(f'Get "http://127.0.0.1:{proxy.port}/v2/hostile/big/blobs/{digest}"')
    assert "connection refused" in message, message
    assert_not_registered(api, f"{ref}:v1", before)
    assert not blob_file(daemon, digest).exists()
    partial = partial_file(daemon, digest)
    assert partial.exists(), "the partial download was not kept"
    kept = partial.stat().st_size
    assert 0 < kept < blob_size

    # Same storage, same port: the pull resumes from what it kept.
    reg.start()
    proxy = Proxy(reg.port, port=proxy.port)
    try:
        status, msgs = pull(api, ref, "v1")
    finally:
        proxy.close()
    assert status == 200 and "error" not in msgs[-1], msgs
    assert msgs[-1]["status"] == f"Status: Downloaded newer image for {ref}:v1"
    ranges = [
        line for line in bytes(proxy.sent).lower().split(b"\r\n") if line.startswith(b"range:")
    ]
    assert ranges == [f"range: bytes={kept}-".encode()], ranges
    assert not partial.exists()
    assert sha256(blob_file(daemon, digest).read_bytes()) == digest
    assert api.call("GET", f"/images/{ref}:v1/json")["RootFS"]["Layers"] == [sha256(tar)]
    remove_image(api, f"{ref}:v1")


# -- (d) malformed references and unknown tags ------------------------------------------------------

MALFORMED = [
    ("UPPER/Case", None),
    ("a:b:c", None),
    ("-leading-dash", None),
    ("double//slash", None),
    ("trailing/", None),
    ("busybox@sha256:1234", None),
    ("busybox", "bad tag!"),
    ("busybox", "-dash"),
]


@pytest.mark.parametrize(("image", "tag"), MALFORMED)
def test_malformed_reference_is_400(api: Client, image: str, tag: str | None) -> None:
    status, msgs = pull(api, image, tag)
    assert status == 400, msgs
    assert "invalid reference format" in str(msgs[0]["message"])


def test_unknown_tag_and_repository_are_404(api: Client, registry: str) -> None:
    upload_image(registry, "hostile/known", "v1", [layer_tar([regular("f", b"x")])])
    status, msgs = pull(api, f"{registry}/hostile/known", "nope")
    assert status == 404, msgs
    message = str(msgs[0]["message"])
    assert message.startswith(f"manifest for {registry}/hostile/known:nope not found")
    assert "manifest unknown" in message  # the registry's own words
    status, msgs = pull(api, f"{registry}/hostile/never-pushed", "v1")
    assert status == 404, msgs
    message = str(msgs[0]["message"])
    assert f"{registry}/hostile/never-pushed:v1" in message
    assert "unknown" in message


def test_unknown_tag_message_in_docker_words(api: Client, registry: str) -> None:
    upload_image(registry, "hostile/words", "v1", [layer_tar([regular("f", b"x")])])
    status, msgs = pull(api, f"{registry}/hostile/words", "nope")
    assert status == 404, msgs
    assert msgs[0]["message"] == (
        f"manifest for {registry}/hostile/words:nope not found: manifest unknown: manifest unknown"
    )


@pytest.fixture(scope="module")
def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the docker CLI is required under CI but none is on PATH")
        pytest.skip("no docker CLI on PATH")
    return path


def docker(daemon: Daemon, cli: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli, *args],
        env=env_with_host(daemon),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("image", ["UPPER/Case", "a:b:c", "busybox@sha256:1234"])
def test_docker_cli_malformed_reference(daemon: Daemon, docker_cli: str, image: str) -> None:
    result = docker(daemon, docker_cli, "pull", image)
    assert result.returncode != 0
    assert "invalid reference format" in result.stderr, result.stderr


def test_docker_cli_unknown_tag(daemon: Daemon, docker_cli: str, registry: str) -> None:
    upload_image(registry, "hostile/cli", "v1", [layer_tar([regular("f", b"x")])])
    result = docker(daemon, docker_cli, "pull", f"{registry}/hostile/cli:nope")
    assert result.returncode != 0
    assert (
        f"Error response from daemon: manifest for {registry}/hostile/cli:nope not found"
        in result.stderr
    ), result.stderr
    assert "manifest unknown" in result.stderr
