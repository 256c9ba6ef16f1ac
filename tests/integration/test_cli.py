"""The ``berth`` CLI against the session's real berthd: output, exit codes, errors."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import REPO, Client, Daemon, env_with_host

pytestmark = pytest.mark.root

BERTH = str(Path(sys.executable).with_name("berth"))
MKBUSYBOX = str(REPO / "deploy" / "mkbusybox")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


class Cli:
    """Runs ``berth`` with ``BERTH_HOST`` pointing at one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.env = env_with_host(daemon)

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [BERTH, *args],
            input=stdin,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def ok(self, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> str:
        """Run ``berth``, check it exited 0, return its stdout."""
        proc = self(*args, env=env, timeout=timeout)
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
        return proc.stdout


@pytest.fixture(scope="module")
def cli(daemon: Daemon) -> Cli:
    return Cli(daemon)


@pytest.fixture
def name(api: Client) -> Iterator[Callable[[], str]]:
    """A factory of unique container names; the containers are removed afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"cli-{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for n in made:
        api.request("DELETE", f"/containers/{n}", params={"force": 1})


def poll(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- run ------------------------------------------------------------------------------


def test_run_foreground_output_and_exit_code_propagated(cli: Cli, name: Callable[[], str]) -> None:
    proc = cli("run", "--name", name(), "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == "out\n"
    assert proc.stderr == "err\n"


def test_run_rm_leaves_no_container(cli: Cli, api: Client, name: Callable[[], str]) -> None:
    n = name()
    assert cli.ok("run", "--rm", "--name", n, "busybox", "echo", "hello") == "hello\n"
    assert cli.ok("ps", "-a", "-q", "--filter", f"name={n}") == ""
    assert api.request("GET", f"/containers/{n}/json")[0] == 404


@pytest.fixture(scope="module")
def configured(cli: Cli, daemon: Daemon) -> Iterator[str]:
    """A detached container created with many run options."""
    n = f"cli-opts-{uuid.uuid4().hex[:8]}"
    cli.ok(
        "run", "-d", "--name", n, "--restart", "always", "-e", "A=1", "-l", "k=v",
        "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "--init",
        "--stop-timeout", "2", "--stop-signal", "SIGINT", "--hostname", "h",
        "-w", "/tmp", "-u", "nobody", "busybox", "sleep", "30",
    )  # fmt: skip
    yield n
    daemon.client.request("DELETE", f"/containers/{n}", params={"force": 1})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.HostConfig.Memory}}", "67108864"),
        ("{{.HostConfig.NanoCpus}}", "500000000"),
        ("{{.HostConfig.PidsLimit}}", "50"),
        ("{{.HostConfig.Init}}", "true"),
        ("{{.HostConfig.RestartPolicy.Name}}", "always"),
        ('{{range .Config.Env}}{{if eq . "A=1"}}found{{end}}{{end}}', "found"),
        ("{{json .Config.Labels}}", '{"k":"v"}'),
        ("{{.Config.StopTimeout}}", "2"),
        ("{{.Config.StopSignal}}", "SIGINT"),
        ("{{.Config.Hostname}}", "h"),
        ("{{.Config.WorkingDir}}", "/tmp"),
        ("{{.Config.User}}", "nobody"),
        ("{{.State.Status}}", "running"),
    ],
    ids=[
        "memory",
        "nanocpus",
        "pids",
        "init",
        "restart",
        "env",
        "labels",
        "stop-timeout",
        "stop-signal",
        "hostname",
        "workdir",
        "user",
        "running",
    ],
)
def test_run_detached_options_shown_by_inspect_format(
    cli: Cli, configured: str, template: str, expected: str
) -> None:
    assert cli.ok("inspect", "--format", template, configured) == expected + "\n"


def test_run_env_file_sets_and_passes_through_variables(
    cli: Cli, name: Callable[[], str], tmp_path: Path
) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFOO=bar\n\nBAZ=qux quux\nPASSTHRU\n")
    out = cli.ok(
        "run", "--rm", "--name", name(), "--env-file", str(env_file), "busybox",
        "sh", "-c", 'echo "$FOO|$BAZ|$PASSTHRU"',
        env={"PASSTHRU": "yes"},
    )  # fmt: skip
    assert out == "bar|qux quux|yes\n"


def test_run_restart_delay_in_inspect_and_applied(
    cli: Cli, api: Client, name: Callable[[], str]
) -> None:
    n = name()
    cli.ok(
        "run", "-d", "--name", n, "--restart", "on-failure:2", "--restart-delay", "200ms",
        "--restart-max-delay", "200ms", "busybox", "sh", "-c", "exit 1",
    )  # fmt: skip
    policy = cli.ok(
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Delay}} {{.HostConfig.RestartPolicy.MaxDelay}}",
        n,
    )
    assert policy == "200000000 200000000\n"
    info = api.wait_for(
        n, lambda i: i["RestartCount"] == 2 and i["State"]["Status"] == "exited", timeout=10
    )
    assert info["State"]["ExitCode"] == 1


# --- ps -------------------------------------------------------------------------------


def test_ps_table_quiet_filter_format_and_no_trunc(cli: Cli, name: Callable[[], str]) -> None:
    n = name()
    cid = cli.ok("run", "-d", "--name", n, "busybox", "sleep", "30").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)

    header, *rows = cli.ok("ps", "--filter", f"name={n}").splitlines()
    assert header.split() == [
        *("CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    ]
    assert len(rows) == 1
    assert rows[0].startswith(cid[:12] + "   busybox   ")
    assert '"sleep 30"' in rows[0] and " Up " in rows[0] and rows[0].endswith(n)

    assert cid[:12] in cli.ok("ps", "-q").splitlines()
    assert cli.ok("ps", "--filter", f"name={n}", "--format", "{{.ID}} {{.Names}}") == (
        f"{cid[:12]} {n}\n"
    )
    rows = cli.ok("ps", "--no-trunc", "--filter", f"name={n}").splitlines()[1:]
    assert len(rows) == 1 and rows[0].startswith(cid + "   ")


def test_ps_all_includes_exited_containers(cli: Cli, name: Callable[[], str]) -> None:
    n = name()
    assert cli("run", "--name", n, "busybox", "sh", "-c", "exit 2").returncode == 2
    assert cli.ok("ps", "-q", "--filter", f"name={n}") == ""
    rows = cli.ok("ps", "-a", "--filter", f"name={n}").splitlines()[1:]
    assert len(rows) == 1 and "Exited (2)" in rows[0]


# --- logs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged(cli: Cli, daemon: Daemon) -> Iterator[str]:
    """An exited container that wrote one stderr line, then line1..line5 on stdout."""
    n = f"cli-logs-{uuid.uuid4().hex[:8]}"
    script = "echo err >&2; sleep 0.1; for i in 1 2 3 4 5; do echo line$i; done"
    cli.ok("run", "-d", "--name", n, "busybox", "sh", "-c", script)
    assert cli.ok("wait", n) == "0\n"
    yield n
    daemon.client.request("DELETE", f"/containers/{n}", params={"force": 1})


def test_logs_splits_stdout_and_stderr(cli: Cli, logged: str) -> None:
    proc = cli("logs", logged)
    assert proc.returncode == 0
    assert proc.stdout == "".join(f"line{i}\n" for i in range(1, 6))
    assert proc.stderr == "err\n"


def test_logs_tail(cli: Cli, logged: str) -> None:
    assert cli.ok("logs", "--tail", "2", logged) == "line4\nline5\n"


def test_logs_timestamps(cli: Cli, logged: str) -> None:
    out = cli.ok("logs", "-t", "--tail", "2", logged)
    assert re.fullmatch(rf"{STAMP} line4\n{STAMP} line5\n", out), out


def test_logs_since(cli: Cli, logged: str) -> None:
    assert cli.ok("logs", "--since", "1h", logged).count("\n") == 5
    future = f"{time.time() + 60:.3f}"
    proc = cli("logs", "--since", future, logged)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_logs_follow_returns_when_container_exits(cli: Cli, name: Callable[[], str]) -> None:
    n = name()
    cli.ok("run", "-d", "--name", n, "busybox", "sh", "-c", "echo a; sleep 0.5; echo b")
    assert cli.ok("logs", "-f", n, timeout=15) == "a\nb\n"


# --- lifecycle ------------------------------------------------------------------------


def test_stop_start_restart_kill_rm(cli: Cli, name: Callable[[], str]) -> None:
    n = name()
    cli.ok("run", "-d", "--init", "--name", n, "busybox", "sleep", "30")

    def state() -> str:
        return cli.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", n).strip()

    assert cli.ok("stop", "-t", "1", n) == f"{n}\n"
    assert state() == "exited 143"
    assert cli.ok("start", n) == f"{n}\n"
    assert state() == "running 0"
    pid = cli.ok("inspect", "--format", "{{.State.Pid}}", n)
    assert cli.ok("restart", "-t", "1", n) == f"{n}\n"
    assert state() == "running 0"
    assert cli.ok("inspect", "--format", "{{.State.Pid}}", n) != pid

    assert cli.ok("kill", "-s", "SIGUSR1", n) == f"{n}\n"
    assert cli.ok("wait", n) == "138\n"  # tini passes USR1 on: 128 + 10
    proc = cli("kill", "-s", "KILL", n)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error response from daemon: ")
    assert "is not running" in proc.stderr and proc.stderr.count("\n") == 1

    cli.ok("start", n)
    assert cli.ok("rm", "-f", n) == f"{n}\n"
    proc = cli("inspect", n)
    assert proc.returncode == 1
    assert proc.stderr == f"Error: No such object: {n}\n"


def test_wait_prints_exit_code(cli: Cli, name: Callable[[], str]) -> None:
    n = name()
    cli.ok("run", "-d", "--name", n, "busybox", "sh", "-c", "exit 7")
    assert cli.ok("wait", n) == "7\n"


# --- events ---------------------------------------------------------------------------


def test_events_since_until_filter_default_format(cli: Cli, name: Callable[[], str]) -> None:
    n = name()
    since = f"{time.time() - 1:.3f}"
    cid = cli.ok("run", "-d", "--name", n, "busybox", "sh", "-c", "exit 7").strip()
    assert cli.ok("wait", n) == "7\n"
    until = f"{time.time() + 0.2:.3f}"

    lines = cli.ok(
        "events", "--since", since, "--until", until, "--filter", f"container={n}", timeout=15
    ).splitlines()
    actions = [line.split()[2] for line in lines]
    assert actions == ["create", "start", "die"], lines
    assert re.fullmatch(
        rf"{STAMP} container die {cid} \(exitCode=7, image=busybox, name={re.escape(n)}\)",
        lines[-1],
    ), lines[-1]

    only_die = cli.ok(
        "events",
        "--since", since, "--until", until,
        "--filter", f"container={n}", "--filter", "event=die",
    ).splitlines()  # fmt: skip
    assert only_die == lines[-1:]


# --- images ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "busybox.tar"
    subprocess.run([sys.executable, MKBUSYBOX, str(path)], check=True)
    return path


def test_images_lists_busybox(cli: Cli) -> None:
    header, *rows = cli.ok("images").splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(row.split()[:2] == ["busybox", "latest"] for row in rows)
    ids = cli.ok("images", "-q").split()
    assert ids and all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)


def test_import_file_and_stdin_tag_rmi(cli: Cli, busybox_tar: Path) -> None:
    repo = f"cli-img-{uuid.uuid4().hex[:8]}"
    from_file = cli.ok("import", str(busybox_tar), f"{repo}:file").strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", from_file)

    maker = subprocess.Popen([sys.executable, MKBUSYBOX, "-"], stdout=subprocess.PIPE)
    importer = subprocess.run(
        [BERTH, "import", "-", f"{repo}:stdin"],
        stdin=maker.stdout,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert maker.stdout is not None
    maker.stdout.close()
    assert maker.wait(timeout=30) == 0
    assert importer.returncode == 0, importer.stderr
    from_stdin = importer.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", from_stdin)

    assert cli.ok("tag", f"{repo}:file", f"{repo}:tagged") == ""
    rows = {
        tuple(line.split())
        for line in cli.ok("images", repo, "--format", "{{.Tag}} {{.ID}}").splitlines()
    }
    assert rows == {
        ("file", from_file[7:19]),
        ("tagged", from_file[7:19]),
        ("stdin", from_stdin[7:19]),
    }

    assert cli.ok("rmi", f"{repo}:tagged") == f"Untagged: {repo}:tagged\n"
    assert cli.ok("rmi", f"{repo}:file", f"{repo}:stdin").splitlines() == [
        f"Untagged: {repo}:file",
        f"Deleted: {from_file}",
        f"Untagged: {repo}:stdin",
        f"Deleted: {from_stdin}",
    ]
    assert cli.ok("images", "-q", repo) == ""


def test_rmi_unknown_image_fails(cli: Cli) -> None:
    proc = cli("rmi", "cli-no-such-image:1")
    assert proc.returncode == 1
    assert proc.stderr == "Error response from daemon: No such image: cli-no-such-image:1\n"


# --- system ---------------------------------------------------------------------------


def test_version_shows_client_and_server(cli: Cli) -> None:
    out = cli.ok("version")
    assert "Client:" in out and "Server:" in out
    assert re.search(r"API version:\s+1\.\d+", out)


def test_info_shows_daemon_data_root(cli: Cli, daemon: Daemon) -> None:
    out = cli.ok("info")
    assert "Server Version:" in out
    assert re.search(r"Containers: \d+", out)
    assert f"Docker Root Dir: {daemon.data_root}\n" in out


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["stop"], ["start"], ["restart"], ["kill"], ["rm"], ["rm", "-f"], ["wait"], ["logs"]],
    ids=["stop", "start", "restart", "kill", "rm", "rm-f", "wait", "logs"],
)
def test_unknown_container_one_line_error_exit_1(cli: Cli, command: list[str]) -> None:
    proc = cli(*command, "cli-no-such-container")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == "Error response from daemon: No such container: cli-no-such-container\n"


def test_run_unknown_image_exits_125(cli: Cli) -> None:
    # A registry on loopback where nothing listens: run tries to pull, as docker does,
    # and fails without sending anything off this machine.
    proc = cli("run", "--rm", "127.0.0.1:9/cli-no-such-image:1", "true")
    assert proc.returncode == 125
    lines = proc.stderr.splitlines()
    assert lines[0] == "Unable to find image '127.0.0.1:9/cli-no-such-image:1' locally"
    assert lines[-1].startswith("Error response from daemon: ")
    assert "connection refused" in lines[-1]


@pytest.mark.parametrize(
    ("flags", "mentions"),
    [(["--restart", "sometimes"], "sometimes"), (["-m", "1x"], "1x")],
    ids=["restart-policy", "memory"],
)
def test_run_invalid_option_one_line_error_exit_125(
    cli: Cli, api: Client, flags: list[str], mentions: str
) -> None:
    before = len(api.call("GET", "/containers/json", params={"all": 1}))
    proc = cli("run", *flags, "busybox", "true")
    assert proc.returncode == 125
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and mentions in proc.stderr
    assert "invalid" in proc.stderr.lower()
    assert len(api.call("GET", "/containers/json", params={"all": 1})) == before


@pytest.mark.parametrize(
    ("command", "code", "detach"),
    [
        ("/nonexistent", 127, False),
        ("no-such-command", 127, False),
        ("/etc/passwd", 126, False),
        ("/nonexistent", 127, True),
    ],
    ids=["missing-path", "not-in-path", "not-executable", "missing-path-detached"],
)
def test_run_start_failure_exit_codes(
    cli: Cli, name: Callable[[], str], command: str, code: int, detach: bool
) -> None:
    proc = cli("run", *(["-d"] if detach else []), "--name", name(), "busybox", command)
    assert proc.returncode == code
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error response from daemon: ")
    assert proc.stderr.count("\n") == 1
