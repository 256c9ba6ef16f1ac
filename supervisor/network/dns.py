"""DNS messages for the embedded resolver of user-defined networks: parse, decide, build.

Theory of operation: this module is sans-IO (h11's lesson). The resolver
(:mod:`supervisor.network.resolver`) receives bytes, calls :func:`parse_query`, asks
:func:`respond` whether the question is answered locally (a container name) or must be
forwarded, and sends the bytes this module builds. Every decision about DNS content is
taken here; the resolver only moves bytes and waits.

Parsing (RFC 1035 §4.1):

* :func:`parse_message` reads any message: header, questions and resource records (the
  RDATA is kept as bytes, never decoded). :func:`parse_query` adds a query's rules: QR
  clear, exactly one question, at most one EDNS OPT record (RFC 6891 §6.1.1).
* Names follow compression pointers (§4.1.4). A pointer must point strictly before the
  lowest offset read so far for this name, which is what every compressor produces
  (a pointer refers to a *prior* occurrence) and which makes loops impossible: the
  offsets decrease at each jump. Labels are at most 63 octets, names at most 255 in
  wire form (§2.3.4, counted after decompression); the label types 0b01 and 0b10 are
  refused.
* Every malformation raises :class:`DnsFormatError` and nothing else (a Hypothesis test
  holds the parsers to that). The error carries the header when it was readable: the
  server then answers FORMERR with the same id, else it drops the datagram. A message
  with QR set is never answered, so two servers cannot bounce errors at each other.
* Names are compared in presentation form (:attr:`Question.name`): ASCII lower-cased
  (RFC 4343), no trailing dot, with ``.``, ``\\`` and non-printable octets inside a label
  escaped as in zone files (``\\.``, ``\\\\``, ``\\DDD``), so no odd label can pass for a
  container name. The question is echoed as the client spelled it (``wire_name``):
  resolvers that randomise the case of their queries (0x20) check it.

Building: every response copies the id, the opcode, RD and CD, sets QR and RA, echoes
the question when there is one, and carries an OPT record when the query had one
(RFC 6891 §7). Answers point their owner name at the question (``0xC00C``); local
answers are authoritative (AA) and carry :data:`DEFAULT_TTL`. An answer that does not
fit the client's size (512 octets, or its EDNS size up to :data:`EDNS_UDP_SIZE`) keeps
the records that fit and sets TC, so the client retries over TCP (RFC 2181 §9).

Imports: standard library and attrs only (a PURE module): no trio, no socket.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Final

import attrs

HEADER: Final = struct.Struct("!HHHHHH")
_QUESTION_TAIL: Final = struct.Struct("!HH")
_RECORD_HEAD: Final = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_A_RECORD: Final = struct.Struct("!HHHIH4s")  # pointer, type, class, ttl, rdlength, address
_LENGTH: Final = struct.Struct("!H")

MAX_LABEL_LENGTH: Final = 63  # RFC 1035 §2.3.4
MAX_NAME_LENGTH: Final = 255  # octets in wire form, length octets and the root included
UDP_LIMIT: Final = 512  # RFC 1035 §4.2.1, for clients without EDNS
#: The UDP size berth's own answers use at most and advertise in OPT: the DNS flag day
#: 2020 value, which avoids IP fragmentation on any common path.
EDNS_UDP_SIZE: Final = 1232
MAX_MESSAGE_SIZE: Final = 65535  # the TCP length prefix's range
#: Docker's embedded DNS answers container names with a TTL of 600 s.
DEFAULT_TTL: Final = 600
DEFAULT_PORT: Final = 53

#: Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD).
QR: Final = 0x8000
AA: Final = 0x0400
TC: Final = 0x0200
RD: Final = 0x0100
RA: Final = 0x0080
AD: Final = 0x0020
CD: Final = 0x0010
_OPCODE_SHIFT: Final = 11
_OPCODE_MASK: Final = 0x7800
_RCODE_MASK: Final = 0x000F
_POINTER_TO_QUESTION: Final = 0xC000 | HEADER.size
_DNSSEC_OK: Final = 0x8000  # the DO bit in the OPT record's TTL field (RFC 3225)

CLASS_IN: Final = 1
CLASS_CH: Final = 3
CLASS_ANY: Final = 255


class Opcode(enum.IntEnum):
    QUERY = 0
    IQUERY = 1  # obsolete (RFC 3425)
    STATUS = 2
    NOTIFY = 4
    UPDATE = 5


class Rcode(enum.IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    BADVERS = 16  # extended: needs an OPT record (RFC 6891 §6.1.3)


class RType(enum.IntEnum):
    """The record types berth names; any other 16-bit type is parsed and forwarded."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33
    OPT = 41
    ANY = 255


class DnsFormatError(Exception):
    """A message that cannot be parsed, or a query berth refuses to read.

    Attributes:
        header: the header when the first 12 octets were readable (then the sender can
            be told FORMERR with the same id), else None (drop the datagram).
    """

    def __init__(self, message: str, *, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header

    @property
    def header_readable(self) -> bool:
        return self.header is not None


@attrs.frozen
class Header:
    id: int
    flags: int
    qdcount: int = 0
    ancount: int = 0
    nscount: int = 0
    arcount: int = 0

    @property
    def opcode(self) -> int:
        return (self.flags & _OPCODE_MASK) >> _OPCODE_SHIFT

    @property
    def rcode(self) -> int:
        """The header's 4-bit RCODE (an OPT record may extend it)."""
        return self.flags & _RCODE_MASK

    @property
    def is_response(self) -> bool:
        return bool(self.flags & QR)

    @property
    def recursion_desired(self) -> bool:
        return bool(self.flags & RD)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TC)


@attrs.frozen
class Question:
    name: str  # presentation form: lower-case, no trailing dot, "" for the root
    qtype: int
    qclass: int
    wire_name: bytes  # uncompressed, in the sender's case: what a response echoes

    @property
    def label_count(self) -> int:
        count = 0
        i = 0
        while self.wire_name[i]:
            count += 1
            i += self.wire_name[i] + 1
        return count

    def to_wire(self) -> bytes:
        return self.wire_name + _QUESTION_TAIL.pack(self.qtype, self.qclass)


@attrs.frozen
class Record:
    """A resource record; ``rdata`` is kept as sent (compressed names inside stay so)."""

    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes


@attrs.frozen
class Edns:
    """What a query's OPT record says (RFC 6891 §6.1.2-3)."""

    udp_size: int
    version: int = 0
    dnssec_ok: bool = False


@attrs.frozen
class Message:
    header: Header
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


@attrs.frozen
class Query:
    """A query berth will act on: exactly one question."""

    header: Header
    question: Question
    edns: Edns | None = None

    @property
    def id(self) -> int:
        return self.header.id

    @property
    def opcode(self) -> int:
        return self.header.opcode

    @property
    def max_udp_size(self) -> int:
        """The largest UDP answer this client takes from berth: 512 without EDNS, its
        advertised size (read as at least 512, RFC 6891 §6.2.5) up to EDNS_UDP_SIZE."""
        if self.edns is None:
            return UDP_LIMIT
        return max(UDP_LIMIT, min(self.edns.udp_size, EDNS_UDP_SIZE))


# -- names -----------------------------------------------------------------------------

#: Octets shown as themselves in a label's presentation form; the rest become \DDD.
_PRINTABLE: Final = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}


def _label_text(label: bytes) -> str:
    out = []
    for octet in label:
        if octet in _PRINTABLE:
            out.append(chr(octet).lower())  # only A-Z change: RFC 4343 is ASCII-only
        elif octet in (0x2E, 0x5C):
            out.append("\\" + chr(octet))
        else:
            out.append(f"\\{octet:03d}")
    return "".join(out)


def name_text(labels: Sequence[bytes]) -> str:
    """The presentation form of a name: lower-case, escaped, without the trailing dot."""
    return ".".join(_label_text(label) for label in labels)


def name_labels(name: str) -> list[bytes]:
    """The labels of a name in presentation form (``\\.``, ``\\\\`` and ``\\DDD`` escapes;
    one trailing dot allowed; "" and "." are the root).

    Raises:
        ValueError: not ASCII, an empty label, a bad escape, or over the length limits.
    """
    labels: list[bytes] = []
    if name in ("", "."):
        return labels
    current = bytearray()
    i = 0
    while i < len(name):
        char = name[i]
        if char == ".":
            if not current:
                raise ValueError(f"empty label in {name!r}")
            labels.append(bytes(current))
            current = bytearray()
            i += 1
            if i == len(name):
                break  # the trailing dot
            continue
        if char == "\\":
            digits = name[i + 1 : i + 4]
            if len(digits) == 3 and digits.isascii() and digits.isdigit():
                value = int(digits)
                if value > 255:
                    raise ValueError(f"escape \\{digits} out of range in {name!r}")
                current.append(value)
                i += 4
                continue
            if i + 1 == len(name):
                raise ValueError(f"dangling escape in {name!r}")
            char = name[i + 1]
            i += 1
        if not char.isascii():
            raise ValueError(f"non-ASCII character in {name!r}")
        current.append(ord(char))
        i += 1
    else:  # no trailing dot: what is left is the last label
        labels.append(bytes(current))
    _check_lengths(labels)
    return labels


def _check_lengths(labels: Sequence[bytes]) -> None:
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(f"label longer than {MAX_LABEL_LENGTH} octets")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME_LENGTH:
        raise ValueError(f"name longer than {MAX_NAME_LENGTH} octets")


def name_to_wire(labels: Sequence[bytes]) -> bytes:
    """Uncompressed wire form (RFC 1035 §3.1)."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


# -- parsing ---------------------------------------------------------------------------


def _read_header(data: bytes) -> Header:
    if len(data) < HEADER.size:
        raise DnsFormatError(f"message of {len(data)} octets is shorter than a header")
    return Header(*HEADER.unpack_from(data))


def _read_name(data: bytes, offset: int, header: Header) -> tuple[list[bytes], int]:
    """The labels of the name at ``offset`` and the offset just after it."""
    labels: list[bytes] = []
    wire_length = 1  # the root's zero octet
    lowest = pos = offset
    end: int | None = None  # after the first pointer, the name's end in the sequence
    while True:
        if pos >= len(data):
            raise DnsFormatError("name runs past the end of the message", header=header)
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(data):
                raise DnsFormatError("compression pointer cut short", header=header)
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= lowest:
                raise DnsFormatError(
                    f"compression pointer at {pos} to {target} does not point back",
                    header=header,
                )
            if end is None:
                end = pos + 2
            lowest = pos = target
            continue
        if kind:
            raise DnsFormatError(f"unsupported label type {kind >> 6:#04b}", header=header)
        if length == 0:
            return labels, (pos + 1 if end is None else end)
        wire_length += length + 1
        if wire_length > MAX_NAME_LENGTH:
            raise DnsFormatError(f"name longer than {MAX_NAME_LENGTH} octets", header=header)
        if pos + 1 + length > len(data):
            raise DnsFormatError("label runs past the end of the message", header=header)
        labels.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length


def _read_question(data: bytes, offset: int, header: Header) -> tuple[Question, int]:
    labels, offset = _read_name(data, offset, header)
    if offset + _QUESTION_TAIL.size > len(data):
        raise DnsFormatError("question runs past the end of the message", header=header)
    qtype, qclass = _QUESTION_TAIL.unpack_from(data, offset)
    question = Question(name_text(labels), qtype, qclass, name_to_wire(labels))
    return question, offset + _QUESTION_TAIL.size


def _read_records(
    data: bytes, offset: int, count: int, header: Header
) -> tuple[tuple[Record, ...], int]:
    records = []
    for _ in range(count):
        labels, offset = _read_name(data, offset, header)
        if offset + _RECORD_HEAD.size > len(data):
            raise DnsFormatError("record runs past the end of the message", header=header)
        rtype, rclass, ttl, rdlength = _RECORD_HEAD.unpack_from(data, offset)
        offset += _RECORD_HEAD.size
        if offset + rdlength > len(data):
            raise DnsFormatError("record data runs past the end of the message", header=header)
        records.append(
            Record(name_text(labels), rtype, rclass, ttl, data[offset : offset + rdlength])
        )
        offset += rdlength
    return tuple(records), offset


def _read_head(data: bytes) -> tuple[Header, tuple[Question, ...], int]:
    header = _read_header(data)
    offset = HEADER.size
    questions = []
    for _ in range(header.qdcount):
        question, offset = _read_question(data, offset, header)
        questions.append(question)
    return header, tuple(questions), offset


def parse_message(data: bytes) -> Message:
    """Any DNS message, query or response. Octets after the last record are ignored.

    Raises:
        DnsFormatError: the message is malformed (its ``header`` set when readable).
    """
    header, questions, offset = _read_head(data)
    answers, offset = _read_records(data, offset, header.ancount, header)
    authority, offset = _read_records(data, offset, header.nscount, header)
    additional, _ = _read_records(data, offset, header.arcount, header)
    return Message(header, questions, answers, authority, additional)


def parse_query(data: bytes) -> Query:
    """A query with exactly one question, its EDNS parameters read from an OPT record.

    Raises:
        DnsFormatError: malformed, a response (QR set), not exactly one question, or
            OPT misused (two of them, or not owned by the root). ``header`` is set
            whenever the first 12 octets were there.
    """
    message = parse_message(data)
    header = message.header
    if header.is_response:
        raise DnsFormatError("a response, not a query", header=header)
    if len(message.questions) != 1:
        raise DnsFormatError(
            f"{len(message.questions)} questions, expected exactly one", header=header
        )
    options = [r for r in message.additional if r.rtype == RType.OPT]
    if len(options) > 1:
        raise DnsFormatError("more than one OPT record", header=header)
    edns = None
    if options:
        opt = options[0]
        if opt.name:
            raise DnsFormatError("OPT record not owned by the root", header=header)
        edns = Edns(
            udp_size=opt.rclass,
            version=(opt.ttl >> 16) & 0xFF,
            dnssec_ok=bool(opt.ttl & _DNSSEC_OK),
        )
    return Query(header, message.questions[0], edns)


# -- building --------------------------------------------------------------------------


def build_query(
    name: str,
    qtype: int = RType.A,
    *,
    query_id: int,
    qclass: int = CLASS_IN,
    recursion_desired: bool = True,
    edns_udp_size: int | None = None,
) -> bytes:
    """A standard query for one question (tests and tools; the server only relays).

    Raises:
        ValueError: ``name`` is not a valid presentation-form name.
    """
    flags = RD if recursion_desired else 0
    additional = b""
    if edns_udp_size is not None:
        additional = b"\x00" + _RECORD_HEAD.pack(RType.OPT, edns_udp_size, 0, 0)
    head = HEADER.pack(query_id, flags, 1, 0, 0, 1 if additional else 0)
    tail = _QUESTION_TAIL.pack(qtype, qclass)
    return head + name_to_wire(name_labels(name)) + tail + additional


def _reply_header(
    query_header: Header,
    rcode: int,
    *,
    questions: int,
    answers: int = 0,
    additional: int = 0,
    authoritative: bool = False,
    truncated: bool = False,
) -> bytes:
    flags = QR | RA | (query_header.flags & (_OPCODE_MASK | RD | CD)) | (rcode & _RCODE_MASK)
    if authoritative:
        flags |= AA
    if truncated:
        flags |= TC
    return HEADER.pack(query_header.id, flags, questions, answers, 0, additional)


def _opt_record(edns: Edns, rcode: int) -> bytes:
    """berth's OPT for a response: its UDP size, version 0, the extended RCODE bits and
    the DO bit copied (RFC 3225 §3)."""
    ttl = (rcode >> 4) << 24 | (_DNSSEC_OK if edns.dnssec_ok else 0)
    return b"\x00" + _RECORD_HEAD.pack(RType.OPT, EDNS_UDP_SIZE, ttl, 0)


def build_answer(
    query: Query,
    addresses: Sequence[IPv4Address],
    *,
    ttl: int = DEFAULT_TTL,
    max_size: int = UDP_LIMIT,
) -> bytes:
    """An authoritative NOERROR answer with one A record per address, in the given order.

    Args:
        max_size: the response's size limit (``query.max_udp_size`` over UDP,
            ``MAX_MESSAGE_SIZE`` over TCP); records that do not fit are left out and TC
            is set.
    """
    if not 0 <= ttl < 2**31:
        raise ValueError(f"TTL {ttl} out of range")  # RFC 2181 §8
    question = query.question.to_wire()
    opt = b"" if query.edns is None else _opt_record(query.edns, Rcode.NOERROR)
    room = max_size - HEADER.size - len(question) - len(opt)
    kept = addresses[: max(0, room // _A_RECORD.size)]
    records = b"".join(
        _A_RECORD.pack(_POINTER_TO_QUESTION, RType.A, CLASS_IN, ttl, 4, address.packed)
        for address in kept
    )
    head = _reply_header(
        query.header,
        Rcode.NOERROR,
        questions=1,
        answers=len(kept),
        additional=1 if opt else 0,
        authoritative=True,
        truncated=len(kept) < len(addresses),
    )
    return head + question + records + opt


def build_empty_reply(query: Query, rcode: int, *, authoritative: bool = False) -> bytes:
    """A response without records: NXDOMAIN, SERVFAIL, NOTIMP, REFUSED, or NOERROR for
    a known name without data of the asked type. The question is echoed.

    Raises:
        ValueError: an extended RCODE (BADVERS) for a query without EDNS, which cannot
            carry it.
    """
    if rcode > _RCODE_MASK and query.edns is None:
        raise ValueError(f"RCODE {rcode} needs an OPT record")
    opt = b"" if query.edns is None else _opt_record(query.edns, rcode)
    head = _reply_header(
        query.header,
        rcode,
        questions=1,
        additional=1 if opt else 0,
        authoritative=authoritative,
    )
    return head + query.question.to_wire() + opt


def formerr_response(error: DnsFormatError) -> bytes | None:
    """FORMERR for a message whose header was readable, without a question section
    (there is no question berth can trust); None when it must be dropped: no header,
    or the message was itself a response."""
    header = error.header
    if header is None or header.is_response:
        return None
    return _reply_header(header, Rcode.FORMERR, questions=0)


# -- deciding --------------------------------------------------------------------------


def respond(
    query: Query,
    lookup: Callable[[str], Sequence[IPv4Address] | None],
    *,
    max_size: int,
) -> bytes | None:
    """berth's own answer to ``query``, or None when it must be forwarded upstream.

    Args:
        lookup: the container addresses for a name (presentation form, lower-case), or
            None when berth does not know the name. Called only for class IN queries
            berth implements.
        max_size: the response size limit (see :func:`build_answer`).

    Returns:
        NOTIMP for any opcode but QUERY; BADVERS for EDNS versions above 0; for a known
        name, the A records (qtype A) or an empty NOERROR (AAAA, ANY, anything else:
        Docker's embedded DNS does the same); None for everything else.
    """
    if query.opcode != Opcode.QUERY:
        return build_empty_reply(query, Rcode.NOTIMP)
    if query.edns is not None and query.edns.version > 0:
        return build_empty_reply(query, Rcode.BADVERS)
    question = query.question
    if question.qclass != CLASS_IN:
        return None
    addresses = lookup(question.name)
    if addresses is None:
        return None
    if question.qtype == RType.A:
        return build_answer(query, addresses, max_size=max_size)
    return build_empty_reply(query, Rcode.NOERROR, authoritative=True)


def unreachable_response(query: Query, *, had_upstreams: bool) -> bytes:
    """The answer when no upstream answered: SERVFAIL, except NXDOMAIN for a single-label
    name when there is no upstream at all (nobody else could know it)."""
    if not had_upstreams and query.question.label_count == 1:
        return build_empty_reply(query, Rcode.NXDOMAIN)
    return build_empty_reply(query, Rcode.SERVFAIL)


def _same_question(a: Question, b: Question) -> bool:
    return (a.name, a.qtype, a.qclass) == (b.name, b.qtype, b.qclass)


class Verdict(enum.Enum):
    """What to do with a datagram received from an upstream for ``query``."""

    ACCEPT = "accept"  # relay it
    TRUNCATED = "truncated"  # TC set: relay it over UDP, ask again over TCP for TCP
    TRY_NEXT = "try_next"  # SERVFAIL/NOTIMP/REFUSED: ask the next upstream, keep it
    FOREIGN = "foreign"  # not an answer to this query: ignore it, keep waiting


#: Upstream RCODEs after which the next upstream is asked, as glibc's resolver does.
_TRY_NEXT_RCODES: Final = frozenset({Rcode.SERVFAIL, Rcode.NOTIMP, Rcode.REFUSED})


def judge_upstream_answer(query: Query, data: bytes) -> Verdict:
    """Whether ``data`` answers ``query``: a response with its id and question. Only
    the header and question section are read; the rest is relayed as received.

    An answer without a question section is accepted only with an error RCODE (servers
    answer FORMERR, NOTIMP or REFUSED that way).
    """
    try:
        header, questions, _ = _read_head(data)
    except DnsFormatError:
        return Verdict.FOREIGN
    if not header.is_response or header.id != query.id:
        return Verdict.FOREIGN
    if questions:
        if len(questions) != 1 or not _same_question(questions[0], query.question):
            return Verdict.FOREIGN
    elif header.rcode == Rcode.NOERROR:
        return Verdict.FOREIGN
    if header.truncated:
        return Verdict.TRUNCATED
    if header.rcode in _TRY_NEXT_RCODES:
        return Verdict.TRY_NEXT
    return Verdict.ACCEPT


# -- TCP framing -----------------------------------------------------------------------


def frame(message: bytes) -> bytes:
    """``message`` with its two-octet length prefix (RFC 1035 §4.2.2)."""
    if len(message) > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {len(message)} octets is too long for TCP")
    return _LENGTH.pack(len(message)) + message


class FrameBuffer:
    """Splits a DNS-over-TCP byte stream into messages, however the bytes arrive."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def next_message(self) -> bytes | None:
        """The next complete message, or None until more bytes are fed."""
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return None
        message = bytes(self._buffer[_LENGTH.size : end])
        del self._buffer[:end]
        return message

    @property
    def buffered(self) -> int:
        """Octets received and not yet returned as a message."""
        return len(self._buffer)


# -- upstreams -------------------------------------------------------------------------


def parse_upstream(text: str) -> tuple[str, int]:
    """An upstream server as ``(ip, port)``: ``1.1.1.1``, ``1.1.1.1:5353``, ``::1``,
    ``[::1]:5353``, ``fe80::1%eth0``; the port defaults to 53.

    Raises:
        ValueError: not an IP address with an optional port in 1-65535.
    """
    host, port = text.strip(), DEFAULT_PORT
    if host.startswith("["):
        host, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad upstream address {text!r}")
        if rest:
            port = _port(rest[1:], text)
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = _port(port_text, text)
    try:
        address = ip_address(host)
    except ValueError:
        raise ValueError(f"bad upstream address {text!r}") from None
    return str(address), port


def _port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in upstream address {whole!r}")
    return int(text)


def upstreams_from_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order and without repeats.

    Lines that are comments (``#`` or ``;``), other options, or nameserver lines whose
    address is not an IPv4 or IPv6 address are ignored, as glibc ignores them. An empty
    result means the file names no server (glibc would then try 127.0.0.1); the caller
    decides.
    """
    servers: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        try:
            address: IPv4Address | IPv6Address = ip_address(fields[1])
        except ValueError:
            continue
        if str(address) not in servers:
            servers.append(str(address))
    return servers
