"""The ``berth`` image and registry commands against the session's berthd and real registries.

``tag``/``push``/``rmi``/``pull``, ``login``/``logout``, ``search``, ``commit``/``history``,
``save``/``load``, ``export``, ``images --digests``, ``image prune``, ``container prune``:
output without a terminal, exit codes, one-line errors, ``config.json``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Client, Daemon, env_with_host

pytestmark = pytest.mark.root

BERTH = str(Path(sys.executable).with_name("berth"))
DIGEST = r"sha256:[0-9a-f]{64}"
RECLAIMED = r"Total reclaimed space: \d+(\.\d+)?[kMGT]?B"


class Cli:
    """Runs ``berth`` against one daemon, with ``config.json`` in a directory of its own."""

    def __init__(self, daemon: Daemon, config: Path) -> None:
        self.env = {**env_with_host(daemon), "BERTH_CONFIG": str(config)}

    def __call__(
        self, *args: str, stdin: bytes | None = None, config: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = self.env if config is None else {**self.env, "BERTH_CONFIG": str(config)}
        proc = subprocess.run(
            [BERTH, *args],
            input=stdin if stdin is not None else b"",
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode()
        assert "Traceback" not in stderr, stderr
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def ok(self, *args: str, stdin: bytes | None = None, config: Path | None = None) -> str:
        """Run ``berth``, check it exited 0, return its stdout."""
        proc = self(*args, stdin=stdin, config=config)
        assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout

    def fails(self, *args: str, stdin: bytes | None = None, config: Path | None = None) -> str:
        """Run ``berth``, check it exited 1 with a one-line error, return that line."""
        proc = self(*args, stdin=stdin, config=config)
        assert proc.returncode == 1, (args, proc.returncode, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
        return proc.stderr.rstrip("\n")


@pytest.fixture(scope="module")
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def cli(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(daemon, tmp_path_factory.mktemp("berth-config"))


@pytest.fixture(scope="module")
def writer(cli: Cli, daemon: Daemon, uid: str) -> Iterator[str]:
    """An exited container that wrote ``/x`` (unique to this module)."""
    name = f"cli-img-writer-{uid}"
    cli.ok("run", "--name", name, "busybox", "sh", "-c", f"echo payload-{uid} > /x")
    yield name
    daemon.client.request("DELETE", f"/containers/{name}", params={"force": 1})


@pytest.fixture(scope="module")
def exported(cli: Cli, writer: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``berth export -o`` of ``writer``."""
    target = tmp_path_factory.mktemp("export") / "fs.tar"
    assert cli.ok("export", "-o", str(target), writer) == ""
    return target


@pytest.fixture(scope="module")
def app(cli: Cli, daemon: Daemon, writer: str, uid: str) -> Iterator[str]:
    """``writer`` committed with author, message and ``CMD ["cat","/x"]`` (a local name)."""
    ref = f"cli-img-{uid}/app:v1"
    image_id = cli.ok(
        "commit", "-a", "Berth Tester <t@example.com>", "-m", f"comment-{uid}",
        "-c", 'CMD ["cat","/x"]', writer, ref,
    ).strip()  # fmt: skip
    assert re.fullmatch(DIGEST, image_id)
    yield ref
    daemon.client.request("DELETE", f"/images/{image_id}", params={"force": 1})


@pytest.fixture(scope="module")
def pushed(
    cli: Cli, daemon: Daemon, registry: str, exported: Path, uid: str
) -> Iterator[tuple[str, subprocess.CompletedProcess[str]]]:
    """A one-layer image (``exported`` imported with ``CMD ["cat","/x"]``) named in the
    no-auth registry and pushed there: (reference, the push's output).

    One layer, so that the progress lines are exact (several layers push in parallel; see
    ``test_push_of_many_layers_keeps_berthd_alive``).
    """
    ref = f"{registry}/cli-{uid}/flat:v1"
    image_id = cli.ok("import", "-c", 'CMD ["cat","/x"]', str(exported), ref).strip()
    assert re.fullmatch(DIGEST, image_id)
    yield ref, cli("push", ref)
    daemon.client.request("DELETE", f"/images/{ref}", params={"force": 1})


# --- push / pull ----------------------------------------------------------------------


def test_push_prints_plain_progress_lines_and_digest(
    pushed: tuple[str, subprocess.CompletedProcess[str]],
) -> None:
    ref, proc = pushed
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    first, *layers, last = proc.stdout.splitlines()
    assert first == f"The push refers to repository [{ref.rpartition(':')[0]}]"
    for line in layers:
        assert re.fullmatch(r"[0-9a-f]{12}: (Preparing|Waiting|Pushed)", line), line
    assert len({line.split(": ")[0] for line in layers}) == 1  # one layer
    assert layers[0].endswith(": Preparing") and layers[-1].endswith(": Pushed")
    assert re.fullmatch(rf"v1: digest: {DIGEST} size: \d+", last), last


def test_rmi_pull_prints_digest_and_status_then_runs(
    cli: Cli, pushed: tuple[str, subprocess.CompletedProcess[str]], uid: str
) -> None:
    ref, push = pushed
    digest = re.search(DIGEST, push.stdout.splitlines()[-1])
    assert digest is not None
    removed = cli.ok("rmi", ref).splitlines()
    assert removed[0] == f"Untagged: {ref}" and removed[-1].startswith("Deleted: sha256:")
    assert cli("image", "inspect", ref).returncode == 1

    proc = cli("pull", ref)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0] == f"v1: Pulling from {ref.rpartition(':')[0]}"
    layer = lines[1].split(": ")[0]
    statuses = ["Pulling fs layer", "Verifying Checksum", "Download complete", "Extracting"]
    assert lines[1:-3] == [f"{layer}: {status}" for status in [*statuses, "Pull complete"]]
    assert lines[-3:] == [
        f"Digest: {digest.group()}",
        f"Status: Downloaded newer image for {ref}",
        ref,
    ]
    assert cli.ok("run", "--rm", ref) == f"payload-{uid}\n"

    header, *rows = cli.ok("images", "--digests", ref.rpartition(":")[0]).splitlines()
    assert header.split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    assert [row.split()[:3] for row in rows] == [[ref.rpartition(":")[0], "v1", digest.group()]]


def test_rmi_last_tag_of_repository_untags_its_digest(
    cli: Cli, pushed: tuple[str, subprocess.CompletedProcess[str]], uid: str
) -> None:
    ref = pushed[0]
    repository = ref.rpartition(":")[0]
    cli.ok("pull", ref)  # the image has a digest reference in the repository
    other = f"cli-{uid}/other:v1"
    cli.ok("tag", ref, other)
    try:
        lines = cli.ok("rmi", ref).splitlines()
        assert lines[0] == f"Untagged: {ref}"
        assert len(lines) == 2, lines
        assert re.fullmatch(rf"Untagged: {re.escape(repository)}@{DIGEST}", lines[1])
    finally:
        cli.ok("tag", other, ref)
        cli.ok("rmi", other)


def test_pull_unknown_tag_one_line_error(cli: Cli, registry: str, uid: str) -> None:
    ref = f"{registry}/cli-{uid}/flat:nope"
    proc = cli("pull", ref)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"Error response from daemon: manifest for {ref} not found: ")
    assert proc.stderr.count("\n") == 1


def test_pull_unknown_tag_error_in_docker_words(cli: Cli, registry: str, uid: str) -> None:
    ref = f"{registry}/cli-{uid}/flat:nope"
    assert cli.fails("pull", ref) == (
        f"Error response from daemon: manifest for {ref} not found: "
        "manifest unknown: manifest unknown"
    )


@pytest.mark.parametrize(
    ("reference", "repository"),
    [("UPPER", "library/UPPER"), ("lower/UPPER", "lower/UPPER"), ("lower/Case:v1", "lower/Case")],
    ids=["official", "path", "tagged"],
)
def test_pull_uppercase_invalid_reference_format(cli: Cli, reference: str, repository: str) -> None:
    # As docker's ParseNormalizedNamed: an uppercase *first* component followed by a slash
    # ("UPPER/case") is a registry host, not a repository, and is not a format error.
    assert cli.fails("pull", reference) == (
        f"invalid reference format: repository name ({repository}) must be lowercase"
    )


# --- login / logout -------------------------------------------------------------------


def test_login_wrong_password_stores_nothing(
    cli: Cli, auth_registry: tuple[str, str, str], tmp_path: Path
) -> None:
    address, user, _password = auth_registry
    proc = cli("login", "-u", user, "--password-stdin", address, stdin=b"wrong\n", config=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error response from daemon: ")
    assert "unauthorized" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "config.json").exists()


def test_push_needs_login_and_logout_forgets(
    cli: Cli, api: Client, auth_registry: tuple[str, str, str], tmp_path: Path, uid: str
) -> None:
    address, user, password = auth_registry
    ref = f"{address}/cli-{uid}/busybox:v1"
    cli.ok("tag", "busybox", ref)
    try:
        assert "unauthorized" in cli.fails("push", ref, config=tmp_path)

        proc = cli(
            "login", "-u", user, "--password-stdin", address,
            stdin=f"{password}\n".encode(), config=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "Login Succeeded\n"
        assert "WARNING! Your credentials are stored unencrypted" in proc.stderr
        config = json.loads((tmp_path / "config.json").read_text())
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        assert config == {"auths": {address: {"auth": token}}}
        assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o600

        out = cli.ok("push", ref, config=tmp_path)
        assert re.search(rf"^v1: digest: {DIGEST} size: \d+$", out, re.M), out

        assert cli.ok("logout", address, config=tmp_path) == (
            f"Removing login credentials for {address}\n"
        )
        assert json.loads((tmp_path / "config.json").read_text()) == {"auths": {}}
        assert "unauthorized" in cli.fails("push", ref, config=tmp_path)
    finally:
        api.request("DELETE", f"/images/{ref}")


# --- search ---------------------------------------------------------------------------


def test_search_lists_pushed_repository(
    cli: Cli, pushed: tuple[str, subprocess.CompletedProcess[str]], registry: str, uid: str
) -> None:
    assert pushed[1].returncode == 0
    header, *rows = cli.ok("search", f"{registry}/cli-{uid}").splitlines()
    assert header.split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert [row.split() for row in rows] == [[f"{registry}/cli-{uid}/flat", "0"]]


# --- commit / history -----------------------------------------------------------------


def test_commit_applies_change_and_history_shows_comment(cli: Cli, app: str, uid: str) -> None:
    assert cli.ok("run", "--rm", app) == f"payload-{uid}\n"
    fmt = "{{json .Config.Cmd}}|{{.Author}}|{{.Comment}}"
    assert cli.ok("image", "inspect", "--format", fmt, app) == (
        f'["cat","/x"]|Berth Tester <t@example.com>|comment-{uid}\n'
    )
    header, *rows = cli.ok("history", app).splitlines()
    assert header.split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert rows[0].endswith(f"comment-{uid}")
    assert f"echo payload-{uid} > /x" in rows[0]
    comments = cli.ok("history", "--format", "{{.Comment}}", app).splitlines()
    assert comments[0] == f"comment-{uid}"


# --- save / load / export -------------------------------------------------------------


def test_save_file_rmi_load_file_then_runs(cli: Cli, app: str, uid: str, tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    assert cli.ok("save", "-o", str(archive), app) == ""
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == [app]
    cli.ok("rmi", app)
    assert cli.ok("load", "-i", str(archive)) == f"Loaded image: {app}\n"
    assert cli.ok("run", "--rm", app) == f"payload-{uid}\n"


def test_save_to_pipe_load_from_stdin(cli: Cli, app: str, uid: str) -> None:
    saver = subprocess.Popen(
        [BERTH, "save", app], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env
    )
    archive, errors = saver.communicate(timeout=60)
    assert saver.returncode == 0, errors
    assert b"Traceback" not in errors
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "manifest.json" in tar.getnames()
    cli.ok("rmi", app)
    assert cli.ok("load", stdin=archive) == f"Loaded image: {app}\n"
    assert cli.ok("run", "--rm", app) == f"payload-{uid}\n"


def test_export_file_holds_what_the_container_wrote(exported: Path, uid: str) -> None:
    with tarfile.open(exported) as tar:
        names = {name.removeprefix("./"): name for name in tar.getnames()}
        assert "bin/busybox" in names
        member = tar.extractfile(names["x"])
        assert member is not None and member.read() == f"payload-{uid}\n".encode()


# --- prune ----------------------------------------------------------------------------


def test_image_prune_removes_dangling_commit(cli: Cli, api: Client, uid: str) -> None:
    label = f"berth-cli-prune={uid}"
    name = f"cli-img-dangling-{uid}"
    cli.ok("run", "--name", name, "busybox", "sh", "-c", f"echo {uid} > /y")
    try:
        image_id = cli.ok("commit", "-c", f"LABEL {label}", name).strip()
    finally:
        api.request("DELETE", f"/containers/{name}", params={"force": 1})
    assert re.fullmatch(DIGEST, image_id)
    assert (
        cli.ok("images", "-q", "--filter", "dangling=true", "--no-trunc").split().count(image_id)
        == 1
    )

    out = cli.ok("image", "prune", "-f", "--filter", f"label={label}")
    # As dockerd: the image, then the layer (its chain id) that went with it.
    head, deleted, layer, blank, total = out.splitlines()
    assert (head, deleted, blank) == ("Deleted Images:", f"deleted: {image_id}", "")
    assert re.fullmatch("deleted: " + DIGEST, layer), layer
    assert re.fullmatch(RECLAIMED, total), total
    assert cli("image", "inspect", image_id).returncode == 1

    again = cli.ok("image", "prune", "-f", "--filter", f"label={label}")
    assert again == "Total reclaimed space: 0B\n"


def test_container_prune_removes_stopped_containers(cli: Cli, api: Client, uid: str) -> None:
    label = f"berth-cli-prune={uid}"
    cid = cli.ok("run", "-d", "-l", label, "busybox", "true").strip()
    assert cli.ok("wait", cid) == "0\n"
    running = cli.ok("run", "-d", "-l", label, "busybox", "sleep", "30").strip()
    try:
        out = cli.ok("container", "prune", "-f", "--filter", f"label={label}")
        head, deleted, blank, total = out.splitlines()
        assert (head, deleted, blank) == ("Deleted Containers:", cid, "")
        assert re.fullmatch(RECLAIMED, total), total
        assert api.request("GET", f"/containers/{cid}/json")[0] == 404
        assert api.request("GET", f"/containers/{running}/json")[0] == 200
    finally:
        api.request("DELETE", f"/containers/{running}", params={"force": 1})


# --- berthd faults these commands once revealed (a daemon of the test's own) ------------


def test_push_of_many_layers_keeps_berthd_alive(
    fresh_daemon: Daemon, registry: str, tmp_path: Path
) -> None:
    cli = Cli(fresh_daemon, tmp_path)
    image = "busybox"
    for i in range(3):  # four layers: busybox and three commits
        name = f"cli-img-layer-{i}"
        cli.ok("run", "--name", name, image, "sh", "-c", f"echo {i} > /f{i}")
        image = cli.ok("commit", name).strip()
        cli.ok("rm", name)
    ref = f"{registry}/cli-{uuid.uuid4().hex[:10]}/layers:v1"
    cli.ok("tag", image, ref)
    # Parallel layer pushes wrote progress concurrently (trio.BusyResourceError), which
    # took berthd down within about 4 pushes of such an image; 15 make a regression show.
    for _ in range(15):
        proc = cli("push", ref)
        assert proc.returncode == 0, proc.stderr
    assert fresh_daemon.proc is not None and fresh_daemon.proc.poll() is None


def test_save_to_a_pipe_closed_early_lets_berthd_stop(fresh_daemon: Daemon, tmp_path: Path) -> None:
    # A client gone mid-stream once left save's writer thread blocked on a full pipe: the
    # request never ended and berthd ignored SIGTERM.
    cli = Cli(fresh_daemon, tmp_path)
    saver = subprocess.Popen(
        [BERTH, "save", "busybox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env
    )
    assert saver.stdout is not None
    assert len(saver.stdout.read(10)) == 10
    saver.stdout.close()
    _, errors = saver.communicate(timeout=30)
    assert b"Traceback" not in errors
    try:
        assert fresh_daemon.stop(timeout=5) == 0
    finally:
        if fresh_daemon.proc is not None:
            fresh_daemon.kill9()


def test_run_pulls_a_missing_image(daemon: Daemon, registry: str) -> None:
    import subprocess as sp

    from tests.daemon import env_with_host

    api = daemon.client
    ref = f"{registry}/cli-autopull/busybox:1"
    api.call("POST", "/images/busybox/tag", params={"repo": ref.rsplit(":", 1)[0], "tag": "1"})
    status, _ = api.request("POST", f"/images/{ref.rsplit(':', 1)[0]}/push", params={"tag": "1"})
    assert status == 200
    api.call("DELETE", f"/images/{ref}")
    berth = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "berth")
    r = sp.run(
        [berth, "run", "--rm", ref, "echo", "pulled-and-ran"],
        env=env_with_host(daemon),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "pulled-and-ran\n"
    assert f"Unable to find image '{ref}' locally" in r.stderr
    assert "Status: Downloaded newer image" in r.stderr
    assert "Traceback" not in r.stderr
