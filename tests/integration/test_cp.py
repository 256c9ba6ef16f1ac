"""``docker cp`` against a real berthd: the archive API (HEAD/GET/PUT) and ``berth cp``,
both directions, on running and stopped containers, into volumes and binds, and the
escapes that must stay inside the container.

Hostile symlinks point at a throwaway host directory made by the test (never at the
host's /etc): a regression would touch that directory, which every such test checks.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import Client, Daemon, UnixHTTPConnection, env_with_host
from tests.integration.test_cli import BERTH
from tests.tarhelpers import spec_tar

pytestmark = pytest.mark.root


# -- helpers --------------------------------------------------------------------------------


F, D, S = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE


def put(api: Client, ref: str, path: str, data: bytes, **params: object) -> tuple[int, str]:
    status, payload = api.request(
        "PUT", f"/containers/{ref}/archive", params={"path": path, **params}, raw=data
    )
    return status, _message(payload)


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["message"])
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace")


def get(api: Client, ref: str, path: str) -> dict[str, bytes | str]:
    """``GET .../archive``: {member name: file content, or "->target", or "dir"}."""
    status, payload = api.request("GET", f"/containers/{ref}/archive", params={"path": path})
    assert status == 200, payload
    out: dict[str, bytes | str] = {}
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        for m in tar:
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
            elif m.issym():
                out[m.name] = "->" + m.linkname
            else:
                out[m.name] = "dir" if m.isdir() else m.type.decode()
    return out


def head(api: Client, ref: str, path: str) -> tuple[int, dict[str, object] | None]:
    conn = UnixHTTPConnection(api.socket_path)
    conn.request("HEAD", f"/containers/{ref}/archive?path={path}")
    resp = conn.getresponse()
    resp.read()
    header = resp.getheader("X-Docker-Container-Path-Stat")
    conn.close()
    return resp.status, json.loads(base64.b64decode(header)) if header else None


class BerthCp:
    """``berth`` with bytes in and out (tars on stdin/stdout)."""

    def __init__(self, daemon: Daemon) -> None:
        self.env = env_with_host(daemon)

    def __call__(
        self, *args: str, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [BERTH, *args], input=stdin, env=self.env, capture_output=True, timeout=60, check=False
        )
        assert b"Traceback" not in proc.stderr, proc.stderr
        return proc

    def ok(self, *args: str, stdin: bytes | None = None) -> bytes:
        proc = self(*args, stdin=stdin)
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout


@pytest.fixture(scope="module")
def berth(daemon: Daemon) -> BerthCp:
    return BerthCp(daemon)


@pytest.fixture
def ctr(api: Client) -> Iterator[Callable[..., str]]:
    """Creates containers (``start=True`` starts them); all removed afterwards."""
    made: list[str] = []

    def make(cmd: list[str] | None = None, *, start: bool = False, **config: object) -> str:
        name = f"cp-{uuid.uuid4().hex[:10]}"
        api.create(cmd=cmd or ["sleep", "600"], name=name, **config)
        made.append(name)
        if start:
            api.call("POST", f"/containers/{name}/start")
        return name

    yield make
    for n in made:
        api.request("DELETE", f"/containers/{n}", params={"force": 1, "v": 1})


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="berth-cp-host-") as d:
        path = Path(d)
        (path / "victim").write_bytes(b"original")
        yield path


def assert_untouched(host_dir: Path) -> None:
    assert sorted(os.listdir(host_dir)) == ["victim"]
    assert (host_dir / "victim").read_bytes() == b"original"


def rootfs_mounted(daemon: Daemon, api: Client, ref: str) -> bool:
    cid = api.inspect(ref)["Id"]
    target = str(daemon.exec_root / cid / "rootfs")
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return target in points


# -- the archive API ----------------------------------------------------------------------------


def test_archive_round_trip_on_a_stopped_container(
    api: Client, daemon: Daemon, ctr: Callable[..., str]
) -> None:
    c = ctr()
    tar = spec_tar(("dir", D, b""), ("dir/f", F, b"hello\n"), ("dir/l", S, "f"))
    assert put(api, c, "/tmp", tar) == (200, "")
    status, st = head(api, c, "/tmp/dir/f")
    assert status == 200
    assert st is not None
    assert (st["name"], st["size"], st["mode"], st["linkTarget"]) == ("f", 6, 0o644, "")
    _, link = head(api, c, "/tmp/dir/l")
    assert link is not None
    assert (link["mode"], link["linkTarget"]) == ((1 << 27) | 0o777, "/tmp/dir/f")
    assert get(api, c, "/tmp/dir") == {"dir": "dir", "dir/f": b"hello\n", "dir/l": "->f"}
    assert get(api, c, "/tmp/dir/.") == {".": "dir", "./f": b"hello\n", "./l": "->f"}
    assert not rootfs_mounted(daemon, api, c)  # mounted for each call only


def test_archive_errors_are_dockers(api: Client, ctr: Callable[..., str]) -> None:
    c = ctr()
    assert put(api, c, "/nonexist", spec_tar(("a", F, b""))) == (
        404,
        f"Could not find the file /nonexist in container {c}",
    )
    assert put(api, c, "/bin/busybox", spec_tar(("a", F, b""))) == (
        400,
        "extraction point is not a directory",
    )
    assert put(api, c, "", b"")[0] == 400
    assert head(api, c, "/nonexist") == (404, None)
    status, payload = api.request("GET", "/containers/nope/archive", params={"path": "/"})
    assert (status, _message(payload)) == (404, "No such container: nope")
    status, payload = api.request("GET", f"/containers/{c}/archive", params={"path": "/x"})
    assert (status, _message(payload)) == (404, f"Could not find the file /x in container {c}")
    assert put(api, c, "/tmp", b"not a tar" * 100)[0] == 400


def test_archive_on_a_running_container_is_seen_inside(
    api: Client, ctr: Callable[..., str]
) -> None:
    c = ctr(["sh", "-c", "until [ -f /tmp/go ]; do sleep 0.05; done; cat /tmp/go"], start=True)
    assert put(api, c, "/tmp", spec_tar(("go", F, b"copied in\n"))) == (200, "")
    assert api.wait(c) == 0
    assert api.logs(c) == [(1, b"copied in\n")]


def wait_for_output(api: Client, ref: str, marker: bytes) -> None:
    """Follow the container's logs until ``marker`` shows up (no polling)."""
    conn = UnixHTTPConnection(api.socket_path, timeout=60)
    conn.request("GET", f"/containers/{ref}/logs?stdout=1&follow=1")
    resp = conn.getresponse()
    seen = b""
    try:
        while marker not in seen:
            chunk = resp.read1(65536)
            assert chunk, f"logs ended before {marker!r}: {seen!r}"
            seen += chunk
    finally:
        conn.close()


def test_archive_reads_what_a_running_container_wrote(api: Client, ctr: Callable[..., str]) -> None:
    c = ctr(
        [
            "sh",
            "-c",
            "echo written > /tmp/out; echo ready; until [ -f /tmp/stop ]; do sleep 0.05; done",
        ],
        start=True,
    )
    wait_for_output(api, c, b"ready")
    assert head(api, c, "/tmp/out")[0] == 200
    assert get(api, c, "/tmp/out") == {"out": b"written\n"}
    assert put(api, c, "/tmp", spec_tar(("stop", F, b""))) == (200, "")
    assert api.wait(c) == 0


def test_archive_sees_volumes_and_binds(
    api: Client, ctr: Callable[..., str], host_dir: Path
) -> None:
    vol = f"cpvol-{uuid.uuid4().hex[:8]}"
    binds = [f"{vol}:/data", f"{host_dir}:/bind"]
    c = ctr(HostConfig={"Binds": binds})
    try:
        assert put(api, c, "/data", spec_tar(("in-volume", F, b"v\n"))) == (200, "")
        assert put(api, c, "/bind", spec_tar(("in-bind", F, b"b\n"))) == (200, "")
        mountpoint = Path(api.call("GET", f"/volumes/{vol}")["Mountpoint"])
        assert (mountpoint / "in-volume").read_bytes() == b"v\n"
        assert (host_dir / "in-bind").read_bytes() == b"b\n"
        assert get(api, c, "/bind/victim") == {"victim": b"original"}
        whole = get(api, c, "/")
        assert whole["/data/in-volume"] == b"v\n"
        assert whole["/bind/in-bind"] == b"b\n"
        # A running container sees the same.
        api.call("POST", f"/containers/{c}/start")
        assert get(api, c, "/data/in-volume") == {"in-volume": b"v\n"}
    finally:
        api.request("DELETE", f"/containers/{c}", params={"force": 1})
        api.request("DELETE", f"/volumes/{vol}", params={"force": 1})


def test_archive_read_only_places_are_refused(
    api: Client, ctr: Callable[..., str], host_dir: Path
) -> None:
    c = ctr(HostConfig={"ReadonlyRootfs": True, "Binds": [f"{host_dir}:/ro:ro"]})
    assert put(api, c, "/tmp", spec_tar(("x", F, b""))) == (
        400,
        "container rootfs is marked read-only",
    )
    assert put(api, c, "/ro", spec_tar(("x", F, b""))) == (
        400,
        "mounted volume is marked read-only",
    )
    assert_untouched(host_dir)


def test_archive_symlink_escapes_stay_in_the_container(
    api: Client, ctr: Callable[..., str], host_dir: Path
) -> None:
    c = ctr(start=True)
    probe = f"berth-cp-probe-{uuid.uuid4().hex[:8]}"
    # A link to an absolute host path means that path inside the container. (Made from
    # "/": a relative link climbing above the destination would be refused, as Docker.)
    tar = spec_tar(("tmp/hostlink", S, str(host_dir)), ("tmp/up", S, "../../../../../.."))
    assert put(api, c, "/", tar) == (200, "")
    assert head(api, c, "/tmp/hostlink/victim")[0] == 404
    assert put(api, c, "/tmp/hostlink", spec_tar(("x", F, b"")))[0] == 404
    assert put(api, c, "/tmp/up", spec_tar((probe, F, b"in the container\n"))) == (200, "")
    assert get(api, c, f"/{probe}") == {probe: b"in the container\n"}  # the container's /
    assert not Path("/", probe).exists()
    # A tar that makes a link and writes through it writes the container's /etc.
    tar = spec_tar(("lnk", S, "/etc"), (f"lnk/{probe}", F, b"x"))
    assert put(api, c, "/tmp", tar) == (200, "")
    assert get(api, c, f"/etc/{probe}") == {probe: b"x"}
    assert not Path("/etc", probe).exists()
    # Entries climbing out, and hardlinks out, are refused.
    assert put(api, c, "/tmp", spec_tar(("../../x", F, b"")))[0] == 400
    hard = spec_tar(("h", tarfile.LNKTYPE, "../../etc/passwd"))
    assert put(api, c, "/tmp", hard)[0] == 400
    assert_untouched(host_dir)


def test_archive_events(api: Client, ctr: Callable[..., str]) -> None:
    c = ctr()
    since = time.time()
    assert put(api, c, "/tmp", spec_tar(("e", F, b""))) == (200, "")
    get(api, c, "/tmp/e")
    until = time.time()  # both events were stored before their responses
    actions = [
        e["Action"]
        for e in api.events(
            since=f"{since:.9f}", until=f"{until:.9f}", filters=json.dumps({"container": [c]})
        )
    ]
    assert actions == ["extract-to-dir", "archive-path"]


# -- berth cp -----------------------------------------------------------------------------------


def test_berth_cp_both_ways(berth: BerthCp, ctr: Callable[..., str], tmp_path: Path) -> None:
    c = ctr(start=True)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_bytes(b"file\n")
    (src / "sub" / "g").write_bytes(b"g\n")
    berth.ok("cp", str(src / "f"), f"{c}:/tmp/renamed")  # file to a new name
    berth.ok("cp", str(src), f"{c}:/tmp/")  # dir into an existing dir
    berth.ok("cp", f"{src}/.", f"{c}:/tmp/contents")  # a directory's content, new name
    out = tmp_path / "out"
    out.mkdir()
    berth.ok("cp", f"{c}:/tmp/renamed", str(out))
    berth.ok("cp", f"{c}:/tmp/src", str(out / "copy"))
    berth.ok("cp", f"{c}:/tmp/contents/.", str(out / "contents"))
    assert (out / "renamed").read_bytes() == b"file\n"
    assert (out / "copy" / "sub" / "g").read_bytes() == b"g\n"
    assert sorted(os.listdir(out / "contents")) == ["f", "sub"]


def test_berth_cp_tar_streams(berth: BerthCp, ctr: Callable[..., str]) -> None:
    c = ctr()
    berth.ok("cp", "-", f"{c}:/tmp", stdin=spec_tar(("a", F, b"A"), ("b", D, b"")))
    data = berth.ok("cp", f"{c}:/tmp/a", "-")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["a"]


def test_berth_cp_stopped_container_and_archive_mode(
    berth: BerthCp, api: Client, ctr: Callable[..., str], tmp_path: Path
) -> None:
    c = ctr(User="nobody")
    f = tmp_path / "owned"
    f.write_bytes(b"x")
    os.chown(f, 1234, 1234)
    berth.ok("cp", str(f), f"{c}:/tmp/kept")
    berth.ok("cp", "-a", str(f), f"{c}:/tmp/mapped")
    status, payload = api.request("GET", f"/containers/{c}/archive", params={"path": "/tmp"})
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        kept, mapped = tar.getmember("tmp/kept"), tar.getmember("tmp/mapped")
    assert (kept.uid, kept.gid) == (1234, 1234)  # the tar's owner, as docker without -a
    assert mapped.uid != 1234  # the container's User, from its /etc/passwd


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent-src", "{c}:/tmp"], "lstat /nonexistent-src: no such file or directory"),
        (["{c}:/nonexist", "{tmp}"], "Error response from daemon: Could not find the file"),
        (["{c}:/bin/busybox", "{tmp}/missing/"], "no such directory"),
        (["{tmp}", "{tmp}/x"], "must specify at least one container source"),
        (["{c}:/tmp", "{c}:/tmp"], "copying between containers is not supported"),
        (["{c}:/bin/busybox", "{tmp}/nodir/x"], "invalid output path: directory"),
        (["-", "{c}:/bin/busybox"], "must be a directory"),
        (["{tmp}", "{c}:/bin/busybox"], "cannot copy directory"),
    ],
    ids=["src", "missing", "no-dir", "no-container", "two", "out", "dash-file", "dir-file"],
)
def test_berth_cp_errors(
    berth: BerthCp, ctr: Callable[..., str], tmp_path: Path, args: list[str], message: str
) -> None:
    c = ctr()
    proc = berth("cp", *(a.format(c=c, tmp=tmp_path) for a in args), stdin=b"")
    assert proc.returncode == 1
    assert message in proc.stderr.decode()
