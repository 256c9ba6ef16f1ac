"""A real token server for tests: Basic credentials in, signed JWT bearer tokens out.

Theory of operation: Docker's token authentication (distribution's ``docs/spec/auth``)
puts a registry behind a separate *token server*. The registry answers 401 with
``WWW-Authenticate: Bearer realm=<token server>,service=<name>,scope=<what it needs>``; the
client asks the realm ``GET /token?service=&scope=repository:<name>:pull,push&account=``
with Basic credentials and gets ``{"token": <JWT>, ...}``; the registry checks the JWT's
signature against its ``rootcertbundle``, its ``iss``, ``aud`` (the service), ``exp`` and
``nbf``, and that its ``access`` claim holds the resource and action the request needs.

:class:`TokenIssuer` is that server, on 127.0.0.1 in a thread of the test process: an
ES256 key and its self-signed certificate (``cryptography``) are made per issuer; the
certificate goes into the JWT header's ``x5c`` and is the registry's root bundle, so the
registry verifies every token for real. Each :class:`Account` has a password and the
actions it may be granted; a token grants, per requested scope, the intersection of what
was asked and what the account may do (as real token servers do: asking for
``pull,push`` with a pull-only account yields a pull-only token, and the registry then
refuses the push). No credentials: an anonymous token with no access at all. Wrong
credentials: 401 with ``{"details": "incorrect username or password"}`` (Docker Hub's
auth server body).

    with TokenIssuer({"alice": Account("pw", frozenset({"pull", "push"}))}) as issuer:
        issuer.realm, issuer.cert_path, issuer.requests ...

Resource handling: the server thread is joined on exit (``shutdown``), the key material
lives in a temporary directory removed then.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.registry import RegistryUnavailable, RunningRegistry, TokenAuth, running_registry

SERVICE = "berth-test-registry"
ISSUER = "berth-test-token-issuer"
TOKEN_LIFETIME = 300  # seconds


@attrs.frozen
class Account:
    password: str
    actions: frozenset[str]  # e.g. frozenset({"pull", "push"})


@attrs.frozen
class TokenRequestSeen:
    """What one ``GET /token`` asked for, for assertions."""

    account: str | None  # the Basic user name, None when anonymous
    scopes: tuple[str, ...]
    service: str | None
    status: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def granted_access(scopes: tuple[str, ...], allowed: frozenset[str]) -> list[dict[str, object]]:
    """The JWT ``access`` claim for ``scopes``, each cut down to ``allowed`` actions."""
    access: list[dict[str, object]] = []
    for scope in scopes:
        resource_type, _sep, rest = scope.partition(":")
        name, _sep, actions = rest.rpartition(":")
        wanted = [a for a in actions.split(",") if a]
        given = [a for a in wanted if a in allowed]
        if resource_type and name and given:
            access.append({"type": resource_type, "name": name, "actions": given})
    return access


class TokenIssuer:
    """The token server (see the module documentation). Use as a context manager."""

    def __init__(
        self,
        accounts: Mapping[str, Account],
        *,
        service: str = SERVICE,
        issuer: str = ISSUER,
    ) -> None:
        self.accounts = dict(accounts)
        self.service = service
        self.issuer = issuer
        self.requests: list[TokenRequestSeen] = []
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="berth-token-"))
        self.cert_path = self._dir / "token-cert.pem"
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cert = _self_signed(self._key, issuer)
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-issuer", daemon=True
        )

    @property
    def realm(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def __enter__(self) -> TokenIssuer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        shutil.rmtree(self._dir, ignore_errors=True)

    def seen(self) -> list[TokenRequestSeen]:
        with self._lock:
            return list(self.requests)

    def _record(self, seen: TokenRequestSeen) -> None:
        with self._lock:
            self.requests.append(seen)

    def issue(self, subject: str, access: list[dict[str, object]]) -> str:
        """A signed JWT (ES256, the certificate in ``x5c``) granting ``access``."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # JWS wants r || s, 32 bytes each (RFC 7518 §3.4)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def _self_signed(key: ec.EllipticCurvePrivateKey, issuer: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _handler_for(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet: the tests assert on issuer.requests instead

        def _answer(self, status: int, doc: dict[str, object]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="berth-test-token-issuer"')
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            scopes = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
            service = query.get("service", [""])[0] or None
            if url.path != "/token":
                self._answer(404, {"details": "not found"})
                return
            user = _basic_user(self.headers.get("Authorization"))
            if user is None:
                allowed: frozenset[str] = frozenset()
                subject = ""
            else:
                name, password = user
                account = issuer.accounts.get(name)
                if account is None or not secrets.compare_digest(account.password, password):
                    issuer._record(TokenRequestSeen(name, scopes, service, 401))
                    self._answer(401, {"details": "incorrect username or password"})
                    return
                allowed, subject = account.actions, name
            issuer._record(TokenRequestSeen(subject or None, scopes, service, 200))
            token = issuer.issue(subject, granted_access(scopes, allowed))
            self._answer(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME,
                    "issued_at": datetime.datetime.now(datetime.UTC).isoformat(),
                },
            )

    return Handler


def _basic_user(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


# -- a registry behind this issuer -----------------------------------------------------------

WRITER = ("writer", "w-s3cret")  # may pull and push everywhere
READER = ("reader", "r-s3cret")  # may only pull
ACCOUNTS = {
    WRITER[0]: Account(WRITER[1], frozenset({"pull", "push"})),
    READER[0]: Account(READER[1], frozenset({"pull"})),
}


@attrs.frozen
class TokenRegistry:
    registry: RunningRegistry
    issuer: TokenIssuer

    @property
    def address(self) -> str:
        return self.registry.address


@contextlib.contextmanager
def running_token_registry(
    accounts: Mapping[str, Account] = ACCOUNTS,
) -> Iterator[TokenRegistry]:
    """A real registry (tests/registry.py) with ``auth: token:`` pointing at a
    :class:`TokenIssuer` for ``accounts``; both stopped at the end.

    Raises:
        RegistryUnavailable: as :func:`tests.registry.running_registry`.
    """
    with TokenIssuer(accounts) as issuer:
        config = TokenAuth(
            realm=issuer.realm,
            service=issuer.service,
            issuer=issuer.issuer,
            rootcertbundle=issuer.cert_path,
        )
        with running_registry(token=config) as registry:
            yield TokenRegistry(registry=registry, issuer=issuer)


def token_registry_or_skip() -> Iterator[TokenRegistry]:
    """For fixtures: :func:`running_token_registry`, skipped when there is no registry
    binary (a failure under CI, which installs it)."""
    import pytest

    try:
        with running_token_registry() as reg:
            yield reg
    except RegistryUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a registry is needed under CI: {exc}")
        pytest.skip(str(exc))
