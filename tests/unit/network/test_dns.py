"""Tests for supervisor.network.dns: the sans-IO DNS codec and decisions."""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from supervisor.network import dns
from supervisor.network.dns import (
    AA,
    CD,
    CLASS_CH,
    CLASS_IN,
    QR,
    RA,
    RD,
    TC,
    DnsFormatError,
    Edns,
    FrameBuffer,
    Header,
    Opcode,
    Query,
    Rcode,
    RType,
    Verdict,
    build_answer,
    build_empty_reply,
    build_query,
    formerr_response,
    frame,
    judge_upstream_answer,
    name_labels,
    name_text,
    name_to_wire,
    parse_message,
    parse_query,
    parse_upstream,
    respond,
    unreachable_response,
    upstreams_from_resolv_conf,
)

IP = IPv4Address


def header(
    qid: int = 0x1234, flags: int = RD, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name: bytes = b"\x03web\x00", qtype: int = 1, qclass: int = 1) -> bytes:
    return name + struct.pack("!HH", qtype, qclass)


def opt(udp_size: int = 4096, ttl: int = 0, owner: bytes = b"\x00", rdata: bytes = b"") -> bytes:
    return owner + struct.pack("!HHIH", 41, udp_size, ttl, len(rdata)) + rdata


def a_record(owner: bytes, address: str, ttl: int = 60) -> bytes:
    return owner + struct.pack("!HHIH", 1, 1, ttl, 4) + IP(address).packed


def query(
    name: str = "web",
    qtype: int = RType.A,
    *,
    qclass: int = CLASS_IN,
    edns_udp_size: int | None = None,
) -> Query:
    data = build_query(name, qtype, query_id=0x1234, qclass=qclass, edns_udp_size=edns_udp_size)
    return parse_query(data)


def flags_of(message: bytes) -> int:
    return int(struct.unpack_from("!H", message, 2)[0])


def parse_error(data: bytes) -> DnsFormatError:
    with pytest.raises(DnsFormatError) as exc:
        parse_query(data)
    return exc.value


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("web", [b"web"]),
        ("web.", [b"web"]),
        ("Web.Example.COM", [b"Web", b"Example", b"COM"]),
        ("", []),
        (".", []),
        (r"a\.b", [b"a.b"]),
        ("a\\\\b", [b"a\\b"]),
        (r"\000x", [b"\x00x"]),
        (r"\065\.", [b"A."]),
        (r"a\.", [b"a."]),  # an escaped dot is not the trailing dot
        (r"\q", [b"q"]),
        ("a" * 63, [b"a" * 63]),
    ],
    ids=repr,
)
def test_name_labels_parses_presentation_form(name: str, labels: list[bytes]) -> None:
    assert name_labels(name) == labels


@pytest.mark.parametrize(
    "name",
    ["a..b", ".a", "a\\", r"\256", "caf\u00e9", "a" * 64, ".".join(["a" * 63] * 4), "..", "a.."],
    ids=repr,
)
def test_name_labels_invalid_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        name_labels(name)


def test_name_labels_longest_name_is_accepted() -> None:
    name = ".".join(["a" * 63] * 3 + ["b" * 61])  # 3*64 + 62 + 1 = 255 octets
    assert len(name_to_wire(name_labels(name))) == 255


@pytest.mark.parametrize(
    ("labels", "text"),
    [
        ([b"Web", b"EXAMPLE"], "web.example"),
        ([b"a.b"], r"a\.b"),
        ([b"a\\b"], "a\\\\b"),
        ([b"\x00\x7f\xff"], r"\000\127\255"),
        ([b"a b"], r"a\032b"),
        ([b"_srv-x~!"], "_srv-x~!"),
        ([], ""),
    ],
    ids=repr,
)
def test_name_text_lowercases_and_escapes(labels: list[bytes], text: str) -> None:
    assert name_text(labels) == text


names = st.lists(st.binary(min_size=1, max_size=63), max_size=6).filter(
    lambda labels: sum(len(label) + 1 for label in labels) + 1 <= 255
)


@given(names)
def test_name_text_round_trips_to_lowercased_labels(labels: list[bytes]) -> None:
    assert name_labels(name_text(labels)) == [label.lower() for label in labels]
    assert name_labels(name_text(labels) + ".") == [label.lower() for label in labels]


# -- parse_query -----------------------------------------------------------------------


def test_parse_query_reads_header_and_question() -> None:
    q = parse_query(header(qid=0xBEEF) + question(b"\x03Web\x07Example\x00", qtype=28))
    assert q.id == 0xBEEF
    assert q.opcode == Opcode.QUERY
    assert q.header.recursion_desired
    assert q.question.name == "web.example"
    assert q.question.qtype == RType.AAAA
    assert q.question.qclass == CLASS_IN
    assert q.question.wire_name == b"\x03Web\x07Example\x00"  # the client's spelling
    assert q.question.label_count == 2
    assert q.edns is None


def test_parse_query_root_name() -> None:
    q = parse_query(header() + question(b"\x00", qtype=2))
    assert q.question.name == ""
    assert q.question.label_count == 0


def test_parse_query_follows_pointer_into_header() -> None:
    # The id's octets spell the label "a" and the flags (0) end the name: a pointer to
    # offset 0 is a legal backward pointer, however odd.
    data = struct.pack("!HHHHHH", 0x0161, 0, 1, 0, 0, 0) + question(b"\xc0\x00")
    assert parse_query(data).question.name == "a"


def test_parse_message_follows_pointer_chains() -> None:
    # question "www.example.com"; answer 1 "mail" + ptr to "example.com"; answer 2
    # "x" + ptr to answer 1's name (a chain of two pointers).
    q = question(b"\x03www\x07example\x03com\x00")
    first = a_record(b"\x04mail\xc0\x10", "10.0.0.1")
    second_offset = 12 + len(q)
    second = a_record(b"\x01x" + struct.pack("!H", 0xC000 | second_offset), "10.0.0.2")
    message = parse_message(header(flags=QR, an=2) + q + first + second)
    assert [r.name for r in message.answers] == ["mail.example.com", "x.mail.example.com"]
    assert [r.rdata for r in message.answers] == [IP("10.0.0.1").packed, IP("10.0.0.2").packed]
    assert message.answers[0].ttl == 60


@pytest.mark.parametrize(
    "name",
    [
        b"\xc0\x0c",  # points at itself
        b"\x01a\xc0\x0c",  # points at its own start
        b"\xc0\x0e\x00",  # points forward
        b"\x01a\xc0\x0e",  # points at its own pointer
    ],
    ids=["self", "own-start", "forward", "own-pointer"],
)
def test_parse_query_pointer_loop_raises_with_header(name: bytes) -> None:
    err = parse_error(header() + question(name))
    assert err.header_readable
    assert "does not point back" in str(err)


def test_parse_message_mutual_pointers_raise() -> None:
    # Answer name at A points to B (after it), B points to A: any order fails.
    q = question()
    a = 12 + len(q)
    b = a + 12
    first = struct.pack("!H", 0xC000 | b) + struct.pack("!HHIH", 1, 1, 0, 0)
    second = struct.pack("!H", 0xC000 | a) + struct.pack("!HHIH", 1, 1, 0, 0)
    with pytest.raises(DnsFormatError, match="does not point back"):
        parse_message(header(flags=QR, an=2) + q + first + second)


@pytest.mark.parametrize("prefix", [0x40, 0x80], ids=["0b01", "0b10"])
def test_parse_query_extended_label_types_raise(prefix: int) -> None:
    err = parse_error(header() + question(bytes([prefix | 1]) + b"a\x00"))
    assert "label type" in str(err)


def test_parse_query_name_longer_than_255_raises() -> None:
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"  # 257 octets
    assert "longer than 255" in str(parse_error(header() + question(long_name)))


def test_parse_message_name_over_limit_through_pointer_raises() -> None:
    q = question(b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x00")  # 193 octets
    long_owner = b"\x3f" + b"b" * 63 + b"\xc0\x0c"  # 64 + 193 = 257 octets
    with pytest.raises(DnsFormatError, match="longer than 255"):
        parse_message(header(flags=QR, an=1) + q + a_record(long_owner, "10.0.0.1"))
    fits = b"\x3d" + b"b" * 61 + b"\xc0\x0c"  # 62 + 193 = 255: the limit itself
    message = parse_message(header(flags=QR, an=1) + q + a_record(fits, "10.0.0.1"))
    assert message.answers[0].name.startswith("b" * 61 + ".")


def test_parse_query_every_truncation_raises_format_error() -> None:
    data = build_query("web.example", query_id=7, edns_udp_size=1232)
    for end in range(len(data)):
        err = parse_error(data[:end])
        assert err.header_readable == (end >= 12), end
        if end >= 12:
            assert err.header == Header(7, RD, 1, 0, 0, 1)


def test_parse_query_short_message_has_no_header() -> None:
    err = parse_error(b"\x12\x34\x01")
    assert err.header is None
    assert not err.header_readable
    assert formerr_response(err) is None


@pytest.mark.parametrize("qd", [0, 2])
def test_parse_query_not_one_question_answers_formerr(qd: int) -> None:
    err = parse_error(header(qd=qd) + question() * qd)
    assert "expected exactly one" in str(err)
    reply = formerr_response(err)
    assert reply == struct.pack("!HHHHHH", 0x1234, QR | RD | RA | Rcode.FORMERR, 0, 0, 0, 0)


def test_parse_query_response_is_dropped() -> None:
    err = parse_error(header(flags=QR) + question())
    assert err.header_readable
    assert formerr_response(err) is None  # never answer an answer


def test_formerr_response_keeps_opcode_and_rd() -> None:
    err = parse_error(header(flags=(Opcode.NOTIFY << 11), qd=0))
    reply = formerr_response(err)
    assert reply is not None
    assert flags_of(reply) == QR | RA | (Opcode.NOTIFY << 11) | Rcode.FORMERR


def test_parse_query_reads_edns() -> None:
    q = parse_query(header(ar=1) + question() + opt(4096, ttl=0x8000))
    assert q.edns == Edns(udp_size=4096, version=0, dnssec_ok=True)
    q = parse_query(
        header(ar=1) + question() + opt(1400, ttl=0x0002_0000, rdata=b"\x00\x0a\x00\x00")
    )
    assert q.edns == Edns(udp_size=1400, version=2, dnssec_ok=False)


def test_parse_query_two_opt_records_raise() -> None:
    err = parse_error(header(ar=2) + question() + opt() + opt())
    assert "more than one OPT" in str(err)
    assert formerr_response(err) is not None


def test_parse_query_opt_not_at_root_raises() -> None:
    assert "root" in str(parse_error(header(ar=1) + question() + opt(owner=b"\x01x\x00")))


def test_parse_query_tolerates_other_sections_and_trailing_bytes() -> None:
    data = (
        header(an=1, ns=1, ar=2)
        + question()
        + a_record(b"\xc0\x0c", "10.0.0.1")
        + a_record(b"\x00", "10.0.0.2")
        + a_record(b"\x01x\x00", "10.0.0.3")
        + opt(512)
        + b"trailing garbage"
    )
    q = parse_query(data)
    assert q.question.name == "web"
    assert q.edns == Edns(512)


def test_parse_query_record_data_past_end_raises() -> None:
    truncated_rdata = b"\x00" + struct.pack("!HHIH", 1, 1, 0, 10) + b"abc"
    assert "record data" in str(parse_error(header(ar=1) + question() + truncated_rdata))


@pytest.mark.parametrize(
    ("udp_size", "limit"),
    [(None, 512), (4096, 1232), (100, 512), (1000, 1000), (65535, 1232)],
)
def test_query_max_udp_size(udp_size: int | None, limit: int) -> None:
    assert query(edns_udp_size=udp_size).max_udp_size == limit


# -- build_query -----------------------------------------------------------------------


def test_build_query_golden_bytes() -> None:
    assert build_query("Web.", query_id=0x0102) == (
        b"\x01\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03Web\x00\x00\x01\x00\x01"
    )
    data = build_query("a", RType.AAAA, query_id=1, recursion_desired=False, edns_udp_size=1232)
    assert data == header(qid=1, flags=0, ar=1) + question(b"\x01a\x00", 28) + opt(1232)


@given(
    qid=st.integers(0, 0xFFFF),
    labels=names,
    qtype=st.integers(0, 0xFFFF),
    qclass=st.integers(0, 0xFFFF),
    rd=st.booleans(),
    udp_size=st.none() | st.integers(0, 0xFFFF),
)
def test_build_query_parse_query_round_trip(
    qid: int, labels: list[bytes], qtype: int, qclass: int, rd: bool, udp_size: int | None
) -> None:
    name = name_text(labels)
    data = build_query(
        name,
        qtype,
        query_id=qid,
        qclass=qclass,
        recursion_desired=rd,
        edns_udp_size=udp_size,
    )
    q = parse_query(data)
    assert (q.id, q.header.recursion_desired) == (qid, rd)
    assert (q.question.name, q.question.qtype, q.question.qclass) == (name, qtype, qclass)
    assert q.question.label_count == len(labels)
    assert q.edns == (None if udp_size is None else Edns(udp_size))


# -- building answers ------------------------------------------------------------------


def test_build_answer_golden_bytes() -> None:
    q = parse_query(header(qid=0xABCD) + question(b"\x03Web\x00"))
    reply = build_answer(q, [IP("10.89.1.2"), IP("10.89.1.3")], ttl=600)
    assert reply == (
        struct.pack("!HHHHHH", 0xABCD, QR | AA | RD | RA, 1, 2, 0, 0)
        + question(b"\x03Web\x00")
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x02\x58\x00\x04\x0a\x59\x01\x02"
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x02\x58\x00\x04\x0a\x59\x01\x03"
    )


def test_build_answer_parses_back_with_default_ttl() -> None:
    q = query("db.Local.")
    message = parse_message(build_answer(q, [IP("10.0.0.5")]))
    assert message.header.rcode == Rcode.NOERROR
    assert [(r.name, r.rtype, r.rclass, r.ttl, r.rdata) for r in message.answers] == [
        ("db.local", RType.A, CLASS_IN, dns.DEFAULT_TTL, IP("10.0.0.5").packed)
    ]


def test_build_answer_without_rd_and_with_cd() -> None:
    q = parse_query(header(flags=CD) + question())
    assert flags_of(build_answer(q, [])) == QR | AA | RA | CD


def test_build_answer_truncates_to_max_size_and_sets_tc() -> None:
    addresses = [IP(f"10.0.{i // 256}.{i % 256}") for i in range(100)]
    q = query("web")
    reply = build_answer(q, addresses, max_size=512)
    assert len(reply) <= 512
    message = parse_message(reply)
    assert message.header.truncated
    assert len(message.answers) == (512 - 12 - 8) // 16
    assert [r.rdata for r in message.answers] == [a.packed for a in addresses[:30]]
    full = parse_message(build_answer(q, addresses, max_size=dns.MAX_MESSAGE_SIZE))
    assert not full.header.truncated
    assert len(full.answers) == 100


def test_build_answer_too_small_for_any_record_keeps_question() -> None:
    message = parse_message(build_answer(query("web"), [IP("10.0.0.1")], max_size=12))
    assert message.header.truncated
    assert message.answers == ()
    assert message.questions[0].name == "web"


def test_build_answer_with_edns_adds_opt_and_copies_do() -> None:
    q = parse_query(header(ar=1) + question() + opt(4096, ttl=0x8000))
    reply = build_answer(q, [IP("10.0.0.1")])
    message = parse_message(reply)
    (record,) = message.additional
    assert (record.name, record.rtype, record.rclass, record.ttl) == ("", RType.OPT, 1232, 0x8000)
    assert reply.endswith(opt(1232, ttl=0x8000))


@pytest.mark.parametrize("ttl", [-1, 2**31])
def test_build_answer_ttl_out_of_range_raises(ttl: int) -> None:
    with pytest.raises(ValueError, match="TTL"):
        build_answer(query(), [], ttl=ttl)


@pytest.mark.parametrize(
    "rcode", [Rcode.NOERROR, Rcode.SERVFAIL, Rcode.NXDOMAIN, Rcode.NOTIMP, Rcode.REFUSED]
)
def test_build_empty_reply_echoes_question_with_rcode(rcode: Rcode) -> None:
    q = parse_query(header(qid=9) + question(b"\x02Db\x00", qtype=28))
    reply = build_empty_reply(q, rcode)
    assert reply == struct.pack("!HHHHHH", 9, QR | RD | RA | rcode, 1, 0, 0, 0) + question(
        b"\x02Db\x00", qtype=28
    )


def test_build_empty_reply_authoritative_sets_aa() -> None:
    assert flags_of(build_empty_reply(query(), Rcode.NOERROR, authoritative=True)) & AA


def test_build_empty_reply_badvers_needs_edns() -> None:
    with pytest.raises(ValueError, match="OPT"):
        build_empty_reply(query(), Rcode.BADVERS)
    reply = build_empty_reply(query(edns_udp_size=512), Rcode.BADVERS)
    message = parse_message(reply)
    assert message.header.rcode == 0  # the low four bits of 16
    assert message.additional[0].ttl >> 24 == 1  # the high eight bits


# -- respond ---------------------------------------------------------------------------


class FakeNames:
    """A lookup table that records the names it was asked."""

    def __init__(self, names: dict[str, list[IPv4Address]]) -> None:
        self.names = names
        self.asked: list[str] = []

    def __call__(self, name: str) -> Sequence[IPv4Address] | None:
        self.asked.append(name)
        return self.names.get(name)


NAMES = {"web": [IP("10.89.1.2")], "db": [IP("10.89.1.3"), IP("10.89.1.4")], "empty": []}


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "answers"),
    [
        ("web", RType.A, Rcode.NOERROR, ["10.89.1.2"]),
        ("WEB.", RType.A, Rcode.NOERROR, ["10.89.1.2"]),
        ("db", RType.A, Rcode.NOERROR, ["10.89.1.3", "10.89.1.4"]),
        ("web", RType.AAAA, Rcode.NOERROR, []),
        ("web", RType.ANY, Rcode.NOERROR, []),
        ("web", RType.MX, Rcode.NOERROR, []),
        ("empty", RType.A, Rcode.NOERROR, []),
    ],
    ids=["a", "case-and-dot", "two", "aaaa", "any", "mx", "no-address"],
)
def test_respond_known_name(name: str, qtype: int, rcode: Rcode, answers: list[str]) -> None:
    lookup = FakeNames(NAMES)
    reply = respond(query(name, qtype), lookup, max_size=512)
    assert reply is not None
    message = parse_message(reply)
    assert message.header.rcode == rcode
    assert message.header.flags & AA
    assert [IPv4Address(r.rdata) for r in message.answers] == [IP(a) for a in answers]
    assert lookup.asked == [name.lower().rstrip(".")]


@pytest.mark.parametrize("qtype", [RType.A, RType.AAAA, RType.PTR])
def test_respond_unknown_name_forwards(qtype: int) -> None:
    assert respond(query("example.com", qtype), FakeNames(NAMES), max_size=512) is None


def test_respond_other_class_forwards_without_lookup() -> None:
    lookup = FakeNames(NAMES)
    assert respond(query("web", RType.TXT, qclass=CLASS_CH), lookup, max_size=512) is None
    assert lookup.asked == []


@pytest.mark.parametrize("opcode", [Opcode.IQUERY, Opcode.STATUS, Opcode.NOTIFY, Opcode.UPDATE])
def test_respond_other_opcodes_notimp(opcode: Opcode) -> None:
    lookup = FakeNames(NAMES)
    q = parse_query(header(flags=opcode << 11) + question())
    reply = respond(q, lookup, max_size=512)
    assert reply is not None
    assert flags_of(reply) == QR | RA | (opcode << 11) | Rcode.NOTIMP
    assert lookup.asked == []


def test_respond_edns_version_above_zero_badvers() -> None:
    q = parse_query(header(ar=1) + question() + opt(1232, ttl=0x0001_0000))
    reply = respond(q, FakeNames(NAMES), max_size=512)
    assert reply is not None
    assert parse_message(reply).additional[0].ttl >> 24 == 1


def test_respond_answer_limited_by_max_size() -> None:
    many = {"web": [IP(f"10.1.0.{i}") for i in range(1, 101)]}
    reply = respond(query("web"), FakeNames(many), max_size=512)
    assert reply is not None
    assert parse_message(reply).header.truncated


@pytest.mark.parametrize(
    ("name", "had_upstreams", "rcode"),
    [
        ("web", False, Rcode.NXDOMAIN),
        ("web.example", False, Rcode.SERVFAIL),
        ("", False, Rcode.SERVFAIL),
        ("web", True, Rcode.SERVFAIL),
        ("web.example", True, Rcode.SERVFAIL),
    ],
)
def test_unreachable_response(name: str, had_upstreams: bool, rcode: Rcode) -> None:
    reply = unreachable_response(query(name), had_upstreams=had_upstreams)
    message = parse_message(reply)
    assert message.header.rcode == rcode
    assert message.questions[0].name == name


# -- judge_upstream_answer -------------------------------------------------------------


def upstream_reply(
    *,
    qid: int = 0x1234,
    flags: int = QR | RD | RA,
    qname: bytes = b"\x07Example\x03com\x00",
    qtype: int = 1,
    questions: int = 1,
) -> bytes:
    body = question(qname, qtype) * questions
    return (
        header(qid=qid, flags=flags, qd=questions, an=1) + body + a_record(b"\xc0\x0c", "1.2.3.4")
    )


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (upstream_reply(), Verdict.ACCEPT),
        (upstream_reply(qname=b"\x07EXAMPLE\x03COM\x00"), Verdict.ACCEPT),
        (upstream_reply(flags=QR | Rcode.NXDOMAIN), Verdict.ACCEPT),
        (upstream_reply(flags=QR | TC), Verdict.TRUNCATED),
        (upstream_reply(flags=QR | Rcode.SERVFAIL), Verdict.TRY_NEXT),
        (upstream_reply(flags=QR | Rcode.REFUSED), Verdict.TRY_NEXT),
        (upstream_reply(flags=QR | Rcode.NOTIMP), Verdict.TRY_NEXT),
        (header(flags=QR | Rcode.FORMERR, qd=0), Verdict.ACCEPT),
        (header(flags=QR | Rcode.REFUSED, qd=0), Verdict.TRY_NEXT),
        (header(flags=QR, qd=0), Verdict.FOREIGN),
        (upstream_reply(qid=0x4321), Verdict.FOREIGN),
        (upstream_reply(flags=RD), Verdict.FOREIGN),
        (upstream_reply(qname=b"\x05other\x03com\x00"), Verdict.FOREIGN),
        (upstream_reply(qtype=28), Verdict.FOREIGN),
        (upstream_reply(questions=2), Verdict.FOREIGN),
        (b"\x12\x34\x80", Verdict.FOREIGN),
        (header(flags=QR) + b"\x07exam", Verdict.FOREIGN),
    ],
    ids=[
        "answer",
        "case",
        "nxdomain",
        "truncated",
        "servfail",
        "refused",
        "notimp",
        "formerr-no-question",
        "refused-no-question",
        "noerror-no-question",
        "other-id",
        "not-response",
        "other-name",
        "other-type",
        "two-questions",
        "short",
        "cut-question",
    ],
)
def test_judge_upstream_answer(reply: bytes, verdict: Verdict) -> None:
    assert judge_upstream_answer(query("example.com"), reply) is verdict


def test_judge_upstream_answer_ignores_malformed_records() -> None:
    # Only the header and question are checked; the rest is relayed as received.
    reply = header(flags=QR | RD | RA, an=5) + question(b"\x03web\x00") + b"\xff"
    assert judge_upstream_answer(query("web"), reply) is Verdict.ACCEPT


# -- TCP framing -----------------------------------------------------------------------


def test_frame_prefixes_length() -> None:
    assert frame(b"abc") == b"\x00\x03abc"
    assert frame(b"") == b"\x00\x00"
    with pytest.raises(ValueError, match="too long"):
        frame(b"x" * 65536)


def test_frame_buffer_waits_for_complete_messages() -> None:
    frames = FrameBuffer()
    assert frames.next_message() is None
    frames.feed(b"\x00")
    assert frames.next_message() is None
    frames.feed(b"\x03ab")
    assert frames.next_message() is None
    assert frames.buffered == 4
    frames.feed(bytearray(b"c\x00\x00\x00\x01"))
    assert frames.next_message() == b"abc"
    assert frames.next_message() == b""
    assert frames.next_message() is None
    frames.feed(memoryview(b"z"))
    assert frames.next_message() == b"z"
    assert frames.buffered == 0


@given(
    messages=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=10),
)
def test_frame_buffer_any_split_gives_the_messages_back(
    messages: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frame(m) for m in messages)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    frames = FrameBuffer()
    received = []
    for start, end in itertools.pairwise(bounds):
        frames.feed(stream[start:end])
        while (message := frames.next_message()) is not None:
            received.append(message)
    assert received == messages
    assert frames.buffered == 0


# -- upstreams -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1.1.1", ("1.1.1.1", 53)),
        (" 9.9.9.9 ", ("9.9.9.9", 53)),
        ("127.0.0.2:5353", ("127.0.0.2", 5353)),
        ("::1", ("::1", 53)),
        ("2001:DB8::0001", ("2001:db8::1", 53)),
        ("[::1]", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("fe80::1%eth0", ("fe80::1%eth0", 53)),
        ("[fe80::1%eth0]:54", ("fe80::1%eth0", 54)),
    ],
)
def test_parse_upstream(text: str, expected: tuple[str, int]) -> None:
    assert parse_upstream(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dns.google",
        "1.1.1.1:0",
        "1.1.1.1:65536",
        "1.1.1.1:abc",
        "1.1.1.1:",
        ":53",
        "[::1",
        "[::1]53",
        "[::1]:",
        "[1.1.1.1]:53:1",
        "1.1.1",
        "1.1.1.1:\u0665",
    ],
    ids=repr,
)
def test_parse_upstream_invalid_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="upstream"):
        parse_upstream(text)


RESOLV_CONF = """\
# Generated by NetworkManager
search example.com corp.example
nameserver 192.168.1.1
nameserver 2001:db8::53   # trailing words are ignored
;nameserver 10.0.0.1
#nameserver 10.0.0.2
nameserver
nameserver not-an-address
nameserver 192.168.1.1
 nameserver 127.0.0.53
nameserver\t8.8.8.8
nameservers 9.9.9.9
options edns0 trust-ad
nameserver fe80::1%enp1s0
"""


def test_upstreams_from_resolv_conf() -> None:
    assert upstreams_from_resolv_conf(RESOLV_CONF) == [
        "192.168.1.1",
        "2001:db8::53",
        "127.0.0.53",
        "8.8.8.8",
        "fe80::1%enp1s0",
    ]


@pytest.mark.parametrize("text", ["", "search x\n", "# nameserver 1.1.1.1\n", "\x00\xff garbage"])
def test_upstreams_from_resolv_conf_without_servers_is_empty(text: str) -> None:
    assert upstreams_from_resolv_conf(text) == []


@given(st.text())
def test_upstreams_from_resolv_conf_never_raises(text: str) -> None:
    for server in upstreams_from_resolv_conf(text):
        assert parse_upstream(server)[1] == 53


# -- robustness ------------------------------------------------------------------------


def _check_parsers(data: bytes) -> None:
    """Nothing but DnsFormatError escapes the parsers, and whatever parses as a query
    can be answered every way the server answers."""
    with contextlib.suppress(DnsFormatError):
        parse_message(data)
    judge_upstream_answer(query("web"), data)
    try:
        q = parse_query(data)
    except DnsFormatError as exc:
        reply = formerr_response(exc)
        if reply is not None:
            assert parse_message(reply).header.rcode == Rcode.FORMERR
        return
    for max_size in (dns.UDP_LIMIT, dns.MAX_MESSAGE_SIZE):
        reply = respond(q, lambda name: [IP("10.0.0.1")] * 40, max_size=max_size)
        if reply is None:  # only questions of other classes are forwarded
            assert (q.opcode, q.question.qclass != CLASS_IN) == (Opcode.QUERY, True)
            continue
        assert parse_message(reply).header.id == q.id
        if q.opcode == Opcode.QUERY and (q.edns is None or q.edns.version == 0):
            assert judge_upstream_answer(q, reply) in (Verdict.ACCEPT, Verdict.TRUNCATED)
    for had_upstreams in (True, False):
        reply = unreachable_response(q, had_upstreams=had_upstreams)
        assert parse_message(reply).header.id == q.id


@given(st.binary(max_size=600))
@example(b"")
@example(header() + b"\xc0\x0c")
def test_parsers_never_crash_on_arbitrary_bytes(data: bytes) -> None:
    _check_parsers(data)


sections = st.tuples(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
)


@given(head=sections, body=st.binary(max_size=300))
def test_parsers_never_crash_on_plausible_headers(
    head: tuple[int, int, int, int, int, int], body: bytes
) -> None:
    _check_parsers(struct.pack("!HHHHHH", *head) + body)


@given(
    labels=names,
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 400),
)
def test_parsers_never_crash_on_mutated_queries(
    labels: list[bytes], edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(build_query(name_text(labels), query_id=1, edns_udp_size=1232))
    for position, value in edits:
        if position < len(data):
            data[position] = value
    _check_parsers(bytes(data))
    _check_parsers(bytes(data[:cut]))


@given(
    labels=names,
    addresses=st.lists(st.integers(0, 2**32 - 1).map(IPv4Address), max_size=50),
    max_size=st.integers(12, 2000),
    udp_size=st.none() | st.integers(0, 0xFFFF),
)
def test_build_answer_parses_back_to_a_prefix_of_the_addresses(
    labels: list[bytes], addresses: list[IPv4Address], max_size: int, udp_size: int | None
) -> None:
    q = parse_query(build_query(name_text(labels), query_id=5, edns_udp_size=udp_size))
    reply = build_answer(q, addresses, max_size=max_size)
    message = parse_message(reply)
    got = [IPv4Address(r.rdata) for r in message.answers]
    assert got == addresses[: len(got)]
    assert message.header.truncated == (len(got) < len(addresses))
    assert {r.name for r in message.answers} <= {q.question.name}
    if got:
        assert len(reply) <= max_size
