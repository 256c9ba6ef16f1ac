"""``cli.progress``: docker's jsonmessage rendering, with and without a terminal."""

from __future__ import annotations

import pytest

from cli.progress import ProgressDisplay, StreamError, display, go_duration, progress_text

UP = "\x1b[{}A"
DOWN = "\x1b[{}B"
ERASE = "\x1b[2K"


def render(messages: list[object], *, terminal: bool, width: int = 200) -> str:
    written: list[str] = []
    display(messages, written.append, terminal=terminal, width=width)
    return "".join(written)


def layer(ident: str, status: str, **detail: int) -> dict[str, object]:
    return {"id": ident, "status": status, "progressDetail": detail}


def test_without_a_terminal_each_status_once_and_no_bars() -> None:
    messages: list[object] = [
        {"status": "Pulling from library/busybox", "id": "latest"},
        layer("a1", "Pulling fs layer"),
        layer("b2", "Pulling fs layer"),
        layer("a1", "Downloading", current=10, total=100),
        layer("a1", "Downloading", current=50, total=100),
        layer("a1", "Download complete"),
        layer("a1", "Extracting", current=100, total=100),
        layer("a1", "Pull complete"),
        {"status": "Digest: sha256:1"},
        {"stream": "Loaded image: x:y\n"},
        {"status": "Waiting", "id": "c3", "progress": "legacy text"},
        {"progressDetail": {}, "aux": {"Tag": "v1"}},
    ]
    assert render(messages, terminal=False) == (
        "latest: Pulling from library/busybox\n"
        "a1: Pulling fs layer\n"
        "b2: Pulling fs layer\n"
        "a1: Download complete\n"
        "a1: Pull complete\n"
        "Digest: sha256:1\n"
        "Loaded image: x:y\n"
        "c3: Waiting legacy text"
    )


def test_terminal_lines_are_redrawn_in_place() -> None:
    messages: list[object] = [
        layer("a1", "Pulling fs layer"),
        layer("b2", "Waiting"),
        layer("a1", "Downloading", current=1_200_000, total=3_400_000),
        layer("b2", "Pull complete"),
        {"status": "Status: done"},
        layer("c3", "Pushed"),
    ]
    text = render(messages, terminal=True, width=120)
    assert text == (
        # a1 opens line 0
        f"\n{UP.format(1)}{ERASE}\ra1: Pulling fs layer \r{DOWN.format(1)}"
        # b2 opens line 1
        f"\n{UP.format(1)}{ERASE}\rb2: Waiting \r{DOWN.format(1)}"
        # a1 is two lines up
        f"{UP.format(2)}{ERASE}\ra1: Downloading "
        f"[=================>                                 ]    1.2MB/3.4MB\r{DOWN.format(2)}"
        f"{UP.format(1)}{ERASE}\rb2: Pull complete \r{DOWN.format(1)}"
        "Status: done\n"
        # a new group after a plain line
        f"\n{UP.format(1)}{ERASE}\rc3: Pushed \r{DOWN.format(1)}"
    )


def test_narrow_terminal_drops_the_bar() -> None:
    text = render([layer("a1", "Downloading", current=5, total=10)], terminal=True, width=80)
    assert text == f"\n{UP.format(1)}{ERASE}\ra1: Downloading       5B/10B\r{DOWN.format(1)}"


@pytest.mark.parametrize(
    ("detail", "width", "expected"),
    [
        ({}, 200, ""),
        ({"current": 0, "total": 0}, 200, ""),
        ({"current": 1500}, 200, "   1.5kB"),
        ({"current": 3, "units": "layers"}, 200, "3 layers"),
        (
            {"current": 25, "total": 100},
            111,
            "[============>                                      ]      25B/100B",
        ),
        ({"current": 25, "total": 100}, 110, "     25B/100B"),
        ({"current": 200, "total": 100}, 100, "    200B"),
        ({"current": 1, "total": 4, "units": "items"}, 100, "1/4 items"),
        ({"current": 9, "total": 4, "units": "items"}, 100, "9 items"),
        (
            {"current": 100, "total": 100},
            120,
            "[==================================================>]     100B/100B",
        ),
        ({"current": 1, "total": 2, "hidecounts": True}, 100, ""),
        ({"current": 1_234_567, "total": 98_765_432}, 60, " 1.235MB/98.77MB"),
    ],
)
def test_progress_text(detail: dict[str, object], width: int, expected: str) -> None:
    assert progress_text(detail, width=width, now=0.0) == expected


def test_progress_time_left() -> None:
    detail: dict[str, object] = {"current": 100, "total": 400, "start": 1000}
    # 10 s for 100 bytes: 300 bytes left take 30 s.
    assert progress_text(detail, width=80, now=1010.0) == "    100B/400B 30s"
    assert progress_text(detail, width=50, now=1010.0) == "    100B/400B"
    assert progress_text({**detail, "total": 100_000}, width=80, now=1010.0) == (
        "    100B/100kB 2h46m30s"
    )


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0s"), (1_000_000_000, "1s"), (61_000_000_000, "1m1s"), (3_600_000_000_000, "1h0m0s")],
)
def test_go_duration(nanos: int, text: str) -> None:
    assert go_duration(nanos) == text
    if nanos:
        assert go_duration(-nanos) == "-" + text


def test_errors_end_the_stream() -> None:
    written: list[str] = []
    shown = ProgressDisplay(written.append, terminal=False)
    shown.feed({"status": "Pulling"})
    with pytest.raises(StreamError, match=r"^denied$"):
        shown.feed({"errorDetail": {"message": "denied"}, "error": "ignored"})
    with pytest.raises(StreamError, match=r"^legacy$"):
        shown.feed({"error": "legacy"})
    assert written == ["Pulling\n"]


def test_error_on_a_terminal_moves_the_cursor_back_down() -> None:
    written: list[str] = []
    shown = ProgressDisplay(written.append, terminal=True)
    shown.feed(layer("a1", "Waiting"))
    written.clear()
    with pytest.raises(StreamError):
        shown.feed({"id": "a1", "progressDetail": {}, "errorDetail": {"message": "boom"}})
    assert written == [f"{UP.format(1)}{DOWN.format(1)}"]


def test_aux_goes_to_the_callback() -> None:
    seen: list[object] = []
    written: list[str] = []
    display(
        [{"aux": {"ID": "sha256:1"}}, {"status": "done"}, {"aux": None, "status": "x"}],
        written.append,
        terminal=False,
        aux=seen.append,
    )
    assert seen == [{"ID": "sha256:1"}]
    assert written == ["done\n", "x\n"]
