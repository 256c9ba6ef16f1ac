"""The one place where errors become HTTP responses (moby's ``httputils/errors.go``).

A :class:`~supervisor.errors.BerthError` carries its status; anything else is a bug:
500 with a generic message, and the traceback goes to the log once, here.

Are you sure you should be adding a new error class? See ``supervisor/errors.py``.
"""

from __future__ import annotations

import json

import structlog

from supervisor.errors import BerthError, berth_error_in

log = structlog.get_logger()


def error_response(exc: BaseException, *, method: str, path: str) -> tuple[int, bytes]:
    exc = berth_error_in(exc) or exc
    if isinstance(exc, BerthError):
        status, message = exc.status, str(exc)
        if status >= 500:
            log.warning(
                "api.request_failed", method=method, path=path, status=status, error=message
            )
    else:
        status, message = 500, f"internal error: {type(exc).__name__}: {exc}"
        log.error("api.unhandled_error", method=method, path=path, exc_info=exc)
    return status, json.dumps({"message": message}).encode() + b"\n"
