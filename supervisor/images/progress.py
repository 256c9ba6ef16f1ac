"""Docker's JSON progress messages (``docker pull``/``push``/``load`` output). Pure.

Theory of operation: each message is one JSON object per line: ``{"status": ...,
"id": <short id>, "progressDetail": {"current": n, "total": m}, "progress": "[==> ] ..."}``
or an error ``{"errorDetail": {"message": m}, "error": m}``. The ``progress`` bar is the
one moby's ``jsonmessage.JSONProgress.String`` draws, so the docker CLI's output looks
the same whether it renders the bar or our string.
"""

from __future__ import annotations

import json
from typing import Any

BAR_WIDTH = 50


def human_size(n: float) -> str:
    """go-units ``HumanSize``: decimal units, 3 significant digits ("2.13MB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.3g}{units[i]}"


def bar(current: int, total: int) -> str:
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    arrow = "=" * filled + (">" if filled < BAR_WIDTH else "")
    if filled == BAR_WIDTH:
        arrow = "=" * (BAR_WIDTH - 1) + ">"
    return f"[{arrow:<{BAR_WIDTH}}] {human_size(current):>8}/{human_size(total)}"


def short_id(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def status(text: str, *, id_: str | None = None, **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"status": text}
    if id_ is not None:
        msg["id"] = id_
        msg.setdefault("progressDetail", {})
    msg.update(extra)
    return msg


def progress(text: str, id_: str, current: int, total: int) -> dict[str, Any]:
    return {
        "status": text,
        "progressDetail": {"current": current, "total": total},
        "progress": bar(current, total),
        "id": id_,
    }


def error(message: str) -> dict[str, Any]:
    return {"errorDetail": {"message": message}, "error": message}


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg).encode() + b"\r\n"
