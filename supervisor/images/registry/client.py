"""The OCI distribution client: manifests, blobs, uploads, mounts, catalog, tags, search.

Theory of operation: a :class:`RegistryClient` speaks for one registry domain. It decides
the endpoint once (:func:`~supervisor.images.registry.protocol.registry_origin`: HTTPS
unless the host is loopback or listed insecure; ``docker.io`` is
``registry-1.docker.io``) and sends every request through :meth:`RegistryClient._send`,
which does the authentication dance of the distribution spec:

  1. Send with what is already known: nothing at first, then ``Basic`` credentials if the
     registry asked for Basic, or a ``Bearer`` token for the request's scopes if it asked
     for Bearer (tokens are cached per scope set until they expire; a token for
     ``pull,push`` also serves ``pull``).
  2. On 401, read ``WWW-Authenticate``: for Bearer, fetch a token from the realm (with
     Basic credentials, or the ``identitytoken`` as OAuth2 refresh token, or anonymously)
     and retry once; for Basic, retry once with the credentials.
  3. A 401 after that is :class:`~supervisor.errors.Unauthorized` with the registry's
     message (``unauthorized: authentication required``).

Request bodies are given as factories so that a retry sends them again from the start.
What responses mean (error bodies, ``Link`` paging, ``Content-Range``) is decided by the
pure :mod:`~supervisor.images.registry.protocol`; what manifests mean by
:mod:`~supervisor.images.registry.manifest`.

Errors: :class:`~supervisor.errors.Unauthorized` (401), :class:`~supervisor.errors.Forbidden`
(403; also a 401 whose Bearer challenge says ``insufficient_scope``, the token lacking the
action: ``denied: requested access to the resource is denied``, and on a manifest fetch
Docker's 404 ``pull access denied for <name>, repository does not exist or may require
'docker login': denied: ...``), :class:`~supervisor.errors.NotFound` (404, in Docker's words: ``manifest for
localhost:5000/x:nope not found: manifest unknown: manifest unknown``),
:class:`~supervisor.images.registry.manifest.DigestMismatch` (400) for content that does
not hash to its digest, :class:`~supervisor.images.registry.http.ConnectionFailed` (500)
for network failures, naming the URL, and :class:`~supervisor.errors.BerthError` (500)
with the registry's message for any other unexpected status.

Resource handling: idle keep-alive connections are held until :meth:`RegistryClient.aclose`
(or the end of ``async with``); a client given an ``http`` pool leaves it open.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import NoReturn

import attrs
import structlog
import trio

from supervisor.errors import BerthError, Forbidden, NotFound, Unauthorized
from supervisor.images import reference as references
from supervisor.images.registry import auth
from supervisor.images.registry.auth import Challenge, Credentials
from supervisor.images.registry.http import (
    CONNECT_TIMEOUT,
    Body,
    ConnectionFailed,
    HttpClient,
    Response,
)
from supervisor.images.registry.manifest import (
    MANIFEST_ACCEPT,
    DigestMismatch,
    check_digest,
    digest_of,
    is_digest,
    media_type_of,
    verify_digest,
)
from supervisor.images.registry.protocol import (
    Origin,
    check_reference,
    check_repository,
    error_message,
    is_digest_reference,
    next_link,
    parse_content_range,
    parse_json_object,
    registry_origin,
    resolve_location,
    search_origin,
    string_list,
    with_query,
)

log = structlog.get_logger()

MANIFEST_LIMIT = 4 << 20  # distribution refuses to store larger manifests
ERROR_BODY_LIMIT = 1 << 20
FILE_READ = 1 << 16
FETCH_ATTEMPTS = 3  # a download broken midway resumes this many times in all
TOKEN_MARGIN = 10.0  # seconds before expiry a cached token is no longer used
MAX_PAGES = 10_000

Progress = Callable[[int, int], None]  # (bytes so far, total or 0 when unknown)
BodyFactory = Callable[[], Body]


@attrs.frozen
class ManifestHead:
    """What a HEAD on a manifest tells: type, digest and size (each may be missing)."""

    media_type: str | None
    digest: str | None
    size: int | None


@attrs.frozen
class UploadSession:
    """An open blob upload: where its next request goes."""

    repo: str
    origin: Origin
    target: str


@attrs.frozen
class _CachedToken:
    token: str = attrs.field(repr=False)
    deadline: float  # trio.current_time() after which it is not used


def _scope_actions(scopes: Sequence[str]) -> dict[str, frozenset[str]]:
    """``repository:x:pull,push`` → ``{"repository:x": {"pull", "push"}}``."""
    out: dict[str, frozenset[str]] = {}
    for item in scopes:
        resource, _sep, actions = item.rpartition(":")
        out[resource] = out.get(resource, frozenset()) | frozenset(actions.split(","))
    return out


def _covers(have: Sequence[str], want: Sequence[str]) -> bool:
    held = _scope_actions(have)
    return all(
        actions <= held.get(resource, frozenset())
        for resource, actions in _scope_actions(want).items()
    )


class RegistryClient(trio.abc.AsyncResource):
    """A client for one registry (see the module documentation).

    Args:
        domain: the registry as in image references: ``docker.io``, ``localhost:5000``,
            ``[::1]:5000``, ``quay.io``.
        credentials: what ``X-Registry-Auth`` carried, or None for anonymous access.
        insecure_registries: the daemon's ``insecure-registries`` (``host:port`` entries
            and CIDRs) that may be spoken to in plain HTTP, besides loopback hosts.
        http: a connection pool to share (its owner closes it); by default the client has
            its own.
        connect_timeout: seconds for TCP connect plus TLS handshake.
    """

    def __init__(
        self,
        domain: str,
        *,
        credentials: Credentials | None = None,
        insecure_registries: Sequence[str] = (),
        http: HttpClient | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.domain = domain
        self.origin = registry_origin(domain, insecure_registries)
        self.search_origin = search_origin(domain, insecure_registries)
        self._credentials = credentials
        self._owns_http = http is None
        self._http = http if http is not None else HttpClient(connect_timeout=connect_timeout)
        self._bearer: Challenge | None = None  # the registry's Bearer challenge, once seen
        self._basic = False  # the registry asked for Basic and we have credentials
        self._tokens: dict[tuple[str, ...], _CachedToken] = {}
        self._token_lock = trio.Lock()
        self._log = log.bind(registry=domain)

    # -- resources ------------------------------------------------------------------------

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def http(self) -> HttpClient:
        return self._http

    # -- authentication -------------------------------------------------------------------

    def _is_ours(self, origin: Origin) -> bool:
        # Credentials go to the registry's own origin only: not to Docker Hub's search host
        # (index.docker.io), nor to an upload or redirect location elsewhere.
        return origin == self.origin

    async def _token(self, scopes: Sequence[str], *, force: bool, label: str) -> str:
        if self._credentials is not None and self._credentials.registrytoken:
            return self._credentials.registrytoken  # Docker passes it through as is
        assert self._bearer is not None  # only called once a Bearer challenge was seen
        key = tuple(sorted(set(scopes)))
        async with self._token_lock:
            now = trio.current_time()
            if not force:
                for have, cached in self._tokens.items():
                    if cached.deadline > now and _covers(have, key):
                        return cached.token
            token = await self._fetch_token(self._bearer, key, label=label)
            self._tokens[key] = _CachedToken(token.token, now + token.expires_in - TOKEN_MARGIN)
            return token.token

    async def _fetch_token(
        self, challenge: Challenge, scopes: Sequence[str], *, label: str, offline: bool = False
    ) -> auth.Token:
        """Trade the credentials for a token. ``label`` names the registry request that
        needed it: Go's client reports a refused token as that request's error
        (``Get "http://127.0.0.1:5000/v2/": unauthorized: incorrect username or password``).
        """
        request = auth.token_request(challenge, scopes, self._credentials, offline=offline)
        response = await self._http.request(
            request.method, request.url, headers=request.headers, body=request.body
        )
        async with response:
            body = await response.read(ERROR_BODY_LIMIT)
        if response.status != 200:
            message = error_message(response.status, body, response.reason)
            if response.status == 401:
                raise Unauthorized(f"{label}: {message}")
            if response.status == 403:
                raise Forbidden(f"{label}: {message}")
            raise BerthError(
                f"{label}: failed to fetch an authorization token from {challenge.realm}: {message}"
            )
        token = auth.parse_token_response(body)
        self._log.debug("registry.token_fetched", scopes=list(scopes), expires_in=token.expires_in)
        return token

    async def _auth_headers(
        self, scopes: Sequence[str], *, force: bool, label: str
    ) -> list[tuple[str, str]]:
        if self._bearer is not None:
            token = await self._token(scopes, force=force, label=label)
            return [("Authorization", f"Bearer {token}")]
        if self._basic and self._credentials is not None:
            header = auth.basic_header(self._credentials.username, self._credentials.password)
            return [("Authorization", header)]
        return []

    def _learn(self, response: Response, *, sent_auth: bool) -> bool:
        """Take a 401's challenges in; True if there is something new worth a retry."""
        challenges = auth.parse_challenges(response.header_all("www-authenticate"))
        bearer = auth.find_challenge(challenges, "bearer")
        if bearer is not None and bearer.realm:
            self._bearer = bearer
            return True
        basic = auth.find_challenge(challenges, "basic")
        if basic is not None and self._credentials is not None and self._credentials.has_password:
            if sent_auth and self._basic:
                return False  # the credentials were sent and refused
            self._basic = True
            return True
        return False

    async def _send(
        self,
        method: str,
        target: str,
        *,
        scopes: Sequence[str],
        headers: Sequence[tuple[str, str]] = (),
        body: BodyFactory | None = None,
        follow_redirects: bool = False,
        origin: Origin | None = None,
    ) -> Response:
        """Send with authentication (module doc, steps 1-2). A final 401 is returned, not
        raised, so the caller's :meth:`_fail` renders it with the body's message.
        """
        origin = origin or self.origin
        ours = self._is_ours(origin)
        sent_auth = False
        label = f'{method.capitalize()} "{origin.url(target)}"'
        for attempt in range(2):
            auth_headers = (
                await self._auth_headers(scopes, force=attempt > 0 and sent_auth, label=label)
                if ours
                else []
            )
            sent_auth = bool(auth_headers)
            response = await self._http.request(
                method,
                (origin, target),
                headers=[*headers, *auth_headers],
                body=body() if body is not None else None,
                follow_redirects=follow_redirects,
            )
            if response.status != 401 or not ours or attempt == 1:
                return response
            if not self._learn(response, sent_auth=sent_auth):
                return response
            await response.aclose()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fail(
        self, response: Response, *, not_found: str | None = None, denied: str | None = None
    ) -> NoReturn:
        """Raise the error class for a response the caller did not expect.

        ``not_found`` and ``denied`` prefix a 404 and a refusal of access the way Docker's
        pull words them (``manifest for x:1 not found: ...``, ``pull access denied for x,
        repository does not exist or may require 'docker login': denied: ...``, a 404 too).
        """
        async with response:
            body = await response.read(ERROR_BODY_LIMIT) if response.method != "HEAD" else b""
        message = error_message(response.status, body, response.reason)
        status = response.status
        if status in (401, 403):
            refusal = auth.challenge_error(
                auth.parse_challenges(response.header_all("www-authenticate"))
            )
            if refusal is not None:
                message = str(refusal)
            is_denied = message.startswith("denied:")
            if is_denied and denied is not None:
                raise NotFound(f"{denied}: {message}")
            if is_denied:
                raise Forbidden(message)
        if status == 401:
            raise Unauthorized(message)
        if status == 403:
            raise Forbidden(message)
        if status == 404 and not_found is not None:
            raise NotFound(f"{not_found}: {message}")
        if status == 404:
            raise NotFound(message)
        raise BerthError(f'{response.method.capitalize()} "{response.url}": {message}')

    async def _expect(self, response: Response, *ok: int) -> None:
        """Close ``response`` if its status is one of ``ok``; else raise its error (see
        :meth:`_fail`)."""
        if response.status not in ok:
            await self._fail(response)
        await response.aclose()

    def _pull_denied(self, repo: str) -> str:
        name = references.familiar(f"{self.domain}/{repo}")
        return (
            f"pull access denied for {name}, repository does not exist or may require"
            " 'docker login'"
        )

    def _familiar(self, repo: str, ref: str) -> str:
        name = references.familiar(f"{self.domain}/{repo}")
        return f"{name}@{ref}" if is_digest_reference(ref) else f"{name}:{ref}"

    # -- login ----------------------------------------------------------------------------

    async def login(self) -> str | None:
        """Check the credentials against the registry, as ``docker login`` does.

        Returns:
            An identity token (OAuth2 refresh token) when the token server issued one, for
            the client to store instead of the password; None otherwise.

        Errors:
            :class:`~supervisor.errors.Unauthorized` when the credentials are refused.
        """
        response = await self._http.request("GET", (self.origin, "/v2/"))
        if response.status == 200:
            await response.aclose()
            return None
        if response.status != 401:
            await self._fail(response)
        challenges = auth.parse_challenges(response.header_all("www-authenticate"))
        bearer = auth.find_challenge(challenges, "bearer")
        if bearer is not None and bearer.realm:
            await response.aclose()
            self._bearer = bearer
            label = f'Get "{self.origin.url("/v2/")}"'
            token = await self._fetch_token(bearer, (), label=label, offline=True)
            return token.refresh_token
        if not self._learn(response, sent_auth=False):
            await self._fail(response)
        await response.aclose()
        retry = await self._send("GET", "/v2/", scopes=())
        await self._expect(retry, 200)
        return None

    # -- manifests ------------------------------------------------------------------------

    async def get_manifest(
        self, repo: str, reference: str, *, accept: Sequence[str] = MANIFEST_ACCEPT
    ) -> tuple[bytes, str, str]:
        """Fetch a manifest or index by tag or digest.

        Returns:
            ``(raw, media_type, digest)``: the bytes as served, their media type (see
            :func:`~supervisor.images.registry.manifest.media_type_of`) and digest.

        Errors:
            :class:`~supervisor.errors.NotFound` "manifest for <ref> not found: manifest
            unknown: manifest unknown"; :class:`DigestMismatch` when fetched by digest (or
            announced with ``Docker-Content-Digest``) and the bytes hash otherwise.
        """
        response = await self._send_manifest("GET", repo, reference, accept)
        if response.status != 200:
            await self._fail_manifest(response, repo, reference)
        async with response:
            raw = await response.read(MANIFEST_LIMIT)
        media_type = media_type_of(raw, response.header("content-type"))
        what = f"manifest {self._familiar(repo, reference)}"
        if is_digest_reference(reference):
            verify_digest(raw, reference, what)
            return raw, media_type, reference
        announced = response.header("docker-content-digest")
        if announced and is_digest(announced.strip()):
            verify_digest(raw, announced.strip(), what)
            return raw, media_type, announced.strip()
        return raw, media_type, digest_of(raw)

    async def head_manifest(
        self, repo: str, reference: str, *, accept: Sequence[str] = MANIFEST_ACCEPT
    ) -> ManifestHead | None:
        """HEAD a manifest: its media type, digest and size, or None if there is none."""
        response = await self._send_manifest("HEAD", repo, reference, accept)
        if response.status == 404:
            await response.aclose()
            return None
        if response.status != 200:
            await self._fail_manifest(response, repo, reference)
        await response.aclose()
        content_type = response.header("content-type")
        digest = (response.header("docker-content-digest") or "").strip()
        return ManifestHead(
            media_type=content_type.split(";", 1)[0].strip() if content_type else None,
            digest=digest if is_digest(digest) else None,
            size=response.content_length,
        )

    async def _send_manifest(
        self, method: str, repo: str, reference: str, accept: Sequence[str]
    ) -> Response:
        check_repository(repo)
        check_reference(reference)
        return await self._send(
            method,
            f"/v2/{repo}/manifests/{reference}",
            scopes=[auth.scope(repo, ["pull"])],
            headers=[("Accept", ", ".join(accept))],
        )

    async def _fail_manifest(self, response: Response, repo: str, reference: str) -> NoReturn:
        await self._fail(
            response,
            not_found=f"manifest for {self._familiar(repo, reference)} not found",
            denied=self._pull_denied(repo),
        )

    async def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        """Push a manifest under a tag (or its digest). Returns its digest.

        Errors:
            :class:`DigestMismatch` when ``reference`` is a digest the bytes do not hash
            to, or the registry announces another digest; the registry's message (500) when
            it refuses the manifest (``manifest blob unknown: blob unknown to registry``).
        """
        check_repository(repo)
        check_reference(reference)
        digest = digest_of(raw)
        if is_digest_reference(reference):
            verify_digest(raw, reference, "manifest")
            digest = reference
        response = await self._send(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[auth.scope(repo, ["pull", "push"])],
            headers=[("Content-Type", media_type)],
            body=lambda: raw,
        )
        await self._expect(response, 200, 201, 202)
        announced = (response.header("docker-content-digest") or "").strip()
        if announced and announced != digest and announced.split(":")[0] == digest.split(":")[0]:
            raise DigestMismatch(
                digest, announced, f"manifest pushed to {self._familiar(repo, reference)}"
            )
        self._log.debug("registry.manifest_pushed", repo=repo, reference=reference, digest=digest)
        return digest

    # -- blobs ----------------------------------------------------------------------------

    async def blob_exists(self, repo: str, digest: str, *, push: bool = False) -> int | None:
        """HEAD a blob: its size (``Content-Length``) if the repository has it, else None.

        ``push=True`` asks for a ``pull,push`` token up front (the check before an upload),
        so the upload that may follow needs no second token.
        """
        check_repository(repo)
        check_digest(digest)
        actions = ["pull", "push"] if push else ["pull"]
        response = await self._send(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scopes=[auth.scope(repo, actions)],
            follow_redirects=True,
        )
        if response.status == 404:
            await response.aclose()
            return None
        await self._expect(response, 200)
        return response.content_length if response.content_length is not None else 0

    async def fetch_blob(
        self,
        repo: str,
        digest: str,
        dest: Path,
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Download a blob into ``dest``, resuming from what ``dest`` already holds.

        ``dest`` is a partial file the caller owns (and renames once this returns). If it
        exists, its bytes are hashed and the download asks for the rest with ``Range``; a
        registry that answers 200 instead of 206 gets the whole blob again from the start.
        Everything is hashed while written; a download broken midway resumes (three
        attempts in all).

        Args:
            size: the descriptor's size, if known: more bytes than this is a mismatch.
            progress: called with ``(bytes in dest, total)`` as data arrives; total is
                ``size``, else what the registry announced, else 0.

        Returns:
            The number of bytes received over the network (less than the blob's size when
            a download resumed).

        Errors:
            :class:`DigestMismatch` (400) when the content does not hash to ``digest`` (or
            is longer than ``size``): ``dest`` is then deleted, never left looking
            complete. :class:`~supervisor.errors.NotFound` for an unknown blob,
            :class:`ConnectionFailed` when all attempts broke.

        Cancellation: ``dest`` keeps what was written; calling again resumes.
        """
        check_repository(repo)
        check_digest(digest)
        algorithm = digest.split(":", 1)[0]
        received = 0
        attempt = 0
        restarted = False
        while True:
            attempt += 1
            offset = await trio.to_thread.run_sync(_file_size, dest)
            hasher = hashlib.new(algorithm)
            if offset and size is not None and offset > size:
                offset = await trio.to_thread.run_sync(_truncate, dest)
            if offset:
                await trio.to_thread.run_sync(_hash_prefix, dest, offset, hasher)
                if size is not None and offset == size:
                    if f"{algorithm}:{hasher.hexdigest()}" == digest:
                        if progress is not None:
                            progress(size, size)
                        return received
                    offset = await trio.to_thread.run_sync(_truncate, dest)
                    hasher = hashlib.new(algorithm)
            headers = [("Range", f"bytes={offset}-")] if offset else []
            response = await self._send(
                "GET",
                f"/v2/{repo}/blobs/{digest}",
                scopes=[auth.scope(repo, ["pull"])],
                headers=headers,
                follow_redirects=True,
            )
            total = size or 0
            if response.status == 206 and offset:
                content_range = parse_content_range(response.header("content-range"))
                if content_range is None or content_range[0] != offset:
                    await response.aclose()  # a range we did not ask for: start over
                    await trio.to_thread.run_sync(_truncate, dest)
                    if restarted:
                        raise BerthError(
                            f"registry {self.domain} answers ranges it was not asked for"
                        )
                    restarted = True
                    continue
                total = total or (content_range[2] or 0)
            elif response.status == 200:
                if offset:
                    self._log.debug("registry.blob_range_ignored", digest=digest, offset=offset)
                    offset = await trio.to_thread.run_sync(_truncate, dest)
                    hasher = hashlib.new(algorithm)
                total = total or (response.content_length or 0)
            elif response.status == 416 and offset:
                # Nothing after offset: the partial file is all there is (or too long).
                await response.aclose()
                if f"{algorithm}:{hasher.hexdigest()}" == digest:
                    return received
                await trio.to_thread.run_sync(_truncate, dest)
                if restarted:
                    raise BerthError(f"registry {self.domain} refuses to serve {digest}")
                restarted = True
                continue
            else:
                await self._fail(response, not_found=f"blob {digest} not found")
            done = offset
            try:
                async with response, await trio.open_file(dest, "ab") as out:
                    while data := await response.receive_some():
                        received += len(data)
                        done += len(data)
                        hasher.update(data)
                        await out.write(data)
                        if size is not None and done > size:
                            break
                        if progress is not None:
                            progress(done, total)
            except ConnectionFailed:
                if attempt >= FETCH_ATTEMPTS:
                    raise
                self._log.info("registry.blob_download_resumed", digest=digest, offset=done)
                continue
            actual = f"{algorithm}:{hasher.hexdigest()}"
            if actual != digest or (size is not None and done != size):
                await trio.to_thread.run_sync(_unlink, dest)
                self._log.warning(
                    "registry.blob_digest_mismatch", digest=digest, actual=actual, size=done
                )
                if size is not None and done > size:
                    raise DigestMismatch(digest, f"more than {size} bytes", f"blob {digest}")
                raise DigestMismatch(digest, actual, f"blob {digest}")
            self._log.debug("registry.blob_fetched", digest=digest, size=done, received=received)
            return received

    async def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount: True when the registry mounted ``digest`` from
        ``from_repo`` (201); False when it would not (then upload it).
        """
        check_repository(repo)
        check_repository(from_repo)
        check_digest(digest)
        target = with_query(f"/v2/{repo}/blobs/uploads/", [("mount", digest), ("from", from_repo)])
        response = await self._send(
            "POST",
            target,
            scopes=[auth.scope(repo, ["pull", "push"]), auth.scope(from_repo, ["pull"])],
        )
        if response.status == 201:
            await response.aclose()
            self._log.debug("registry.blob_mounted", repo=repo, digest=digest, source=from_repo)
            return True
        if response.status == 202:
            # The registry opened an upload session instead; it is not wanted.
            await response.aclose()
            location = response.header("location")
            if location:
                origin, upload = resolve_location(response.origin, response.target, location)
                try:
                    cancel = await self._send(
                        "DELETE", upload, scopes=[auth.scope(repo, ["pull", "push"])], origin=origin
                    )
                    await cancel.aclose()
                except BerthError as exc:  # only tidiness: the registry purges stale sessions
                    self._log.debug("registry.upload_cancel_failed", error=str(exc))
            return False
        await self._fail(response)

    async def upload_blob(
        self,
        repo: str,
        path: Path,
        digest: str,
        size: int,
        *,
        progress: Progress | None = None,
        chunk_size: int | None = None,
    ) -> str:
        """Upload the blob in ``path``.

        A POST opens the upload session; then either one monolithic ``PUT ?digest=``
        (``chunk_size`` None) or ``PATCH`` requests of ``chunk_size`` bytes with
        ``Content-Range`` (at least the registry's ``OCI-Chunk-Min-Length``) and a final
        empty ``PUT ?digest=``. The registry checks the digest; the caller checks existence
        (:meth:`blob_exists`) and mounts (:meth:`mount_blob`) first.

        Returns: the digest the registry stored.

        Errors:
            :class:`~supervisor.errors.InvalidArgument` when ``path`` is not ``size``
            bytes; the registry's message when it refuses (``digest invalid: provided
            digest did not match uploaded content``).
        """
        check_repository(repo)
        check_digest(digest)
        actual_size = await trio.to_thread.run_sync(_file_size, path)
        if actual_size != size:
            raise DigestMismatch(
                digest, f"a file of {actual_size} bytes, not {size}", f"blob {digest}"
            )
        scopes = [auth.scope(repo, ["pull", "push"])]
        response = await self._send("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes)
        await self._expect(response, 202)
        origin, target = self._upload_location(response)
        minimum = response.header("oci-chunk-min-length") or ""
        octet = ("Content-Type", "application/octet-stream")
        if chunk_size is None:
            response = await self._send(
                "PUT",
                with_query(target, [("digest", digest)]),
                scopes=scopes,
                headers=[octet, ("Content-Length", str(size))],
                body=lambda: _file_chunks(path, 0, size, progress, size),
                origin=origin,
            )
        else:
            chunk = max(chunk_size, int(minimum) if minimum.isdigit() else 0, 1)
            offset = 0
            while offset < size:
                length = min(chunk, size - offset)
                start = offset
                response = await self._send(
                    "PATCH",
                    target,
                    scopes=scopes,
                    headers=[
                        octet,
                        ("Content-Range", f"{start}-{start + length - 1}"),
                        ("Content-Length", str(length)),
                    ],
                    body=functools.partial(_file_chunks, path, start, length, progress, size),
                    origin=origin,
                )
                await self._expect(response, 202)
                origin, target = self._upload_location(response)
                offset += length
            stored = await self._close_upload(repo, origin, target, digest, scopes)
        if chunk_size is None:
            await self._expect(response, 201, 204)
            stored = _stored_digest(response, digest, repo)
        self._log.debug(
            "registry.blob_uploaded",
            repo=repo,
            digest=digest,
            size=size,
            chunked=chunk_size is not None,
        )
        return stored

    async def start_upload(self, repo: str) -> UploadSession:
        """Open an upload session (``POST /v2/<repo>/blobs/uploads/``) for
        :meth:`finish_upload`: a caller can open it while it is still making the blob."""
        check_repository(repo)
        scopes = [auth.scope(repo, ["pull", "push"])]
        response = await self._send("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes)
        await self._expect(response, 202)
        origin, target = self._upload_location(response)
        return UploadSession(repo=repo, origin=origin, target=target)

    async def finish_upload(self, session: UploadSession, data: bytes, digest: str) -> str:
        """Send the whole blob ``data`` into ``session`` and close it (one monolithic
        ``PUT ?digest=``); the registry checks the digest.

        Returns: the digest the registry stored.
        """
        check_digest(digest)
        repo = session.repo
        response = await self._send(
            "PUT",
            with_query(session.target, [("digest", digest)]),
            scopes=[auth.scope(repo, ["pull", "push"])],
            headers=[("Content-Type", "application/octet-stream")],
            body=lambda: data,
            origin=session.origin,
        )
        await self._expect(response, 201, 204)
        stored = _stored_digest(response, digest, repo)
        self._log.debug("registry.blob_uploaded", repo=repo, digest=digest, size=len(data))
        return stored

    async def upload_stream(
        self,
        repo: str,
        chunks: AsyncIterable[bytes],
        digest: Callable[[], str],
        *,
        progress: Progress | None = None,
        total: int = 0,
    ) -> str:
        """Upload a blob whose content is still being made (a layer compressed while it
        is sent): one streamed ``PATCH`` (chunked, no ``Content-Range``, as the docker
        engine pushes), then ``PUT ?digest=`` with ``digest()``, which the caller can
        answer once ``chunks`` is exhausted. ``total`` is only for progress.

        Returns: the digest the registry stored.
        """
        check_repository(repo)
        scopes = [auth.scope(repo, ["pull", "push"])]
        response = await self._send("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes)
        await self._expect(response, 202)
        origin, target = self._upload_location(response)
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            async for chunk in chunks:
                sent += len(chunk)
                yield chunk
                if progress is not None:
                    progress(sent, max(total, sent))

        used = False

        def once() -> AsyncIterator[bytes]:
            nonlocal used
            if used:
                raise BerthError("the registry asked to resend a streamed upload")
            used = True
            return body()

        octet = ("Content-Type", "application/octet-stream")
        response = await self._send(
            "PATCH", target, scopes=scopes, headers=[octet], body=once, origin=origin
        )
        await self._expect(response, 202)
        origin, target = self._upload_location(response)
        want = digest()
        check_digest(want)
        stored = await self._close_upload(repo, origin, target, want, scopes)
        self._log.debug("registry.blob_streamed", repo=repo, digest=want, size=sent)
        return stored

    async def _close_upload(
        self, repo: str, origin: Origin, target: str, digest: str, scopes: Sequence[str]
    ) -> str:
        """The final ``PUT ?digest=`` of an upload session; the digest the registry
        stored (checked against ``digest``)."""
        response = await self._send(
            "PUT",
            with_query(target, [("digest", digest)]),
            scopes=scopes,
            headers=[("Content-Type", "application/octet-stream")],
            body=lambda: b"",
            origin=origin,
        )
        await self._expect(response, 201, 204)
        stored = _stored_digest(response, digest, repo)
        return stored

    def _upload_location(self, response: Response) -> tuple[Origin, str]:
        location = response.header("location")
        if not location:
            raise BerthError(
                f'{response.method.capitalize()} "{response.url}": no Location in the upload response'
            )
        return resolve_location(response.origin, response.target, location)

    # -- listings -------------------------------------------------------------------------

    async def _paged(
        self,
        target: str,
        key: str,
        what: str,
        scopes: Sequence[str],
        limit: int | None,
        *,
        not_found: str | None,
    ) -> list[str]:
        items: list[str] = []
        seen = {target}
        for _page in range(MAX_PAGES):
            response = await self._send("GET", target, scopes=scopes)
            if response.status != 200:
                await self._fail(response, not_found=not_found)
            async with response:
                body = await response.read()
            items.extend(string_list(parse_json_object(body, what), key, what))
            if limit is not None and len(items) >= limit:
                return items[:limit]
            link = next_link(response.header("link"))
            if link is None:
                break
            origin, target = resolve_location(response.origin, response.target, link)
            if origin != self.origin or target in seen:
                break  # never follow paging off the registry, nor in circles
            seen.add(target)
        return items

    async def catalog(self, limit: int | None = None, *, page_size: int = 100) -> list[str]:
        """Repository names from ``/v2/_catalog``, following ``Link`` pages, at most
        ``limit`` of them (all when None)."""
        n = min(page_size, limit) if limit else page_size
        return await self._paged(
            f"/v2/_catalog?n={max(n, 1)}",
            "repositories",
            "catalog",
            [auth.CATALOG_SCOPE],
            limit,
            not_found=None,
        )

    async def tags(self, repo: str, *, limit: int | None = None) -> list[str]:
        """Tags of ``repo`` from ``/v2/<repo>/tags/list``, following ``Link`` pages.

        Errors: :class:`~supervisor.errors.NotFound` "repository <name> not found: name
        unknown: repository name not known to registry".
        """
        check_repository(repo)
        name = references.familiar(f"{self.domain}/{repo}")
        return await self._paged(
            f"/v2/{repo}/tags/list",
            "tags",
            "tag list",
            [auth.scope(repo, ["pull"])],
            limit,
            not_found=f"repository {name} not found",
        )

    async def search_v1(self, term: str, limit: int = 25) -> list[dict[str, object]] | None:
        """Docker Hub's search API (``GET /v1/search?q=&n=``) on this registry.

        Returns: the ``results`` entries (``name``, ``description``, ``star_count``,
        ``is_official``, ``is_automated``), or None when the registry has no v1 search
        (404), for the caller to fall back to :meth:`catalog`.
        """
        target = with_query("/v1/search", [("q", term), ("n", str(limit))])
        response = await self._send("GET", target, scopes=(), origin=self.search_origin)
        if response.status in (404, 405):
            await response.aclose()
            return None
        if response.status != 200:
            await self._fail(response)
        async with response:
            body = await response.read()
        doc = parse_json_object(body, "search result")
        results = doc.get("results")
        if not isinstance(results, list):
            return []
        return [
            {str(k): v for k, v in entry.items()} for entry in results if isinstance(entry, dict)
        ][:limit]


# -- file helpers (run in a worker thread) ---------------------------------------------------


def _stored_digest(response: Response, digest: str, repo: str) -> str:
    """The digest the registry says it stored at the end of an upload (``digest`` when
    it says none); :class:`DigestMismatch` when it differs from the one sent."""
    stored = (response.header("docker-content-digest") or "").strip() or digest
    if stored != digest:
        raise DigestMismatch(digest, stored, f"blob uploaded to {repo}")
    return stored


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _truncate(path: Path) -> int:
    with path.open("wb"):
        pass
    return 0


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _hash_prefix(path: Path, length: int, hasher: hashlib._Hash) -> None:
    with path.open("rb") as src:
        remaining = length
        while remaining:
            data = src.read(min(1 << 20, remaining))
            if not data:
                raise BerthError(f"{path} shrank while being hashed")
            hasher.update(data)
            remaining -= len(data)


async def _file_chunks(
    path: Path, offset: int, length: int, progress: Progress | None, total: int
) -> AsyncIterator[bytes]:
    async with await trio.open_file(path, "rb") as src:
        await src.seek(offset)
        remaining = length
        while remaining:
            data = await src.read(min(FILE_READ, remaining))
            if not data:
                raise BerthError(f"{path} ended before {offset + length} bytes")
            remaining -= len(data)
            yield data
            if progress is not None:
                progress(offset + length - remaining, total)
