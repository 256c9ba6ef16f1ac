"""``berth run -i/-t``, ``berth exec`` and ``berth attach`` against a real berthd, driven
in a pty (Python's ``pty``) the way a user types into them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import ApiError, Daemon, env_with_host

pytestmark = pytest.mark.root

BERTH = str(Path(sys.executable).with_name("berth"))


class Terminal:
    """``berth`` running on a pty of the given size whose master we hold."""

    def __init__(self, args: list[str], env: dict[str, str], size: tuple[int, int] = (30, 100)):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execve(BERTH, [BERTH, *args], env)
        self.resize(*size)
        self.out = b""

    def resize(self, rows: int, cols: int) -> None:
        """Change the window: the kernel sends SIGWINCH to berth."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read_until(self, needle: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} never came; got {self.out[-500:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"{needle!r} never came; ended with {self.out[-500:]!r}")
                self.out += data
        return self.out

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 20) -> int:
        """berth's exit code, once it has closed the pty (what it printed is kept)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"berth did not exit; got {self.out[-500:]!r}")
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""  # EIO: the last holder of the pty's other side is gone
            if not data:
                break
            self.out += data
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def berth(
    daemon: Daemon, *args: str, stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [BERTH, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env_with_host(daemon),
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def name(daemon: Daemon) -> Iterator[str]:
    """A container name, the container removed afterwards."""
    n = f"icli-{uuid.uuid4().hex[:10]}"
    yield n
    daemon.client.request("DELETE", f"/containers/{n}", params={"force": "1"})


@pytest.fixture(scope="module")
def box(daemon: Daemon) -> Iterator[str]:
    cid = daemon.client.run(["sleep", "600"], name=f"icli-box-{uuid.uuid4().hex[:6]}")
    yield cid
    daemon.client.call("DELETE", f"/containers/{cid}", params={"force": "1"})


# --- run -------------------------------------------------------------------------------------


def test_run_it_gives_a_shell_sized_like_the_window(daemon: Daemon) -> None:
    term = Terminal(["run", "-it", "--rm", "busybox", "sh"], env_with_host(daemon))
    term.read_until(b"/ # ")
    term.send(b"echo hello-$((6*7)); tty; stty size\n")
    term.read_until(b"hello-42")
    term.read_until(b"/dev/pts/0")
    term.read_until(b"30 100")  # HostConfig.ConsoleSize at create
    term.send(b"exit 3\n")
    assert term.wait() == 3


def test_run_it_follows_the_window_and_passes_ctrl_c(daemon: Daemon) -> None:
    # The container's shell reports each SIGWINCH the daemon's resize causes.
    # PID 1 of its namespace gets SIGINT only with a handler: trap it too.
    script = (
        "trap 'echo size=$(stty size)' WINCH; trap 'exit 130' INT; "
        "echo ready; while :; do sleep 1; done"
    )
    term = Terminal(["run", "-it", "--rm", "busybox", "sh", "-c", script], env_with_host(daemon))
    term.read_until(b"ready")
    term.resize(40, 120)
    term.read_until(b"size=40 120")
    term.send(b"\x03")  # raw mode: ctrl-c is a byte for the container's terminal
    assert term.wait() == 130


def test_run_i_pipes_stdin_and_closes_it(daemon: Daemon) -> None:
    r = berth(
        daemon, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done >&2; exit 4",
        stdin=b"line one\nline two\n",
    )  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (4, b"line one\nline two\n", b"done\n")


def test_run_i_carries_large_input(daemon: Daemon) -> None:
    # Without ctrl-p: berthd looks for the detach keys even without a TTY.
    data = bytes(range(17, 256)) * 4096  # ~1 MB
    r = berth(daemon, "run", "-i", "--rm", "busybox", "sha256sum", stdin=data, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_run_it_without_a_terminal_is_refused_before_create(daemon: Daemon, name: str) -> None:
    r = berth(daemon, "run", "-it", "--name", name, "busybox", "true")
    assert (r.returncode, r.stderr) == (1, b"the input device is not a TTY\n")
    with pytest.raises(ApiError) as missing:
        daemon.client.inspect(name)
    assert missing.value.status == 404


def test_run_t_without_i_gives_raw_terminal_output(daemon: Daemon) -> None:
    r = berth(daemon, "run", "-t", "--rm", "busybox", "sh", "-c", "echo a; echo b >&2; exit 2")
    assert (r.returncode, r.stdout) == (2, b"a\r\nb\r\n")  # one stream, the tty's newlines


def test_detach_keys_leave_the_container_running_and_attach_comes_back(
    daemon: Daemon, name: str
) -> None:
    env = env_with_host(daemon)
    term = Terminal(["run", "-it", "--name", name, "busybox", "sh"], env)
    term.read_until(b"/ # ")
    term.send(b"\x10\x11")  # ctrl-p ctrl-q
    assert term.wait() == 0
    assert term.out.endswith(b"/ # ") or term.out.endswith(b"/ # \x1b[6n")  # nothing more
    assert daemon.client.inspect(name)["State"]["Running"]

    # attach: the resize redraws the prompt (raw mode is on by then), type, detach with
    # other keys: docker calls that an error.
    term = Terminal(["attach", "--detach-keys", "ctrl-a,a", name], env)
    term.read_until(b"/ # \x1b[J")
    term.send(b"echo back-$((1+1))\n")
    term.read_until(b"back-2")
    term.send(b"\x01a")
    assert term.wait() == 1
    term.read_until(b"read escape sequence")
    assert daemon.client.inspect(name)["State"]["Running"]

    # attach again and end the shell: attach exits with its code.
    term = Terminal(["attach", name], env)
    term.read_until(b"/ # \x1b[J")
    term.send(b"exit 6\n")
    assert term.wait() == 6


# --- exec ------------------------------------------------------------------------------------


def test_exec_output_exit_codes_user_env_workdir(daemon: Daemon, box: str) -> None:
    r = berth(daemon, "exec", box, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
    r = berth(daemon, "exec", "-u", "nobody", "-e", "X=1", "-w", "/tmp", box,
              "sh", "-c", "echo $X $(pwd) $(id -u)")  # fmt: skip
    assert (r.returncode, r.stdout) == (0, b"1 /tmp 65534\n")
    r = berth(daemon, "exec", "-i", box, "cat", stdin=b"via stdin\n")
    assert (r.returncode, r.stdout) == (0, b"via stdin\n")
    r = berth(daemon, "exec", box, "nope")
    assert r.returncode == 127
    assert b"executable file not found" in r.stdout  # written into the stream, as docker
    r = berth(daemon, "exec", box, "/etc")
    assert r.returncode == 126


def test_exec_detached_runs_in_the_background(daemon: Daemon, box: str) -> None:
    r = berth(daemon, "exec", "-d", box, "sh", "-c", "echo bg > /tmp/bg")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = berth(daemon, "exec", box, "sh", "-c", "while [ ! -s /tmp/bg ]; do sleep 0.1; done; cat /tmp/bg")  # fmt: skip
    assert r.stdout == b"bg\n"


def test_exec_errors_are_dockers(daemon: Daemon, name: str) -> None:
    cid = daemon.client.create(cmd=["true"], name=name)
    r = berth(daemon, "exec", name, "true")
    assert r.returncode == 1
    assert r.stderr == f"Error response from daemon: Container {cid} is not running\n".encode()
    r = berth(daemon, "exec", "icli-no-such-container", "true")
    assert r.returncode == 1
    assert r.stderr == b"Error response from daemon: No such container: icli-no-such-container\n"
    r = berth(daemon, "exec", "-it", name, "sh")  # stdin is /dev/null
    assert (r.returncode, r.stderr) == (1, b"the input device is not a TTY\n")


def test_exec_it_gives_a_shell(daemon: Daemon, box: str) -> None:
    term = Terminal(["exec", "-it", box, "sh"], env_with_host(daemon), size=(25, 90))
    term.read_until(b"/ # ")
    term.send(b"echo in-exec-$((3*3)); tty; stty size\n")
    term.read_until(b"in-exec-9")
    term.read_until(b"/dev/pts/")
    term.read_until(b"25 90")
    term.send(b"exit 5\n")
    assert term.wait() == 5


def test_exec_it_detach_is_an_escape_error(daemon: Daemon, box: str) -> None:
    term = Terminal(["exec", "-it", box, "sh"], env_with_host(daemon))
    term.read_until(b"/ # ")
    term.send(b"\x10\x11")
    assert term.wait() == 1
    term.read_until(b"read escape sequence")


# --- attach ----------------------------------------------------------------------------------


def test_attach_sends_stdin_and_exits_with_the_code(daemon: Daemon, name: str) -> None:
    daemon.client.run(
        ["sh", "-c", "read x; echo got-$x; echo err >&2; exit 2"], name=name, OpenStdin=True
    )
    r = berth(daemon, "attach", name, stdin=b"hello\n")
    assert (r.returncode, r.stdout, r.stderr) == (2, b"got-hello\n", b"err\n")


def test_attach_to_a_stopped_container_is_refused(daemon: Daemon, name: str) -> None:
    daemon.client.create(cmd=["true"], name=name)
    r = berth(daemon, "attach", name)
    assert (r.returncode, r.stderr) == (
        1,
        b"You cannot attach to a stopped container, start it first\n",
    )
