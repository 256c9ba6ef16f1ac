"""berth's closed set of error classes, each carrying the HTTP status the API answers with.

Theory of operation: the class, not the handler, chooses the status (h11's
``error_status_hint``, moby's ``errdefs``). ``supervisor.api.errors`` is the one place
that turns a ``BerthError`` into a response. The messages are shown to users verbatim,
so they follow Docker's wording where clients match on it.

Are you sure you should be adding a new error class here? Prefer an existing one.
"""

from __future__ import annotations


class BerthError(Exception):
    """Any failure whose message is safe to show to a client (500)."""

    status = 500


class InvalidArgument(BerthError):
    """Bad input from the client (400)."""

    status = 400


class Unauthorized(BerthError):
    status = 401


class Forbidden(BerthError):
    status = 403


class NotFound(BerthError):
    """The named object does not exist (404)."""

    status = 404


class Conflict(BerthError):
    """The request conflicts with current state (409): name in use, container running..."""

    status = 409


class NotModified(BerthError):
    """Nothing to do (304, sent without a body): already started / already stopped."""

    status = 304


class Unsupported(BerthError):
    status = 501


class Unavailable(BerthError):
    """The daemon cannot serve this now (503): shutting down, not a swarm node..."""

    status = 503


class RuntimeFailed(BerthError):
    """The OCI runtime refused or failed an operation (500)."""

    status = 500


class NoSuchContainer(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")


class NoSuchImage(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")


def berth_error_in(exc: BaseException) -> BerthError | None:
    """The first BerthError in ``exc`` or, for an exception group (trio nurseries raise
    them), among its leaves: a failed layer download reports the registry's message."""
    if isinstance(exc, BerthError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = berth_error_in(inner)
            if found is not None:
                return found
    return None
