"""Images against a real registry (Debian's docker-registry on 127.0.0.1): push, pull,
commit, save/load, prune, search, export — through berthd's API."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from tests.daemon import Client

pytestmark = pytest.mark.root


def _auth_header(user: str = "", password: str = "", server: str = "") -> str:
    raw = json.dumps({"username": user, "password": password, "serveraddress": server}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def stream(
    api: Client,
    method: str,
    path: str,
    *,
    params: dict[str, object] | None = None,
    auth: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, list[dict[str, object]]]:
    import http.client
    import urllib.parse

    from tests.daemon import UnixHTTPConnection

    if params:
        path += "?" + urllib.parse.urlencode(params, doseq=True)
    conn = UnixHTTPConnection(api.socket_path, timeout=120)
    headers = {"X-Registry-Auth": auth or _auth_header()}
    conn.request(method, path, body=raw, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    del http
    if resp.status >= 400:
        return resp.status, [json.loads(body)]
    return resp.status, [json.loads(line) for line in body.splitlines() if line.strip()]


def push(api: Client, name: str, tag: str = "", auth: str | None = None) -> list[dict[str, object]]:
    status, msgs = stream(
        api, "POST", f"/images/{name}/push", params={"tag": tag} if tag else None, auth=auth
    )
    assert status == 200, msgs
    return msgs


def pull(
    api: Client, image: str, tag: str = "", auth: str | None = None
) -> tuple[int, list[dict[str, object]]]:
    return stream(
        api,
        "POST",
        "/images/create",
        params={"fromImage": image, "tag": tag} if tag else {"fromImage": image},
        auth=auth,
    )


def errors(msgs: list[dict[str, object]]) -> list[object]:
    return [m["error"] for m in msgs if "error" in m]


def run_output(api: Client, image: str, cmd: list[str]) -> bytes:
    cid = api.run(cmd, image=image)
    api.wait(cid)
    out = b"".join(p for _, p in api.logs(cid))
    api.call("DELETE", f"/containers/{cid}")
    return out


def test_push_pull_round_trip(api: Client, registry: str) -> None:
    target = f"{registry}/it/busybox"
    api.call("POST", "/images/busybox/tag", params={"repo": target, "tag": "v1"})
    msgs = push(api, target, "v1")
    assert not errors(msgs), msgs
    statuses = [m.get("status") for m in msgs]
    assert statuses[0] == f"The push refers to repository [{target}]"
    assert any(str(s).startswith("v1: digest: sha256:") for s in statuses)
    assert any(
        s in ("Pushed", "Layer already exists") or str(s).startswith("Mounted from")
        for s in statuses
    )
    api.call("DELETE", f"/images/{target}:v1")
    status, msgs = pull(api, target, "v1")
    assert status == 200 and not errors(msgs), msgs
    statuses = [str(m.get("status")) for m in msgs]
    assert statuses[-1] in (
        f"Status: Downloaded newer image for {target}:v1",
        f"Status: Image is up to date for {target}:v1",
    )
    assert any(s.startswith("Digest: sha256:") for s in statuses)
    image = api.call("GET", f"/images/{target}:v1/json")
    assert any(d.startswith(f"{target}@sha256:") for d in image["RepoDigests"])
    assert run_output(api, f"{target}:v1", ["echo", "pulled"]) == b"pulled\n"
    # Pushing again: every layer is already there.
    again = push(api, target, "v1")
    assert "Layer already exists" in [m.get("status") for m in again]


def test_pull_unknown_tag_is_404(api: Client, registry: str) -> None:
    status, msgs = pull(api, f"{registry}/it/nothing", "nope")
    assert status == 404, msgs
    assert "not found" in str(msgs[0]["message"])


def test_pull_by_digest(api: Client, registry: str) -> None:
    target = f"{registry}/it/bydigest"
    api.call("POST", "/images/busybox/tag", params={"repo": target, "tag": "d"})
    msgs = push(api, target, "d")
    digest = next(m["aux"]["Digest"] for m in msgs if "aux" in m)  # type: ignore[index]
    api.call("DELETE", f"/images/{target}:d")
    status, msgs = pull(api, f"{target}@{digest}")
    assert status == 200 and not errors(msgs), msgs
    image = api.call("GET", f"/images/{target}@{digest}/json")
    assert f"{target}@{digest}" in image["RepoDigests"]


def test_commit_with_whiteouts_push_pull_run(api: Client, registry: str) -> None:
    cid = api.run(
        [
            "sh",
            "-c",
            "echo committed > /root/new; rm /etc/group; mkdir -p /opt/d && echo x > /opt/d/f",
        ]
    )
    api.wait(cid)
    status, body = api.request(
        "POST",
        "/commit",
        {},
        params={
            "container": cid,
            "repo": "committed",
            "tag": "v1",
            "author": "x <x@x>",
            "comment": "nginx",
            "changes": 'CMD ["cat", "/root/new"]',
        },
    )
    assert status == 201, body
    image_id = json.loads(body)["Id"]
    info = api.call("GET", "/images/committed:v1/json")
    assert info["Id"] == image_id
    assert info["Author"] == "x <x@x>"
    assert info["Config"]["Cmd"] == ["cat", "/root/new"]
    assert len(info["RootFS"]["Layers"]) == 2
    assert info["Parent"]
    history = api.call("GET", "/images/committed:v1/history")
    assert history[0]["Comment"] == "nginx"
    assert run_output(api, "committed:v1", []) == b"committed\n"
    assert run_output(
        api, "committed:v1", ["sh", "-c", "ls /etc/group 2>&1; cat /opt/d/f"]
    ).endswith(b"x\n")
    assert b"No such file" in run_output(api, "committed:v1", ["ls", "/etc/group"])
    api.call("DELETE", f"/containers/{cid}")
    # Through a registry and back: the deletion (an OCI whiteout) survives.
    target = f"{registry}/it/committed"
    api.call("POST", "/images/committed:v1/tag", params={"repo": target, "tag": "v1"})
    assert not errors(push(api, target, "v1"))
    api.call("DELETE", "/images/committed:v1")
    api.call("DELETE", f"/images/{target}:v1", params={"force": 1})
    status, msgs = pull(api, target, "v1")
    assert status == 200 and not errors(msgs), msgs
    assert b"No such file" in run_output(api, f"{target}:v1", ["ls", "/etc/group"])
    assert run_output(api, f"{target}:v1", []) == b"committed\n"


def test_save_load_round_trip(api: Client) -> None:
    pytest.importorskip("supervisor.images.archive")
    api.call("POST", "/images/busybox/tag", params={"repo": "saved", "tag": "one"})
    status, archive = api.request("GET", "/images/get", params={"names": ["saved:one"]})
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["saved:one"]
    api.call("DELETE", "/images/saved:one")
    status, msgs = stream(api, "POST", "/images/load", raw=archive)
    assert status == 200
    assert {"stream": "Loaded image: saved:one\n"} in msgs
    assert run_output(api, "saved:one", ["echo", "loaded"]) == b"loaded\n"
    api.call("DELETE", "/images/saved:one")


def test_load_rejects_garbage(api: Client) -> None:
    pytest.importorskip("supervisor.images.archive")
    status, msgs = stream(api, "POST", "/images/load", raw=b"not a tar at all" * 10)
    assert status == 400 or errors(msgs), msgs


def test_auth_registry(api: Client, auth_registry: tuple[str, str, str]) -> None:
    host, user, password = auth_registry
    status, body = api.request(
        "POST", "/auth", {"username": user, "password": "wrong", "serveraddress": host}
    )
    assert status == 401, body
    status, body = api.request(
        "POST", "/auth", {"username": user, "password": password, "serveraddress": host}
    )
    assert status == 200 and json.loads(body)["Status"] == "Login Succeeded"
    target = f"{host}/private/busybox"
    api.call("POST", "/images/busybox/tag", params={"repo": target, "tag": "v1"})
    msgs = push(api, target, "v1")
    assert errors(msgs) and "unauthorized" in str(errors(msgs)[0]).lower()
    good = _auth_header(user, password, host)
    assert not errors(push(api, target, "v1", auth=good))
    api.call("DELETE", f"/images/{target}:v1")
    status, msgs = pull(api, target, "v1")
    assert status == 401, msgs
    status, msgs = pull(api, target, "v1", auth=good)
    assert status == 200 and not errors(msgs), msgs


def test_search_uses_catalog(api: Client, registry: str) -> None:
    api.call(
        "POST", "/images/busybox/tag", params={"repo": f"{registry}/searchme/tool", "tag": "v1"}
    )
    push(api, f"{registry}/searchme/tool", "v1")
    results = api.call("GET", "/images/search", params={"term": f"{registry}/searchme"})
    assert [r["name"] for r in results] == [f"{registry}/searchme/tool"]


def test_malformed_reference_is_400(api: Client) -> None:
    status, msgs = pull(api, "UPPER/Case")
    assert status == 400 and "invalid reference format" in str(msgs[0]["message"])


def test_export_container_filesystem(api: Client) -> None:
    cid = api.run(["sh", "-c", "echo exported > /root/e"])
    api.wait(cid)
    status, data = api.request("GET", f"/containers/{cid}/export")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("root/e").read() == b"exported\n"  # type: ignore[union-attr]
        assert "bin/busybox" in tar.getnames()
    api.call("DELETE", f"/containers/{cid}")


def test_commit_running_container_pauses_it(api: Client) -> None:
    since = f"{__import__('time').time():.9f}"
    cid = api.run(["sh", "-c", "echo live > /root/live; sleep 30"], HostConfig={"Init": True})
    api.wait_for(cid, lambda i: i["State"]["Running"])
    status, body = api.request(
        "POST", "/commit", {}, params={"container": cid, "repo": "live", "tag": "1"}
    )
    assert status == 201, body
    assert api.inspect(cid)["State"]["Status"] == "running"
    actions = [
        e["Action"]
        for e in api.events(
            since=since,
            until=f"{__import__('time').time() + 1:.9f}",
            filters=json.dumps({"container": [cid]}),
        )
    ]
    assert actions[-3:] == ["pause", "commit", "unpause"] or actions[-3:] == [
        "pause",
        "unpause",
        "commit",
    ]
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    api.call("DELETE", "/images/live:1")


def test_save_pulled_image_and_load_gzipped_archive(api: Client, registry: str) -> None:
    import gzip

    target = f"{registry}/it/savepulled"
    api.call("POST", "/images/busybox/tag", params={"repo": target, "tag": "1"})
    push(api, target, "1")
    api.call("DELETE", f"/images/{target}:1")
    status, msgs = pull(api, target, "1")
    assert status == 200 and not errors(msgs)
    status, archive = api.request("GET", "/images/get", params={"names": [f"{target}:1"]})
    assert status == 200
    api.call("DELETE", f"/images/{target}:1")
    status, msgs = stream(api, "POST", "/images/load", raw=gzip.compress(archive, 1))
    assert status == 200 and {"stream": f"Loaded image: {target}:1\n"} in msgs, msgs
    assert run_output(api, f"{target}:1", ["echo", "ok"]) == b"ok\n"


def test_push_mounts_blobs_from_another_repository(api: Client, registry: str) -> None:
    first, second = f"{registry}/mount/one", f"{registry}/mount/two"
    api.call("POST", "/images/busybox/tag", params={"repo": first, "tag": "1"})
    api.call("POST", "/images/busybox/tag", params={"repo": second, "tag": "1"})
    assert not errors(push(api, first, "1"))
    statuses = [str(m.get("status")) for m in push(api, second, "1")]
    # Mounted from whichever repository of this registry was recorded first as holding it.
    assert any(s.startswith("Mounted from ") or s == "Layer already exists" for s in statuses), (
        statuses
    )
    assert not any(s == "Pushed" for s in statuses), statuses


def test_push_all_tags(api: Client, registry: str) -> None:
    repo = f"{registry}/alltags/busybox"
    for tag in ("a", "b"):
        api.call("POST", "/images/busybox/tag", params={"repo": repo, "tag": tag})
    msgs = push(api, repo)
    digests = [
        str(m["status"]) for m in msgs if str(m.get("status", "")).split(":")[0] in ("a", "b")
    ]
    assert len(digests) == 2, msgs


def test_distribution_inspect(api: Client, registry: str) -> None:
    repo = f"{registry}/dist/busybox"
    api.call("POST", "/images/busybox/tag", params={"repo": repo, "tag": "1"})
    digest = next(m["aux"]["Digest"] for m in push(api, repo, "1") if "aux" in m)  # type: ignore[index]
    status, body = api.request("GET", f"/distribution/{repo}:1/json")
    assert status == 200, body
    info = json.loads(body)
    assert info["Descriptor"]["digest"] == digest
    assert info["Platforms"] == [{"architecture": "amd64", "os": "linux"}]


def test_pull_without_tag_pulls_all_tags(api: Client, registry: str) -> None:
    repo = f"{registry}/pullall/busybox"
    for tag in ("x", "y"):
        api.call("POST", "/images/busybox/tag", params={"repo": repo, "tag": tag})
        push(api, repo, tag)
        api.call("DELETE", f"/images/{repo}:{tag}")
    status, msgs = pull(api, repo)
    assert status == 200 and not errors(msgs), msgs
    tags = api.call("GET", f"/images/{repo}:x/json")["RepoTags"]
    assert f"{repo}:x" in tags and f"{repo}:y" in tags
