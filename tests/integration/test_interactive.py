"""TTYs, stdin and attach through a real berthd, driven by the real docker CLI in a
pty (Python's ``pty``) and by the raw API."""

from __future__ import annotations

import os
import pty
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.daemon import ApiError, Daemon, env_with_host, running_daemon

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with running_daemon("berth-tty-") as d:
        yield d


@pytest.fixture(scope="module")
def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        pytest.skip("no docker CLI on PATH")
    return path


class Terminal:
    """A program running on a pty we hold the master of."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execvpe(argv[0], argv, env)
        self.out = b""

    def read_until(self, needle: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never came; got {self.out[-500:]!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    break
        return self.out

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                select.select([self.fd], [], [], 0.1)
                os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the program did not exit")


def test_docker_run_it_gives_a_shell_you_type_into(daemon: Daemon, docker_cli: str) -> None:
    term = Terminal([docker_cli, "run", "-it", "--rm", "busybox", "sh"], env_with_host(daemon))
    term.read_until(b"/ # ")
    term.send(b"echo hello-$((6*7)); tty; stty size\n")
    term.read_until(b"hello-42")
    term.read_until(b"/dev/pts/0")
    term.send(b"exit 3\n")
    assert term.wait() == 3


def test_docker_run_i_pipes_stdin_and_closes_it(daemon: Daemon, docker_cli: str) -> None:
    result = subprocess.run(
        [docker_cli, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"],
        input=b"line one\nline two\n",
        env=env_with_host(daemon),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"line one\nline two\ndone\n"


def test_detach_keys_leave_the_container_running(daemon: Daemon, docker_cli: str) -> None:
    term = Terminal(
        [docker_cli, "run", "-it", "--name", "detachme", "busybox", "sh"], env_with_host(daemon)
    )
    term.read_until(b"/ # ")
    term.send(b"\x10\x11")  # ctrl-p ctrl-q
    assert term.wait() == 0
    assert daemon.client.inspect("detachme")["State"]["Running"]
    # docker attach again, type, and leave by exiting the shell.
    term = Terminal([docker_cli, "attach", "detachme"], env_with_host(daemon))
    # The CLI resizes the TTY once attached (in raw mode): the shell redraws its prompt.
    term.read_until(b"/ # \x1b[J")
    # Input typed before the CLI puts its terminal in raw mode is flushed by the switch:
    # type again until the shell answers.
    for _ in range(10):
        term.send(b"echo back-$((1+1))\n")
        try:
            term.read_until(b"back-2", timeout=2)
            break
        except AssertionError:
            continue
    term.read_until(b"back-2", timeout=1)
    term.send(b"exit\n")
    assert term.wait() == 0
    daemon.client.call("DELETE", "/containers/detachme", params={"force": "1"})


def test_resize_reaches_the_tty(daemon: Daemon) -> None:
    cid = daemon.client.create(cmd=["sh", "-c", "sleep 1; stty size"], Tty=True, OpenStdin=True)
    daemon.client.call("POST", f"/containers/{cid}/start")
    daemon.client.call("POST", f"/containers/{cid}/resize", params={"h": "33", "w": "111"})
    assert daemon.client.wait(cid) == 0
    status, logs = daemon.client.request("GET", f"/containers/{cid}/logs", params={"stdout": "1"})
    assert status == 200 and b"33 111" in logs  # a TTY's logs are raw, not multiplexed
    daemon.client.call("DELETE", f"/containers/{cid}")


def test_raw_attach_with_stdin_multiplexes_output(daemon: Daemon) -> None:
    cid = daemon.client.create(
        cmd=["sh", "-c", "read x; echo got-$x; echo err >&2"], OpenStdin=True, StdinOnce=True
    )
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(daemon.socket))
    sock.sendall(
        f"POST /containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
        "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    daemon.client.call("POST", f"/containers/{cid}/start")
    sock.sendall(b"abc\n")
    sock.shutdown(socket.SHUT_WR)
    data = b""
    sock.settimeout(20)
    while chunk := sock.recv(4096):
        data += chunk
    sock.close()
    frames = []
    while data:
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        frames.append((kind, data[8 : 8 + size]))
        data = data[8 + size :]
    assert (1, b"got-abc\n") in frames and (2, b"err\n") in frames
    assert daemon.client.wait(cid) == 0
    daemon.client.call("DELETE", f"/containers/{cid}")


@pytest.fixture(scope="module")
def box(daemon: Daemon) -> Iterator[str]:
    cid = daemon.client.run(["sleep", "600"], name="execbox", StopTimeout=1)
    yield cid
    daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


def docker(d: Daemon, cli: str, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([cli, *args], env=env_with_host(d), capture_output=True, timeout=30, **kw)  # type: ignore[call-overload]


def test_docker_exec_output_exit_code_user_env_workdir(
    daemon: Daemon, docker_cli: str, box: str
) -> None:
    r = docker(daemon, docker_cli, "exec", box, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
    r = docker(daemon, docker_cli, "exec", "-u", "nobody", "-e", "X=1", "-w", "/tmp", box,
               "sh", "-c", "echo $X $(pwd) $(id -u)")  # fmt: skip
    assert r.stdout == b"1 /tmp 65534\n"
    r = docker(daemon, docker_cli, "exec", "-i", box, "cat", input=b"via stdin\n")
    assert r.stdout == b"via stdin\n"
    r = docker(daemon, docker_cli, "exec", box, "nope")
    assert r.returncode == 127 and b"executable file not found" in r.stdout + r.stderr
    r = docker(daemon, docker_cli, "exec", "--privileged", box, "sh", "-c",
               "grep CapEff /proc/self/status")  # fmt: skip
    assert r.stdout.split()[-1] != b"00000000a80425fb"  # more than the default set


def test_docker_exec_it_gives_a_shell(daemon: Daemon, docker_cli: str, box: str) -> None:
    term = Terminal([docker_cli, "exec", "-it", box, "sh"], env_with_host(daemon))
    term.read_until(b"/ # ")
    term.send(b"echo in-exec-$((3*3)); tty\n")
    term.read_until(b"in-exec-9")
    term.read_until(b"/dev/pts/")
    term.send(b"exit 5\n")
    assert term.wait() == 5


def test_exec_api_inspect_detach_and_errors(daemon: Daemon, box: str) -> None:
    eid = daemon.client.call(
        "POST", f"/containers/{box}/exec", {"Cmd": ["sh", "-c", "sleep 1; exit 3"]}
    )["Id"]
    before = daemon.client.call("GET", f"/exec/{eid}/json")
    assert before["Running"] is False and before["ExitCode"] is None
    assert before["ProcessConfig"] == {
        "arguments": ["-c", "sleep 1; exit 3"],
        "entrypoint": "sh",
        "privileged": False,
        "tty": False,
        "user": "",
    }
    daemon.client.call("POST", f"/exec/{eid}/start", {"Detach": True})
    running = daemon.client.call("GET", f"/exec/{eid}/json")
    assert running["Running"] is True and running["Pid"] > 0
    with pytest.raises(ApiError) as again:
        daemon.client.call("POST", f"/exec/{eid}/start", {"Detach": True})
    assert again.value.status == 409
    deadline = time.monotonic() + 15
    while daemon.client.call("GET", f"/exec/{eid}/json")["Running"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert daemon.client.call("GET", f"/exec/{eid}/json")["ExitCode"] == 3
    with pytest.raises(ApiError) as missing:
        daemon.client.call("GET", "/exec/nope/json")
    assert missing.value.status == 404
    stopped = daemon.client.create(cmd=["true"])
    with pytest.raises(ApiError) as not_running:
        daemon.client.call("POST", f"/containers/{stopped}/exec", {"Cmd": ["true"]})
    assert not_running.value.status == 409 and "is not running" in not_running.value.message
    daemon.client.call("DELETE", f"/containers/{stopped}")
    events = daemon.client.events(since="0", until=str(int(time.time()) + 1))
    actions = [
        e["Action"] for e in events if e.get("id") == box or e.get("Actor", {}).get("ID") == box
    ]
    assert any(a.startswith("exec_create: sh -c") for a in actions)
    assert "exec_die" in actions


def test_docker_py_exec_run(daemon: Daemon, box: str) -> None:
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=daemon.host, version="auto")
    try:
        c = client.containers.get(box)
        result = c.exec_run(["sh", "-c", "echo py-$((2*21))"])
        assert result.exit_code == 0 and result.output == b"py-42\n"
        result = c.exec_run("sh -c 'exit 9'")
        assert result.exit_code == 9
    finally:
        client.close()


def test_binary_stdin_without_tty_is_data_not_detach_keys(daemon: Daemon, docker_cli: str) -> None:
    """Detach keys apply only with a TTY (moby): piped input may hold ctrl-p ctrl-q."""
    data = b"a\x10\x11b\n" + bytes(range(256)) * 64
    result = subprocess.run(
        [docker_cli, "run", "-i", "--rm", "busybox", "sh", "-c", "cat | wc -c"],
        input=data,
        env=env_with_host(daemon),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(data)).encode()


def _zombie_children(pid: int) -> list[str]:
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=,comm=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line.split()[1].startswith("Z")]


def test_failed_execs_leave_nothing_that_blocks_removal(daemon: Daemon, docker_cli: str) -> None:
    """A runtime that fails an exec (crun: the command is missing or a directory) leaves
    its process in the container's pid namespace as berthd's zombie; unreaped, it would
    keep the container's init from exiting and ``rm -f`` would hang."""
    cid = daemon.client.run(["sleep", "300"])
    for command in (["nope"], ["/etc"]):
        r = docker(daemon, docker_cli, "exec", cid, *command)
        assert r.returncode in (126, 127), r.stdout + r.stderr
    privileged = docker(daemon, docker_cli, "exec", "--privileged", cid, "true")
    assert privileged.returncode == 0, privileged.stderr
    assert daemon.proc is not None
    deadline = time.monotonic() + 5
    while _zombie_children(daemon.proc.pid):
        assert time.monotonic() < deadline, _zombie_children(daemon.proc.pid)
        time.sleep(0.05)
    daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})
