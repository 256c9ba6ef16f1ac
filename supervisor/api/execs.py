"""``/containers/{id}/exec`` and ``/exec/*`` routes."""

from __future__ import annotations

import contextlib

import trio

from supervisor.api.backend import Backend
from supervisor.api.hijack import InputEnd, pump_stdin
from supervisor.api.http import HIJACKED, Request, Response, Router, json_response
from supervisor.containers.logs import frame
from supervisor.containers.stdio import parse_detach_keys
from supervisor.errors import BerthError, InvalidArgument


def register(router: Router, b: Backend) -> None:
    execs = b.execs

    @router.route("POST", "/containers/{id}/exec")
    async def create(req: Request) -> Response:
        ex = await execs.create(req.params["id"], await req.json())
        return json_response({"Id": ex.id}, 201)

    @router.route("GET", "/exec/{id}/json")
    async def inspect(req: Request) -> Response:
        return json_response(execs.get(req.params["id"]).inspect())

    @router.route("POST", "/exec/{id}/resize")
    async def resize(req: Request) -> Response:
        execs.resize(req.params["id"], _int(req.q("h") or "0"), _int(req.q("w") or "0"))
        return Response(200)

    @router.route("POST", "/exec/{id}/start")
    async def start(req: Request) -> object:
        ex = execs.get(req.params["id"])
        body = await req.json(allow_empty=True) or {}
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        tty = body.get("Tty")
        tty = bool(tty) if tty is not None else None
        if body.get("Detach"):
            await execs.start(ex.id, capture=False, tty=tty)
            return Response(200)
        keys = parse_detach_keys(ex.detach_keys)  # used only with a TTY (see below)
        execs.check_startable(ex.id)  # 404 / 409 as HTTP errors
        receive = ex.hub.subscribe()
        if tty is not None:
            ex.tty = tty
        ctype = (
            "application/vnd.docker.raw-stream"
            if ex.tty
            else "application/vnd.docker.multiplexed-stream"
        )
        first = await req.hijack(ctype)
        try:
            await execs.start(ex.id, capture=True)
        except BerthError as exc:
            # As moby: the stream is already upgraded, so the error is written into it
            # and the exit code (126/127) is left for the client's inspect.
            message = f"{exc}\r\n".encode()
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await req.stream.send_all(message if ex.tty else frame("stdout", message))
            return HIJACKED
        size = body.get("ConsoleSize")
        if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
            execs.resize(ex.id, size[0], size[1])

        async def output(done: trio.CancelScope) -> None:
            try:
                async with receive:
                    async for e in receive:
                        if (e.stream == "stdout" and ex.attach_stdout) or (
                            e.stream == "stderr" and ex.attach_stderr
                        ):
                            await req.stream.send_all(e.data if ex.tty else frame(e.stream, e.data))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            done.cancel()

        async def stdin(done: trio.CancelScope) -> None:
            if ex.stdin_fd < 0:
                return
            end = await pump_stdin(req.stream, first, ex.stdin_fd, keys if ex.tty else b"")
            if end is InputEnd.DETACHED:
                done.cancel()
            elif end is InputEnd.EOF and not ex.tty:
                execs.close_stdin(ex)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(output, nursery.cancel_scope)
            if ex.attach_stdin:
                nursery.start_soon(stdin, nursery.cancel_scope)
        return HIJACKED

    del create, inspect, resize, start


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"invalid size: {text!r}") from None
