"""``/containers/*`` routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import trio

from supervisor.api.backend import Backend
from supervisor.api.hijack import InputEnd, pump_stdin
from supervisor.api.http import (
    HIJACKED,
    Produced,
    Request,
    Response,
    Router,
    Streaming,
    Write,
    json_response,
)
from supervisor.api.params import parse_timestamp
from supervisor.api.schema import container_inspect, container_summary
from supervisor.containers import filters as container_filters
from supervisor.containers import health
from supervisor.containers.export import stream_rootfs
from supervisor.containers.logs import LogEntry, format_time, frame, read_entries, select_entries
from supervisor.containers.state import Status
from supervisor.containers.stdio import parse_detach_keys
from supervisor.errors import BerthError, InvalidArgument, NotFound
from supervisor.events.filters import parse_filters
from supervisor.model import Container


def register(router: Router, b: Backend) -> None:
    m = b.containers

    @router.route("POST", "/containers/create")
    async def create(req: Request) -> Response:
        body = await req.json()
        name = req.q("name") or None
        c = await m.create(body, name=name)
        return json_response({"Id": c.id, "Warnings": []}, 201)

    @router.route("GET", "/containers/json")
    async def list_(req: Request) -> Response:
        filters = parse_filters(req.q_json("filters"))

        def resolve(ref: str) -> Container | None:
            try:
                return m.get(ref).record
            except BerthError:
                return None

        def image_matches(c: Container, ref: str) -> bool:
            return (
                c.image_ref == ref
                or c.image_id.startswith(ref)
                or c.image_id.removeprefix("sha256:").startswith(ref)
                or c.image_ref.split(":")[0] == ref
            )

        def networks_of(c: Container) -> set[str]:
            out: set[str] = set()
            for e in b.networks.endpoints_of(c.id):
                try:
                    n = b.networks.get(e.network_id)
                except NotFound:
                    continue
                out.update((n.name, n.id))
            return out

        selected = container_filters.select(
            m.all(),
            filters,
            all_=req.q_bool("all"),
            resolve=resolve,
            image_matches=image_matches,
            networks_of=networks_of,
            health_of=lambda c: health.filter_value(m.health_of(c)),
        )
        limit = req.q_int("limit", -1)
        if limit is not None and limit > 0:
            selected = selected[:limit]
        out = []
        mounts = await b.volumes.api_mounts_all()
        for c in selected:
            settings = m.network_settings(m.get(c.id))
            out.append(
                container_summary(
                    c,
                    ports=m.summary_ports(c),
                    networks=settings["Networks"],
                    mounts=mounts.get(c.id),
                    health=m.health_of(c),
                )
            )
        return json_response(out)

    @router.route("GET", "/containers/{id}/json")
    async def inspect(req: Request) -> Response:
        h = m.get(req.params["id"])
        paths = m.paths(h.id)
        try:
            lowers = [str(p) for p in await b.images.lowerdirs_of(h.record.image_id)]
        except NotFound:
            lowers = []
        return json_response(
            container_inspect(
                h.record,
                log_path=str(paths.log),
                data_dir=str(paths.data),
                rootfs=str(paths.rootfs),
                lowers=lowers,
                network_settings=m.network_settings(h),
                mounts=await b.volumes.api_mounts(h.id),
                health=m.health_of(h.record),
            )
        )

    @router.route("POST", "/containers/{id}/start")
    async def start(req: Request) -> Response:
        await m.start(req.params["id"])
        return Response(204)

    @router.route("POST", "/containers/{id}/stop")
    async def stop(req: Request) -> Response:
        timeout = req.q_int("t", None)
        if timeout is None:
            timeout = req.q_int("timeout", None)
        await m.stop(req.params["id"], timeout=timeout, signal_name=req.q("signal") or None)
        return Response(204)

    @router.route("POST", "/containers/{id}/restart")
    async def restart(req: Request) -> Response:
        await m.restart(
            req.params["id"], timeout=req.q_int("t", None), signal_name=req.q("signal") or None
        )
        return Response(204)

    @router.route("POST", "/containers/{id}/pause")
    async def pause(req: Request) -> Response:
        await m.pause(req.params["id"])
        return Response(204)

    @router.route("POST", "/containers/{id}/unpause")
    async def unpause(req: Request) -> Response:
        await m.unpause(req.params["id"])
        return Response(204)

    @router.route("POST", "/containers/{id}/kill")
    async def kill(req: Request) -> Response:
        await m.kill(req.params["id"], req.q("signal") or None)
        return Response(204)

    @router.route("POST", "/containers/{id}/wait")
    async def wait(req: Request) -> Streaming:
        # Registered before the 200 header goes out (404/400 still possible here): Docker
        # sends the header at once and the body at exit, and clients rely on that to
        # know the wait is in place before they start the container.
        wait_exit = m.waiter(req.params["id"], req.q("condition"))

        async def body() -> AsyncIterator[bytes]:
            code, error = await wait_exit()
            yield (
                json.dumps(
                    {"StatusCode": code, "Error": {"Message": error} if error else None}
                ).encode()
                + b"\n"
            )

        return Streaming(body(), watch_disconnect=True)

    @router.route("DELETE", "/containers/{id}")
    async def remove(req: Request) -> Response:
        await m.remove(req.params["id"], force=req.q_bool("force"), volumes=req.q_bool("v"))
        return Response(204)

    @router.route("POST", "/containers/{id}/rename")
    async def rename(req: Request) -> Response:
        name = req.q("name")
        if not name:
            raise InvalidArgument("name is required")
        await m.rename(req.params["id"], name)
        return Response(204)

    @router.route("POST", "/containers/prune")
    async def prune(req: Request) -> Response:
        filters = parse_filters(req.q_json("filters"))
        deleted = []
        for c in container_filters.select_prunable(m.all(), filters):
            try:
                await m.remove(c.id, force=False)
                deleted.append(c.id)
            except BerthError:
                continue
        return json_response({"ContainersDeleted": deleted, "SpaceReclaimed": 0})

    @router.route("GET", "/containers/{id}/export")
    async def export(req: Request) -> Produced:
        m.get(req.params["id"])  # 404 before the status line

        async def produce(write: Write) -> None:
            async with m.mounted_rootfs(req.params["id"]) as (_, root):
                await stream_rootfs(root, write)

        return Produced(produce, content_type="application/x-tar")

    @router.route("GET", "/containers/{id}/logs")
    async def logs(req: Request) -> Streaming:
        h = m.get(req.params["id"])
        stdout, stderr = req.q_bool("stdout"), req.q_bool("stderr")
        if not stdout and not stderr:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        follow = req.q_bool("follow")
        timestamps = req.q_bool("timestamps")
        since_ns = _time_param(req.q("since"))
        until_ns = _time_param(req.q("until"))
        tail_text = req.q("tail", "all")
        tail = None if tail_text in ("all", "") else _int_or_400(tail_text, "tail")
        if tail is not None and tail < 0:
            tail = None
        tty = bool(h.record.config.get("Tty"))

        def encode(e: LogEntry) -> bytes:
            payload = (format_time(e.time_ns).encode() + b" " if timestamps else b"") + e.data
            return payload if tty else frame(e.stream, payload)

        # Read the file and subscribe in one synchronous step: no line is lost or doubled.
        existing = select_entries(
            read_entries(m.paths(h.id).log),
            stdout=stdout,
            stderr=stderr,
            since_ns=since_ns,
            until_ns=until_ns,
            tail=tail,
        )
        # Follow only while a run's output flows (a run that just ended has no more to give;
        # a restarting container's next run would, but Docker ends the stream there too).
        live = h.hub.subscribe() if follow and h.hub.live else None

        async def body() -> AsyncIterator[bytes]:
            for e in existing:
                yield encode(e)
            if live is None:
                return
            async with live:
                async for e in live:
                    if until_ns and e.time_ns > until_ns:
                        return
                    if (e.stream == "stdout" and stdout) or (e.stream == "stderr" and stderr):
                        yield encode(e)

        ctype = (
            "application/vnd.docker.raw-stream"
            if tty
            else "application/vnd.docker.multiplexed-stream"
        )
        return Streaming(body(), content_type=ctype)

    @router.route("POST", "/containers/{id}/attach")
    async def attach(req: Request) -> object:
        h = m.get(req.params["id"])
        want_stdout, want_stderr = req.q_bool("stdout"), req.q_bool("stderr")
        want_stdin = req.q_bool("stdin") and bool(h.record.config.get("OpenStdin"))
        stream_live = req.q_bool("stream")
        replay = req.q_bool("logs")
        tty = bool(h.record.config.get("Tty"))
        # As moby: detach keys only with a TTY; without one, stdin is data (binary input
        # may well hold ctrl-p ctrl-q).
        keys = parse_detach_keys(req.q("detachKeys")) if tty else b""
        # Attaching to a created/exited container waits for its next run (docker run attaches
        # before it starts); attaching to one whose output just ended ends at once.
        ended = h.record.state.status is Status.RUNNING and not h.hub.live
        live = h.hub.subscribe() if stream_live and not ended else None
        past = (
            select_entries(read_entries(m.paths(h.id).log), stdout=want_stdout, stderr=want_stderr)
            if replay
            else []
        )
        ctype = (
            "application/vnd.docker.raw-stream"
            if tty
            else "application/vnd.docker.multiplexed-stream"
        )
        first = await req.hijack(ctype)
        await m.announce(h, "attach")

        def encode(e: LogEntry) -> bytes:
            return e.data if tty else frame(e.stream, e.data)

        async def output(done: trio.CancelScope) -> None:
            try:
                for e in past:
                    await req.stream.send_all(encode(e))
                if live is not None:
                    async with live:
                        async for e in live:
                            if (e.stream == "stdout" and want_stdout) or (
                                e.stream == "stderr" and want_stderr
                            ):
                                await req.stream.send_all(encode(e))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            done.cancel()

        async def stdin(done: trio.CancelScope) -> None:
            await h.stdin_ready.wait()
            if h.stdin_fd < 0:
                return
            end = await pump_stdin(req.stream, first, h.stdin_fd, keys)
            if end is InputEnd.DETACHED:
                await m.announce(h, "detach")
                done.cancel()
            elif end is InputEnd.EOF and h.record.config.get("StdinOnce") and not tty:
                # docker run -i: the input ended, so does the process's. Not with a TTY
                # (as moby): the CLI detaches by closing, and the shell must stay usable.
                m.close_stdin(h)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(output, nursery.cancel_scope)
            if want_stdin:
                nursery.start_soon(stdin, nursery.cancel_scope)
        return HIJACKED

    @router.route("POST", "/containers/{id}/resize")
    async def resize(req: Request) -> Response:
        m.resize(
            req.params["id"],
            _int_or_400(req.q("h") or "0", "h"),
            _int_or_400(req.q("w") or "0", "w"),
        )
        return Response(200)

    del (
        resize,
        create,
        list_,
        inspect,
        start,
        stop,
        restart,
        kill,
        pause,
        unpause,
        wait,
        remove,
        rename,
        prune,
        export,
        logs,
        attach,
    )


def _int_or_400(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {text!r}") from None


def _time_param(text: str) -> int:
    """Docker's logs since/until: unix seconds with an optional fraction; 0 for none."""
    return parse_timestamp(text, now_ns=0) or 0
