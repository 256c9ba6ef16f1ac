"""A real registry for tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1.

:func:`running_registry` starts ``docker-registry serve <config>`` on a free loopback port
with filesystem storage in a temporary directory (``delete: enabled: true``), optionally
behind htpasswd auth (the file is made with ``htpasswd -Bbn`` from apache2-utils), waits
until ``/v2/`` answers and stops it at the end::

    with running_registry() as reg:                   # reg.address == "127.0.0.1:41234"
        ...
    with running_registry(auth=("user", "pass")) as reg:
        ...
    with running_registry(token=TokenAuth(realm, service, issuer, cert_path)) as reg:
        ...                                           # Bearer tokens (tests/token_issuer.py)

Session fixtures can wrap it (``yield from`` inside a ``with``). The process is the
test's own child: it is stopped by pid (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

REGISTRY_BINARY = Path(os.environ.get("BERTH_TEST_REGISTRY", "/usr/bin/docker-registry"))
HTPASSWD_BINARY = "htpasswd"
START_TIMEOUT = 15.0


@attrs.frozen
class TokenAuth:
    """distribution's ``auth: token:`` section: where clients get tokens, and what the
    registry checks in them (``iss``, ``aud`` = service, a signature chaining to the
    certificates in ``rootcertbundle``)."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


class RegistryUnavailable(Exception):
    """The registry binary (or htpasswd) is missing, or the registry did not start."""


@attrs.frozen
class RunningRegistry:
    address: str  # "127.0.0.1:<port>", what goes into image references
    storage: Path  # the filesystem driver's root directory
    log_path: Path
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return self.address

    def blob_data_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob's bytes (for tampering)."""
        algorithm, hexdigest = digest.split(":", 1)
        return (
            self.storage
            / "docker/registry/v2/blobs"
            / algorithm
            / hexdigest[:2]
            / hexdigest
            / "data"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def registry_available() -> bool:
    return REGISTRY_BINARY.is_file() and os.access(REGISTRY_BINARY, os.X_OK)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(port: int, storage: Path, htpasswd: Path | None, token: TokenAuth | None = None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]
    if htpasswd is not None:
        lines += [
            "auth:",
            "  htpasswd:",
            "    realm: basic-realm",
            f"    path: {htpasswd}",
        ]
    elif token is not None:
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token.realm}",
            f"    service: {token.service}",
            f"    issuer: {token.issuer}",
            f"    rootcertbundle: {token.rootcertbundle}",
        ]
    return "\n".join(lines) + "\n"


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/v2/")
        status = conn.getresponse().status
    except OSError:
        return False
    finally:
        conn.close()
    return status in (200, 401)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def running_registry(
    *,
    auth: tuple[str, str] | None = None,
    token: TokenAuth | None = None,
    root: Path | None = None,
) -> Iterator[RunningRegistry]:
    """Start a registry, yield where it is, stop it (and remove its directory if made here).

    Args:
        auth: ``(username, password)`` to put the registry behind htpasswd Basic auth.
        token: put the registry behind Bearer token auth instead (the token server is the
            caller's: see tests/token_issuer.py).
        root: a directory to keep config, storage and log in (kept afterwards); by default
            a fresh temporary directory, removed at the end.

    Raises:
        RegistryUnavailable: no registry binary (or no ``htpasswd`` for ``auth``), or it
            did not answer within 15 s (the message holds its log).
    """
    if not registry_available():
        raise RegistryUnavailable(f"{REGISTRY_BINARY} not found (apt-get install docker-registry)")
    if auth is not None and token is not None:
        raise ValueError("a registry has one auth method: htpasswd or token, not both")
    own_root = root is None
    base = Path(tempfile.mkdtemp(prefix="berth-registry-")) if root is None else root
    try:
        htpasswd = None
        if auth is not None:
            tool = shutil.which(HTPASSWD_BINARY)
            if tool is None:
                raise RegistryUnavailable("htpasswd not found (apt-get install apache2-utils)")
            htpasswd = base / "htpasswd"
            result = subprocess.run(
                [tool, "-Bbn", auth[0], auth[1]], check=True, capture_output=True
            )
            htpasswd.write_bytes(result.stdout)
        storage = base / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        log_path = base / "registry.log"
        for _try in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            config = base / "config.yml"
            config.write_text(_config(port, storage, htpasswd, token))
            with log_path.open("ab") as log_file:
                proc = subprocess.Popen(
                    [str(REGISTRY_BINARY), "serve", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=base,
                )
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while proc.poll() is None and time.monotonic() < deadline:
                    if _answers(port):
                        break
                    time.sleep(0.02)
                else:
                    _stop(proc)
                    continue
                yield RunningRegistry(
                    address=f"127.0.0.1:{port}",
                    storage=storage,
                    log_path=log_path,
                    username=auth[0] if auth else None,
                    password=auth[1] if auth else None,
                )
                return
            finally:
                _stop(proc)
        raise RegistryUnavailable(
            "docker-registry did not start:\n" + log_path.read_text(errors="replace")
        )
    finally:
        if own_root:
            shutil.rmtree(base, ignore_errors=True)
