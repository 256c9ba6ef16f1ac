"""The interactive stream loop, the terminal and the settings, with socket pairs, pipes
and ptys standing in for the daemon and the user's terminal."""

from __future__ import annotations

import json
import os
import signal
import socket
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.client import ClientError, Response
from cli.interactive import (
    DETACHED,
    ENDED,
    TERMINATED,
    NotATerminal,
    Outcome,
    RawTerminal,
    Wakeup,
    check_tty,
    console_size,
    detach_keys,
    make_raw,
    pump,
)
from cli.stream import STDERR, STDOUT, SYSTEMERR, encode_frame

MUX = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def hijacked(content_type: str, first: bytes = b"") -> tuple[Response, socket.socket]:
    """A ``Response`` after ``101 UPGRADED`` (with ``first`` read along with the head)
    and the daemon's end of the connection."""
    ours, theirs = socket.socketpair()
    theirs.sendall(
        f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\n"
        "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
        + first
    )
    response = Response(ours, "POST")
    response.read_head()
    return response, theirs


class Daemon:
    """The daemon's side of a hijacked connection, run in a thread."""

    def __init__(self, sock: socket.socket, script: Callable[[socket.socket], None]) -> None:
        self.sock = sock
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(script,))
        self.thread.start()

    def _run(self, script: Callable[[socket.socket], None]) -> None:
        try:
            script(self.sock)
        except (AssertionError, OSError) as exc:  # reported by join()
            self.error = exc
        finally:
            self.sock.close()

    def join(self) -> None:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture
def files(tmp_path: Path) -> Iterator[dict[str, int]]:
    """stdout/stderr files and an empty stdin file, as descriptors."""
    fds = {
        "stdout": os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT),
        "stderr": os.open(tmp_path / "err", os.O_RDWR | os.O_CREAT),
    }
    yield fds
    for fd in fds.values():
        os.close(fd)


def written(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def stdin_with(tmp_path: Path, data: bytes) -> int:
    path = tmp_path / "stdin"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def pump_input(
    response: Response, files: dict[str, int], stdin: int, *, tty: bool, keys: bytes = b""
) -> Outcome:
    """``pump`` sending ``stdin`` (closed afterwards) to the process, output to ``files``."""
    try:
        return pump(
            response,
            stdin=True,
            tty=tty,
            keys=keys,
            stdin_fd=stdin,
            stdout_fd=files["stdout"],
            stderr_fd=files["stderr"],
        )
    finally:
        os.close(stdin)


# --- settings and checks -----------------------------------------------------------------


def test_check_tty_refuses_tty_input_from_a_pipe() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(NotATerminal, match=r"^the input device is not a TTY$"):
            check_tty(attach_stdin=True, tty=True, fd=r)
        check_tty(attach_stdin=False, tty=True, fd=r)  # -t alone is fine, as in docker
        check_tty(attach_stdin=True, tty=False, fd=r)
    finally:
        os.close(r)
        os.close(w)


def test_check_tty_accepts_a_terminal() -> None:
    master, slave = os.openpty()
    try:
        check_tty(attach_stdin=True, tty=True, fd=slave)
    finally:
        os.close(master)
        os.close(slave)


def test_console_size_of_a_terminal_and_of_a_pipe() -> None:
    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        termios.tcsetwinsize(slave, (33, 111))
        assert console_size(slave) == (33, 111)
        assert console_size(r) == (0, 0)
    finally:
        for fd in (master, slave, r, w):
            os.close(fd)


def test_detach_keys_flag_then_config_then_default(tmp_path: Path) -> None:
    env = {"BERTH_CONFIG": str(tmp_path)}
    assert detach_keys(None, env) == ("", b"\x10\x11")
    (tmp_path / "config.json").write_text(json.dumps({"detachKeys": "ctrl-a,a"}))
    assert detach_keys(None, env) == ("ctrl-a,a", b"\x01a")
    assert detach_keys("ctrl-x", env) == ("ctrl-x", b"\x18")
    (tmp_path / "config.json").write_text("{not json")
    assert detach_keys(None, env) == ("", b"\x10\x11")


def test_detach_keys_invalid_is_a_client_error(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match=r"^Invalid detach keys \(ctrl-1\) provided$"):
        detach_keys("ctrl-1", {"BERTH_CONFIG": str(tmp_path)})


# --- the terminal ------------------------------------------------------------------------


def test_make_raw_is_cfmakeraw() -> None:
    master, slave = os.openpty()
    try:
        mode = termios.tcgetattr(slave)
        raw = make_raw(mode)
        iflag, oflag, cflag, lflag, _, _, cc = raw
        assert isinstance(iflag, int)
        assert isinstance(oflag, int)
        assert isinstance(cflag, int)
        assert isinstance(lflag, int)
        assert isinstance(cc, list)
        assert not iflag & (termios.ICRNL | termios.IXON | termios.ISTRIP | termios.BRKINT)
        assert not oflag & termios.OPOST
        assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        assert cflag & termios.CSIZE == termios.CS8
        assert (cc[termios.VMIN], cc[termios.VTIME]) == (1, 0)
        assert termios.tcgetattr(slave) == mode  # a copy: the terminal is untouched
    finally:
        os.close(master)
        os.close(slave)


def test_raw_terminal_is_restored_when_the_body_raises() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        seen: list[object] = []

        def body() -> None:
            with RawTerminal(slave, active=True) as term:
                seen.extend([term, termios.tcgetattr(slave)[3]])
                raise RuntimeError

        with pytest.raises(RuntimeError):
            body()
        term, lflag = seen
        assert isinstance(term, RawTerminal)
        assert isinstance(lflag, int)
        assert not lflag & (termios.ICANON | termios.ECHO)
        assert termios.tcgetattr(slave) == before
        term.restore()  # twice is harmless
    finally:
        os.close(master)
        os.close(slave)


def test_raw_terminal_leaves_a_pipe_alone() -> None:
    r, w = os.pipe()
    try:
        with RawTerminal(r, active=True) as term:
            assert not term.raw
    finally:
        os.close(r)
        os.close(w)


def test_wakeup_delivers_signals_and_restores_the_handlers() -> None:
    assert signal.getsignal(signal.SIGWINCH) is signal.SIG_DFL
    with Wakeup((signal.SIGWINCH,)) as wakeup:
        assert wakeup.owned == {signal.SIGWINCH}
        signal.raise_signal(signal.SIGWINCH)
        assert wakeup.received() == {signal.SIGWINCH}
        assert wakeup.received() == set()
    assert signal.getsignal(signal.SIGWINCH) is signal.SIG_DFL


# --- the stream loop -----------------------------------------------------------------------


def test_pump_demultiplexes_output_and_shuts_the_write_side_without_stdin(
    files: dict[str, int],
) -> None:
    frames = encode_frame(STDOUT, b"out one\n") + encode_frame(STDERR, b"err\n")
    response, theirs = hijacked(MUX, frames[:5])  # a partial header read with the head
    received: list[bytes] = []

    def daemon(sock: socket.socket) -> None:
        received.append(read_to_eof(sock))  # the client sends nothing and shuts
        for i in range(5, len(frames), 3):
            sock.sendall(frames[i : i + 3])
        sock.sendall(encode_frame(STDOUT, b"out two\n"))

    d = Daemon(theirs, daemon)
    outcome = pump(
        response, stdin=False, tty=False, stdout_fd=files["stdout"], stderr_fd=files["stderr"]
    )
    d.join()
    response.close()
    assert (outcome.end, outcome.failure) == (ENDED, "")
    assert written(files["stdout"]) == b"out one\nout two\n"
    assert written(files["stderr"]) == b"err\n"
    assert received == [b""]


def test_pump_sends_stdin_then_half_closes_and_reads_the_answer(
    files: dict[str, int], tmp_path: Path
) -> None:
    response, theirs = hijacked(MUX)
    stdin = stdin_with(tmp_path, b"line one\nline two\n")

    def daemon(sock: socket.socket) -> None:
        data = read_to_eof(sock)  # StdinOnce: the process sees EOF, then answers
        sock.sendall(encode_frame(STDOUT, data.upper()))

    d = Daemon(theirs, daemon)
    outcome = pump_input(response, files, stdin, tty=False)
    d.join()
    response.close()
    assert outcome.end == ENDED
    assert written(files["stdout"]) == b"LINE ONE\nLINE TWO\n"


def test_pump_keeps_reading_output_while_the_process_ignores_its_input(
    files: dict[str, int], tmp_path: Path
) -> None:
    # The daemon never reads: our sends block, so input must wait in a buffer while the
    # output (more than any socket buffer holds) keeps being read. A blocking send would
    # deadlock here.
    response, theirs = hijacked(RAW)
    stdin = stdin_with(tmp_path, b"x" * (4 << 20))
    chunk = b"y" * 65536

    def daemon(sock: socket.socket) -> None:
        for _ in range(64):
            sock.sendall(chunk)

    d = Daemon(theirs, daemon)
    outcome = pump_input(response, files, stdin, tty=False)
    d.join()
    response.close()
    assert outcome.end == ENDED
    assert written(files["stdout"]) == chunk * 64


def test_pump_tty_detach_keys_end_the_stream_and_are_not_sent(
    files: dict[str, int], tmp_path: Path
) -> None:
    response, theirs = hijacked(RAW, b"/ # ")
    stdin = stdin_with(tmp_path, b"ls\r\x10\x11exit\r")
    received: list[bytes] = []
    closed = threading.Event()

    def daemon(sock: socket.socket) -> None:
        received.append(read_to_eof(sock))  # until the client closes
        closed.set()

    d = Daemon(theirs, daemon)
    outcome = pump_input(response, files, stdin, tty=True, keys=b"\x10\x11")
    assert outcome.detached
    response.close()
    d.join()
    assert received == [b"ls\r"]
    assert written(files["stdout"]) == b"/ # "


def test_pump_tty_releases_an_unfinished_sequence_at_the_end_of_input(
    files: dict[str, int], tmp_path: Path
) -> None:
    response, theirs = hijacked(RAW)
    stdin = stdin_with(tmp_path, b"a\x10")
    received: list[bytes] = []

    def daemon(sock: socket.socket) -> None:
        received.append(read_to_eof(sock))

    d = Daemon(theirs, daemon)
    outcome = pump_input(response, files, stdin, tty=True, keys=b"\x10\x11")
    d.join()
    response.close()
    assert outcome.end == ENDED
    assert received == [b"a\x10"]


@pytest.mark.parametrize(
    ("tail", "failure"),
    [
        (encode_frame(SYSTEMERR, b"boom"), "error from daemon in stream: boom"),
        (encode_frame(STDOUT, b"cut")[:6], "stream ended inside a frame"),
        (b"\x07" + b"\0" * 7, "Unrecognized input header: 7"),
    ],
    ids=["error-frame", "truncated", "bad-header"],
)
def test_pump_broken_output_is_a_failure(files: dict[str, int], tail: bytes, failure: str) -> None:
    response, theirs = hijacked(MUX)

    def daemon(sock: socket.socket) -> None:
        sock.sendall(encode_frame(STDOUT, b"before\n") + tail)

    d = Daemon(theirs, daemon)
    outcome = pump(
        response, stdin=False, tty=False, stdout_fd=files["stdout"], stderr_fd=files["stderr"]
    )
    d.join()
    response.close()
    assert outcome.end == ENDED
    assert failure in outcome.failure
    if "header" not in failure:  # a bad header loses the frames read along with it
        assert written(files["stdout"]) == b"before\n"


def test_pump_resizes_at_start_with_redraw_and_on_sigwinch(files: dict[str, int]) -> None:
    master, slave = os.openpty()
    termios.tcsetwinsize(slave, (30, 100))
    response, theirs = hijacked(RAW)
    sizes: list[tuple[int, int]] = []
    resized = threading.Condition()

    def resize(height: int, width: int) -> None:
        with resized:
            sizes.append((height, width))
            resized.notify_all()

    def daemon(sock: socket.socket) -> None:
        with resized:
            assert resized.wait_for(lambda: len(sizes) == 2, timeout=20)
        termios.tcsetwinsize(slave, (40, 120))
        os.kill(os.getpid(), signal.SIGWINCH)  # handled by the loop on the main thread
        with resized:
            assert resized.wait_for(lambda: len(sizes) == 3, timeout=20)

    d = Daemon(theirs, daemon)
    try:
        outcome = pump(
            response,
            stdin=False,
            tty=True,
            resize=resize,
            redraw=True,
            stdout_fd=slave,
            stderr_fd=files["stderr"],
        )
    finally:
        os.close(master)
        os.close(slave)
    d.join()
    response.close()
    assert outcome.end == ENDED
    assert sizes == [(31, 101), (30, 100), (40, 120)]
    assert signal.getsignal(signal.SIGWINCH) is signal.SIG_DFL


def test_pump_raw_terminal_sigterm_restores_the_terminal_and_reports_it(
    files: dict[str, int],
) -> None:
    master, slave = os.openpty()
    termios.tcsetwinsize(slave, (30, 100))
    before = termios.tcgetattr(slave)
    response, theirs = hijacked(RAW)
    raw_meanwhile: list[bool] = []

    def resize(height: int, width: int) -> None:
        # Called inside the loop once it owns the signals: SIGTERM cannot kill the run.
        lflag = termios.tcgetattr(slave)[3]
        assert isinstance(lflag, int)
        raw_meanwhile.append(not lflag & termios.ICANON)
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        outcome = pump(
            response,
            stdin=True,
            tty=True,
            keys=b"\x10\x11",
            resize=resize,
            stdin_fd=slave,
            stdout_fd=slave,
            stderr_fd=files["stderr"],
        )
        after = termios.tcgetattr(slave)
    finally:
        response.close()
        theirs.close()
        os.close(master)
        os.close(slave)
    assert (outcome.end, outcome.signal) == (TERMINATED, signal.SIGTERM)
    assert raw_meanwhile == [True]
    assert after == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_outcome_repr_names_the_end() -> None:
    assert repr(Outcome(DETACHED)) == "Outcome('detached', failure='', signal=0)"
