"""Docker's JSON progress streams (``pull``, ``push``, ``load``, ``import``) as text.

Theory of operation:
    The daemon streams JSON messages (``jsonmessage.JSONMessage``)::

        {"status": "Downloading", "id": "ec562eabd705",
         "progressDetail": {"current": 1200000, "total": 3400000}}

    ``ProgressDisplay`` is docker's ``DisplayJSONMessagesStream``:

    * on a terminal, each message with an ``id`` and progress owns a line;
      a new id opens a line below the others, and a later message for it
      moves the cursor up to its line (ANSI ``ESC[nA``), erases it
      (``ESC[2K``), redraws ``id: Status [=====>    ] 1.2MB/3.4MB`` and moves
      back down (``ESC[nB``).  Any message without progress (``Digest:``,
      ``Status:``) ends that group of lines;
    * elsewhere, a message whose progress would draw a bar or counter is
      skipped, so each status (``Pulling fs layer``, ``Download complete``,
      ``Pull complete``) is printed once, as plain lines;
    * ``aux`` messages (push digests, build ids) are handed to a callback,
      not printed;
    * an ``errorDetail`` (or legacy ``error``) ends the stream with
      ``StreamError``.

    ``progress_text`` is ``JSONProgress.String()``: the bar appears only on
    terminals wider than 110 columns, the time left wider than 50, sizes in
    go-units' 4-digit ``HumanSize``.

    Pure module: output goes through a ``write`` callable; the clock and the
    terminal width are parameters.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DEFAULT_WIDTH = 200  # docker's width when the terminal size is unknown

_ERASE_LINE = "\x1b[2K"


class StreamError(Exception):
    """The stream carried an error message (shown as is, exit 1)."""


def _int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    return 0


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def human_size(size: float) -> str:
    """go-units ``HumanSize`` (4 significant digits: ``1.235MB``)."""
    from cli.render import human_size as sized  # lazy: progress stays cheap to import

    return sized(size, 4)


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String`` for whole seconds: ``1h2m3s``, ``45s``, ``0s``."""
    sign = "-" if nanoseconds < 0 else ""
    seconds = abs(nanoseconds) // 1_000_000_000
    if seconds == 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def progress_text(detail: dict[str, object], *, width: int, now: float) -> str:
    """``JSONProgress.String()``: bar, counts and time left of one progress detail."""
    current = _int(detail.get("current"))
    total = _int(detail.get("total"))
    start = _int(detail.get("start"))
    hide_counts = detail.get("hidecounts") is True
    units = detail.get("units")
    units = units if isinstance(units, str) else ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        if not units:
            return f"{human_size(current):>8}"
        return f"{current} {units}"

    percentage = min(_go_div(int(current / total * 100), 2), 50)
    bar = ""
    if width > 110:
        spaces = max(50 - percentage, 0)
        bar = "[" + "=" * percentage + ">" + " " * spaces + "] "

    numbers = ""
    if hide_counts:
        pass
    elif not units:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
        if current > total:
            numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"

    time_left = ""
    if width > 50 and current > 0 and start > 0 and percentage < 50:
        from_start = int((now - start) * 1_000_000_000)
        per_entry = _go_div(from_start, current)
        left = (total - current) * per_entry
        # Duration.Round(time.Second): halves away from zero.
        rounded = _go_div(abs(left) + 500_000_000, 1_000_000_000) * 1_000_000_000
        time_left = " " + go_duration(rounded if left >= 0 else -rounded)
    return bar + numbers + time_left


def _error_text(message: dict[str, object]) -> str | None:
    detail = message.get("errorDetail")
    if isinstance(detail, dict):
        text = detail.get("message")
        if isinstance(text, str) and text:
            return text
        legacy = message.get("error")
        return legacy if isinstance(legacy, str) else ""
    legacy = message.get("error")
    if isinstance(legacy, str) and legacy:
        return legacy
    return None


def _text(message: dict[str, object], key: str) -> str:
    value = message.get(key)
    return value if isinstance(value, str) else ""


class ProgressDisplay:
    """Feed decoded JSON messages; text goes to ``write`` as docker would print it."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        terminal: bool,
        width: int = DEFAULT_WIDTH,
        now: Callable[[], float] | None = None,
        aux: Callable[[object], None] | None = None,
    ) -> None:
        self.write = write
        self.terminal = terminal
        self.width = width
        self.now = now or _time
        self.aux = aux
        self.ids: dict[str, int] = {}

    def feed(self, message: object) -> None:
        """Display one message.

        Raises:
            StreamError: the message carries an error.
        """
        if not isinstance(message, dict):
            return
        if message.get("aux") is not None:
            if self.aux is not None:
                self.aux(message.get("aux"))
            return
        ident = _text(message, "id")
        detail = message.get("progressDetail")
        progress = detail if isinstance(detail, dict) else None
        progress_message = _text(message, "progress")
        diff = 0
        out: list[str] = []
        if ident and (progress is not None or progress_message):
            line = self.ids.get(ident)
            if line is None:
                line = len(self.ids)
                self.ids[ident] = line
                if self.terminal:
                    out.append("\n")
            diff = len(self.ids) - line
            if self.terminal:
                out.append(f"\x1b[{diff}A")
        else:
            # Anything that is not progress ends the group of progress lines
            # (pull -a: the next tag's layers start afresh).
            self.ids = {}
        error = _error_text(message)
        if error is None:
            out.append(self._line(message, ident, progress, progress_message))
        if ident and self.terminal and diff:
            out.append(f"\x1b[{diff}B")
        text = "".join(out)
        if text:
            self.write(text)
        if error is not None:
            raise StreamError(error)

    def _line(
        self,
        message: dict[str, object],
        ident: str,
        progress: dict[str, object] | None,
        progress_message: str,
    ) -> str:
        """``JSONMessage.Display`` for a message without an error."""
        stream = _text(message, "stream")
        status = _text(message, "status")
        parts: list[str] = []
        endl = ""
        bar = ""
        if progress is not None:
            bar = progress_text(progress, width=self.width, now=self.now())
        if self.terminal and not stream and progress is not None:
            parts.append(_ERASE_LINE + "\r")
            endl = "\r"
        elif progress is not None and bar:
            return ""  # no progress bars without a terminal
        if ident:
            parts.append(f"{ident}: ")
        origin = _text(message, "from")
        if origin:
            parts.append(f"(from {origin}) ")
        if progress is not None and self.terminal:
            parts.append(f"{status} {bar}{endl}")
        elif progress_message:
            parts.append(f"{status} {progress_message}{endl}")
        elif stream:
            parts.append(f"{stream}{endl}")
        else:
            parts.append(f"{status}{endl}\n")
        return "".join(parts)


def _time() -> float:
    import time

    return time.time()


def display(
    messages: Iterable[object],
    write: Callable[[str], None],
    *,
    terminal: bool,
    width: int = DEFAULT_WIDTH,
    aux: Callable[[object], None] | None = None,
) -> None:
    """Display a whole stream.

    Raises:
        StreamError: a message carries an error.
    """
    shown = ProgressDisplay(write, terminal=terminal, width=width, aux=aux)
    for message in messages:
        shown.feed(message)
