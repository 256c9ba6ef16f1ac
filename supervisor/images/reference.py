"""Image references parsed and normalised the way Docker does. Pure.

Theory of operation: ``[domain/]path[:tag][@digest]``. A first component holding a
``.`` or ``:`` or equal to ``localhost`` is a registry domain; otherwise the domain is
``docker.io`` and single-component paths gain ``library/``. ``busybox`` normalises to
``docker.io/library/busybox:latest``; :func:`familiar` turns it back to ``busybox:latest``
for display. Invalid input raises :class:`InvalidReference` (400
"invalid reference format"), nothing else.
"""

from __future__ import annotations

import re

import attrs

from supervisor.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
MAX_REFERENCE = 1024

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)  # Go's \w is ASCII
# What go-digest accepts: a registered algorithm with its exact length of lower-case hex.
_DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


class InvalidReference(InvalidArgument):
    def __init__(self, text: str = "") -> None:
        super().__init__("invalid reference format" + (f": {text}" if text else ""))


@attrs.frozen
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        if self.tag is None and self.digest is None:
            return attrs.evolve(self, tag=DEFAULT_TAG)
        return self


def parse(text: str) -> Reference:
    """Parse and normalise a reference (no default tag added)."""
    # The name is bounded below (255); this only bounds the work: the longest valid input
    # is "index.docker.io/" + path (261) + ":" + tag (128) + "@sha512:" + 128 hex = 526.
    if not text or text != text.strip() or len(text) > MAX_REFERENCE:
        raise InvalidReference()
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference()
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference()
    if not name:
        raise InvalidReference()
    parts = name.split("/")
    if len(parts) > 1 and (
        "." in parts[0]
        or ":" in parts[0]
        or parts[0] == "localhost"
        or parts[0] != parts[0].lower()
    ):
        domain, path_parts = parts[0], parts[1:]
        if not _DOMAIN.fullmatch(domain):
            raise InvalidReference()
    else:
        domain, path_parts = DEFAULT_DOMAIN, parts
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    for comp in path_parts:
        if not _COMPONENT.fullmatch(comp):
            raise InvalidReference()
    path = "/".join(path_parts)
    if domain == DEFAULT_DOMAIN and len(path_parts) == 1:
        path = OFFICIAL_PREFIX + path
    if len(f"{domain}/{path}") > 255:
        raise InvalidReference("repository name must not be more than 255 characters")
    if _HEX64.fullmatch(text):  # the whole input, as ParseNormalizedNamed checks it
        raise InvalidReference("repository name must not be a 64-byte hex string")
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def normalize(text: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``."""
    return str(parse(text).with_default_tag())


def familiar(ref: str) -> str:
    """``docker.io/library/busybox:latest`` → ``busybox:latest`` (Docker's display form)."""
    if ref.startswith(DEFAULT_DOMAIN + "/"):
        ref = ref[len(DEFAULT_DOMAIN) + 1 :]
        remainder = ref.removeprefix(OFFICIAL_PREFIX)
        if remainder != ref and "/" not in remainder:  # "library/a/b" stays as it is
            ref = remainder
    return ref


def familiar_repository(ref: Reference) -> str:
    return familiar(ref.repository)
