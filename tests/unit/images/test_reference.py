"""Tests for supervisor.images.reference: distribution/reference's normalisation table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument
from supervisor.images.reference import (
    InvalidReference,
    Reference,
    familiar,
    familiar_repository,
    normalize,
    parse,
)

HEX64 = "0123456789abcdef" * 4
SHA256 = "sha256:" + HEX64


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
        ("index.docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
        ("user/app", "docker.io/user/app:latest"),
        ("user/team/app", "docker.io/user/team/app:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/x:y", "localhost:5000/x:y"),
        ("host.com/a/b", "host.com/a/b:latest"),
        (f"host.com/a/b@{SHA256}", f"host.com/a/b@{SHA256}"),
        (f"host.com/a/b:v2@{SHA256}", f"host.com/a/b:v2@{SHA256}"),
        (f"busybox@{SHA256}", f"docker.io/library/busybox@{SHA256}"),
        ("quay.io:443/org/img:1.0-rc.1", "quay.io:443/org/img:1.0-rc.1"),
        ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ("192.168.1.10:5000/app", "192.168.1.10:5000/app:latest"),
        ("Registry.Example.com/app", "Registry.Example.com/app:latest"),
        ("UPPER/app", "UPPER/app:latest"),
        ("my-registry/app", "docker.io/my-registry/app:latest"),
        ("a__b/c.d-e", "docker.io/a__b/c.d-e:latest"),
        ("a---b", "docker.io/library/a---b:latest"),
        ("app:Tag_1.x", "docker.io/library/app:Tag_1.x"),
        ("app:" + "t" * 128, "docker.io/library/app:" + "t" * 128),
        (f"{HEX64}:latest", f"docker.io/library/{HEX64}:latest"),
        (f"library/{HEX64}", f"docker.io/library/{HEX64}:latest"),
        (f"user/{HEX64}", f"docker.io/user/{HEX64}:latest"),
    ],
    ids=[
        "official",
        "official-tag",
        "library",
        "docker-io",
        "already-normal",
        "legacy-domain",
        "legacy-domain-user",
        "user",
        "nested",
        "localhost",
        "localhost-port",
        "domain",
        "domain-digest",
        "domain-tag-digest",
        "official-digest",
        "domain-port-tag",
        "ipv6",
        "ipv4-port",
        "uppercase-domain",
        "uppercase-first-component-is-domain",
        "dash-is-not-domain",
        "separators",
        "dashes",
        "tag-chars",
        "tag-128",
        "hex-with-tag",
        "library-hex",
        "user-hex",
    ],
)
def test_normalize_reference_matches_docker(text: str, normalized: str) -> None:
    assert normalize(text) == normalized


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "busybox ",
        "BusyBox",
        "user/App",
        "host.com/Org/app",
        HEX64,
        "a:b:c",
        "a:",
        ":tag",
        "@" + SHA256,
        "a@",
        "a@sha256:abc",
        "a@sha256:" + HEX64.upper(),
        "a@sha256:" + "g" * 64,
        "a@sha256:" + HEX64 + "0",
        "a@md5:" + "0" * 32,
        "a@sha512:" + HEX64,
        "a//b",
        "a/",
        "/a",
        "a___b",
        "a..b",
        "-a",
        "a-",
        "a_",
        "example.com:/a",
        "example.com:abc/a",
        "-host.com/a",
        "app:-tag",
        "app:.tag",
        "app:" + "t" * 129,
        "app:t\u00e9",
        "caf\u00e9",
        "busybox\n",
        "busybox\n:latest",
        "a\n/b",
        "a:tag\n@" + SHA256,
        "a b",
        "a\tb",
        "a" * 256,
        "host.com/" + "a" * 247,
    ],
    ids=[
        "empty",
        "leading-space",
        "trailing-space",
        "uppercase",
        "uppercase-path",
        "uppercase-domain-path",
        "64-hex",
        "two-colons",
        "empty-tag",
        "no-name",
        "digest-only",
        "empty-digest",
        "short-digest",
        "uppercase-digest",
        "non-hex-digest",
        "long-sha256",
        "unknown-algorithm",
        "short-sha512",
        "empty-component",
        "trailing-slash",
        "leading-slash",
        "triple-underscore",
        "double-dot",
        "leading-dash",
        "trailing-dash",
        "trailing-underscore",
        "empty-port",
        "word-port",
        "domain-dash",
        "tag-dash",
        "tag-dot",
        "tag-129",
        "tag-non-ascii",
        "non-ascii",
        "trailing-newline",
        "newline-before-tag",
        "newline-in-domain",
        "newline-before-digest",
        "space",
        "tab",
        "name-256",
        "domain-name-256",
    ],
)
def test_parse_invalid_reference_raises_invalid_reference(text: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert str(info.value).startswith("invalid reference format")
    assert info.value.status == 400


def test_parse_64_hex_message_names_the_rule() -> None:
    with pytest.raises(InvalidReference, match="64-byte hex string"):
        parse(HEX64)


def test_parse_too_long_name_message_names_the_rule() -> None:
    with pytest.raises(InvalidReference, match="not be more than 255 characters"):
        parse("a" * 238)  # docker.io/library/ + 238 = 256
    assert len(parse("a" * 237).repository) == 255


def test_parse_longest_valid_reference_accepted() -> None:
    text = "index.docker.io/u/" + "a" * 243 + ":" + "t" * 128 + "@sha512:" + "f" * 128
    ref = parse(text)
    assert len(ref.repository) == 255
    assert parse(str(ref)) == ref


def test_parse_fields_and_repository() -> None:
    ref = parse(f"localhost:5000/team/app:v1@{SHA256}")
    assert ref == Reference(domain="localhost:5000", path="team/app", tag="v1", digest=SHA256)
    assert ref.repository == "localhost:5000/team/app"


def test_parse_adds_no_default_tag() -> None:
    assert parse("busybox").tag is None
    assert parse("busybox").with_default_tag().tag == "latest"
    digested = parse(f"busybox@{SHA256}")
    assert digested.with_default_tag() is digested
    tagged = parse("busybox:1")
    assert tagged.with_default_tag() is tagged


@pytest.mark.parametrize(
    ("ref", "familiar_form"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox", "busybox"),
        ("docker.io/user/app:v1", "user/app:v1"),
        ("docker.io/library/a/b:latest", "library/a/b:latest"),
        (f"docker.io/library/busybox@{SHA256}", f"busybox@{SHA256}"),
        ("localhost:5000/x:y", "localhost:5000/x:y"),
        ("host.com/library/app:1", "host.com/library/app:1"),
        ("docker.io.example.com/app:1", "docker.io.example.com/app:1"),
    ],
    ids=[
        "official",
        "official-untagged",
        "user",
        "library-nested",
        "digest",
        "registry",
        "other-library",
        "lookalike-domain",
    ],
)
def test_familiar_matches_docker_familiar_string(ref: str, familiar_form: str) -> None:
    assert familiar(ref) == familiar_form


@pytest.mark.parametrize(
    ("text", "name"),
    [("busybox:1", "busybox"), ("user/app@" + SHA256, "user/app"), ("host.com/a:b", "host.com/a")],
    ids=["official", "user-digest", "registry"],
)
def test_familiar_repository_drops_tag_and_digest(text: str, name: str) -> None:
    assert familiar_repository(parse(text)) == name


def test_invalid_reference_is_invalid_argument() -> None:
    assert issubclass(InvalidReference, InvalidArgument)
    assert str(InvalidReference()) == "invalid reference format"
    assert str(InvalidReference("why")) == "invalid reference format: why"


# -- properties -----------------------------------------------------------------------------

_component = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,5}){0,2}", fullmatch=True)
_domain = st.sampled_from(
    [
        "",
        "docker.io/",
        "index.docker.io/",
        "localhost/",
        "localhost:5000/",
        "host.com/",
        "Reg.Example.com:443/",
        "[::1]:5000/",
        "10.0.0.1/",
    ]
)
_tag = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
_digest = st.one_of(
    st.none(),
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
    st.binary(min_size=64, max_size=64).map(lambda b: "sha512:" + b.hex()),
)


@st.composite
def references(draw: st.DrawFn) -> str:
    # A first component with a "." would name a registry (Docker Hub namespaces have none).
    components = [draw(_component).replace(".", "_"), *draw(st.lists(_component, max_size=2))]
    domain, path = draw(_domain), "/".join(components)
    tag, digest = draw(_tag), draw(_digest)
    return domain + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@pytest.mark.slow
@given(references())
def test_parse_valid_reference_round_trips(text: str) -> None:
    ref = parse(text)
    assert parse(str(ref)) == ref
    assert parse(normalize(text)) == ref.with_default_tag()
    assert normalize(familiar(normalize(text))) == normalize(text)


_alphabet = st.sampled_from(
    [*"abAB09:/@._-+= \n\t\u00e9[]", "sha256:", "localhost", "docker.io", HEX64]
)


@pytest.mark.slow
@given(st.one_of(st.text(max_size=80), st.lists(_alphabet, max_size=12).map("".join), references()))
def test_parse_any_text_raises_only_invalid_argument_and_round_trips(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference:
        return
    assert parse(str(ref)) == ref
    assert normalize(str(ref)) == str(ref.with_default_tag())
