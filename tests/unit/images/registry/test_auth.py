"""Tests for supervisor.images.registry.auth: challenges, X-Registry-Auth, token requests."""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument
from supervisor.images.registry.auth import (
    CATALOG_SCOPE,
    Challenge,
    ChallengeError,
    Credentials,
    basic_header,
    challenge_error,
    decode_registry_auth,
    encode_registry_auth,
    find_challenge,
    parse_challenges,
    parse_token_response,
    scope,
    token_request,
)


def b64url(doc: object, *, pad: bool = True) -> str:
    text = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    return text if pad else text.rstrip("=")


# -- WWW-Authenticate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:samalba/my-app:pull,push"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:samalba/my-app:pull,push",
                    },
                )
            ],
        ),
        ('Basic realm="basic-realm"', [Challenge("basic", {"realm": "basic-realm"})]),
        (
            'Basic realm="a, b", Bearer realm="https://x/token", error="invalid_token"',
            [
                Challenge("basic", {"realm": "a, b"}),
                Challenge("bearer", {"realm": "https://x/token", "error": "invalid_token"}),
            ],
        ),
        (
            'bearer Realm = "r\\"q" , service=svc',
            [Challenge("bearer", {"realm": 'r"q', "service": "svc"})],
        ),
        ("Basic", [Challenge("basic", {})]),
        ("Basic, Bearer realm=x", [Challenge("basic", {}), Challenge("bearer", {"realm": "x"})]),
        ("Negotiate abc123==", [Challenge("negotiate", {"": "abc123=="})]),
        ('Bearer realm="unterminated', [Challenge("bearer", {"realm": "unterminated"})]),
        ("", []),
        (" , ,", []),
    ],
    ids=[
        "docker-hub",
        "basic",
        "two-challenges-comma-in-quotes",
        "case-spaces-escapes-token-value",
        "scheme-only",
        "scheme-only-then-another",
        "token68",
        "unterminated-quote",
        "empty",
        "only-commas",
    ],
)
def test_parse_challenges_table(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_parse_challenges_several_header_values_keep_order() -> None:
    parsed = parse_challenges(['Basic realm="r"', 'Bearer realm="https://t/token",service="s"'])
    assert [c.scheme for c in parsed] == ["basic", "bearer"]
    bearer = find_challenge(parsed, "bearer")
    assert bearer is not None
    assert (bearer.realm, bearer.service, bearer.scope) == ("https://t/token", "s", None)
    assert find_challenge(parsed, "digest") is None


@given(st.text(max_size=80))
def test_parse_challenges_never_raises(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme


param_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
param_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@pytest.mark.slow
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Basic", "Bearer", "Custom"]),
            st.dictionaries(param_names, param_values, min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_parse_challenges_round_trip(challenges: list[tuple[str, dict[str, str]]]) -> None:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = ", ".join(
        scheme + " " + ", ".join(f"{k}={quote(v)}" for k, v in params.items())
        for scheme, params in challenges
    )
    parsed = parse_challenges(header)
    assert [(c.scheme, dict(c.params)) for c in parsed] == [
        (scheme.lower(), params) for scheme, params in challenges
    ]


# -- credentials -----------------------------------------------------------------------------


def test_basic_header_rfc7617_example() -> None:
    assert basic_header("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (b64url({}), None),
        (b64url(None), None),
        (b64url({"username": "", "password": "", "serveraddress": "localhost:5000"}), None),
        (
            b64url({"username": "u", "password": "p", "serveraddress": "localhost:5000"}),
            Credentials("u", "p", "localhost:5000"),
        ),
        (
            b64url({"username": "u", "password": "pä?"}, pad=False),
            Credentials("u", "pä?"),
        ),
        (
            base64.b64encode(json.dumps({"username": "u>?", "password": "~~~"}).encode()).decode(),
            Credentials("u>?", "~~~"),
        ),
        (b64url({"IdentityToken": "refresh", "Email": 1}), Credentials(identitytoken="refresh")),
        (b64url({"registrytoken": "tok"}), Credentials(registrytoken="tok")),
        (
            b64url({"auth": base64.b64encode(b"user:pa:ss").decode(), "email": "x@y"}),
            Credentials("user", "pa:ss"),
        ),
        (b64url({"username": "u", "password": None}), Credentials("u")),
    ],
    ids=[
        "missing",
        "empty",
        "blank",
        "empty-object",
        "null",
        "all-empty",
        "full",
        "unpadded-utf8",
        "standard-alphabet",
        "go-case-insensitive-keys",
        "registry-token",
        "auth-field",
        "null-field",
    ],
)
def test_decode_registry_auth_table(header: str | None, expected: Credentials | None) -> None:
    assert decode_registry_auth(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"not json").decode(),
        b64url([1, 2]),
        b64url("string"),
        b64url({"username": 5}),
        b64url({"auth": "!!!"}),
        b64url({"auth": base64.b64encode(b"nocolon").decode()}),
        "a",
    ],
    ids=[
        "bad-chars",
        "not-json",
        "list",
        "string",
        "number-username",
        "bad-auth",
        "auth-no-colon",
        "one-char",
    ],
)
def test_decode_registry_auth_garbage_invalid_argument(header: str) -> None:
    with pytest.raises(InvalidArgument, match="failed to decode credentials"):
        decode_registry_auth(header)


@given(st.text(max_size=60))
def test_decode_registry_auth_never_raises_other_errors(header: str) -> None:
    with contextlib.suppress(InvalidArgument):
        decode_registry_auth(header)


@given(
    st.builds(
        Credentials,
        username=st.text(max_size=10),
        password=st.text(max_size=10),
        serveraddress=st.text(max_size=10),
        identitytoken=st.text(max_size=10),
        registrytoken=st.text(max_size=10),
    )
)
def test_encode_decode_registry_auth_round_trip(credentials: Credentials) -> None:
    decoded = decode_registry_auth(encode_registry_auth(credentials))
    if decoded is None:
        assert credentials == Credentials(serveraddress=credentials.serveraddress)
    else:
        assert decoded == credentials


def test_credentials_repr_hides_secrets() -> None:
    text = repr(Credentials("user", "hunter2", identitytoken="idtok", registrytoken="regtok"))
    assert "user" in text
    assert "hunter2" not in text
    assert "idtok" not in text
    assert "regtok" not in text


# -- token requests --------------------------------------------------------------------------

HUB = Challenge(
    "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"}
)


def test_scope_format() -> None:
    assert scope("library/busybox", ["pull"]) == "repository:library/busybox:pull"
    assert scope("a/b", ["pull", "push"]) == "repository:a/b:pull,push"
    assert CATALOG_SCOPE == "registry:catalog:*"


def test_token_request_anonymous_get() -> None:
    request = token_request(HUB, ["repository:library/busybox:pull"], None)
    assert request.method == "GET"
    assert request.headers == ()
    assert request.url == (
        "https://auth.docker.io/token?service=registry.docker.io"
        "&scope=repository%3Alibrary%2Fbusybox%3Apull"
    )


def test_token_request_basic_credentials_get_with_account() -> None:
    request = token_request(HUB, ["repository:a:pull", "repository:b:pull"], Credentials("u", "p"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
    assert query == {
        "service": ["registry.docker.io"],
        "scope": ["repository:a:pull", "repository:b:pull"],
        "account": ["u"],
    }
    assert request.headers == (("Authorization", basic_header("u", "p")),)


def test_token_request_realm_with_query_and_offline() -> None:
    challenge = Challenge("bearer", {"realm": "http://127.0.0.1:1/token?x=1"})
    request = token_request(challenge, [], Credentials("u", "p"), offline=True)
    assert request.url.startswith("http://127.0.0.1:1/token?x=1&")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
    assert query["offline_token"] == ["true"]
    assert query["client_id"] == ["berth"]


def test_token_request_identity_token_posts_refresh_grant() -> None:
    request = token_request(HUB, ["repository:a:pull"], Credentials(identitytoken="refresh-1"))
    assert request.method == "POST"
    assert request.url == "https://auth.docker.io/token"
    assert request.body is not None
    form = urllib.parse.parse_qs(request.body.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-1"],
        "client_id": ["berth"],
        "service": ["registry.docker.io"],
        "scope": ["repository:a:pull"],
    }
    assert "refresh-1" not in repr(request)


@pytest.mark.parametrize(
    "realm", ["", "ftp://x/token", "/token", "https://"], ids=["none", "ftp", "relative", "no-host"]
)
def test_token_request_bad_realm_invalid(realm: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid token realm"):
        token_request(Challenge("bearer", {"realm": realm} if realm else {}), [], None)


@pytest.mark.parametrize(
    ("body", "token", "expires", "refresh"),
    [
        (b'{"token": "t", "expires_in": 300}', "t", 300, None),
        (b'{"access_token": "a"}', "a", 60, None),
        (
            b'{"token": "t", "access_token": "a", "expires_in": 5, "refresh_token": "r"}',
            "t",
            60,
            "r",
        ),
        (b'{"token": "t", "expires_in": true}', "t", 60, None),
    ],
    ids=["token", "access-token-default-lifetime", "minimum-lifetime-refresh", "bool-expiry"],
)
def test_parse_token_response(body: bytes, token: str, expires: int, refresh: str | None) -> None:
    parsed = parse_token_response(body)
    assert (parsed.token, parsed.expires_in, parsed.refresh_token) == (token, expires, refresh)
    assert token not in repr(parsed)


@pytest.mark.parametrize("body", [b"", b"[]", b"{}", b'{"token": 1}', b'{"token": ""}'])
def test_parse_token_response_without_token_invalid(body: bytes) -> None:
    with pytest.raises(InvalidArgument, match="invalid token response"):
        parse_token_response(body)


def test_token_request_refresh_grant_minimal_and_offline() -> None:
    challenge = Challenge("bearer", {"realm": "https://t/token"})
    request = token_request(challenge, [], Credentials(identitytoken="r"), offline=True)
    assert request.body is not None
    form = urllib.parse.parse_qs(request.body.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["r"],
        "client_id": ["berth"],
        "access_type": ["offline"],
    }


def test_token_request_nothing_to_ask_is_bare_realm() -> None:
    request = token_request(Challenge("bearer", {"realm": "https://t/token"}), [], None)
    assert request.url == "https://t/token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="r",service="s",scope="repository:a:pull,push",error="insufficient_scope"',
            ChallengeError("denied", "requested access to the resource is denied"),
        ),
        (
            'Bearer realm="r",error="invalid_token",error_description="token expired"',
            ChallengeError("unauthorized", "token expired"),
        ),
        ('Bearer realm="r",error="invalid_request"', None),
        ('Bearer realm="r",service="s"', None),
        ('Basic realm="r",error="insufficient_scope"', None),
        (
            'Basic realm="b", Bearer realm="r",error="insufficient_scope"',
            ChallengeError("denied", "requested access to the resource is denied"),
        ),
    ],
    ids=[
        "insufficient-scope",
        "invalid-token-described",
        "other-error",
        "no-error",
        "basic",
        "second-challenge",
    ],
)
def test_challenge_error_table(header: str, expected: ChallengeError | None) -> None:
    assert challenge_error(parse_challenges(header)) == expected


def test_challenge_error_renders_as_docker() -> None:
    refusal = ChallengeError("denied", "requested access to the resource is denied")
    assert refusal.denied
    assert str(refusal) == "denied: requested access to the resource is denied"
