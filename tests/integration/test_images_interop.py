"""Images crossing between berth and the OCI tool chain: skopeo and umoci.

What other tools write, berth reads, and what berth writes, they read:

* a berth push is what ``skopeo inspect`` / ``skopeo copy`` see in the registry (digest,
  layers, config bytes, diff ids);
* a two-layer image with deletions (OCI whiteouts) built with umoci and pushed by skopeo
  pulls into berth and runs with the deleted file and directories gone;
* ``GET /images/get`` output is a docker-archive skopeo inspects and converts;
* OCI image layout tarballs (skopeo's, and the combined docker-archive + OCI layout form
  Docker 25 writes) load through ``POST /images/load`` and run.

Needs root, a registry (Debian's docker-registry), skopeo and umoci; skipped with a reason
when a tool is missing, failed instead under ``CI=true``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import subprocess
import tarfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import Client, UnixHTTPConnection

pytestmark = pytest.mark.root

ANONYMOUS = "e30="  # base64("{}"): what the docker CLI sends for a registry without login
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

# What the umoci-built image must show once its second layer's deletions are applied.
LISTING_CMD = [
    "/bin/sh",
    "-c",
    "ls -A /data /redo; ls -d /olddir /data/gone /redo/old 2>&1 | sed 's/^.*: //'; cat /data/new",
]
LISTING_OUT = (
    b"/data:\nkeep\nnew\n\n/redo:\nfresh\n"
    + b"No such file or directory\n" * 3
    + b"new file in layer 2\n"
)


# -- tools ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI but is not on PATH")
        pytest.skip(f"{name} not on PATH (apt-get install {name})")
    return path


@pytest.fixture(scope="module")
def skopeo() -> str:
    return _tool("skopeo")


@pytest.fixture(scope="module")
def umoci() -> str:
    return _tool("umoci")


def run(*argv: str, timeout: float = 120) -> str:
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )
    return result.stdout


def sk(skopeo: str, *args: str) -> str:
    # --insecure-policy: never depend on (or read) the host's /etc/containers/policy.json.
    return run(skopeo, "--insecure-policy", *args)


# -- berth API -------------------------------------------------------------------------------


def stream(
    api: Client, method: str, path: str, *, params: dict[str, Any] | None = None, raw: bytes = b""
) -> tuple[int, list[dict[str, Any]]]:
    """A streaming endpoint's status and JSON messages (the error body for an error status)."""
    if params:
        path += "?" + urllib.parse.urlencode(params, doseq=True)
    conn = UnixHTTPConnection(api.socket_path, timeout=120)
    try:
        conn.request(method, path, body=raw or None, headers={"X-Registry-Auth": ANONYMOUS})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status >= 400:
        return resp.status, [json.loads(body)]
    return resp.status, [json.loads(line) for line in body.splitlines() if line.strip()]


def errors(msgs: list[dict[str, Any]]) -> list[Any]:
    return [m["error"] for m in msgs if "error" in m]


def push(api: Client, repo: str, tag: str) -> str:
    """Push ``repo:tag``; returns the manifest digest berth reports."""
    status, msgs = stream(api, "POST", f"/images/{repo}/push", params={"tag": tag})
    assert status == 200 and not errors(msgs), msgs
    return str(next(m["aux"]["Digest"] for m in msgs if "aux" in m))


def pull(api: Client, repo: str, tag: str) -> None:
    status, msgs = stream(api, "POST", "/images/create", params={"fromImage": repo, "tag": tag})
    assert status == 200 and not errors(msgs), msgs


def load(api: Client, archive: bytes) -> list[str]:
    status, msgs = stream(api, "POST", "/images/load", raw=archive)
    assert status == 200 and not errors(msgs), msgs
    return [str(m.get("stream", "")).strip() for m in msgs]


def run_output(api: Client, image: str, cmd: list[str]) -> bytes:
    cid = api.run(cmd, image=image)
    try:
        assert api.wait(cid) == 0, api.logs(cid)
        return b"".join(p for _, p in api.logs(cid))
    finally:
        api.call("DELETE", f"/containers/{cid}")


def remove_image(api: Client, name: str) -> None:
    status, body = api.request("DELETE", f"/images/{name}", params={"force": 1})
    assert status in (200, 404), body


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_manifest(address: str, repo: str, tag: str) -> tuple[bytes, str]:
    conn = http.client.HTTPConnection(address, timeout=30)
    try:
        conn.request(
            "GET",
            f"/v2/{repo}/manifests/{tag}",
            headers={
                "Accept": f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"
            },
        )
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        return body, resp.getheader("Content-Type") or ""
    finally:
        conn.close()


# -- OCI layouts -----------------------------------------------------------------------------


def oci_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def oci_image(layout: Path, ref_name: str | None = None) -> tuple[dict[str, Any], bytes]:
    """(manifest, config bytes) of the image ``ref_name`` names in an OCI layout (the only
    one when None)."""
    index = json.loads((layout / "index.json").read_text())
    entries = [
        m
        for m in index["manifests"]
        if ref_name is None
        or m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref_name
    ]
    assert len(entries) == 1, index
    manifest = json.loads(oci_blob(layout, entries[0]["digest"]))
    return manifest, oci_blob(layout, manifest["config"]["digest"])


def check_diff_ids(layout: Path, manifest: dict[str, Any], config: bytes) -> None:
    """Every layer blob is what its descriptor says and unpacks to the config's diff id."""
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(manifest["layers"])
    for desc, diff_id in zip(manifest["layers"], diff_ids, strict=True):
        blob = oci_blob(layout, desc["digest"])
        assert sha256(blob) == desc["digest"] and len(blob) == desc["size"]
        plain = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        assert sha256(plain) == diff_id


def tar_directory(top: Path) -> bytes:
    """A tar of ``top``'s contents with names relative to it (what an OCI layout tarball is)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(top.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(top)), recursive=False)
    return buf.getvalue()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def umoci_layout(umoci: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An OCI layout built with umoci whose tag ``v2`` has two layers, the second deleting a
    file, a directory tree and a directory's old content (recreated with a new file).

    Every path written is below a directory created here (the bundles' root filesystems
    start empty): nothing of the host is touched except reading /bin/busybox.
    """
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.skip("no static busybox at /bin/busybox")
    work = tmp_path_factory.mktemp("umoci")
    layout = work / "layout"
    run(umoci, "init", "--layout", str(layout))
    run(umoci, "new", "--image", f"{layout}:base")
    run(umoci, "config", "--image", f"{layout}:base", "--config.env", "PATH=/bin")
    one = work / "bundle1"
    run(umoci, "unpack", "--image", f"{layout}:base", str(one))
    root = one / "rootfs"
    for d in ("bin", "data", "olddir/sub", "redo"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "sed"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "data" / "keep").write_text("kept\n")
    (root / "data" / "gone").write_text("deleted in layer 2\n")
    (root / "olddir" / "a").write_text("a\n")
    (root / "olddir" / "sub" / "b").write_text("b\n")
    (root / "redo" / "old").write_text("old\n")
    run(umoci, "repack", "--image", f"{layout}:v1", str(one))
    two = work / "bundle2"
    run(umoci, "unpack", "--image", f"{layout}:v1", str(two))
    root = two / "rootfs"
    (root / "data" / "gone").unlink()
    shutil.rmtree(root / "olddir")
    shutil.rmtree(root / "redo")
    (root / "redo").mkdir()
    (root / "redo" / "fresh").write_text("fresh\n")
    (root / "data" / "new").write_text("new file in layer 2\n")
    run(umoci, "repack", "--image", f"{layout}:v2", str(two))
    yield layout
    shutil.rmtree(work, ignore_errors=True)


# -- (a) berth push, skopeo reads -------------------------------------------------------------


def test_berth_push_is_read_by_skopeo(
    api: Client, registry: str, skopeo: str, tmp_path: Path
) -> None:
    repo = f"{registry}/interop/pushed"
    api.call("POST", "/images/busybox/tag", params={"repo": repo, "tag": "v1"})
    digest = push(api, repo, "v1")
    image = api.call("GET", f"/images/{repo}:v1/json")

    info = json.loads(sk(skopeo, "inspect", "--tls-verify=false", f"docker://{repo}:v1"))
    assert info["Digest"] == digest
    assert info["Name"] == repo
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    raw = sk(skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{repo}:v1").encode()
    assert sha256(raw) == digest
    manifest = json.loads(raw)
    assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert len(info["Layers"]) == len(image["RootFS"]["Layers"])
    config = sk(skopeo, "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{repo}:v1")
    assert sha256(config.encode()) == manifest["config"]["digest"] == image["Id"]

    layout = tmp_path / "oci"
    sk(skopeo, "copy", "--src-tls-verify=false", f"docker://{repo}:v1", f"oci:{layout}:v1")
    oci_manifest, oci_config = oci_image(layout, "v1")
    # skopeo rewrites a Docker config as an OCI one (new id); the layers travel unchanged.
    assert [d["digest"] for d in oci_manifest["layers"]] == info["Layers"]
    check_diff_ids(layout, oci_manifest, oci_config)
    assert json.loads(oci_config)["rootfs"]["diff_ids"] == image["RootFS"]["Layers"]
    remove_image(api, f"{repo}:v1")


# -- (b) umoci builds, skopeo pushes, berth pulls and runs ------------------------------------


def test_umoci_image_with_deletions_pulls_and_runs(
    api: Client, registry: str, skopeo: str, umoci_layout: Path
) -> None:
    repo = f"{registry}/interop/umoci"
    sk(skopeo, "copy", "--dest-tls-verify=false", f"oci:{umoci_layout}:v2", f"docker://{repo}:v2")
    raw, media_type = registry_manifest(registry, "interop/umoci", "v2")
    assert media_type == OCI_MANIFEST  # skopeo kept umoci's OCI manifest
    manifest = json.loads(raw)
    assert len(manifest["layers"]) == 2

    pull(api, repo, "v2")
    try:
        image = api.call("GET", f"/images/{repo}:v2/json")
        assert image["Id"] == manifest["config"]["digest"]
        assert image["RepoDigests"] == [f"{repo}@{sha256(raw)}"]
        assert len(image["RootFS"]["Layers"]) == 2
        assert run_output(api, f"{repo}:v2", LISTING_CMD) == LISTING_OUT
        # The first layer alone still has everything the second one deletes.
        sk(
            skopeo,
            "copy",
            "--dest-tls-verify=false",
            f"oci:{umoci_layout}:v1",
            f"docker://{repo}:v1",
        )
        pull(api, repo, "v1")
        out = run_output(api, f"{repo}:v1", ["/bin/sh", "-c", "ls -A /data /olddir/sub /redo"])
        assert out == b"/data:\ngone\nkeep\n\n/olddir/sub:\nb\n\n/redo:\nold\n"
    finally:
        # v2 last: both of its layers go at once, the child's row before its parent's.
        remove_image(api, f"{repo}:v1")
        remove_image(api, f"{repo}:v2")


# -- (c) berth save, skopeo reads ----------------------------------------------------------------


def test_save_is_read_by_skopeo(api: Client, skopeo: str, tmp_path: Path) -> None:
    api.call("POST", "/images/busybox/tag", params={"repo": "interop/saved", "tag": "v1"})
    image = api.call("GET", "/images/interop/saved:v1/json")
    status, archive = api.request("GET", "/images/get", params={"names": ["interop/saved:v1"]})
    assert status == 200, archive
    path = tmp_path / "saved.tar"
    path.write_bytes(archive)

    info = json.loads(sk(skopeo, "inspect", f"docker-archive:{path}"))
    # A docker-archive holds uncompressed layers: their digests are the diff ids.
    assert info["Layers"] == image["RootFS"]["Layers"]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert (
        sha256(sk(skopeo, "inspect", "--config", "--raw", f"docker-archive:{path}").encode())
        == (image["Id"])
    )
    layout = tmp_path / "oci"
    sk(skopeo, "copy", f"docker-archive:{path}", f"oci:{layout}:saved")
    manifest, config = oci_image(layout, "saved")
    assert json.loads(config)["rootfs"]["diff_ids"] == image["RootFS"]["Layers"]
    check_diff_ids(layout, manifest, config)
    remove_image(api, "interop/saved:v1")


# -- (d) OCI layout tarballs load ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref_name", "loaded_as"),
    [("interop/ocilayout:v2", "interop/ocilayout:v2"), ("v2", None)],
    ids=["named", "bare-tag"],
)
def test_load_skopeo_oci_layout(
    api: Client,
    skopeo: str,
    umoci_layout: Path,
    tmp_path: Path,
    ref_name: str,
    loaded_as: str | None,
) -> None:
    layout = tmp_path / "oci"
    sk(skopeo, "copy", f"oci:{umoci_layout}:v2", f"oci:{layout}:{ref_name}")
    manifest, config = oci_image(layout)
    image_id = sha256(config)
    lines = load(api, tar_directory(layout))
    # A bare tag names no repository: the image loads untagged, as Docker does.
    assert lines == [f"Loaded image: {loaded_as}" if loaded_as else f"Loaded image ID: {image_id}"]
    try:
        image = api.call("GET", f"/images/{loaded_as or image_id}/json")
        assert image["Id"] == image_id
        assert image["RootFS"]["Layers"] == json.loads(config)["rootfs"]["diff_ids"]
        assert len(manifest["layers"]) == 2
        assert run_output(api, loaded_as or image_id, LISTING_CMD) == LISTING_OUT
    finally:
        remove_image(api, image_id)


def test_load_combined_docker_and_oci_archive(
    api: Client, skopeo: str, umoci_layout: Path, tmp_path: Path
) -> None:
    """Docker 25's ``docker save``: manifest.json and an OCI layout over the same blobs
    (uncompressed layers under blobs/sha256/). Built from the umoci image's layers."""
    source = tmp_path / "source"
    sk(skopeo, "copy", f"oci:{umoci_layout}:v2", f"oci:{source}:v2")
    src_manifest, config = oci_image(source)
    name = "interop/combined:v2"
    blobs: dict[str, bytes] = {sha256(config): config}
    layer_descs = []
    for desc in src_manifest["layers"]:
        plain = gzip.decompress(oci_blob(source, desc["digest"]))
        blobs[sha256(plain)] = plain
        layer_descs.append({"mediaType": OCI_LAYER, "digest": sha256(plain), "size": len(plain)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": layer_descs,
        }
    ).encode()
    blobs[sha256(manifest)] = manifest
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(manifest),
                "size": len(manifest),
                "annotations": {
                    "io.containerd.image.name": f"docker.io/{name}",
                    "org.opencontainers.image.ref.name": "v2",
                },
            }
        ],
    }
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{sha256(config)[7:]}",
            "RepoTags": [name],
            "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in layer_descs],
        }
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for digest, data in sorted(blobs.items()):
            add_member(tar, f"blobs/sha256/{digest[7:]}", data)
        add_member(tar, "index.json", json.dumps(index).encode())
        add_member(tar, "manifest.json", json.dumps(docker_manifest).encode())
        add_member(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    archive = tmp_path / "combined.tar"
    archive.write_bytes(buf.getvalue())
    # Both readings of the archive are valid, as for Docker's own.
    assert json.loads(sk(skopeo, "inspect", f"docker-archive:{archive}"))["Layers"] == [
        d["digest"] for d in layer_descs
    ]
    assert json.loads(sk(skopeo, "inspect", f"oci-archive:{archive}"))["Digest"] == sha256(manifest)

    assert load(api, archive.read_bytes()) == [f"Loaded image: {name}"]
    try:
        assert api.call("GET", f"/images/{name}/json")["Id"] == sha256(config)
        assert run_output(api, name, LISTING_CMD) == LISTING_OUT
    finally:
        remove_image(api, name)
