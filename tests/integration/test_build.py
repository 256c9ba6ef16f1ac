"""Real builds against berthd through ``POST /build``: single and multi-stage, the step
cache (touching vs changing a file, surviving a restart, pruned), ARG/ENV scoping,
ONBUILD, USER/WORKDIR in inspect and at run time (WORKDIR's directory and layer),
heredoc substitution, ADD's download mode, step images going with their image (rmi,
image prune), and bad input (a failing RUN, a missing COPY source, a hostile context)
leaving nothing tagged and no containers behind.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from tests.daemon import ApiError, Client, Daemon

pytestmark = pytest.mark.root


def context_tar(files: Mapping[str, str | bytes], *, mtime: float | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(mtime if mtime is not None else time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(
    api: Client, files: Mapping[str, str | bytes], *, mtime: float | None = None, **params: Any
) -> tuple[str | None, list[dict[str, Any]]]:
    """Run a build; returns (image id or None, every message)."""
    status, payload = api.request(
        "POST", "/build", params=params, raw=context_tar(files, mtime=mtime), timeout=120
    )
    assert status == 200, payload
    messages = [json.loads(line) for line in payload.splitlines() if line.strip()]
    image = next((m["aux"]["ID"] for m in messages if "aux" in m), None)
    return image, messages


def text(messages: list[dict[str, Any]]) -> str:
    return "".join(m.get("stream", "") for m in messages)


def error(messages: list[dict[str, Any]]) -> str:
    return next((m["error"] for m in messages if "error" in m), "")


def run_output(api: Client, image: str, cmd: list[str] | None = None) -> str:
    cid = api.create(image=image, cmd=cmd)
    api.call("POST", f"/containers/{cid}/start")
    api.wait(cid)
    out = b"".join(data for _, data in api.logs(cid, stdout=1, stderr=1)).decode()
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    return out


def containers(api: Client) -> set[str]:
    return {c["Id"] for c in api.call("GET", "/containers/json", params={"all": 1})}


def tag() -> str:
    return f"b{uuid.uuid4().hex[:10]}:latest"


def test_build_single_stage_runs_and_tags(api: Client) -> None:
    name = tag()
    before = containers(api)
    image, messages = build(
        api,
        {
            "Dockerfile": "FROM busybox\nRUN echo built > /x && echo step-output\n"
            "COPY a.txt /app/\nWORKDIR /app\nUSER 1000:1000\nCMD cat /x a.txt\n",
            "a.txt": "hello\n",
        },
        t=name,
    )
    out = text(messages)
    assert image is not None, out
    assert "Step 1/6 : FROM busybox" in out
    assert "step-output" in out
    assert f"Successfully built {image[7:19]}" in out
    assert f"Successfully tagged {name}" in out
    info = api.call("GET", f"/images/{name}/json")
    assert info["Id"] == image
    assert info["Config"]["WorkingDir"] == "/app"
    assert info["Config"]["User"] == "1000:1000"
    assert run_output(api, name) == "built\nhello\n"
    assert run_output(api, name, ["sh", "-c", "id -u; pwd"]) == "1000\n/app\n"
    assert containers(api) == before  # the RUN container was removed
    # The steps' images are intermediate: listed only with all=1, as Docker does.
    listed = {i["Id"] for i in api.call("GET", "/images/json")}
    everything = {i["Id"] for i in api.call("GET", "/images/json", params={"all": 1})}
    assert image in listed and len(everything - listed) >= 3


def test_build_cache_touch_hits_change_misses(api: Client) -> None:
    dockerfile = "FROM busybox\nRUN echo one > /one\nCOPY f /f\nRUN cat /f\n"
    first, _ = build(api, {"Dockerfile": dockerfile, "f": "v1"}, mtime=1000)
    touched, messages = build(api, {"Dockerfile": dockerfile, "f": "v1"}, mtime=2000)
    assert touched == first
    assert text(messages).count("Using cache") == 3
    changed, messages = build(api, {"Dockerfile": dockerfile, "f": "v2"})
    assert changed != first
    assert text(messages).count("Using cache") == 1  # the RUN before the COPY
    unrelated, messages = build(api, {"Dockerfile": dockerfile, "f": "v1", "other": "x"})
    assert unrelated == first
    nocache, messages = build(api, {"Dockerfile": dockerfile, "f": "v1"}, nocache=1)
    assert "Using cache" not in text(messages)
    assert nocache != first


def test_build_multi_stage_copies_between_stages(api: Client) -> None:
    name = tag()
    image, messages = build(
        api,
        {
            "Dockerfile": "FROM busybox AS builder\nRUN mkdir /out && echo art > /out/a "
            "&& echo secret > /leak\n"
            "FROM scratch AS unused\nCOPY --from=builder /leak /x\n"
            "FROM busybox\nCOPY --from=builder /out/ /dist/\nCOPY --from=0 /out/a /single\n",
        },
        t=name,
    )
    assert image is not None, text(messages)
    assert run_output(api, name, ["cat", "/dist/a", "/single"]) == "art\nart\n"
    assert run_output(api, name, ["sh", "-c", "test -e /leak || echo clean"]) == "clean\n"
    assert len(api.call("GET", f"/images/{name}/json")["RootFS"]["Layers"]) == 3


def test_build_target_stops_at_stage(api: Client) -> None:
    image, messages = build(
        api,
        {"Dockerfile": "FROM busybox AS a\nENV STAGE=a\nFROM a\nENV STAGE=b\n"},
        target="a",
    )
    assert image is not None, text(messages)
    env = api.call("GET", f"/images/{image}/json")["Config"]["Env"]
    assert "STAGE=a" in env


def test_build_arg_and_env_scoping(api: Client) -> None:
    name = tag()
    dockerfile = (
        "ARG BASE=busybox\nARG GLOBAL=g\nFROM ${BASE}\n"
        "ARG GLOBAL\nARG LOCAL=dflt\nENV FROM_ARG=$LOCAL\n"
        'RUN echo "run:$LOCAL:$GLOBAL" > /args\n'
    )
    image, messages = build(
        api,
        {"Dockerfile": dockerfile},
        t=name,
        buildargs=json.dumps({"LOCAL": "given", "NOPE": "x"}),
    )
    assert image is not None, text(messages)
    assert "[Warning] One or more build-args [NOPE] were not consumed" in text(messages)
    env = api.call("GET", f"/images/{name}/json")["Config"]["Env"]
    assert "FROM_ARG=given" in env
    assert not any(e.startswith(("LOCAL=", "GLOBAL=")) for e in env)  # ARGs do not persist
    assert run_output(api, name, ["cat", "/args"]) == "run:given:g\n"


def test_build_onbuild_triggers_run_in_child(api: Client) -> None:
    parent = tag()
    image, messages = build(
        api, {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\n"}, t=parent
    )
    assert image is not None, text(messages)
    assert api.call("GET", f"/images/{parent}/json")["Config"]["OnBuild"] == [
        "RUN echo triggered > /t"
    ]
    child, messages = build(api, {"Dockerfile": f"FROM {parent}\nCMD cat /t\n"})
    assert child is not None, text(messages)
    assert "# Executing 1 build trigger" in text(messages)
    assert run_output(api, child) == "triggered\n"
    assert not api.call("GET", f"/images/{child}/json")["Config"].get("OnBuild")


def test_build_labels_heredoc_and_add_archive(api: Client) -> None:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"tar"))
    image, messages = build(
        api,
        {
            "Dockerfile": "FROM busybox\nADD a.tgz /opt/\nCOPY --chmod=755 <<EOF /hello\n#!/bin/sh\necho hi\nEOF\n"
            "RUN <<EOF\necho from heredoc > /h\nEOF\n",
            "a.tgz": inner.getvalue(),
        },
        labels=json.dumps({"team": "x"}),
    )
    assert image is not None, text(messages)
    assert api.call("GET", f"/images/{image}/json")["Config"]["Labels"] == {"team": "x"}
    assert (
        run_output(api, image, ["sh", "-c", "cat /opt/pkg/file; /hello; cat /h"])
        == "tarhi\nfrom heredoc\n"
    )


def test_build_copy_heredoc_expands_unless_delimiter_quoted(api: Client) -> None:
    """As BuildKit's frontend: variables in a COPY/ADD heredoc body are substituted
    (quotes kept, backslash escapes), a quoted delimiter keeps the body as written."""
    image, messages = build(
        api,
        {
            "Dockerfile": "FROM busybox\nARG WHO=arg\nENV WHERE=env\n"
            'COPY <<EOF /expanded\n$WHO "${WHERE}" \\$HOME\nEOF\n'
            "ADD <<'EOF' /raw\n$WHO \\$HOME\nEOF\n",
        },
    )
    assert image is not None, text(messages)
    assert run_output(api, image, ["cat", "/expanded", "/raw"]) == (
        'arg "env" $HOME\n$WHO \\$HOME\n'
    )


def test_build_workdir_makes_its_directory_with_a_layer(api: Client) -> None:
    """As the classic builder: WORKDIR commits a layer holding the directory it made
    (root-owned 0755 whatever USER is); one that existed gives an empty_layer step."""
    image, messages = build(
        api, {"Dockerfile": "FROM busybox\nUSER 1000\nWORKDIR /w/x\nWORKDIR /tmp\n"}
    )
    assert image is not None, text(messages)
    base = api.call("GET", "/images/busybox/json")
    built = api.call("GET", f"/images/{image}/json")
    assert len(built["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    history = api.call("GET", f"/images/{image}/history")
    steps = {h["CreatedBy"]: h for h in history[:3]}
    assert set(steps) == {
        "/bin/sh -c #(nop) WORKDIR /tmp",
        "/bin/sh -c #(nop) WORKDIR /w/x",
        "/bin/sh -c #(nop)  USER 1000",
    }
    assert run_output(api, image, ["stat", "-c", "%n %a %u:%g", "/w", "/w/x", "/tmp"]) == (
        "/w 755 0:0\n/w/x 755 0:0\n/tmp 1777 0:0\n"
    )


def image_ids(api: Client, **params: Any) -> set[str]:
    return {i["Id"] for i in api.call("GET", "/images/json", params=params)}


def test_build_rmi_and_prune_take_the_step_images(api: Client) -> None:
    """As dockerd: a build's step images are hidden parents (``images -a`` shows them),
    and deleting the built image, by ``rmi`` or by ``image prune``, takes them along."""
    dockerfile = 'FROM busybox\nENV U={}\nRUN echo $U > /u\nWORKDIR /w\nCMD ["sh"]\n'
    before = image_ids(api, all=1)
    name = tag()
    image, messages = build(api, {"Dockerfile": dockerfile.format(uuid.uuid4().hex)}, t=name)
    assert image is not None, text(messages)
    steps = image_ids(api, all=1) - before
    assert len(steps) == 4 and image in steps
    assert steps & image_ids(api) == {image}
    report = api.call("DELETE", f"/images/{name}")
    assert report[0] == {"Untagged": name}
    assert steps <= {r["Deleted"] for r in report if "Deleted" in r}
    assert not steps & image_ids(api, all=1)

    uid = uuid.uuid4().hex
    image, messages = build(
        api, {"Dockerfile": dockerfile.format(uid)}, labels=json.dumps({"prune": uid})
    )
    assert image is not None, text(messages)
    steps = image_ids(api, all=1) - before
    assert len(steps) == 5 and image in steps  # --label adds a LABEL step
    pruned = api.call(
        "POST", "/images/prune", params={"filters": json.dumps({"label": [f"prune={uid}"]})}
    )
    assert steps <= {r["Deleted"] for r in pruned["ImagesDeleted"] if "Deleted" in r}
    assert not steps & image_ids(api, all=1)


def test_build_history_names_step_images_and_base(api: Client) -> None:
    """As dockerd: each history row of a classic build names the step image it made
    (the image's parent chain), the base image's top row names the base with its tags,
    and only rows with no local image say ``<missing>``; tags sorted by full name."""
    uid = uuid.uuid4().hex[:10]
    names = [f"z{uid}:1", f"localhost:5000/a{uid}:1"]
    dockerfile = f'FROM busybox\nENV U={uid}\nRUN printf 12345 > /u\nCMD ["sh"]\n'
    image, messages = build(api, {"Dockerfile": dockerfile}, t=names)
    assert image is not None, text(messages)
    history = api.call("GET", f"/images/{names[0]}/history")
    chain = [image]
    while parent := api.call("GET", f"/images/{chain[-1]}/json")["Parent"]:
        chain.append(parent)
    base = api.call("GET", "/images/busybox/json")
    assert chain[3] == base["Id"]
    assert [h["Id"] for h in history[:4]] == chain[:4]
    assert [h["CreatedBy"] for h in history[:3]] == [
        '/bin/sh -c #(nop)  CMD ["sh"]',
        "/bin/sh -c printf 12345 > /u",
        f"/bin/sh -c #(nop)  ENV U={uid}",
    ]
    assert [h["Size"] for h in history[:3]] == [0, 5, 0]
    assert history[0]["Tags"] == names
    assert history[1]["Tags"] is None and history[2]["Tags"] is None
    assert set(history[3]["Tags"]) == set(base["RepoTags"])
    assert all(h["Id"] == "<missing>" and h["Tags"] is None for h in history[4:])
    assert len(history) == len(api.call("GET", "/images/busybox/history")) + 3


def test_build_failing_run_names_command_and_cleans_up(api: Client) -> None:
    name = tag()
    before = containers(api)
    image, messages = build(
        api, {"Dockerfile": "FROM busybox\nRUN echo partial && exit 3\n"}, t=name
    )
    assert image is None
    assert "Step 2/2 : RUN echo partial && exit 3" in text(messages)
    assert "partial" in text(messages)
    assert (
        error(messages)
        == "The command '/bin/sh -c echo partial && exit 3' returned a non-zero code: 3"
    )
    with pytest.raises(ApiError) as info:
        api.call("GET", f"/images/{name}/json")
    assert info.value.status == 404
    # As Docker: the failed step's container stays for inspection (rm=1 removes only
    # after success); forcerm=1 removes it too.
    kept = containers(api) - before
    assert len(kept) == 1
    for cid in kept:
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    image, messages = build(api, {"Dockerfile": "FROM busybox\nRUN exit 4\n"}, t=name, forcerm=1)
    assert image is None and containers(api) == before


def test_build_add_from_a_url(api: Client) -> None:
    """ADD fetches remote files (here from a server the test runs on loopback) and adds
    them as they came, never extracted."""
    import http.server
    import threading

    payload = b"fetched over http\n"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/files/remote.txt"
        name = tag()
        image, messages = build(
            api,
            {"Dockerfile": f"FROM busybox\nADD {url} /data/\nADD --chmod=640 {url} /data/m\n"},
            t=name,
        )
        assert image is not None, text(messages)
        assert run_output(api, name, ["cat", "/data/remote.txt"]) == payload.decode()
        # As Docker's classic builder: a download is 0600 (--chmod still decides).
        assert run_output(api, name, ["stat", "-c", "%n %a", "/data/remote.txt", "/data/m"]) == (
            "/data/remote.txt 600\n/data/m 640\n"
        )
        image, messages = build(api, {"Dockerfile": f"FROM busybox\nCOPY {url} /data/\n"})
        assert image is None and "source can't be a URL for COPY" in error(messages)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"Dockerfile": "FROM busybox\nFOO bar\n"},
            "Dockerfile parse error line 2: unknown instruction: FOO",
        ),
        (
            {"Dockerfile": "FROM busybox\nCOPY missing /x\n"},
            "COPY failed: file not found in build context",
        ),
        ({"Dockerfile": "FROM busybox\nCOPY ../../etc/passwd /x\n"}, "COPY failed"),
        ({"Dockerfile": "FROM busybox\nCOPY --from=nowhere /a /b\n"}, "nowhere"),
        ({"Dockerfile": "FROM busybox\nUSER ${X\n"}, "line 2"),
        ({"other": "x"}, "Cannot locate specified Dockerfile: Dockerfile"),
    ],
    ids=[
        "unknown-instruction",
        "missing-source",
        "escape",
        "unknown-stage",
        "bad-substitution",
        "no-dockerfile",
    ],
)
def test_build_bad_input_reports_error(api: Client, files: dict[str, str], message: str) -> None:
    status, payload = api.request("POST", "/build", raw=context_tar(files), timeout=60)
    if status == 200:
        messages = [json.loads(line) for line in payload.splitlines() if line.strip()]
        assert message in error(messages)
    else:
        assert status == 400
        assert message in json.loads(payload)["message"]


def test_build_hostile_context_refused(api: Client) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    status, _ = api.request("POST", "/build", raw=buf.getvalue())
    assert status == 400


def test_build_cache_survives_restart_and_prune(fresh_daemon: Daemon) -> None:
    api = fresh_daemon.client
    files = {"Dockerfile": "FROM busybox\nRUN echo x > /x\n"}
    first, _ = build(api, files)
    fresh_daemon.stop()
    fresh_daemon.start()
    again, messages = build(api, files)
    assert again == first
    assert "Using cache" in text(messages)
    pruned = api.call("POST", "/build/prune")
    assert pruned["CachesDeleted"]
    assert pruned["SpaceReclaimed"] > 0
    third, messages = build(api, files)
    assert "Using cache" not in text(messages)
    assert third is not None
    assert os.geteuid() == 0
