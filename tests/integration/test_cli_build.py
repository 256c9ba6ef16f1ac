"""``berth build`` against the session's berthd: the context it sends (``.dockerignore``,
``-f`` outside the context, ``-f -``, ``-`` with a Dockerfile or a tar), what it prints
(docker's classic builder output, ``-q``), ``--iidfile``, build args, labels, targets,
and a failing RUN (its exit code, nothing tagged).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.daemon import Client, Daemon, env_with_host

pytestmark = pytest.mark.root

BERTH = str(Path(sys.executable).with_name("berth"))
IMAGE_ID = r"sha256:[0-9a-f]{64}"


class Cli:
    """Runs ``berth`` against one daemon, with a ``config.json`` directory of its own."""

    def __init__(self, daemon: Daemon, config: Path) -> None:
        self.env = {**env_with_host(daemon), "DOCKER_CONFIG": str(config)}

    def __call__(
        self, *args: str, stdin: bytes = b"", cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [BERTH, *args],
            input=stdin,
            env=self.env,
            cwd=cwd,
            capture_output=True,
            timeout=120,
            check=False,
        )
        stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode()
        assert "Traceback" not in stderr, stderr
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def ok(self, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> str:
        proc = self(*args, stdin=stdin, cwd=cwd)
        assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout


@pytest.fixture(scope="module")
def cli(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(daemon, tmp_path_factory.mktemp("berth-config"))


def tag() -> str:
    return f"clibuild{uuid.uuid4().hex[:10]}:latest"


def run_output(api: Client, image: str, cmd: list[str] | None = None) -> str:
    cid = api.create(image=image, cmd=cmd)
    api.call("POST", f"/containers/{cid}/start")
    api.wait(cid)
    out = b"".join(data for _, data in api.logs(cid, stdout=1, stderr=1)).decode()
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    return out


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "secret.md").write_text("do not send\n")
    (root / "sub" / "b.txt").write_text("b\n")
    (root / "sub" / "skip.log").write_text("log\n")
    (root / ".dockerignore").write_text("*.md\n**/*.log\n")
    return root


def test_build_prints_classic_output_honours_dockerignore_and_tags(
    cli: Cli, api: Client, context: Path
) -> None:
    (context / "Dockerfile").write_text(
        "FROM busybox\nCOPY . /ctx/\nRUN echo step-output\nCMD find /ctx -type f\n"
    )
    (context / "link").symlink_to("/etc/hostname")  # sent as a link, never followed
    name = tag()
    out = cli.ok("build", "-t", name, str(context))
    assert out.startswith("Sending build context to Docker daemon ")
    assert "\r\r\nStep 1/4 : FROM busybox\n" in out
    assert "step-output\n" in out
    built = re.search(r"Successfully built ([0-9a-f]{12})\n", out)
    assert built is not None, out
    assert f"Successfully tagged {name}\n" in out
    assert api.call("GET", f"/images/{name}/json")["Id"].startswith(f"sha256:{built.group(1)}")
    files = set(run_output(api, name).split())
    assert {"/ctx/Dockerfile", "/ctx/a.txt", "/ctx/sub/b.txt"} <= files, files
    assert not {"/ctx/secret.md", "/ctx/sub/skip.log"} & files  # left out by .dockerignore
    link = run_output(api, name, ["readlink", "/ctx/link"])
    assert link == "/etc/hostname\n"


def test_build_quiet_prints_only_the_id_and_iidfile_matches(
    cli: Cli, api: Client, context: Path, tmp_path: Path
) -> None:
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo noisy\n")
    iid = tmp_path / "iid"
    name = tag()
    out = cli.ok("build", "-q", "--iidfile", str(iid), "-t", name, str(context))
    assert re.fullmatch(IMAGE_ID + "\n", out), out
    assert iid.read_text() == out
    assert api.call("GET", f"/images/{name}/json")["Id"] == out.strip()
    again = tmp_path / "iid2"
    cli.ok("build", "--iidfile", str(again), str(context))
    assert again.read_text() == out.strip()  # cached: the same image


def test_build_dockerfile_outside_the_context(
    cli: Cli, api: Client, context: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "Dockerfile.out"
    outside.parent.mkdir()
    outside.write_text("FROM busybox\nCOPY . /ctx/\nCMD ls -A /ctx\n")
    name = tag()
    cli.ok("build", "-f", str(outside), "-t", name, str(context))
    listed = set(run_output(api, name).split())
    assert {"a.txt", "sub"} <= listed, listed
    assert "secret.md" not in listed


def test_build_generated_dockerfile_name_is_not_copied(
    cli: Cli, api: Client, context: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "Dockerfile.out"
    outside.write_text("FROM busybox\nCOPY . /ctx/\nCMD ls -A /ctx\n")
    name = tag()
    cli.ok("build", "-f", str(outside), "-t", name, str(context))
    listed = run_output(api, name).split()
    assert not [n for n in listed if "dockerfile." in n], listed


def test_build_copies_dotfiles_under_their_names(cli: Cli, api: Client, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\nCMD ls -A /ctx\n")
    name = tag()
    cli.ok("build", "-t", name, str(context))
    assert ".dockerignore" in run_output(api, name).split()


def test_build_dockerfile_from_stdin_with_a_directory(cli: Cli, api: Client, context: Path) -> None:
    name = tag()
    cli.ok(
        "build",
        "-t",
        name,
        "-f",
        "-",
        str(context),
        stdin=b"FROM busybox\nCOPY a.txt /\nCMD cat /a.txt\n",
    )
    assert run_output(api, name) == "hello\n"


def test_build_stdin_dockerfile_without_context(cli: Cli, api: Client) -> None:
    name = tag()
    cli.ok("build", "-t", name, "-", stdin=b"FROM busybox\nCMD echo from-stdin\n")
    assert run_output(api, name) == "from-stdin\n"


def test_build_stdin_tar_context_with_dockerfile_flag(cli: Cli, api: Client) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member, data in {
            "build/Dockerfile.alt": b"FROM busybox\nCOPY x /x\nCMD cat /x\n",
            "x": b"in-tar\n",
        }.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    name = tag()
    cli.ok("build", "-t", name, "-f", "build/Dockerfile.alt", "-", stdin=buf.getvalue())
    assert run_output(api, name) == "in-tar\n"


def test_build_args_labels_and_target(cli: Cli, api: Client, context: Path) -> None:
    (context / "Dockerfile").write_text(
        "FROM busybox AS first\nARG GREETING=default\nRUN echo $GREETING > /g\n"
        "FROM busybox AS second\nRUN echo second > /g\n"
    )
    name = tag()
    cli.ok(
        "build",
        "--build-arg",
        "GREETING=hi-there",
        "--label",
        "org.example.k=v",
        "--target",
        "first",
        "-t",
        name,
        str(context),
    )
    assert run_output(api, name, ["cat", "/g"]) == "hi-there\n"
    assert api.call("GET", f"/images/{name}/json")["Config"]["Labels"] == {"org.example.k": "v"}


def test_build_failing_run_fails_removes_stale_iidfile_and_tags_nothing(
    cli: Cli, api: Client, context: Path, tmp_path: Path
) -> None:
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo before-failure && exit 3\n")
    name = tag()
    iid = tmp_path / "iid"
    iid.write_text("stale")
    proc = cli("build", "--iidfile", str(iid), "-t", name, str(context))
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert "before-failure" in proc.stdout
    assert proc.stderr == (
        "The command '/bin/sh -c echo before-failure && exit 3' returned a non-zero code: 3\n"
    )
    assert not iid.exists()
    status, _ = api.request("GET", f"/images/{name}/json")
    assert status == 404


def test_build_failing_run_exits_with_the_run_status(cli: Cli, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    assert cli("build", str(context)).returncode == 3


def test_build_bad_context_reports_before_contacting_the_daemon(cli: Cli, tmp_path: Path) -> None:
    proc = cli("build", str(tmp_path / "missing"))
    assert proc.returncode == 1
    assert proc.stderr == f'unable to prepare context: path "{tmp_path}/missing" not found\n'
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "ctx" / ".dockerignore").write_text("!\n")
    proc = cli("build", str(tmp_path / "ctx"))
    assert proc.returncode == 1
    assert proc.stderr == 'error checking context: illegal exclusion pattern: "!"\n'


def test_build_unknown_instruction_is_the_daemons_message(cli: Cli, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox\nFROBNICATE now\n")
    proc = cli("build", str(context))
    assert proc.returncode == 1
    message = proc.stderr.strip()
    assert message and "\n" not in message
    assert "frobnicate" in message.lower(), message
    assert json.dumps(message)  # one plain line, no JSON leaking through


def test_builder_prune_clears_the_cache(cli: Cli, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo prune-me > /p\n")
    cli.ok("build", "-q", str(context))
    out = cli.ok("builder", "prune", "-f")
    assert out.startswith("Deleted build cache objects:\n"), out
    assert "Total reclaimed space:" in out
    again = cli.ok("build", str(context))
    assert "Using cache" not in again  # the step ran again
