"""An in-process HTTP/1.1 server on a loopback port (trio + h11), for the registry client.

:func:`serve` runs a handler ``(Request) -> Reply`` on 127.0.0.1 and records every request
and connection; a :class:`Reply` can also misbehave on purpose (cut the body short, close
without answering, keep the connection for exactly one request) so the client's error
paths can be driven deterministically. :class:`FakeRegistry` is a small distribution
look-alike on top (blobs, manifests, uploads, a token server with Bearer auth), since the
real registry's token auth needs a signed-JWT token server.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import h11
import trio


@attrs.define
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int  # which accepted connection carried it (1, 2, ...)

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)


@attrs.define
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    body: bytes = b""
    cut_after: int | None = None  # send this many body bytes, then drop the connection
    no_answer: bool = False  # drop the connection without answering
    close: bool = False  # answer, then close (without saying Connection: close)


Handler = Callable[[Request], Reply]


def json_reply(status: int, doc: object, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(
        status,
        [("Content-Type", "application/json; charset=utf-8"), *(headers or [])],
        json.dumps(doc).encode(),
    )


def error_reply(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> Reply:
    return json_reply(
        status, {"errors": [{"code": code, "message": message, "detail": None}]}, headers
    )


@attrs.define
class FakeServer:
    handler: Handler
    port: int = 0
    scheme: str = "http"
    requests: list[Request] = attrs.field(factory=list)
    connections: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        number = self.connections
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, stream, number)
                if request is None:
                    return
                self.requests.append(request)
                reply = self.handler(request)
                if reply.no_answer:
                    return
                await self._send_reply(conn, stream, request, reply)
                if reply.cut_after is not None or reply.close or conn.our_state is not h11.DONE:
                    return
                if conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, h11.RemoteProtocolError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def _read_request(
        self, conn: h11.Connection, stream: trio.abc.Stream, number: int
    ) -> Request | None:
        head: h11.Request | None = None
        body: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(bytes(data))
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return Request(
                    method=head.method.decode(),
                    target=head.target.decode(),
                    headers={k.decode().lower(): v.decode("latin-1") for k, v in head.headers},
                    body=b"".join(body),
                    connection=number,
                )

    async def _send_reply(
        self, conn: h11.Connection, stream: trio.abc.Stream, request: Request, reply: Reply
    ) -> None:
        headers = list(reply.headers)
        names = {k.lower() for k, _ in headers}
        if "content-length" not in names:
            headers.append(("Content-Length", str(len(reply.body))))
        await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)))
        body = reply.body if request.method != "HEAD" else b""
        if reply.cut_after is not None:
            await stream.send_all(conn.send(h11.Data(data=body[: reply.cut_after])))
            return
        if body:
            await stream.send_all(conn.send(h11.Data(data=body)))
        await stream.send_all(conn.send(h11.EndOfMessage()))


@asynccontextmanager
async def serve(
    handler: Handler, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[FakeServer]:
    """Run ``handler`` on 127.0.0.1 (a free port) until the block ends."""
    server = FakeServer(handler, scheme="https" if ssl_context else "http")

    async def on_connection(stream: trio.abc.Stream) -> None:
        if ssl_context is not None:
            stream = trio.SSLStream(stream, ssl_context, server_side=True, https_compatible=True)
        await server._serve_connection(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, on_connection, 0, host="127.0.0.1")
        )
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


# -- a distribution look-alike ------------------------------------------------------------

_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>[^/]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_UPLOAD_START = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/$")
_UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<uuid>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.define
class FakeRegistry:
    """Just enough of distribution, with optional Bearer token auth.

    With ``users``, every ``/v2/`` request needs ``Authorization: Bearer <token>`` issued by
    ``/token`` on the same server (the realm), which checks Basic credentials, refresh
    tokens (POST form) or hands out anonymous tokens when ``anonymous_pull`` is set.
    """

    users: dict[str, str] | None = None
    anonymous_pull: bool = False
    honour_range: bool = True
    blobs: dict[str, bytes] = attrs.field(factory=dict)
    served_blobs: dict[str, bytes] = attrs.field(factory=dict)  # override what GET sends
    manifests: dict[tuple[str, str], tuple[bytes, str]] = attrs.field(factory=dict)
    uploads: dict[str, bytearray] = attrs.field(factory=dict)
    tokens: dict[str, tuple[str, str]] = attrs.field(factory=dict)  # token -> (user, scope)
    token_requests: list[Request] = attrs.field(factory=list)
    refresh_tokens: dict[str, str] = attrs.field(factory=dict)  # refresh token -> user
    cut_next_blob_at: int | None = None
    blob_redirect: str | None = None  # base URL to redirect blob GETs to
    revoke_next: bool = False
    server: FakeServer | None = None
    realm_override: str | None = None

    def challenge(self, scope: str | None) -> list[tuple[str, str]]:
        assert self.server is not None
        realm = self.realm_override or f"{self.server.url}/token"
        value = f'Bearer realm="{realm}",service="fake-registry"'
        if scope:
            value += f',scope="{scope}"'
        return [("WWW-Authenticate", value)]

    def _authorized(self, request: Request, scope: str | None) -> bool:
        if self.users is None:
            return True
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :]
        if token not in self.tokens:
            return False
        if self.revoke_next:
            self.revoke_next = False
            del self.tokens[token]
            return False
        _user, granted = self.tokens[token]
        if scope is None:
            return True
        resource, _sep, actions = scope.rpartition(":")
        have = {}
        for item in granted.split(" "):
            res, _s, acts = item.rpartition(":")
            have[res] = set(acts.split(","))
        return set(actions.split(",")) <= have.get(resource, set())

    def _token(self, request: Request) -> Reply:
        self.token_requests.append(request)
        user: str | None = None
        scopes: list[str] = []
        if request.method == "POST":
            form = urllib.parse.parse_qs(request.body.decode())
            refresh = form.get("refresh_token", [""])[0]
            if form.get("grant_type") != ["refresh_token"] or refresh not in self.refresh_tokens:
                return json_reply(401, {"details": "invalid refresh token"})
            user = self.refresh_tokens[refresh]
            scopes = " ".join(form.get("scope", [])).split()
        else:
            header = request.headers.get("authorization", "")
            if header.startswith("Basic "):
                name, _sep, password = base64.b64decode(header[6:]).decode().partition(":")
                if (self.users or {}).get(name) != password:
                    return json_reply(401, {"details": "incorrect username or password"})
                user = name
            elif not self.anonymous_pull:
                return json_reply(401, {"details": "authentication required"})
            scopes = request.query.get("scope", [])
        if user is None:
            scopes = [s.replace(",push", "") for s in scopes]  # anonymous: pull only
        token = f"tok-{len(self.tokens) + len(self.token_requests)}"
        self.tokens[token] = (user or "", " ".join(scopes))
        doc: dict[str, object] = {"token": token, "expires_in": 300}
        if user and request.query.get("offline_token") == ["true"]:
            refresh = f"refresh-{user}"
            self.refresh_tokens[refresh] = user
            doc["refresh_token"] = refresh
        return json_reply(200, doc)

    def handle(self, request: Request) -> Reply:
        path = request.path
        if path == "/token":
            return self._token(request)
        if path == "/v2/":
            if not self._authorized(request, None):
                return error_reply(
                    401, "UNAUTHORIZED", "authentication required", self.challenge(None)
                )
            return json_reply(200, {})
        for pattern, handler in (
            (_UPLOAD_START, self._upload_start),
            (_UPLOAD, self._upload),
            (_BLOB, self._blob),
            (_MANIFEST, self._manifest),
            (_TAGS, self._tags),
        ):
            match = pattern.match(path)
            if match:
                groups = match.groupdict()
                push = request.method in ("POST", "PUT", "PATCH", "DELETE")
                scope = f"repository:{groups['repo']}:{'pull,push' if push else 'pull'}"
                if not self._authorized(request, scope):
                    return error_reply(
                        401, "UNAUTHORIZED", "authentication required", self.challenge(scope)
                    )
                return handler(request, groups)
        return error_reply(404, "NOT_FOUND", "not found")

    def _blob(self, request: Request, groups: dict[str, str]) -> Reply:
        digest = groups["digest"]
        if digest not in self.blobs:
            return error_reply(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if self.blob_redirect and request.method == "GET":
            return Reply(307, [("Location", f"{self.blob_redirect}/storage/{digest}")])
        data = self.served_blobs.get(digest, self.blobs[digest])
        return self.blob_reply(request, data)

    def blob_reply(self, request: Request, data: bytes) -> Reply:
        headers = [
            ("Docker-Content-Digest", sha256(data)),
            ("Content-Type", "application/octet-stream"),
        ]
        status = 200
        spec = request.headers.get("range", "")
        if spec and self.honour_range:
            start = int(spec.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return Reply(416, [("Content-Range", f"bytes */{len(data)}")])
            headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
            data = data[start:]
            status = 206
        reply = Reply(status, headers, data)
        if self.cut_next_blob_at is not None and request.method == "GET":
            reply.cut_after = self.cut_next_blob_at
            reply.headers.append(("Content-Length", str(len(data))))
            self.cut_next_blob_at = None
        return reply

    def _manifest(self, request: Request, groups: dict[str, str]) -> Reply:
        key = (groups["repo"], groups["ref"])
        if request.method == "PUT":
            media_type = request.headers.get("content-type", "")
            digest = sha256(request.body)
            self.manifests[key] = (request.body, media_type)
            self.manifests[(groups["repo"], digest)] = (request.body, media_type)
            return Reply(201, [("Docker-Content-Digest", digest)])
        if key not in self.manifests:
            return error_reply(404, "MANIFEST_UNKNOWN", "manifest unknown")
        raw, media_type = self.manifests[key]
        return Reply(
            200, [("Content-Type", media_type), ("Docker-Content-Digest", sha256(raw))], raw
        )

    def _tags(self, request: Request, groups: dict[str, str]) -> Reply:
        tags = sorted(
            {ref for repo, ref in self.manifests if repo == groups["repo"] and ":" not in ref}
        )
        if not tags:
            return error_reply(404, "NAME_UNKNOWN", "repository name not known to registry")
        return json_reply(200, {"name": groups["repo"], "tags": tags})

    def _upload_start(self, request: Request, groups: dict[str, str]) -> Reply:
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source and mount[0] in self.blobs:
            return Reply(201, [("Location", f"/v2/{groups['repo']}/blobs/{mount[0]}")])
        uuid = f"u{len(self.uploads) + 1}"
        self.uploads[uuid] = bytearray()
        return Reply(
            202,
            [("Location", f"/v2/{groups['repo']}/blobs/uploads/{uuid}?_state=x"), ("Range", "0-0")],
        )

    def _upload(self, request: Request, groups: dict[str, str]) -> Reply:
        uuid = groups["uuid"]
        if uuid not in self.uploads:
            return error_reply(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        if request.method == "DELETE":
            del self.uploads[uuid]
            return Reply(204)
        self.uploads[uuid] += request.body
        location = f"/v2/{groups['repo']}/blobs/uploads/{uuid}?_state=y"
        if request.method == "PATCH":
            return Reply(
                202, [("Location", location), ("Range", f"0-{len(self.uploads[uuid]) - 1}")]
            )
        digest = request.query.get("digest", [""])[0]
        data = bytes(self.uploads.pop(uuid))
        if sha256(data) != digest:
            return error_reply(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content"
            )
        self.blobs[digest] = data
        return Reply(
            201,
            [
                ("Location", f"/v2/{groups['repo']}/blobs/{digest}"),
                ("Docker-Content-Digest", digest),
            ],
        )


@asynccontextmanager
async def serve_registry(registry: FakeRegistry) -> AsyncIterator[FakeServer]:
    async with serve(registry.handle) as server:
        registry.server = server
        yield server
