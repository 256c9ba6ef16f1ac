"""``cli.reference``: docker's ParseNormalizedNamed and friends."""

from __future__ import annotations

import pytest

from cli.reference import InvalidReference, parse_normalized_named, search_term_domain

DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("text", "name", "tag", "digest", "familiar", "full"),
    [
        ("busybox", "docker.io/library/busybox", "", "", "busybox", "docker.io/library/busybox"),
        ("busybox:1.36", "docker.io/library/busybox", "1.36", "", "busybox:1.36", None),
        ("bob/app", "docker.io/bob/app", "", "", "bob/app", None),
        ("index.docker.io/bob/app:v2", "docker.io/bob/app", "v2", "", "bob/app:v2", None),
        ("docker.io/library/alpine", "docker.io/library/alpine", "", "", "alpine", None),
        ("localhost/app", "localhost/app", "", "", "localhost/app", None),
        ("localhost:5000/a/b:c", "localhost:5000/a/b", "c", "", "localhost:5000/a/b:c", None),
        ("Reg.Example.com/x", "Reg.Example.com/x", "", "", "Reg.Example.com/x", None),
        ("[::1]:5000/x:1", "[::1]:5000/x", "1", "", "[::1]:5000/x:1", None),
        (f"busybox@{DIGEST}", "docker.io/library/busybox", "", DIGEST, f"busybox@{DIGEST}", None),
        (
            f"busybox:1@{DIGEST}",
            "docker.io/library/busybox",
            "1",
            DIGEST,
            f"busybox:1@{DIGEST}",
            f"docker.io/library/busybox:1@{DIGEST}",
        ),
        ("a__b/c-d.e:T_1.x-y", "docker.io/a__b/c-d.e", "T_1.x-y", "", "a__b/c-d.e:T_1.x-y", None),
    ],
)
def test_parse_normalized_named(
    text: str, name: str, tag: str, digest: str, familiar: str, full: str | None
) -> None:
    ref = parse_normalized_named(text)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)
    assert ref.familiar_string() == familiar
    if full is not None:
        assert str(ref) == full


def test_default_tag_and_domain() -> None:
    ref = parse_normalized_named("busybox")
    assert ref.name_only
    tagged = ref.with_default_tag()
    assert str(tagged) == "docker.io/library/busybox:latest"
    assert tagged.domain == "docker.io"
    assert not tagged.name_only
    digested = parse_normalized_named(f"busybox@{DIGEST}")
    assert digested.with_default_tag() is digested
    assert parse_normalized_named("localhost:5000/x").domain == "localhost:5000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid reference format"),
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("bob/App:1", "invalid reference format: repository name (bob/App) must be lowercase"),
        ("busybox:", "invalid reference format"),
        ("busybox:-x", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox@sha256:" + "a" * 63, "invalid checksum digest length"),
        ("busybox@sha256:" + "a" * 63 + "A", "invalid checksum digest format"),
        (
            "b" * 64,
            f"invalid repository name ({'b' * 64}), cannot specify 64-byte hexadecimal strings",
        ),
        ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
        ("Reg.io/" + "a" * 250, None),
    ],
)
def test_invalid_references(text: str, message: str | None) -> None:
    if message is None:  # the domain does not count in the 255 characters
        assert len(parse_normalized_named(text).path) == 250
        return
    with pytest.raises(InvalidReference) as caught:
        parse_normalized_named(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("term", "domain"),
    [
        ("busybox", "docker.io"),
        ("bob/app", "docker.io"),
        ("localhost/app", "localhost"),
        ("reg.io/app", "reg.io"),
        ("reg:5000/app", "reg:5000"),
        ("reg.io", "docker.io"),
    ],
)
def test_search_term_domain(term: str, domain: str) -> None:
    assert search_term_domain(term) == domain
