"""HTTP plumbing of ``cli.client``: query encoding, host resolution, response parsing.

Responses are read from real socket pairs: one end is the client's, the test
writes the daemon's bytes into the other.
"""

from __future__ import annotations

import socket

import pytest

from cli.client import (
    DEFAULT_HOST,
    ClientError,
    DaemonError,
    ProtocolError,
    Response,
    check,
    checked,
    encode_query,
    error_message,
    quote,
    resolve_host,
    socket_path,
)


def response_from(raw: bytes, method: str = "GET") -> Response:
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    return Response(ours, method)


def test_resolve_host_precedence() -> None:
    assert (
        resolve_host("unix:///flag.sock", {"BERTH_HOST": "unix:///env.sock"}) == "unix:///flag.sock"
    )
    assert (
        resolve_host(None, {"BERTH_HOST": "unix:///env.sock", "DOCKER_HOST": "unix:///d"})
        == "unix:///env.sock"
    )
    assert resolve_host(None, {"DOCKER_HOST": "unix:///d.sock"}) == "unix:///d.sock"
    assert resolve_host(None, {"DOCKER_HOST": "tcp://1.2.3.4:2375"}) == DEFAULT_HOST
    assert resolve_host(None, {}) == "unix:///run/berth/berth.sock"


def test_socket_path_only_unix() -> None:
    assert socket_path("unix:///run/berth/berth.sock") == "/run/berth/berth.sock"
    with pytest.raises(ClientError, match="only supports unix"):
        socket_path("tcp://localhost:2375")


def test_encode_query_skips_none_repeats_lists_and_escapes() -> None:
    query = encode_query(
        {
            "all": 1,
            "limit": None,
            "filters": '{"a":["b c"]}',
            "changes": ["CMD sh", "ENV A=1"],
            "x": True,
        }
    )
    assert (
        query
        == "?all=1&filters=%7B%22a%22%3A%5B%22b%20c%22%5D%7D&changes=CMD%20sh&changes=ENV%20A%3D1&x=1"
    )
    assert encode_query({}) == ""
    assert quote("library/busybox:latest", safe="/:@") == "library/busybox:latest"
    assert quote("caf\u00e9") == "caf%C3%A9"


def test_error_message_prefers_json_message() -> None:
    assert error_message(404, b'{"message": "No such container: x"}') == "No such container: x"
    assert error_message(500, b"plain text\n") == "plain text"
    assert error_message(502, b"") == "HTTP 502"


def test_content_length_body() -> None:
    with response_from(
        b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Extra: 1\r\n\r\n{"a": [1]} trailing'
    ) as r:
        assert r.json() == {"a": [1]}
        assert r.headers["x-extra"] == "1"


def test_chunked_body_with_extension_and_trailer() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: z\r\n\r\n"
    with response_from(raw) as r:
        assert r.read() == b"abcdefg"


def test_close_delimited_body_and_no_body_statuses() -> None:
    with response_from(b"HTTP/1.0 200 OK\r\n\r\nuntil close") as r:
        assert r.read() == b"until close"
    with response_from(b"HTTP/1.1 304 Not Modified\r\n\r\n") as r:
        assert r.read() == b""


def test_hijacked_101_keeps_bytes_after_the_blank_line() -> None:
    raw = b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x02hi"
    with response_from(raw, "POST") as r:
        r.read_head()
        assert r.status == 101
        assert r.read() == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"


def test_json_stream_values_split_anywhere() -> None:
    body = b'{"status":"a"}\n{"status":\n"sha256:abc"}{"x":1}'
    chunks = b"".join(f"{1:x}\r\n".encode() + body[i : i + 1] + b"\r\n" for i in range(len(body)))
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    with response_from(raw) as r:
        assert list(r.iter_json()) == [{"status": "a"}, {"status": "sha256:abc"}, {"x": 1}]


def test_check_raises_daemon_error_with_message() -> None:
    raw = b'HTTP/1.1 409 Conflict\r\nContent-Length: 27\r\n\r\n{"message": "name in use"} '
    with response_from(raw) as r, pytest.raises(DaemonError) as info:
        check(r)
    assert info.value.status == 409
    assert str(info.value) == "Error response from daemon: name in use"


def test_checked_returns_the_open_response_on_success() -> None:
    r = response_from(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    with checked(r) as same:
        assert same is r
        assert same.json() == {}


def test_checked_closes_the_response_on_error() -> None:
    r = response_from(b'HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\n{"message": "no"}')
    with pytest.raises(DaemonError):
        checked(r)
    assert r.sock.fileno() == -1


@pytest.mark.parametrize(
    "raw",
    [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", b"HTTP/1.1 200 OK\r\n", b""],
    ids=["status", "header", "truncated-head", "empty"],
)
def test_malformed_answers_raise_protocol_error(raw: bytes) -> None:
    with response_from(raw) as r, pytest.raises(ProtocolError):
        r.read_head()


def test_truncated_bodies_raise_protocol_error() -> None:
    with (
        response_from(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") as r,
        pytest.raises(ProtocolError),
    ):
        r.read()
    with (
        response_from(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab") as r,
        pytest.raises(ProtocolError),
    ):
        r.read()
