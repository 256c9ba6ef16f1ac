"""Docker image references as the docker CLI reads them (``distribution/reference``).

Theory of operation:
    ``parse_normalized_named`` is ``reference.ParseNormalizedNamed``: it
    validates ``[domain/]path[:tag][@digest]`` with the grammar of the
    ``distribution/reference`` package and fills in docker's defaults
    (``busybox`` is ``docker.io/library/busybox``).  The result keeps the
    parts apart so that commands can send what docker sends: the
    fully-qualified name (``Reference.name``), the tag or digest, the
    registry domain (to find credentials), and print ``str(ref)``
    (``docker.io/library/busybox:latest``) or the familiar form.

    Pure module: stdlib only (``re`` is imported by the interpreter anyway).
"""

from __future__ import annotations

import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# The grammar of github.com/distribution/reference (regexp.go).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = rf"{_DOMAIN_NAME_COMPONENT}(?:\.{_DOMAIN_NAME_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_ANCHORED_IDENTIFIER = re.compile(r"[a-f0-9]{64}")


class InvalidReference(ValueError):
    """Not a valid image reference; the message is docker's."""


class Reference:
    """A parsed, normalized reference: ``domain/path[:tag][@digest]``."""

    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        """The fully-qualified repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def name_only(self) -> bool:
        """Neither tag nor digest (``reference.IsNameOnly``)."""
        return not self.tag and not self.digest

    def with_default_tag(self) -> Reference:
        """``reference.TagNameOnly``: add ``:latest`` to a bare name."""
        if self.name_only:
            return Reference(self.domain, self.path, DEFAULT_TAG)
        return self

    def familiar_name(self) -> str:
        """``reference.FamiliarName``: ``busybox``, ``user/app``, ``host:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
                return path[len(OFFICIAL_PREFIX) :]
            return path
        return self.name

    def familiar_string(self) -> str:
        """``reference.FamiliarString``: the familiar name with tag and digest."""
        return self.familiar_name() + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    def __repr__(self) -> str:
        return f"Reference({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reference):
            return NotImplemented
        return str(self) == str(other)

    __hash__ = None  # type: ignore[assignment]  # compared, never hashed


def split_docker_domain(name: str) -> tuple[str, str]:
    """``splitDockerDomain``: the registry domain and the rest of ``name``."""
    slash = name.find("/")
    first = name[:slash]
    if slash == -1 or (
        not any(c in first for c in ".:")
        and first not in ("localhost", LEGACY_DEFAULT_DOMAIN)
        and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[slash + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def _check_digest(digest: str) -> None:
    algorithm, _, encoded = digest.partition(":")
    lengths = {"sha256": 64, "sha384": 96, "sha512": 128}
    if algorithm not in lengths:
        raise InvalidReference("unsupported digest algorithm")
    if len(encoded) != lengths[algorithm]:
        raise InvalidReference("invalid checksum digest length")
    if encoded != encoded.lower():
        raise InvalidReference("invalid checksum digest format")


def _parse(text: str) -> Reference:
    """``reference.Parse`` of an already-normalized ``domain/path[:tag][@digest]``."""
    match = _REFERENCE.fullmatch(text)
    if match is None:
        if not text:
            raise InvalidReference("invalid reference format")
        if _REFERENCE.fullmatch(text.lower()):
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.group(1), match.group(2) or "", match.group(3) or ""
    domain, _, path = name.partition("/")
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest:
        _check_digest(digest)
    return Reference(domain, path, tag, digest)


def parse_normalized_named(text: str) -> Reference:
    """``reference.ParseNormalizedNamed``: ``busybox`` → ``docker.io/library/busybox``.

    Raises:
        InvalidReference: ``text`` is not a reference docker accepts (docker's message).
    """
    if _ANCHORED_IDENTIFIER.fullmatch(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    return _parse(f"{domain}/{remainder}")


def search_term_domain(term: str) -> str:
    """``splitReposSearchTerm``: the registry a ``search`` term names (``docker.io`` if none)."""
    parts = term.split("/", 1)
    first = parts[0]
    if len(parts) == 1 or (":" not in first and "." not in first and first != "localhost"):
        return DEFAULT_DOMAIN
    return first
