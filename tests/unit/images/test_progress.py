from __future__ import annotations

import pytest

from supervisor.images import progress


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (2_130_000, "2.13MB"), (5_000_000_000, "5GB")],
    ids=["zero", "bytes", "kilo", "mega", "giga"],
)
def test_human_size_matches_go_units(n: int, text: str) -> None:
    assert progress.human_size(n) == text


def test_bar_is_fifty_wide_with_arrow() -> None:
    bar = progress.bar(50, 100)
    assert bar.startswith("[" + "=" * 25 + ">")
    assert bar.index("]") == 51
    assert bar.endswith("50B/100B")


def test_full_bar_and_encoding() -> None:
    assert progress.bar(100, 100).startswith("[" + "=" * 49 + ">]")
    assert (
        progress.encode(progress.status("Pulling fs layer", id_="abc"))
        == b'{"status": "Pulling fs layer", "id": "abc", "progressDetail": {}}\r\n'
    )
    assert progress.error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}
