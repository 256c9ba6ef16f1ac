"""Registry authentication as data: challenges, credentials, token requests. Pure.

Theory of operation: a registry that wants credentials answers 401 with
``WWW-Authenticate`` (RFC 7235). :func:`parse_challenges` reads it into
:class:`Challenge` values. A ``Basic`` challenge is answered with :func:`basic_header`;
a ``Bearer`` challenge names a token server (``realm``), a ``service`` and the ``scope``
needed, and :func:`token_request` builds the request that trades credentials for a token
there (Docker's token spec: GET with Basic credentials, or an OAuth2 POST with the
``identitytoken`` as refresh token), :func:`parse_token_response` reads the answer. When a
token is refused, :func:`challenge_error` reads why from the new challenge (RFC 6750).
Credentials reach the daemon from the client in Docker's ``X-Registry-Auth`` header,
decoded by :func:`decode_registry_auth`.

Rules:
  * Secrets never appear in ``repr`` (attrs ``repr=False``): they end up in logs otherwise.
  * :func:`parse_challenges` never raises: a garbled header yields what could be read.
    :func:`decode_registry_auth` raises only :class:`~supervisor.errors.InvalidArgument`.
  * Imports only the standard library, attrs and ``supervisor.errors``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from supervisor.errors import InvalidArgument

AUTH_HEADER = "X-Registry-Auth"
CLIENT_ID = "berth"  # the OAuth2 client_id sent to token servers (Docker sends "docker")
DEFAULT_TOKEN_LIFETIME = 60  # seconds; the token spec's default when expires_in is absent
MIN_TOKEN_LIFETIME = 60  # docker/distribution treats anything shorter as 60 s too


@attrs.frozen
class Credentials:
    """What ``berth login`` stored and the CLI sends in ``X-Registry-Auth``."""

    username: str = ""
    password: str = attrs.field(default="", repr=False)
    serveraddress: str = ""
    identitytoken: str = attrs.field(default="", repr=False)  # an OAuth2 refresh token
    registrytoken: str = attrs.field(default="", repr=False)  # a bearer token, used as is

    @property
    def has_password(self) -> bool:
        return bool(self.username or self.password)


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Challenge:
    """One ``WWW-Authenticate`` challenge: lower-cased scheme and parameters."""

    scheme: str
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")


# -- WWW-Authenticate -----------------------------------------------------------------------

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_TOKEN68_CHARS = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self, chars: frozenset[str] = _TOKEN_CHARS) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        # At the opening quote. A missing closing quote takes the rest (lenient, as Go).
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                break
            else:
                out.append(char)
        return "".join(out)

    def looks_like_param(self) -> bool:
        """Is the next thing ``name=`` (a parameter) rather than a new scheme?"""
        save = self.pos
        self.skip_space()
        name = self.token()
        self.skip_space()
        result = bool(name) and self.peek() == "=" and self.text[self.pos : self.pos + 2] != "=="
        self.pos = save
        return result

    def skip_to_comma(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] != ",":
            if self.text[self.pos] == '"':
                self.quoted()
            else:
                self.pos += 1


def parse_challenges(headers: str | Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values into challenges, in order.

    Handles several challenges in one value (``Basic realm="a", Bearer realm="b"``),
    quoted strings with commas and backslash escapes, unquoted values and token68
    credentials (kept under the parameter name ``""``). Never raises: unreadable parts are
    skipped.
    """
    values = [headers] if isinstance(headers, str) else list(headers)
    challenges: list[Challenge] = []
    for value in values:
        scan = _Scanner(value)
        while True:
            scan.skip_space()
            while scan.peek() == ",":
                scan.pos += 1
                scan.skip_space()
            if not scan.peek():
                break
            scheme = scan.token()
            if not scheme:
                scan.skip_to_comma()
                continue
            params: dict[str, str] = {}
            scan.skip_space()
            if not scan.looks_like_param() and scan.peek() not in ("", ","):
                token68 = scan.token(_TOKEN68_CHARS)
                while scan.peek() == "=":
                    token68 += "="
                    scan.pos += 1
                if token68:
                    params[""] = token68
                scan.skip_to_comma()
            else:
                while scan.looks_like_param():
                    scan.skip_space()
                    name = scan.token().lower()
                    scan.skip_space()
                    scan.pos += 1  # "="
                    scan.skip_space()
                    param = scan.quoted() if scan.peek() == '"' else scan.token()
                    params.setdefault(name, param)
                    scan.skip_space()
                    scan.skip_to_comma()  # tolerate junk after a value
                    if scan.peek() != ",":
                        break
                    save = scan.pos
                    scan.pos += 1
                    if not scan.looks_like_param():
                        scan.pos = save
                        break
            challenges.append(Challenge(scheme=scheme.lower(), params=params))
    return challenges


def find_challenge(challenges: Sequence[Challenge], scheme: str) -> Challenge | None:
    for challenge in challenges:
        if challenge.scheme == scheme:
            return challenge
    return None


@attrs.frozen
class ChallengeError:
    """An RFC 6750 §3.1 ``error`` in a Bearer challenge, as Docker words it."""

    code: str  # "unauthorized" or "denied" (errcode's UNAUTHORIZED / DENIED, lower-cased)
    message: str

    @property
    def denied(self) -> bool:
        return self.code == "denied"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# The errcode messages distribution's client falls back on without ``error_description``.
_BEARER_ERRORS = {
    "invalid_token": ("unauthorized", "authentication required"),
    "insufficient_scope": ("denied", "requested access to the resource is denied"),
}


def challenge_error(challenges: Sequence[Challenge]) -> ChallengeError | None:
    """What a 401's Bearer challenge says went wrong, if it says.

    A token registry answers a token that lacks an action with ``error="insufficient_scope"``
    (distribution's token access controller): the credentials were fine, the account may
    not do that. Docker's client (distribution ``registry/client/errors.go``) reports that
    as ``denied: requested access to the resource is denied`` and ``invalid_token`` as
    ``unauthorized: authentication required``, in both cases preferring the challenge's
    ``error_description``. Other errors (``invalid_request``) and other schemes: None.
    """
    for challenge in challenges:
        if challenge.scheme != "bearer":
            continue
        known = _BEARER_ERRORS.get(challenge.params.get("error", ""))
        if known is None:
            continue
        code, fallback = known
        return ChallengeError(
            code=code, message=challenge.params.get("error_description") or fallback
        )
    return None


# -- credentials ----------------------------------------------------------------------------


def basic_header(user: str, password: str) -> str:
    """``Authorization`` value for Basic auth (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def encode_registry_auth(credentials: Credentials) -> str:
    """Docker's ``X-Registry-Auth`` value: base64url JSON (what the CLI sends)."""
    doc = {
        key: value
        for key, value in (
            ("username", credentials.username),
            ("password", credentials.password),
            ("serveraddress", credentials.serveraddress),
            ("identitytoken", credentials.identitytoken),
            ("registrytoken", credentials.registrytoken),
        )
        if value
    }
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode("ascii")


_B64_ALPHABET = re.compile(r"^[A-Za-z0-9\-_+/]*=*$")


def decode_registry_auth(header_value: str | None) -> Credentials | None:
    """Decode Docker's ``X-Registry-Auth`` header.

    The value is base64url (RFC 4648 §5) JSON with ``username``, ``password``,
    ``serveraddress``, ``identitytoken`` and ``registrytoken``; keys match case-insensitively
    as Go's JSON decoder matches them (docker-py sends ``IdentityToken``), padding is
    optional and the standard alphabet is accepted too. An ``auth`` field
    (``base64(user:password)``, as in ``~/.docker/config.json``) fills in a missing
    username and password.

    Returns:
        None for a missing or empty header, ``{}`` or all-empty fields.

    Errors:
        :class:`~supervisor.errors.InvalidArgument` (400) when the value is not base64 JSON
        of that shape.
    """
    if header_value is None:
        return None
    text = header_value.strip()
    if not text:
        return None
    if not _B64_ALPHABET.fullmatch(text):
        raise InvalidArgument("failed to decode credentials from X-Registry-Auth: not base64")
    text = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        doc = json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidArgument(f"failed to decode credentials from X-Registry-Auth: {exc}") from None
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise InvalidArgument(
            "failed to decode credentials from X-Registry-Auth: not a JSON object"
        )
    fields: dict[str, str] = {}
    for key, value in doc.items():
        if value is None:
            continue
        if not isinstance(value, str):
            if str(key).lower() in _AUTH_KEYS:
                raise InvalidArgument(
                    f"failed to decode credentials from X-Registry-Auth: {key} must be a string"
                )
            continue  # "email" and friends: Docker ignores them as well
        fields.setdefault(str(key).lower(), value)
    username, password = fields.get("username", ""), fields.get("password", "")
    if not (username or password) and fields.get("auth"):
        username, password = _split_auth_field(fields["auth"])
    credentials = Credentials(
        username=username,
        password=password,
        serveraddress=fields.get("serveraddress", ""),
        identitytoken=fields.get("identitytoken", ""),
        registrytoken=fields.get("registrytoken", ""),
    )
    if credentials == Credentials(serveraddress=credentials.serveraddress):
        return None  # nothing that authenticates
    return credentials


_AUTH_KEYS = frozenset(
    {"username", "password", "serveraddress", "identitytoken", "registrytoken", "auth"}
)


def _split_auth_field(value: str) -> tuple[str, str]:
    try:
        user_pass = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "failed to decode credentials from X-Registry-Auth: bad auth field"
        ) from None
    user, sep, password = user_pass.partition(":")
    if not sep:
        raise InvalidArgument("failed to decode credentials from X-Registry-Auth: bad auth field")
    return user, password


# -- token requests -------------------------------------------------------------------------


def scope(repo: str, actions: Sequence[str]) -> str:
    """``repository:<repo>:pull,push`` (the token spec's resource scope)."""
    return f"repository:{repo}:{','.join(actions)}"


CATALOG_SCOPE = "registry:catalog:*"


@attrs.frozen
class TokenRequest:
    """An HTTP request to a token server, not yet sent."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = attrs.field(repr=False)
    body: bytes | None = attrs.field(default=None, repr=False)


def token_request(
    challenge: Challenge,
    scopes: Sequence[str],
    credentials: Credentials | None,
    *,
    offline: bool = False,
) -> TokenRequest:
    """The request that gets a bearer token for ``scopes`` (docker/distribution's
    ``registry/client/auth/session.go``).

    With an ``identitytoken`` it is an OAuth2 POST (``grant_type=refresh_token``); otherwise
    a GET with ``service``, one ``scope`` per scope and, given a username, ``account`` and a
    Basic ``Authorization``. ``offline=True`` (``berth login``) asks for a refresh token.

    Errors:
        :class:`~supervisor.errors.InvalidArgument` when the challenge has no usable realm.
    """
    realm = challenge.realm or ""
    parts = urllib.parse.urlsplit(realm)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"invalid token realm in the registry's challenge: {realm!r}")
    service = challenge.service
    if credentials is not None and credentials.identitytoken:
        form: list[tuple[str, str]] = [
            ("grant_type", "refresh_token"),
            ("refresh_token", credentials.identitytoken),
            ("client_id", CLIENT_ID),
        ]
        if service:
            form.append(("service", service))
        if scopes:
            form.append(("scope", " ".join(scopes)))
        if offline:
            form.append(("access_type", "offline"))
        return TokenRequest(
            method="POST",
            url=realm,
            headers=(("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),),
            body=urllib.parse.urlencode(form).encode(),
        )
    query: list[tuple[str, str]] = []
    if service:
        query.append(("service", service))
    query.extend(("scope", s) for s in scopes)
    headers: tuple[tuple[str, str], ...] = ()
    if credentials is not None and credentials.has_password:
        query.append(("account", credentials.username))
        headers = (("Authorization", basic_header(credentials.username, credentials.password)),)
    if offline:
        query.extend((("offline_token", "true"), ("client_id", CLIENT_ID)))
    url = realm
    if query:
        url += ("&" if parts.query else "?") + urllib.parse.urlencode(query)
    return TokenRequest(method="GET", url=url, headers=headers)


@attrs.frozen
class Token:
    token: str = attrs.field(repr=False)
    expires_in: int = DEFAULT_TOKEN_LIFETIME
    refresh_token: str | None = attrs.field(default=None, repr=False)


def parse_token_response(body: bytes) -> Token:
    """Read a token server's JSON answer (``token`` or ``access_token``, ``expires_in``,
    ``refresh_token``).

    Errors:
        :class:`~supervisor.errors.InvalidArgument` when there is no token in it.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidArgument("invalid token response: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid token response: not a JSON object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise InvalidArgument("invalid token response: no token in it")
    expires = doc.get("expires_in")
    lifetime = (
        expires
        if isinstance(expires, int) and not isinstance(expires, bool)
        else DEFAULT_TOKEN_LIFETIME
    )
    refresh = doc.get("refresh_token")
    return Token(
        token=token,
        expires_in=max(lifetime, MIN_TOKEN_LIFETIME),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )
