"""berthd's own options and process behaviour, each test on daemons of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import BERTHD, REPO, Client, Daemon

pytestmark = pytest.mark.root

ROTATING = {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "3"}}


@pytest.fixture
def new_daemon() -> Iterator[Callable[[], Daemon]]:
    """A factory of not-yet-started daemons, each on a fresh temporary root.

    Roots are made with ``mkdtemp`` under /tmp: unix socket paths must stay short.
    Every daemon is stopped and its mounts released afterwards.
    """
    made: list[Daemon] = []

    def make() -> Daemon:
        made.append(Daemon(Path(tempfile.mkdtemp(prefix="berth-opt-"))))
        return made[-1]

    yield make
    for d in made:
        d.cleanup()
        if not d.leftovers():
            shutil.rmtree(d.root, ignore_errors=True)


def launch(d: Daemon, *argv: str) -> None:
    """Start berthd with exactly ``argv`` (no flags added) and wait for ``/_ping``."""
    d.proc = subprocess.Popen(
        [*BERTHD, *argv],
        stdout=subprocess.DEVNULL,
        stderr=open(d.log_path, "ab"),
        cwd=REPO,
    )
    deadline = time.monotonic() + 30
    while True:
        assert d.proc.poll() is None, d.log_path.read_text()[-4000:]
        try:
            if d.client.request("GET", "/_ping", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "berthd did not answer /_ping"
        time.sleep(0.05)


def use_paths(d: Daemon, socket: Path, data_root: Path, exec_root: Path) -> None:
    """Point the test's view of ``d`` at paths that the daemon takes from elsewhere."""
    d.socket, d.data_root, d.exec_root = socket, data_root, exec_root
    d.client = Client(socket)


def log_records(d: Daemon) -> list[dict[str, object]]:
    return [json.loads(line) for line in d.log_path.read_text().splitlines() if line.strip()]


def test_pidfile_written_while_running_removed_after_sigterm(
    new_daemon: Callable[[], Daemon],
) -> None:
    d = new_daemon()
    pidfile = d.root / "run" / "berthd.pid"
    d.start("--pidfile", str(pidfile))
    assert d.proc is not None
    assert pidfile.read_text() == f"{d.proc.pid}\n"
    assert d.stop(timeout=30) == 0
    assert not pidfile.exists()


def test_config_file_hosts_data_and_exec_root_honoured(new_daemon: Callable[[], Daemon]) -> None:
    d = new_daemon()
    use_paths(d, d.root / "cfg-run" / "api.sock", d.root / "cfg-data", d.root / "cfg-exec")
    config = d.root / "daemon.toml"
    config.write_text(
        f'hosts = ["unix://{d.socket}"]\n'
        f'data-root = "{d.data_root}"\n'
        f'exec-root = "{d.exec_root}"\n'
        'log-format = "json"\n'
    )
    launch(d, "--config-file", str(config))
    assert d.socket.is_socket()
    assert d.client.call("GET", "/info")["DockerRootDir"] == str(d.data_root)
    assert (d.data_root / "berth.db").is_file()
    assert d.exec_root.is_dir()
    assert not (d.root / "data").exists()  # nothing at the test harness' default paths
    assert d.stop(timeout=30) == 0
    assert not d.socket.exists()
    assert any(r["event"] == "daemon.ready" for r in log_records(d))


def test_config_file_flags_override_file(new_daemon: Callable[[], Daemon]) -> None:
    d = new_daemon()
    config = d.root / "daemon.toml"
    config.write_text(f'hosts = ["unix://{d.root}/file.sock"]\ndata-root = "{d.root}/file-data"\n')
    d.start("--config-file", str(config))  # start() passes -H and --data-root
    assert d.client.call("GET", "/info")["DockerRootDir"] == str(d.data_root)
    assert not (d.root / "file.sock").exists()
    assert not (d.root / "file-data").exists()


def test_config_file_restart_delay_is_the_default_backoff(
    new_daemon: Callable[[], Daemon],
) -> None:
    d = new_daemon()
    config = d.root / "daemon.toml"
    config.write_text('[restart]\ndelay = "600ms"\nmax-delay = "600ms"\n')
    d.start("--config-file", str(config))
    d.import_busybox()
    since = f"{time.time() - 1:.3f}"
    cid = d.client.run(
        ["sh", "-c", "exit 1"],
        HostConfig={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 1}},
    )
    d.client.wait_for(cid, lambda i: i["RestartCount"] == 1 and not i["State"]["Running"])
    events = d.client.events(
        since=since, until=f"{time.time() + 1:.3f}", filters=json.dumps({"container": [cid]})
    )
    die = next(e["timeNano"] for e in events if e["Action"] == "die")
    restart = [e["timeNano"] for e in events if e["Action"] == "start"][1]
    assert (restart - die) / 1e9 >= 0.5


def test_log_format_json_lines_carry_event_and_timestamp(
    new_daemon: Callable[[], Daemon],
) -> None:
    d = new_daemon()
    d.start("--log-format", "json", "--log-level", "info")
    d.client.call("GET", "/version")
    assert d.stop(timeout=30) == 0
    records = log_records(d)  # every line parses as JSON
    assert records
    for record in records:
        assert isinstance(record["event"], str) and record["event"]
        assert str(record["timestamp"]).endswith("Z")
        assert "level" in record
    events = [r["event"] for r in records]
    assert "daemon.ready" in events
    assert events[-1] == "daemon.stopped"


def test_json_file_log_rotation_keeps_max_file_files(new_daemon: Callable[[], Daemon]) -> None:
    d = new_daemon()
    d.start()
    d.import_busybox()
    script = "i=1; while [ $i -le 200 ]; do echo line$i; i=$((i+1)); done"
    cid = d.client.run(["sh", "-c", script], HostConfig={"LogConfig": ROTATING})
    assert d.client.wait(cid) == 0
    log_path = Path(d.client.inspect(cid)["LogPath"])
    assert log_path == d.data_root / "containers" / cid / f"{cid}-json.log"

    files = sorted(log_path.parent.glob(f"{cid}-json.log*"))
    assert [f.name for f in files] == [f"{cid}-json.log", f"{cid}-json.log.1", f"{cid}-json.log.2"]
    logged: list[str] = []
    for f in reversed(files):  # oldest first: .2, .1, then the current file
        lines = f.read_bytes().splitlines(keepends=True)
        assert f.stat().st_size <= 1024 + max(len(line) for line in lines), f.name
        logged += [json.loads(line)["log"] for line in lines]
    first = int(logged[0].removeprefix("line"))
    assert first > 1  # the oldest lines were rotated away
    assert logged == [f"line{i}\n" for i in range(first, 201)]

    frames = d.client.logs(cid)
    assert [p.decode() for _, p in frames] == logged
    assert d.client.logs(cid, tail=3) == [(1, b"line198\n"), (1, b"line199\n"), (1, b"line200\n")]


def _second_daemon_on(first: Daemon, second: Daemon) -> subprocess.CompletedProcess[str]:
    """Run a second berthd told to serve ``first``'s socket; it should refuse."""
    return subprocess.run(
        [
            *BERTHD, "-H", first.host,
            "--data-root", str(second.data_root), "--exec-root", str(second.exec_root),
            "--log-format", "json",
        ],
        capture_output=True, text=True, timeout=30, cwd=REPO, check=False,
    )  # fmt: skip


def test_second_daemon_on_live_socket_fails_with_clear_error(
    new_daemon: Callable[[], Daemon],
) -> None:
    first, second = new_daemon(), new_daemon()
    first.start()
    proc = _second_daemon_on(first, second)
    assert proc.returncode == 1
    assert f"another daemon is serving {first.socket}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_second_daemon_on_live_socket_leaves_first_serving(
    new_daemon: Callable[[], Daemon],
) -> None:
    first, second = new_daemon(), new_daemon()
    first.start()
    assert _second_daemon_on(first, second).returncode != 0
    assert first.proc is not None and first.proc.poll() is None
    assert first.socket.is_socket()
    assert first.client.request("GET", "/_ping", timeout=5)[0] == 200


def test_sigterm_leaves_no_mounts_or_cgroups(new_daemon: Callable[[], Daemon]) -> None:
    d = new_daemon()
    d.start()
    d.import_busybox()
    d.client.run(["sleep", "30"], HostConfig={"Init": True, "RestartPolicy": {"Name": "always"}})
    exited = d.client.run(["true"])
    d.client.wait(exited)
    d.client.create(cmd=["true"])
    assert d.leftovers()  # the running container's rootfs is mounted
    assert d.stop(timeout=30) == 0
    assert d.leftovers() == []
