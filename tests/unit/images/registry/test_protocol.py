"""Tests for supervisor.images.registry.protocol: endpoints, locations, errors, paging."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument
from supervisor.images.registry.protocol import (
    Origin,
    check_reference,
    check_repository,
    error_codes,
    error_message,
    is_insecure,
    next_link,
    origin_of_url,
    parse_content_range,
    parse_json_object,
    registry_origin,
    resolve_location,
    search_origin,
    split_host_port,
    string_list,
    with_query,
)


@pytest.mark.parametrize(
    ("domain", "insecure", "expected"),
    [
        ("docker.io", (), Origin("https", "registry-1.docker.io", 443)),
        ("index.docker.io", (), Origin("https", "registry-1.docker.io", 443)),
        ("quay.io", (), Origin("https", "quay.io", 443)),
        ("myreg:5000", (), Origin("https", "myreg", 5000)),
        ("localhost", (), Origin("http", "localhost", 80)),
        ("localhost:5000", (), Origin("http", "localhost", 5000)),
        ("127.0.0.1:5000", (), Origin("http", "127.0.0.1", 5000)),
        ("127.8.9.10:5000", (), Origin("http", "127.8.9.10", 5000)),
        ("[::1]:5000", (), Origin("http", "::1", 5000)),
        ("::1", (), Origin("http", "::1", 80)),
        ("myreg:5000", ("myreg:5000",), Origin("http", "myreg", 5000)),
        ("myreg:5000", ("myreg",), Origin("https", "myreg", 5000)),
        ("10.1.2.3:5000", ("10.0.0.0/8",), Origin("http", "10.1.2.3", 5000)),
        ("10.1.2.3:5000", ("192.168.0.0/16", "bad/cidr"), Origin("https", "10.1.2.3", 5000)),
        ("myreg.example:5000", ("10.0.0.0/8",), Origin("https", "myreg.example", 5000)),
        ("[fd00::1]:5000", ("fd00::/8",), Origin("http", "fd00::1", 5000)),
    ],
    ids=[
        "hub",
        "hub-legacy",
        "https-default",
        "https-port",
        "localhost",
        "localhost-port",
        "loopback-v4",
        "loopback-v4-range",
        "loopback-v6",
        "loopback-v6-bare",
        "listed-insecure",
        "listed-host-without-port-does-not-match",
        "insecure-cidr",
        "other-cidr",
        "cidr-matches-ip-literals-only",
        "insecure-cidr-v6",
    ],
)
def test_registry_origin_scheme_rules(
    domain: str, insecure: tuple[str, ...], expected: Origin
) -> None:
    assert registry_origin(domain, insecure) == expected


def test_search_origin_hub_is_index() -> None:
    assert search_origin("docker.io") == Origin("https", "index.docker.io", 443)
    assert search_origin("localhost:5000") == Origin("http", "localhost", 5000)


def test_origin_netloc_and_url() -> None:
    assert Origin("https", "h", 443).netloc == "h"
    assert Origin("http", "h", 80).url("/v2/") == "http://h/v2/"
    assert Origin("http", "::1", 5000).netloc == "[::1]:5000"
    assert Origin("https", "h", 443).netloc_with_port == "h:443"


@pytest.mark.parametrize(
    "domain", ["", ":5000", "[::1", "[::1]x", "host:port", "host:0", "host:70000"]
)
def test_split_host_port_invalid(domain: str) -> None:
    with pytest.raises(InvalidArgument):
        split_host_port(domain)


def test_is_insecure_localhost_subdomain() -> None:
    assert is_insecure("registry.localhost:5000", ())
    assert not is_insecure("example.com", ())


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            "/v2/a/blobs/uploads/u1?_state=x",
            (Origin("http", "r", 5000), "/v2/a/blobs/uploads/u1?_state=x"),
        ),
        ("u2", (Origin("http", "r", 5000), "/v2/a/blobs/uploads/u2")),
        (
            "https://s3.example/bucket/blob?sig=1",
            (Origin("https", "s3.example", 443), "/bucket/blob?sig=1"),
        ),
        ("http://[::1]:9/x", (Origin("http", "::1", 9), "/x")),
        ("//other:8080/y", (Origin("http", "other", 8080), "/y")),
    ],
    ids=["absolute-path", "relative", "other-host", "ipv6", "scheme-relative"],
)
def test_resolve_location(location: str, expected: tuple[Origin, str]) -> None:
    assert resolve_location(Origin("http", "r", 5000), "/v2/a/blobs/uploads/", location) == expected


@pytest.mark.parametrize("url", ["ftp://x/y", "http://", "http://h:port/", "mailto:x"])
def test_origin_of_url_rejects(url: str) -> None:
    with pytest.raises(InvalidArgument):
        origin_of_url(url)


def test_with_query_appends_to_existing_query() -> None:
    assert with_query("/u?_state=a", [("digest", "sha256:x")]) == "/u?_state=a&digest=sha256%3Ax"
    assert with_query("/u", [("digest", "d")]) == "/u?digest=d"
    assert with_query("/u", []) == "/u"
    assert with_query("/u#frag", [("a", "b")]) == "/u?a=b"


@pytest.mark.parametrize("repo", ["library/busybox", "a", "a-b/c_d/e.f", "a__b"])
def test_check_repository_valid(repo: str) -> None:
    assert check_repository(repo) == repo


@pytest.mark.parametrize("repo", ["", "A", "a/../b", "a?b", "/a", "a/", "a//b", "a" * 256])
def test_check_repository_invalid(repo: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid repository name"):
        check_repository(repo)


@pytest.mark.parametrize("ref", ["latest", "v1.0-rc_1", "sha256:" + "a" * 64])
def test_check_reference_valid(ref: str) -> None:
    assert check_reference(ref) == ref


@pytest.mark.parametrize("ref", ["", "-x", "a/b", "a?b", "x" * 129, ".x"])
def test_check_reference_invalid(ref: str) -> None:
    with pytest.raises(InvalidArgument):
        check_reference(ref)


def errors_body(*errors: tuple[str, str]) -> bytes:
    return json.dumps(
        {"errors": [{"code": c, "message": m, "detail": None} for c, m in errors]}
    ).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            404,
            errors_body(("MANIFEST_UNKNOWN", "manifest unknown")),
            "manifest unknown: manifest unknown",
        ),
        (
            401,
            errors_body(("UNAUTHORIZED", "authentication required")),
            "unauthorized: authentication required",
        ),
        (
            403,
            errors_body(("DENIED", "requested access to the resource is denied")),
            "denied: requested access to the resource is denied",
        ),
        (
            400,
            errors_body(
                ("DIGEST_INVALID", "provided digest did not match uploaded content"),
                ("SIZE_INVALID", ""),
            ),
            "digest invalid: provided digest did not match uploaded content; size invalid",
        ),
        (
            401,
            b'{"details": "incorrect username or password"}',
            "unauthorized: incorrect username or password",
        ),
        (500, b'{"details": "boom"}', "boom"),
        (401, b"", "unauthorized: authentication required"),
        (403, b"<html>", "denied: requested access to the resource is denied"),
        (429, b"", "toomanyrequests: too many requests"),
        (502, b"Bad Gateway", "received unexpected HTTP status: 502 Bad Gateway"),
        (404, b'{"errors": [1, {"message": "m"}]}', "unknown: m"),
    ],
    ids=[
        "manifest-unknown",
        "unauthorized",
        "denied",
        "two-errors",
        "token-server",
        "details-other",
        "empty-401",
        "html-403",
        "429",
        "502",
        "odd-entries",
    ],
)
def test_error_message_docker_rendering(status: int, body: bytes, expected: str) -> None:
    reason = "Bad Gateway" if status == 502 else ""
    assert error_message(status, body, reason) == expected


def test_error_codes() -> None:
    assert error_codes(errors_body(("BLOB_UNKNOWN", "x"))) == ["BLOB_UNKNOWN"]
    assert error_codes(b"nope") == []
    assert error_codes(b'{"errors": "x"}') == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('</v2/_catalog?last=b&n=2>; rel="next"', "/v2/_catalog?last=b&n=2"),
        ("<https://r/v2/x/tags/list?n=1&last=a>; rel=next", "https://r/v2/x/tags/list?n=1&last=a"),
        ('</prev>; rel="prev", </next>; rel="next"', "/next"),
        ('</x>; title="a"; rel="first next"', "/x"),
        ('</prev>; rel="prev"', None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
    ids=["quoted", "bare", "second-link", "multi-rel", "no-next", "garbage", "empty", "none"],
)
def test_next_link(header: str | None, expected: str | None) -> None:
    assert next_link(header) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 100-199/200", (100, 199, 200)),
        ("bytes 0-0/*", (0, 0, None)),
        ("bytes 5-1/9", None),
        ("items 0-1/2", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_content_range(
    value: str | None, expected: tuple[int, int, int | None] | None
) -> None:
    assert parse_content_range(value) == expected


@given(st.text(max_size=40))
def test_helpers_never_raise_on_text(text: str) -> None:
    next_link(text)
    parse_content_range(text)
    error_message(500, text.encode())
    with contextlib.suppress(InvalidArgument):
        registry_origin(text)


def test_split_host_port_bracketed_without_port() -> None:
    assert split_host_port("[::1]") == ("::1", None)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b'{"errors": []}', "not found"),
        (401, b'{"details": 5}', "unauthorized: authentication required"),
        (599, b"", "received unexpected HTTP status: 599"),
    ],
    ids=["empty-errors", "details-not-string", "unknown-status"],
)
def test_error_message_fallbacks(status: int, body: bytes, expected: str) -> None:
    assert error_message(status, body) == expected


def test_parse_json_object_and_string_list() -> None:
    doc = parse_json_object(b'{"tags": ["a", "b"], "bad": [1]}', "tag list")
    assert string_list(doc, "tags", "tag list") == ["a", "b"]
    assert string_list(doc, "missing", "tag list") == []
    with pytest.raises(InvalidArgument, match="bad is not a list of strings"):
        string_list(doc, "bad", "tag list")
    with pytest.raises(InvalidArgument, match="invalid catalog from the registry: not JSON"):
        parse_json_object(b"<html>", "catalog")
    with pytest.raises(InvalidArgument, match="not a JSON object"):
        parse_json_object(b"[]", "catalog")
