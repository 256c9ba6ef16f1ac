"""Both OCI runtimes through berthd: whichever the probe picks on this host (crun here,
with the cgroup v2 mount hidden at create) and each one forced with ``--runtime``, so the
path the probe does not take stays tested. The rest of the suite runs on the default."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import ApiError, Daemon, env_with_host

pytestmark = pytest.mark.root


@pytest.fixture(params=["crun", "runc"], scope="module")
def daemon(request: pytest.FixtureRequest) -> Iterator[Daemon]:
    name = str(request.param)
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    d = Daemon(Path(tempfile.mkdtemp(prefix=f"berth-rt-{name}-")))
    try:
        d.start("--runtime", name)
        d.import_busybox()
        yield d
    finally:
        d.cleanup()


def exec_run(d: Daemon, cid: str, cmd: list[str], **extra: object) -> tuple[int, str]:
    """Run an exec to its end through the API; returns (exit code, error message)."""
    eid = d.client.call("POST", f"/containers/{cid}/exec", {"Cmd": cmd, **extra})["Id"]
    try:
        d.client.call("POST", f"/exec/{eid}/start", {"Detach": True})
        message = ""
    except ApiError as exc:
        message = exc.message
    deadline = time.monotonic() + 10
    while (info := d.client.call("GET", f"/exec/{eid}/json"))["Running"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return info["ExitCode"], message


def test_lifecycle_exec_and_failures(daemon: Daemon) -> None:
    info = daemon.client.call("GET", "/info")
    runtime = info["DefaultRuntime"]
    assert runtime in ("crun", "runc") and daemon.log_path.read_text().count(runtime)
    cid = daemon.client.run(["sleep", "300"], HostConfig={"Memory": 64 * 1024 * 1024})
    assert daemon.client.inspect(cid)["State"]["Running"]
    assert exec_run(daemon, cid, ["sh", "-c", "exit 3"]) == (3, "")
    code, message = exec_run(daemon, cid, ["nope"])
    assert code == 127 and "executable file not found" in message
    code, message = exec_run(daemon, cid, ["/etc"])
    assert code == 126 and "permission denied" in message
    assert exec_run(daemon, cid, ["true"], Privileged=True) == (0, "")
    daemon.client.call("POST", f"/containers/{cid}/pause")
    assert daemon.client.inspect(cid)["State"]["Paused"]
    daemon.client.call("POST", f"/containers/{cid}/unpause")
    daemon.client.call("POST", f"/containers/{cid}/update", {"PidsLimit": 50})
    daemon.client.call("POST", f"/containers/{cid}/stop", params={"t": "0"})
    assert daemon.client.inspect(cid)["State"]["ExitCode"] == 137
    daemon.client.call("DELETE", f"/containers/{cid}")
    with pytest.raises(ApiError) as missing:
        daemon.client.run(["/nonexistent"])
    assert missing.value.status == 400 and "no such file or directory" in missing.value.message
    assert list((daemon.exec_root / "runtime" / runtime).glob("*/")) == []
    assert daemon.proc is not None
    deadline = time.monotonic() + 5  # orphans of failed execs are reaped within a second
    while zombies(daemon.proc.pid):
        assert time.monotonic() < deadline, zombies(daemon.proc.pid)
        time.sleep(0.05)


def zombies(pid: int) -> list[str]:
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [line for line in out.stdout.splitlines() if line.split()[1].startswith("Z")]


def children(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "comm=", "--ppid", str(pid)], capture_output=True, text=True)
    return out.stdout.split()


def test_attached_execs_get_their_process_at_start(daemon: Daemon) -> None:
    """An exec with attached output has its runtime started at create and handed the
    process at start (containers/prelaunch.py); one never started lets it go."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed")
    env = env_with_host(daemon)

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [docker, *args], env=env, input=stdin, capture_output=True, timeout=60
        )

    cid = daemon.client.run(["sleep", "300"])
    r = run("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
    r = run("exec", "-i", "-u", "nobody", cid, "sh", "-c", "id -u; cat", stdin=b"typed\n")
    assert (r.returncode, r.stdout) == (0, b"65534\ntyped\n")
    r = run("exec", cid, "nope")
    assert r.returncode == 127 and b"executable file not found" in r.stdout + r.stderr
    unstarted = daemon.client.call(
        "POST", f"/containers/{cid}/exec", {"Cmd": ["true"], "AttachStdout": True}
    )["Id"]
    assert daemon.proc is not None
    runtime = daemon.client.call("GET", "/info")["DefaultRuntime"]
    assert runtime in children(daemon.proc.pid)  # waiting for its process
    daemon.client.call("POST", f"/containers/{cid}/stop", params={"t": "0"})
    with pytest.raises(ApiError) as stopped:
        daemon.client.call("POST", f"/exec/{unstarted}/start", {})
    assert stopped.value.status == 409
    deadline = time.monotonic() + 5
    while runtime in children(daemon.proc.pid):  # let go at the refused start
        assert time.monotonic() < deadline
        time.sleep(0.05)
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_execs_created_in_a_burst_keep_a_bounded_number_of_runtimes_waiting(
    daemon: Daemon,
) -> None:
    cid = daemon.client.run(["sleep", "300"])
    body = {"Cmd": ["sh", "-c", "echo hi"], "AttachStdout": True, "AttachStderr": True}
    eids = [daemon.client.call("POST", f"/containers/{cid}/exec", body)["Id"] for _ in range(24)]
    assert daemon.proc is not None
    runtime = daemon.client.call("GET", "/info")["DefaultRuntime"]
    assert 0 < children(daemon.proc.pid).count(runtime) <= 16
    for eid in eids:  # the first sixteen released, the rest launched at start
        daemon.client.call("POST", f"/exec/{eid}/start", {"Detach": False})
    deadline = time.monotonic() + 10
    while any(daemon.client.call("GET", f"/exec/{e}/json")["ExitCode"] != 0 for e in eids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


def test_a_start_that_changes_the_shape_launches_again(daemon: Daemon) -> None:
    """Created attached, started detached: the early runtime is let go and the exec
    launches at start (under files of its own: no race with the one exiting)."""
    cid = daemon.client.run(["sleep", "300"])
    for _ in range(5):
        body = {"Cmd": ["sh", "-c", "exit 4"], "AttachStdout": True, "AttachStderr": True}
        eid = daemon.client.call("POST", f"/containers/{cid}/exec", body)["Id"]
        daemon.client.call("POST", f"/exec/{eid}/start", {"Detach": True})
        deadline = time.monotonic() + 10
        while (info := daemon.client.call("GET", f"/exec/{eid}/json"))["Running"] or info[
            "ExitCode"
        ] is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert info["ExitCode"] == 4
    daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})
