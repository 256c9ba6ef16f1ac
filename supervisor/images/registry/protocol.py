"""The distribution HTTP API as data: endpoints, URLs, error bodies, paging. Pure.

Theory of operation: :class:`~supervisor.images.registry.client.RegistryClient` gathers
responses and asks this module what they mean. :func:`registry_origin` decides where a
registry domain lives and whether it is spoken to in plain HTTP (only loopback hosts and
registries the daemon lists as insecure, as Docker decides); :func:`resolve_location`
follows ``Location`` headers (relative, absolute or on another host: blob redirects to
storage, upload sessions); :func:`error_message` renders distribution's error body the way
Docker prints it (``manifest unknown: manifest unknown``); :func:`next_link` pages
``_catalog`` and tag lists; :func:`parse_content_range` checks a resumed download starts
where it was asked to.

Rules: never raises anything but :class:`~supervisor.errors.InvalidArgument`; imports only
the standard library, attrs and ``supervisor``'s pure modules (no socket, no DNS: an
insecure-registry CIDR matches IP literals only).
"""

from __future__ import annotations

import http
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Sequence

import attrs

from supervisor.errors import InvalidArgument

DOCKER_HUB = "docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"  # where docker.io's v2 API lives
DOCKER_HUB_INDEX = "index.docker.io"  # where its v1 search lives

# distribution's reference grammar for repository paths, and tags.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")


@attrs.frozen
class Origin:
    """Scheme, host and port of an HTTP server (the host without IPv6 brackets)."""

    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def netloc(self) -> str:
        """``host[:port]`` for URLs and the ``Host`` header; the default port is left out."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def netloc_with_port(self) -> str:
        """``host:port`` always (for messages: ``dial tcp 127.0.0.1:5000``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, target: str) -> str:
        return f"{self.scheme}://{self.netloc}{target}"


def split_host_port(domain: str) -> tuple[str, int | None]:
    """``host:5000`` → ``("host", 5000)``; ``[::1]:5000`` → ``("::1", 5000)``; a bare
    IPv6 literal has no port.

    Errors:
        :class:`~supervisor.errors.InvalidArgument` for an empty host or a bad port.
    """
    host, port_text = domain, ""
    if domain.startswith("["):
        end = domain.find("]")
        if end < 0:
            raise InvalidArgument(f"invalid registry address: {domain!r}")
        host, rest = domain[1:end], domain[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidArgument(f"invalid registry address: {domain!r}")
            port_text = rest[1:]
    elif domain.count(":") == 1:
        host, port_text = domain.split(":")
    if not host:
        raise InvalidArgument(f"invalid registry address: {domain!r}")
    if port_text == "":
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidArgument(f"invalid port in registry address: {domain!r}")
    return host, int(port_text)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` and ``::1`` (host without port or brackets)."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def is_insecure(domain: str, insecure_registries: Sequence[str]) -> bool:
    """Whether ``domain`` (``host[:port]``) may be spoken to in plain HTTP.

    Loopback hosts always may (Docker's default insecure CIDR is 127.0.0.0/8). Otherwise
    the domain must be listed exactly (``myreg:5000``) or, for an IP literal, fall in a
    listed CIDR (``10.0.0.0/8``), as the daemon's ``insecure-registries`` option works.
    """
    host, _port = split_host_port(domain)
    if is_loopback(host):
        return True
    ip = _ip(host)
    for entry in insecure_registries:
        if entry.lower() == domain.lower():
            return True
        if "/" in entry and ip is not None:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if ip.version == network.version and ip in network:
                return True
    return False


def registry_origin(domain: str, insecure_registries: Sequence[str] = ()) -> Origin:
    """Where the v2 API of ``domain`` lives: ``docker.io`` → ``https://registry-1.docker.io``,
    plain HTTP for loopback and insecure registries, HTTPS for everything else.
    """
    if domain.lower() in (DOCKER_HUB, DOCKER_HUB_INDEX):
        return Origin("https", DOCKER_HUB_REGISTRY, 443)
    host, port = split_host_port(domain)
    scheme = "http" if is_insecure(domain, insecure_registries) else "https"
    return Origin(scheme, host, port or (80 if scheme == "http" else 443))


def search_origin(domain: str, insecure_registries: Sequence[str] = ()) -> Origin:
    """Where the v1 search API of ``domain`` lives (``docker.io`` → ``index.docker.io``)."""
    if domain.lower() in (DOCKER_HUB, DOCKER_HUB_INDEX):
        return Origin("https", DOCKER_HUB_INDEX, 443)
    return registry_origin(domain, insecure_registries)


def origin_of_url(url: str) -> tuple[Origin, str]:
    """Split an absolute ``http(s)`` URL into its origin and request target.

    Errors:
        :class:`~supervisor.errors.InvalidArgument` for another scheme or no host.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"unsupported URL: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument(f"invalid port in URL: {url!r}") from None
    origin = Origin(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, target


def resolve_location(origin: Origin, target: str, location: str) -> tuple[Origin, str]:
    """Resolve a ``Location`` header against the request it answered (RFC 9110 §10.2.2)."""
    absolute = urllib.parse.urljoin(origin.url(target), location.strip())
    return origin_of_url(absolute)


def with_query(target: str, params: Sequence[tuple[str, str]]) -> str:
    """Add query parameters to a target that may already have some (upload sessions carry
    ``_state``)."""
    if not params:
        return target
    path, _sep, fragment = target.partition("#")
    del fragment  # a fragment is never sent
    joiner = "&" if "?" in path else "?"
    return path + joiner + urllib.parse.urlencode(params)


def check_repository(repo: str) -> str:
    """Return ``repo`` if it is a valid repository path (``library/busybox``).

    The path goes verbatim into request targets, so this is also what keeps ``..`` and
    ``?`` out of them.
    """
    if len(repo) > 255 or not _REPOSITORY.fullmatch(repo):
        raise InvalidArgument(f"invalid repository name: {repo!r}")
    return repo


def check_reference(reference: str) -> str:
    """Return ``reference`` if it is a valid tag or digest."""
    if not (_TAG.fullmatch(reference) or _DIGEST.fullmatch(reference)):
        raise InvalidArgument(f"invalid tag or digest: {reference!r}")
    return reference


def is_digest_reference(reference: str) -> bool:
    return ":" in reference


# -- responses -------------------------------------------------------------------------------

_FALLBACK = {
    401: "unauthorized: authentication required",
    403: "denied: requested access to the resource is denied",
    404: "not found",
    405: "unsupported: The operation is unsupported.",
    429: "toomanyrequests: too many requests",
}


def _code_text(code: str) -> str:
    # errcode.ErrorCode.Error(): the code's value lower-cased with "_" as spaces.
    return code.replace("_", " ").lower()


def error_message(status: int, body: bytes, reason: str = "") -> str:
    """Docker's rendering of a registry error response.

    A distribution error body ``{"errors": [{"code": "MANIFEST_UNKNOWN", "message":
    "manifest unknown"}]}`` reads ``manifest unknown: manifest unknown``; a token server's
    ``{"details": "incorrect username or password"}`` on 401 reads ``unauthorized:
    incorrect username or password``. Without either, a fixed text for the status.
    """
    try:
        doc = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        doc = None
    if isinstance(doc, dict):
        errors = doc.get("errors")
        if isinstance(errors, list):
            parts = []
            for err in errors:
                if not isinstance(err, dict):
                    continue
                code, message = err.get("code"), err.get("message")
                code_text = _code_text(code) if isinstance(code, str) and code else "unknown"
                if isinstance(message, str) and message:
                    parts.append(f"{code_text}: {message}")
                else:
                    parts.append(code_text)
            if parts:
                return "; ".join(parts)
        details = doc.get("details")
        if isinstance(details, str) and details:
            return f"unauthorized: {details}" if status == 401 else details
    if status in _FALLBACK:
        return _FALLBACK[status]
    if not reason:
        try:
            reason = http.HTTPStatus(status).phrase  # as Go's resp.Status reads
        except ValueError:
            reason = ""
    text = f"{status} {reason}".strip()
    return f"received unexpected HTTP status: {text}"


def error_codes(body: bytes) -> list[str]:
    """The ``code`` values of a distribution error body (``["BLOB_UNKNOWN"]``)."""
    try:
        doc = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    return [e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), str)]


def next_link(link_header: str | None) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), as distribution pages
    ``_catalog`` and tag lists: ``</v2/_catalog?last=b&n=2>; rel="next"``.
    """
    if not link_header:
        return None
    for match in _LINK.finditer(link_header):
        url, params = match.group(1), match.group(2)
        for param in params.split(";"):
            name, _sep, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return url
    return None


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes 100-199/200`` → ``(100, 199, 200)``; ``*`` total → None; garbage → None."""
    if not value:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if end < start:
        return None
    return start, end, total


def parse_json_object(body: bytes, what: str) -> dict[str, object]:
    """Decode a JSON object from a registry, or raise InvalidArgument naming ``what``."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidArgument(f"invalid {what} from the registry: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what} from the registry: not a JSON object")
    return doc


def string_list(doc: dict[str, object], key: str, what: str) -> list[str]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {what} from the registry: {key} is not a list of strings")
    return [str(v) for v in value]
