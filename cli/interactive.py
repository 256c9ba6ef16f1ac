"""Interactive streams for ``run -i/-t``, ``start -ai``, ``exec`` and ``attach``.

Theory of operation:
    After ``101 UPGRADED`` the connection carries the process's output one way
    and what the user types the other.  ``pump`` moves both with one thread and
    one ``poll`` loop, so no reader thread is ever left behind:

    * output: socket -> stdout, as is with a TTY, otherwise demultiplexed
      (``cli.stream``) to stdout and stderr;
    * input: stdin -> socket, through the client-side ``EscapeDetector`` when
      there is a TTY (docker's escape proxy).  At the end of stdin the held
      bytes are sent and the write side is shut (docker's ``CloseWrite``): with
      ``StdinOnce`` the daemon then closes the process's stdin.  Input waiting
      to be sent sits in a buffer and stdin is not read meanwhile: a process
      that does not read its input must never stop us from reading its output
      (the daemon would block on us, and we on it);
    * the window: SIGWINCH wakes the loop through ``signal.set_wakeup_fd`` and
      the new size is sent (``POST .../resize``), as docker's
      ``MonitorTtySize``; the size is also sent once at the start.

    The stream ends when the daemon closes it (``ENDED``), when the detach keys
    are typed (``DETACHED``), or on SIGTERM/SIGHUP while the terminal is raw
    (``TERMINATED``: nobody forwards those with a TTY, and dying without
    restoring the terminal would leave the user's shell unusable).

    The terminal goes raw only with stdin attached, a TTY and stdin a terminal
    (docker's ``SetRawTerminal``: cfmakeraw on stdin), and is restored when
    stdin ends and on every way out, errors and Ctrl-C included (``finally``).

    Start-up: ``berth run`` without ``-i``/``-t`` never imports this module;
    termios, select and signal are imported here only.
"""

from __future__ import annotations

import contextlib
import os
import sys

from cli.client import ClientError
from cli.detachkeys import DetachKeysError, EscapeDetector, parse_detach_keys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from cli.client import Client, Response

    TermAttrs = list[int | list[bytes | int]]

RAW_STREAM = "application/vnd.docker.raw-stream"
ENDED = "ended"
DETACHED = "detached"
TERMINATED = "terminated"
_CHUNK = 64 * 1024


class NotATerminal(ClientError):
    """``-it`` with a stdin that is not a terminal (docker's ``CheckTty``)."""

    def __init__(self) -> None:
        super().__init__("the input device is not a TTY")


class Outcome:
    """How a stream ended: ``end`` is ENDED, DETACHED or TERMINATED.

    ``failure`` is a message when the output could not be read to its end
    (broken framing, an error frame from the daemon); ``signal`` the signal
    number of TERMINATED.
    """

    __slots__ = ("end", "failure", "signal")

    def __init__(self, end: str, *, failure: str = "", signal: int = 0) -> None:
        self.end = end
        self.failure = failure
        self.signal = signal

    @property
    def detached(self) -> bool:
        return self.end == DETACHED

    def __repr__(self) -> str:
        return f"Outcome({self.end!r}, failure={self.failure!r}, signal={self.signal})"


# --- checks and settings ---------------------------------------------------------------


def check_tty(*, attach_stdin: bool, tty: bool, fd: int = 0) -> None:
    """Refuse a TTY with attached input that is not a terminal, as docker does.

    Raises:
        NotATerminal: ``the input device is not a TTY``.
    """
    if tty and attach_stdin and not os.isatty(fd):
        raise NotATerminal


def console_size(fd: int = 1) -> tuple[int, int]:
    """``(rows, columns)`` of the terminal on ``fd``; ``(0, 0)`` when it is none."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 0, 0
    return size.lines, size.columns


def detach_keys(flag: str | None, environ: Mapping[str, str]) -> tuple[str, bytes]:
    """The detach keys: ``--detach-keys``, else ``detachKeys`` in ``config.json``,
    else docker's default.

    Returns:
        ``(text for the API, "" for the daemon's default; the bytes to watch for)``.

    Raises:
        ClientError: the keys are not docker's syntax.
    """
    text = flag or _configured_keys(environ)
    try:
        return text, parse_detach_keys(text)
    except DetachKeysError as exc:
        raise ClientError(str(exc)) from None


def _configured_keys(environ: Mapping[str, str]) -> str:
    import json

    from cli.auth import config_path

    try:
        with open(config_path(environ), "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return ""  # no file, or one the registry commands will complain about
    value = data.get("detachKeys") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def resizer(client: Client, path: str) -> Callable[[int, int], None]:
    """Sends a window size to ``path`` (``/containers/X/resize``, ``/exec/X/resize``).

    Errors are dropped: a process that just ended cannot be resized, and docker
    does not stop an interactive session for that either.
    """

    def resize(height: int, width: int) -> None:
        if height <= 0 and width <= 0:
            return
        with contextlib.suppress(ClientError):
            client.request("POST", path, query={"h": height, "w": width}).close()

    return resize


# --- the terminal ------------------------------------------------------------------------


def make_raw(mode: TermAttrs) -> TermAttrs:
    """A copy of termios attributes in raw mode (``cfmakeraw``, as moby/term's ``MakeRaw``):
    no echo, no line editing, no signals from keys, no output processing, 8-bit bytes,
    reads return as soon as one byte is there."""
    import termios

    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = mode
    assert isinstance(iflag, int)
    assert isinstance(oflag, int)
    assert isinstance(cflag, int)
    assert isinstance(lflag, int)
    assert isinstance(cc, list)
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


class RawTerminal:
    """The terminal on ``fd`` in raw mode while entered (a no-op when ``active`` is
    False or ``fd`` is not a terminal); ``restore`` may be called early, and twice.

    Resource handling: the saved attributes are put back with ``TCSANOW`` on every
    exit, exceptions included.
    """

    def __init__(self, fd: int, *, active: bool) -> None:
        self.fd = fd
        self.active = active and os.isatty(fd)
        self._saved: TermAttrs | None = None

    @property
    def raw(self) -> bool:
        return self._saved is not None

    def __enter__(self) -> RawTerminal:
        if self.active:
            import termios

            saved: TermAttrs = termios.tcgetattr(self.fd)
            termios.tcsetattr(self.fd, termios.TCSANOW, make_raw(saved))
            self._saved = saved
        return self

    def restore(self) -> None:
        if self._saved is None:
            return
        import termios

        saved, self._saved = self._saved, None
        with contextlib.suppress(termios.error):  # a terminal that hung up needs nothing
            termios.tcsetattr(self.fd, termios.TCSANOW, saved)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()


# --- signals as bytes on a pipe -----------------------------------------------------------


def _ignore(signum: int, frame: object) -> None:
    """A Python-level handler, so that the C handler writes the signal to the wakeup fd."""
    del signum, frame


class Wakeup:
    """While entered, ``signals`` are delivered as bytes on ``fd`` (``set_wakeup_fd``)
    for the poll loop to act on; previous handlers and wakeup fd come back on exit.

    Only the main thread can do this: elsewhere (tests running commands in a thread)
    ``fd`` is -1 and nothing is caught.  Only signals at their default action are
    taken over (``owned``): one that is ignored (``nohup``) stays ignored, and one
    with a Python handler (``--sig-proxy`` forwarding) keeps it, though it is
    reported on ``fd`` too.
    """

    def __init__(self, signals: tuple[int, ...]) -> None:
        self.signals = signals
        self.fd = -1
        self.owned: set[int] = set()
        self._write = -1
        self._old_fd = -1

    def __enter__(self) -> Wakeup:
        import signal
        import threading

        if not self.signals or threading.current_thread() is not threading.main_thread():
            return self
        self.fd, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in self.signals:
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _ignore)
                self.owned.add(signum)
        return self

    def received(self) -> set[int]:
        """The signals delivered since the last call."""
        got: set[int] = set()
        while True:
            try:
                data = os.read(self.fd, 512)
            except BlockingIOError:
                return got
            if not data:
                return got
            got.update(data)

    def __exit__(self, *exc: object) -> None:
        if self.fd < 0:
            return
        import signal

        for signum in self.owned:
            signal.signal(signum, signal.SIG_DFL)
        self.owned.clear()
        signal.set_wakeup_fd(self._old_fd)
        os.close(self.fd)
        os.close(self._write)
        self.fd = self._write = -1


# --- output ------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:  # an O_NONBLOCK stdout shared with another process
            import select

            select.select([], [fd], [])
            continue
        view = view[n:]


class _Output:
    """Writes what the daemon sends: raw to ``stdout``, or frames to stdout/stderr."""

    def __init__(self, *, raw: bool, stdout: int, stderr: int) -> None:
        from cli.stream import Demuxer

        self.stdout = stdout
        self.stderr = stderr
        self.demux = None if raw else Demuxer()

    def feed(self, data: bytes) -> str:
        """Write ``data``; a message if the stream is broken ("" otherwise)."""
        if self.demux is None:
            _write_all(self.stdout, data)
            return ""
        from cli.stream import STDERR, SYSTEMERR, FrameError

        try:
            frames = self.demux.feed(data)
        except FrameError as exc:
            return f"error reading the output stream: {exc}"
        for stream, payload in frames:
            if stream == SYSTEMERR:
                return "error from daemon in stream: " + payload.decode("utf-8", "replace")
            _write_all(self.stderr if stream == STDERR else self.stdout, payload)
        return ""

    def close(self) -> str:
        if self.demux is None:
            return ""
        from cli.stream import FrameError

        try:
            self.demux.close()
        except FrameError as exc:
            return f"error reading the output stream: {exc}"
        return ""


# --- the loop ----------------------------------------------------------------------------


def pump(
    response: Response,
    *,
    stdin: bool,
    tty: bool,
    keys: bytes = b"",
    resize: Callable[[int, int], None] | None = None,
    redraw: bool = False,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
) -> Outcome:
    """Copy a hijacked stream to the terminal and the terminal's input to it.

    Args:
        response: the upgraded connection (``Client.hijack``); the caller closes it.
        stdin: send ``stdin_fd`` to the process.
        tty: the process has a TTY: raw output, raw terminal, detach keys watched.
        keys: the detach sequence (``detach_keys``); empty watches for none.
        resize: sends a window size; called at the start and on SIGWINCH when
            ``tty`` and ``stdout_fd`` is a terminal.
        redraw: resize to one more row and column first, so that a program that
            already drew its screen draws it again (``docker attach``).

    Returns:
        How the stream ended.

    Errors: ``BrokenPipeError`` when stdout's reader goes away, ``OSError`` from
    the terminal; the terminal is restored either way.
    """
    import select
    import signal
    import socket

    sys.stdout.flush()
    sys.stderr.flush()
    raw = tty or response.headers.get("content-type") == RAW_STREAM
    output = _Output(raw=raw, stdout=stdout_fd, stderr=stderr_fd)
    sock = response.sock
    sock_fd = sock.fileno()
    detector = EscapeDetector(keys) if tty and stdin and keys else None
    sizing = resize is not None and tty and os.isatty(stdout_fd)
    watched: tuple[int, ...] = (signal.SIGWINCH,) if sizing else ()
    terminal = RawTerminal(stdin_fd, active=stdin and tty)
    if terminal.active:
        watched += (signal.SIGTERM, signal.SIGHUP)
    outbox = bytearray()
    reading = stdin  # stdin is still read
    input_done = not stdin  # stdin ended: shut the write side once outbox is sent

    with terminal, Wakeup(watched) as wakeup:
        if sizing:
            assert resize is not None
            height, width = console_size(stdout_fd)
            if redraw:
                resize(height + 1, width + 1)
            resize(height, width)
        failure = output.feed(response.take_buffered())
        if failure:
            return Outcome(ENDED, failure=failure)
        sock.setblocking(False)
        poller = select.poll()
        if wakeup.fd >= 0:
            poller.register(wakeup.fd, select.POLLIN)
        stdin_registered = False

        def send_pending() -> None:
            nonlocal input_done, reading
            if outbox:
                try:
                    sent = sock.send(outbox)
                except BlockingIOError:
                    return
                except OSError:
                    # The daemon stopped reading (it closed the process's stdin): drop
                    # input from now on, keep the output coming (docker logs and goes on).
                    outbox.clear()
                    reading = False
                    input_done = True
                else:
                    del outbox[:sent]
            if not outbox and input_done:
                input_done = False  # shut once
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)

        send_pending()  # no stdin: shut the write side at once, as docker does
        while True:
            poller.register(sock_fd, select.POLLIN | (select.POLLOUT if outbox else 0))
            want_stdin = reading and not outbox
            if want_stdin != stdin_registered:
                if want_stdin:
                    poller.register(stdin_fd, select.POLLIN)
                else:
                    poller.unregister(stdin_fd)
                stdin_registered = want_stdin
            for fd, events in poller.poll():
                if fd == sock_fd:
                    if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        try:
                            data = sock.recv(_CHUNK)
                        except BlockingIOError:
                            data = None
                        except OSError:
                            data = b""  # reset by the daemon: the stream is over
                        if data == b"":
                            return Outcome(ENDED, failure=output.close())
                        if data:
                            failure = output.feed(data)
                            if failure:
                                return Outcome(ENDED, failure=failure)
                    if events & select.POLLOUT:
                        send_pending()
                elif fd == stdin_fd:
                    try:
                        data = b"" if events & select.POLLNVAL else os.read(stdin_fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""  # EIO: the terminal hung up
                    if not data:
                        reading = False
                        input_done = True
                        if detector is not None:
                            outbox += detector.flush()
                        terminal.restore()  # docker gives the terminal back at once
                    elif detector is not None:
                        forward, detached = detector.feed(data)
                        outbox += forward
                        if detached:
                            send_pending()  # what was typed before the keys, if it fits
                            return Outcome(DETACHED)
                    else:
                        outbox += data
                    send_pending()
                elif fd == wakeup.fd:
                    got = wakeup.received()
                    for signum in (signal.SIGTERM, signal.SIGHUP):
                        if signum in got and signum in wakeup.owned:
                            return Outcome(TERMINATED, signal=signum)
                    if signal.SIGWINCH in got and resize is not None:
                        resize(*console_size(stdout_fd))
