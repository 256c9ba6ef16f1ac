"""``berth volume`` and run's storage flags (``-v``, ``--mount``, ``--tmpfs``,
``--volumes-from``, ``--read-only``) against a real berthd."""

from __future__ import annotations

import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import Client, Daemon
from tests.integration.test_cli import BERTH, Cli

pytestmark = pytest.mark.root

HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def cli(daemon: Daemon) -> Cli:
    return Cli(daemon)


@pytest.fixture
def names(api: Client) -> Iterator[Callable[[str], str]]:
    """Unique names; containers (with their anonymous volumes), then volumes of those
    names are removed afterwards."""
    made: list[str] = []

    def make(kind: str) -> str:
        made.append(f"cli{kind}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for n in made:
        api.request("DELETE", f"/containers/{n}", params={"force": 1, "v": 1})
    for n in made:
        api.request("DELETE", f"/volumes/{n}", params={"force": 1})


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="berth-cli-vol-") as d:
        yield Path(d)


# --- volume create / ls / inspect / rm ------------------------------------------------------


def test_volume_lifecycle(cli: Cli, names: Callable[[str], str]) -> None:
    vol = names("vol")
    assert cli.ok("volume", "create", "--label", "cli=yes", vol) == vol + "\n"
    table = cli.ok("volume", "ls")
    assert table.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert ["local", vol] in [line.split() for line in table.splitlines()]
    assert cli.ok("volume", "ls", "-q", "--filter", f"name={vol}") == vol + "\n"
    assert f"{vol} cli=yes\n" in cli.ok(
        "volume", "ls", "-f", "label=cli=yes", "--format", "{{.Name}} {{.Labels}}"
    )
    shown = cli.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.cli}}", vol)
    assert shown == f"{vol} local yes\n"
    assert cli.ok("inspect", "-f", "{{.Name}}", vol) == vol + "\n"  # falls back to volumes
    assert cli.ok("inspect", "--type", "volume", "-f", "{{.Driver}}", vol) == "local\n"

    assert cli.ok("volume", "rm", vol) == vol + "\n"
    gone = cli("volume", "inspect", vol)
    assert (gone.returncode, gone.stdout) == (1, "[]\n")
    assert gone.stderr.startswith("Error response from daemon: ")


def test_volume_create_anonymous_and_by_flag(cli: Cli, names: Callable[[str], str]) -> None:
    anonymous = cli.ok("volume", "create").strip()
    assert HEX64.fullmatch(anonymous)
    vol = names("vol")
    assert cli.ok("volume", "create", "--name", vol) == vol + "\n"
    both = cli("volume", "create", "--name", vol, "other")
    assert both.returncode == 1
    assert both.stderr.startswith("conflicting options")
    assert cli.ok("volume", "rm", anonymous) == anonymous + "\n"


# --- run -v / --mount ----------------------------------------------------------------------


def test_named_volume_shared_between_runs(cli: Cli, names: Callable[[str], str]) -> None:
    vol = names("vol")
    cli.ok("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert cli.ok("run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "cat", "/data/f") == "kept\n"
    read_only = cli("run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "touch", "/data/g")
    assert read_only.returncode != 0
    via_mount = cli.ok(
        "run", "--rm", "--mount", f"type=volume,src={vol},dst=/v,readonly", "busybox",
        "cat", "/v/f",
    )  # fmt: skip
    assert via_mount == "kept\n"
    assert ["local", vol] in [line.split() for line in cli.ok("volume", "ls").splitlines()]


def test_volume_in_use_is_not_removed(cli: Cli, names: Callable[[str], str]) -> None:
    vol, ctr = names("vol"), names("ctr")
    cli.ok("create", "--name", ctr, "-v", f"{vol}:/data", "busybox", "true")
    proc = cli("volume", "rm", vol)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("Error response from daemon: ")
    assert cli.ok("volume", "ls", "-q", "-f", f"name={vol}") == vol + "\n"


def test_bind_mounts_absolute_relative_and_mount_flag(
    cli: Cli, names: Callable[[str], str], host_dir: Path
) -> None:
    (host_dir / "in.txt").write_text("from-host\n")
    assert cli.ok("run", "--rm", "-v", f"{host_dir}:/h", "busybox", "cat", "/h/in.txt") == (
        "from-host\n"
    )
    cli.ok("run", "--rm", "-v", f"{host_dir}:/h", "busybox", "sh", "-c", "echo out > /h/out.txt")
    assert (host_dir / "out.txt").read_text() == "out\n"

    # ./relative sources resolve against the CLI's working directory, as in docker.
    proc = cli_in(cli, host_dir, "run", "--rm", "-v", "./in.txt:/f", "busybox", "cat", "/f")
    assert "Traceback" not in proc.stderr
    assert (proc.returncode, proc.stdout) == (0, "from-host\n")

    mount = f"type=bind,source={host_dir},target=/m,readonly"
    assert cli.ok("run", "--rm", "--mount", mount, "busybox", "cat", "/m/in.txt") == ("from-host\n")
    denied = cli("run", "--rm", "--mount", mount, "busybox", "touch", "/m/x")
    assert denied.returncode != 0
    assert not (host_dir / "x").exists()


def cli_in(cli: Cli, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``berth`` run from ``cwd`` (relative bind sources start there)."""
    return subprocess.run(
        [BERTH, *args], cwd=cwd, env=cli.env, capture_output=True, text=True, timeout=30
    )


def test_anonymous_volume_and_prune(cli: Cli, names: Callable[[str], str]) -> None:
    ctr = names("ctr")
    cli.ok("run", "--name", ctr, "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f")
    fmt = "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}"
    kind, anonymous, destination = cli.ok("inspect", "-f", fmt, ctr).split()
    assert (kind, destination) == ("volume", "/data")
    assert HEX64.fullmatch(anonymous)
    assert anonymous in cli.ok("volume", "ls", "-q").split()

    in_use = cli.ok("volume", "prune", "-f")  # the stopped container still uses it
    assert anonymous not in in_use
    assert re.search(r"(^|\n)Total reclaimed space: [0-9.]+k?M?G?B\n$", in_use), in_use

    cli.ok("rm", ctr)
    pruned = cli.ok("volume", "prune", "-f")
    assert pruned.startswith("Deleted Volumes:\n")
    assert anonymous in pruned.splitlines()
    assert re.search(r"\n\nTotal reclaimed space: \d", pruned)
    assert anonymous not in cli.ok("volume", "ls", "-q").split()


def test_volume_prune_all_takes_named_volumes(cli: Cli, names: Callable[[str], str]) -> None:
    vol = names("vol")
    label = f"prune={uuid.uuid4().hex[:6]}"
    cli.ok("volume", "create", "--label", label, vol)
    assert vol not in cli.ok("volume", "prune", "-f", "--filter", f"label={label}")
    pruned = cli.ok("volume", "prune", "-af", "--filter", f"label={label}")
    assert pruned.startswith(f"Deleted Volumes:\n{vol}\n\nTotal reclaimed space: ")
    assert cli.ok("volume", "ls", "-q", "-f", f"name={vol}") == ""


# --- tmpfs, read-only, volumes-from ----------------------------------------------------------


def test_tmpfs_flag_and_mount(cli: Cli) -> None:
    out = cli.ok(
        "run", "--rm", "--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,dst=/t",
        "busybox", "sh", "-c", "grep -E ' /(scratch|t) ' /proc/mounts",
    )  # fmt: skip
    points = {line.split()[1]: line.split()[2] for line in out.splitlines()}
    assert points == {"/scratch": "tmpfs", "/t": "tmpfs"}


def test_read_only_root_filesystem(cli: Cli) -> None:
    proc = cli("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr
    writable = cli.ok(
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/w",
        "busybox",
        "sh",
        "-c",
        "touch /w/x && echo ok",
    )
    assert writable == "ok\n"


def test_volumes_from(cli: Cli, names: Callable[[str], str]) -> None:
    vol, source = names("vol"), names("ctr")
    cli.ok(
        "run", "--name", source, "-v", f"{vol}:/shared", "busybox", "sh", "-c", "echo s > /shared/f"
    )
    assert cli.ok("run", "--rm", "--volumes-from", source, "busybox", "cat", "/shared/f") == "s\n"
    denied = cli("run", "--rm", "--volumes-from", f"{source}:ro", "busybox", "touch", "/shared/g")
    assert denied.returncode != 0


def test_bad_storage_flags_are_usage_errors(cli: Cli) -> None:
    proc = cli("run", "--mount", "type=bind,dst=/x,bogus=1", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (
        125,
        'berth: invalid argument "type=bind,dst=/x,bogus=1" for "--mount" flag: unexpected key '
        "'bogus' in 'bogus=1'. See 'berth run --help'.\n",
    )
    proc = cli("run", "-v", ":/a", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (
        125,
        "berth: invalid spec: :/a: empty section between colons. See 'berth run --help'.\n",
    )
