"""A Go ``text/template`` subset for docker's ``--format``.

Theory of operation:
    ``Template(source)`` lexes and parses once; ``render(data)`` walks the tree.
    Data is decoded JSON (``dict``/``list``/``str``/``int``/``float``/``bool``/
    ``None``) or ``Fields``, a dict that behaves like a Go struct: an unknown
    field is an error instead of ``<no value>``, and a value may be a callable
    (a Go method such as ``{{.Label "key"}}``).

    Supported: text, ``{{- -}}`` trimming, comments, ``.Field.Chain``, ``$``
    and ``$var``, string/raw/char/number/bool/nil constants, parenthesized
    pipelines, ``|`` pipes, ``$x := ...``, ``if``/``else if``/``else``,
    ``range`` (with ``$i, $v :=``, ``else``, ``break``, ``continue``),
    ``with``/``else``, Go's builtins (``and or not len index slice eq ne lt le
    gt ge print printf println``) and docker's (``json split join title lower
    upper pad truncate``).  Not supported: ``define``/``template``/``block``.

    Field names resolve like docker's typed-struct-then-JSON-map lookup:
    ``{{.ID}}`` finds the JSON key ``Id`` (Go field names and JSON keys of the
    Engine API differ only in case).

    Values print as Go's ``fmt`` prints ``interface{}`` values: missing map key
    ``<no value>``, null ``<nil>``, lists ``[a b]``, maps ``map[k:v]`` with
    sorted keys, large floats with an exponent.

    Every failure, at parse or at render time, raises ``TemplateError`` and
    nothing else (tested with Hypothesis).  Work is bounded: nesting depth,
    padding widths and output size are capped so hostile formats fail cleanly.

    Pure module: stdlib only.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_DEPTH = 64
MAX_WIDTH = 10_000
MAX_OUTPUT = 16 * 1024 * 1024


class TemplateError(Exception):
    """The format string cannot be parsed or executed; the message is one line."""


class _Missing:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


class Fields(dict[str, object]):
    """A struct-like context: unknown fields are errors, callables are methods.

    ``json_values``, when given, is what ``{{json .}}`` shows instead of the
    fields (docker contexts whose ``MarshalJSON`` differs from their
    methods, e.g. ``search``'s ``IsOfficial``: ``[OK]`` in tables, ``true``
    in JSON).
    """

    def __init__(
        self,
        type_name: str,
        values: dict[str, object],
        json_values: dict[str, object] | None = None,
    ) -> None:
        super().__init__(values)
        self.type_name = type_name
        self.json_values = json_values


# --- lexer ----------------------------------------------------------------------------

_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)


class _Tok:
    __slots__ = ("adjacent", "end", "kind", "pos", "value")

    def __init__(self, kind: str, value: object, pos: int, adjacent: bool) -> None:
        self.kind = kind  # FIELD VAR DOT IDENT KEYWORD STRING NUMBER BOOL NIL ( ) | , := =
        self.value = value
        self.pos = pos
        self.end = pos + 1
        self.adjacent = adjacent  # no whitespace before this token


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


def _unquote(body: str, quote: str) -> str:
    """Decode the inside of a Go interpreted string or char literal."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise TemplateError("unterminated escape in quoted string")
        esc = body[i + 1]
        if esc in _ESCAPES and (esc != "'" or quote == "'") and (esc != '"' or quote == '"'):
            out.append(_ESCAPES[esc])
            i += 2
            continue
        digits = {"x": 2, "u": 4, "U": 8}.get(esc)
        if digits is not None:
            text = body[i + 2 : i + 2 + digits]
            if len(text) != digits or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise TemplateError(f"invalid escape \\{esc}{text} in quoted string")
            code = int(text, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise TemplateError(f"invalid escape \\{esc}{text} in quoted string")
            out.append(chr(code))
            i += 2 + digits
            continue
        text = body[i + 1 : i + 4]
        if len(text) == 3 and all(c in "01234567" for c in text) and int(text, 8) < 256:
            out.append(chr(int(text, 8)))
            i += 4
            continue
        raise TemplateError(f"invalid escape \\{esc} in quoted string")
    return "".join(out)


_NUMBER_CHARS = frozenset("0123456789abcdefABCDEFxXoO_.+-pP")


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    body = clean.lstrip("+-")
    try:
        if body[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
            value: int | float = int(clean, 0)
        elif body.isdigit():
            value = int(clean, 8) if len(body) > 1 and body[0] == "0" else int(clean)
        else:
            value = float(clean)
    except ValueError:
        raise TemplateError(f"bad number syntax: {text!r}") from None
    return value


def _lex_action(src: str, start: int, end: int) -> list[_Tok]:
    """Tokens of the action text ``src[start:end]``."""
    toks: list[_Tok] = []
    i = start
    adjacent = False
    while i < end:
        ch = src[i]
        if ch in " \t\r\n":
            i += 1
            adjacent = False
            continue
        pos = i
        if ch in "()|,":
            toks.append(_Tok(ch, ch, pos, adjacent))
            i += 1
        elif ch == ":" and src.startswith(":=", i):
            toks.append(_Tok(":=", ":=", pos, adjacent))
            i += 2
        elif ch == "=":
            toks.append(_Tok("=", "=", pos, adjacent))
            i += 1
        elif ch == '"':
            j = i + 1
            while j < end and src[j] != '"':
                if src[j] == "\n":
                    raise TemplateError("unterminated quoted string")
                j += 2 if src[j] == "\\" else 1
            if j >= end:
                raise TemplateError("unterminated quoted string")
            toks.append(_Tok("STRING", _unquote(src[i + 1 : j], '"'), pos, adjacent))
            i = j + 1
        elif ch == "`":
            j = src.find("`", i + 1, end)
            if j < 0:
                raise TemplateError("unterminated raw quoted string")
            toks.append(_Tok("STRING", src[i + 1 : j].replace("\r", ""), pos, adjacent))
            i = j + 1
        elif ch == "'":
            j = i + 1
            while j < end and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            if j >= end:
                raise TemplateError("unterminated character constant")
            text = _unquote(src[i + 1 : j], "'")
            if len(text) != 1:
                raise TemplateError(f"malformed character constant: {src[i : j + 1]}")
            toks.append(_Tok("NUMBER", ord(text), pos, adjacent))
            i = j + 1
        elif ch == "$":
            j = i + 1
            while j < end and _is_ident_char(src[j]):
                j += 1
            toks.append(_Tok("VAR", src[i:j], pos, adjacent))
            i = j
        elif ch == "." and not (i + 1 < end and src[i + 1].isdigit()):
            j = i + 1
            while j < end and _is_ident_char(src[j]):
                j += 1
            if j == i + 1:
                toks.append(_Tok("DOT", ".", pos, adjacent))
            else:
                toks.append(_Tok("FIELD", src[i + 1 : j], pos, adjacent))
            i = j
        elif (
            ch.isdigit()
            or ch == "."
            or (ch in "+-" and i + 1 < end and src[i + 1] in "0123456789.")
        ):
            j = i + 1
            while j < end and src[j] in _NUMBER_CHARS:
                if src[j] in "+-" and src[j - 1] not in "eEpP":
                    break
                j += 1
            toks.append(_Tok("NUMBER", _number(src[i:j]), pos, adjacent))
            i = j
        elif _is_ident_char(ch):
            j = i + 1
            while j < end and _is_ident_char(src[j]):
                j += 1
            word = src[i:j]
            if word in _KEYWORDS:
                toks.append(_Tok("KEYWORD", word, pos, adjacent))
            elif word in ("true", "false"):
                toks.append(_Tok("BOOL", word == "true", pos, adjacent))
            elif word == "nil":
                toks.append(_Tok("NIL", None, pos, adjacent))
            else:
                toks.append(_Tok("IDENT", word, pos, adjacent))
            i = j
        else:
            raise TemplateError(f"unexpected {ch!r} in command")
        toks[-1].end = i
        adjacent = True
    return toks


# --- parse tree ----------------------------------------------------------------------

# Operands: ("dot",) ("field", chain) ("var", name, chain) ("const", value)
#           ("ident", name) ("pipe", Pipeline, chain)
_Operand = tuple[object, ...]


class _Pipeline:
    __slots__ = ("cmds", "decl", "is_assign", "text")

    def __init__(
        self, decl: list[str], is_assign: bool, cmds: list[list[_Operand]], text: str
    ) -> None:
        self.decl = decl
        self.is_assign = is_assign
        self.cmds = cmds
        self.text = text


class _Node:
    __slots__ = ("body", "else_body", "kind", "line", "pipe", "text")

    def __init__(
        self,
        kind: str,
        *,
        text: str = "",
        pipe: _Pipeline | None = None,
        body: list[_Node] | None = None,
        else_body: list[_Node] | None = None,
        line: int = 1,
    ) -> None:
        self.kind = kind  # text action if range with break continue
        self.text = text
        self.pipe = pipe
        self.body = body or []
        self.else_body = else_body or []
        self.line = line


class _Item:
    """One lexed piece of the source: literal text or the tokens of an action."""

    __slots__ = ("line", "text", "toks")

    def __init__(self, text: str | None, toks: list[_Tok], line: int) -> None:
        self.text = text
        self.toks = toks
        self.line = line


def _split_items(src: str) -> list[_Item]:
    items: list[_Item] = []
    i = 0
    trim_next = False
    while True:
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if j < 0:
            if text:
                items.append(_Item(text, [], src.count("\n", 0, i) + 1))
            return items
        start = j + 2
        if (
            src.startswith("- ", start)
            or src.startswith("-\t", start)
            or src.startswith("-\n", start)
        ):
            text = text.rstrip(" \t\r\n")
            start += 1
        if text:
            items.append(_Item(text, [], src.count("\n", 0, i) + 1))
        line = src.count("\n", 0, j) + 1
        stripped = src[start:].lstrip(" \t\r\n")
        if stripped.startswith("/*"):
            close = src.find("*/", start)
            if close < 0:
                raise TemplateError(f"template: :{line}: unclosed comment")
            k = close + 2
            trim_next = False
            if src.startswith(" -}}", k):
                trim_next = True
                k += 4
            elif src.startswith("}}", k):
                k += 2
            else:
                raise TemplateError(f"template: :{line}: comment ends before closing delimiter")
            i = k
            continue
        end = _find_action_end(src, start, line)
        trim_next = False
        action_end = end
        if (
            end - 1 >= start
            and src[end - 1] == "-"
            and end - 2 >= start
            and src[end - 2] in " \t\r\n"
        ):
            trim_next = True
            action_end = end - 1
        try:
            toks = _lex_action(src, start, action_end)
        except TemplateError as exc:
            raise TemplateError(f"template: :{line}: {exc}") from None
        items.append(_Item(None, toks, line))
        i = end + 2


def _find_action_end(src: str, start: int, line: int) -> int:
    """Index of the ``}}`` closing the action at ``start``, skipping quoted text."""
    i = start
    while i < len(src):
        ch = src[i]
        if src.startswith("}}", i):
            return i
        if ch in "\"'":
            j = i + 1
            while j < len(src) and src[j] != ch and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if ch == "`":
            j = src.find("`", i + 1)
            if j < 0:
                break
            i = j + 1
            continue
        i += 1
    raise TemplateError(f"template: :{line}: unclosed action")


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.items = _split_items(src)
        self.index = 0

    def error(self, line: int, msg: str) -> TemplateError:
        return TemplateError(f"template: :{line}: {msg}")

    def parse(self) -> list[_Node]:
        nodes, stop = self.parse_list(0)
        if stop is not None:
            item = self.items[self.index - 1]
            raise self.error(item.line, f"unexpected {{{{{stop}}}}}")
        return nodes

    def parse_list(self, depth: int) -> tuple[list[_Node], str | None]:
        """Parse nodes until ``{{end}}``/``{{else}}`` (returned) or the end (None)."""
        if depth > MAX_DEPTH:
            raise TemplateError("template: nesting too deep")
        nodes: list[_Node] = []
        while self.index < len(self.items):
            item = self.items[self.index]
            self.index += 1
            if item.text is not None:
                nodes.append(_Node("text", text=item.text, line=item.line))
                continue
            toks = item.toks
            if not toks:
                raise self.error(item.line, "missing value for command")
            first = toks[0]
            if first.kind == "KEYWORD":
                word = str(first.value)
                if word == "end":
                    if len(toks) > 1:
                        raise self.error(item.line, "unexpected token in end")
                    return nodes, "end"
                if word == "else":
                    return nodes, "else"
                if word in ("if", "with", "range"):
                    nodes.append(self.parse_block(word, toks[1:], item.line, depth))
                    continue
                if word in ("break", "continue"):
                    if len(toks) > 1:
                        raise self.error(item.line, f"unexpected token in {{{{{word}}}}}")
                    nodes.append(_Node(word, line=item.line))
                    continue
                raise self.error(item.line, f"{{{{{word}}}}} is not supported")
            pipe = self.parse_pipeline(toks, item.line, allow_decl=True, depth=depth)
            nodes.append(_Node("action", pipe=pipe, line=item.line))
        return nodes, None

    def parse_block(self, word: str, toks: list[_Tok], line: int, depth: int) -> _Node:
        pipe = self.parse_pipeline(toks, line, allow_decl=True, depth=depth)
        if pipe.decl and word != "range" and len(pipe.decl) > 1:
            raise self.error(line, f"too many declarations in {word}")
        body, stop = self.parse_list(depth + 1)
        else_body: list[_Node] = []
        if stop is None:
            raise self.error(line, f"unexpected EOF in {word}")
        if stop == "else":
            else_item = self.items[self.index - 1]
            rest = else_item.toks[1:]
            if rest:
                # {{else if ...}} / {{else with ...}}: a nested block sharing our {{end}}.
                kw = rest[0]
                if kw.kind != "KEYWORD" or kw.value not in ("if", "with") or word == "range":
                    raise self.error(else_item.line, "unexpected token in else")
                else_body = [self.parse_block(str(kw.value), rest[1:], else_item.line, depth + 1)]
                return _Node(word, pipe=pipe, body=body, else_body=else_body, line=line)
            else_body, stop = self.parse_list(depth + 1)
            if stop != "end":
                raise self.error(line, f"expected end; found {stop or 'EOF'}")
        return _Node(word, pipe=pipe, body=body, else_body=else_body, line=line)

    def parse_pipeline(
        self, toks: list[_Tok], line: int, *, allow_decl: bool, depth: int
    ) -> _Pipeline:
        if depth > MAX_DEPTH:
            raise TemplateError("template: nesting too deep")
        pos = 0
        decl: list[str] = []
        is_assign = False
        # $x := / $x = / $i, $v :=
        if allow_decl and toks and toks[0].kind == "VAR":
            probe = 1
            names = [str(toks[0].value)]
            if len(toks) > 2 and toks[1].kind == "," and toks[2].kind == "VAR":
                names.append(str(toks[2].value))
                probe = 3
            if len(toks) > probe and toks[probe].kind in (":=", "="):
                decl = names
                is_assign = toks[probe].kind == "="
                pos = probe + 1
        text_start = toks[pos].pos if pos < len(toks) else 0
        cmds: list[list[_Operand]] = []
        cmd: list[_Operand] = []
        while pos < len(toks):
            tok = toks[pos]
            if tok.kind == "|":
                if not cmd:
                    raise self.error(line, "missing command before |")
                cmds.append(cmd)
                cmd = []
                pos += 1
                continue
            operand, pos = self.parse_operand(toks, pos, line, depth)
            cmd.append(operand)
        if not cmd:
            raise self.error(line, "missing value for command" if not cmds else "missing command")
        cmds.append(cmd)
        text_end = toks[-1].end if toks else 0
        return _Pipeline(decl, is_assign, cmds, self.src[text_start:text_end])

    def parse_operand(
        self, toks: list[_Tok], pos: int, line: int, depth: int
    ) -> tuple[_Operand, int]:
        tok = toks[pos]
        kind = tok.kind
        pos += 1
        operand: _Operand
        if kind == "DOT":
            operand = ("dot",)
        elif kind == "FIELD":
            operand = ("field", [str(tok.value)])
        elif kind == "VAR":
            operand = ("var", str(tok.value), [])
        elif kind in ("STRING", "NUMBER", "BOOL", "NIL"):
            operand = ("const", tok.value)
        elif kind == "IDENT":
            name = str(tok.value)
            if name not in _FUNCS:
                raise self.error(line, f'function "{name}" not defined')
            operand = ("ident", name)
        elif kind == "(":
            level = 1
            end = pos
            while end < len(toks) and level:
                if toks[end].kind == "(":
                    level += 1
                elif toks[end].kind == ")":
                    level -= 1
                end += 1
            if level:
                raise self.error(line, "unclosed left paren")
            inner = toks[pos : end - 1]
            if not inner:
                raise self.error(line, "missing value for parenthesized pipeline")
            operand = (
                "pipe",
                self.parse_pipeline(inner, line, allow_decl=False, depth=depth + 1),
                [],
            )
            pos = end
        elif kind == ")":
            raise self.error(line, "unexpected right paren")
        else:
            raise self.error(line, f"unexpected {tok.value!s} in operand")
        # A field chain glued to the operand: .A.B, $x.A, (pipe).A
        chain = operand[-1] if operand[0] in ("field", "var", "pipe") else None
        while pos < len(toks) and toks[pos].kind == "FIELD" and toks[pos].adjacent:
            if not isinstance(chain, list):
                raise self.error(line, f"unexpected . after term {tok.value!s}")
            chain.append(str(toks[pos].value))
            pos += 1
        return operand, pos


# --- values -------------------------------------------------------------------------


def _go_float(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent outside [1e-4, 1e6)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if str(value).startswith("-") else ""
    if value == 0:
        return sign + "0"
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    # value == 0.<digits> * 10**point
    point = len(whole) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    e10 = point - 1
    # strconv.FormatFloat(f, 'g', -1, 64): "%e is used if the exponent is less
    # than -4 or greater than or equal to the precision", 6 for shortest.
    if e10 < -4 or e10 >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_value(value: object) -> str:
    """Render a value as Go's ``fmt.Sprint`` renders an ``interface{}``."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{k}:{format_value(v)}" for k, v in items) + "]"
    return str(value)


def _to_json(value: object) -> object:
    if value is MISSING:
        return None
    if isinstance(value, Fields) and value.json_values is not None:
        value = value.json_values
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items() if not callable(v)}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise TemplateError("json: unsupported value: " + _go_float(value))
    return value


def go_json(value: object) -> str:
    """docker's ``json`` function: compact JSON, no HTML escaping, no newline."""
    return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))


def truth(value: object) -> bool:
    """Go template truthiness: false, 0, nil, empty string/list/map are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    return True


def _type_name(value: object) -> str:
    if isinstance(value, Fields):
        return value.type_name
    if value is None or value is MISSING:
        return "<nil>"
    return {
        bool: "bool",
        int: "int",
        float: "float64",
        str: "string",
        list: "[]interface {}",
        tuple: "[]interface {}",
        dict: "map[string]interface {}",
    }.get(type(value), type(value).__name__)


# --- builtins ------------------------------------------------------------------------


def _want_int(value: object, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"wrong type for value; expected int; got {_type_name(value)} in {fn}")
    if abs(value) > MAX_WIDTH:
        raise TemplateError(f"{fn}: value {value} out of range")
    return value


def _want_str(value: object, fn: str) -> str:
    if not isinstance(value, str):
        raise TemplateError(
            f"wrong type for value; expected string; got {_type_name(value)} in {fn}"
        )
    return value


def _fn_index(item: object, *indices: object) -> object:
    for idx in indices:
        if isinstance(item, dict):
            if not isinstance(idx, str):
                raise TemplateError(f"index: value has type {_type_name(idx)}; should be string")
            if idx in item:
                item = item[idx]
            elif item and all(isinstance(v, str) for v in item.values()):
                item = ""  # a map[string]string (labels, options) gives ""
            else:
                item = MISSING
        elif isinstance(item, list | tuple | str):
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise TemplateError(f"cannot index slice/array with type {_type_name(idx)}")
            if not 0 <= idx < len(item):
                raise TemplateError(f"error calling index: index out of range: {idx}")
            item = ord(item[idx]) if isinstance(item, str) else item[idx]
        elif item is None or item is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {_type_name(item)}")
    return item


def _fn_slice(item: object, *indices: object) -> object:
    if not isinstance(item, list | tuple | str):
        raise TemplateError(f"can't slice item of type {_type_name(item)}")
    if len(indices) > 2:
        raise TemplateError("too many slice indexes")
    bounds = [_want_int(i, "slice") for i in indices]
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise TemplateError(f"error calling slice: index out of range: [{lo}:{hi}]")
    return list(item[lo:hi]) if isinstance(item, tuple) else item[lo:hi]


def _fn_len(item: object) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, list | tuple | dict):
        return len(item)
    raise TemplateError(f"error calling len: len of type {_type_name(item)}")


def _comparable(a: object, b: object) -> tuple[object, object]:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        if type(a) is not type(b):
            raise TemplateError("incompatible types for comparison")
        return a, b
    if isinstance(a, numeric) and isinstance(b, numeric):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if a is None or a is MISSING or b is None or b is MISSING:
        return a is None or a is MISSING, b is None or b is MISSING
    if type(a) is not type(b):
        raise TemplateError("incompatible types for comparison")
    if isinstance(a, list | tuple | dict):
        raise TemplateError("non-comparable type")
    return a, b


def _fn_eq(a: object, *others: object) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    for b in others:
        x, y = _comparable(a, b)
        if x == y:
            return True
    return False


def _fn_ne(a: object, b: object) -> bool:
    return not _fn_eq(a, b)


def _ordered(a: object, b: object) -> tuple[float | str, float | str]:
    if isinstance(a, bool) or isinstance(b, bool):
        raise TemplateError("invalid type for comparison")
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    raise TemplateError("incompatible types for comparison")


def _fn_lt(a: object, b: object) -> bool:
    x, y = _ordered(a, b)
    return x < y  # type: ignore[operator]  # _ordered returns same-kind pairs


def _fn_le(a: object, b: object) -> bool:
    x, y = _ordered(a, b)
    return x <= y  # type: ignore[operator]  # _ordered returns same-kind pairs


def _fn_gt(a: object, b: object) -> bool:
    return not _fn_le(a, b)


def _fn_ge(a: object, b: object) -> bool:
    return not _fn_lt(a, b)


def _fn_and(first: object, *rest: object) -> object:
    value = first
    for value in (first, *rest):
        if not truth(value):
            return value
    return value


def _fn_or(first: object, *rest: object) -> object:
    value = first
    for value in (first, *rest):
        if truth(value):
            return value
    return value


def _fn_not(value: object) -> bool:
    return not truth(value)


def _fn_print(*args: object) -> str:
    # fmt.Sprint: a space between operands when neither is a string.
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def _fn_println(*args: object) -> str:
    return " ".join(format_value(a) for a in args) + "\n"


_PRINTF_FLAGS = "+-# 0"


def _fn_printf(fmt: object, *args: object) -> str:
    text = _want_str(fmt, "printf")
    out: list[str] = []
    argi = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        i += 1
        flags = ""
        while i < len(text) and text[i] in _PRINTF_FLAGS:
            flags += text[i]
            i += 1
        width_text = ""
        while i < len(text) and text[i].isdigit():
            width_text += text[i]
            i += 1
        prec_text: str | None = None
        if i < len(text) and text[i] == ".":
            i += 1
            prec_text = ""
            while i < len(text) and text[i].isdigit():
                prec_text += text[i]
                i += 1
        if i >= len(text):
            out.append("%!(NOVERB)")
            break
        verb = text[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        width = int(width_text) if width_text else 0
        prec = int(prec_text) if prec_text else (0 if prec_text == "" else None)
        if width > MAX_WIDTH or (prec or 0) > MAX_WIDTH:
            raise TemplateError("printf: width or precision too large")
        out.append(_format_verb(verb, flags, width, prec, arg))
    if argi < len(args):
        extra = ", ".join(f"{_type_name(a)}={format_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_verb(verb: str, flags: str, width: int, prec: int | None, arg: object) -> str:
    body: str
    if verb in "vs":
        body = format_value(arg)
        if verb == "s" and not isinstance(arg, str | list | tuple | dict):
            body = f"%!s({_type_name(arg)}={body})"
        elif prec is not None:
            body = body[:prec]
    elif verb == "q":
        if not isinstance(arg, str):
            return f"%!q({_type_name(arg)}={format_value(arg)})"
        body = json.dumps(arg, ensure_ascii=False)
    elif verb == "t":
        if not isinstance(arg, bool):
            return f"%!t({_type_name(arg)}={format_value(arg)})"
        body = format_value(arg)
    elif verb in "dxXobc":
        if isinstance(arg, bool) or not isinstance(arg, int):
            return f"%!{verb}({_type_name(arg)}={format_value(arg)})"
        if verb == "c":
            if not 0 <= arg <= 0x10FFFF:
                return "\ufffd"
            body = chr(arg)
        else:
            spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
            body = format(arg, ("+" if "+" in flags else "") + spec)
    elif verb in "feEgG":
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            return f"%!{verb}({_type_name(arg)}={format_value(arg)})"
        p = 6 if prec is None else prec
        try:
            number = float(arg)
        except OverflowError:
            return f"%!{verb}({_type_name(arg)}=overflow)"
        if verb in "gG" and prec is None:
            body = _go_float(number)
        else:
            body = format(number, ("+" if "+" in flags else "") + f".{p}{verb}")
    else:
        return f"%!{verb}({_type_name(arg)}={format_value(arg)})"
    if len(body) < width:
        pad = width - len(body)
        if "-" in flags:
            body = body + " " * pad
        elif "0" in flags and verb not in "vsqtc":
            sign = body[0] if body[:1] in ("-", "+") else ""
            body = sign + "0" * pad + body[len(sign) :]
        else:
            body = " " * pad + body
    return body


def _fn_json(value: object) -> str:
    return go_json(value)


def _fn_split(s: object, sep: object) -> list[object]:
    text = _want_str(s, "split")
    separator = _want_str(sep, "split")
    if not separator:
        return list(text)
    return list(text.split(separator))


def _fn_join(items: object, sep: object) -> str:
    separator = _want_str(sep, "join")
    if isinstance(items, str):
        return items
    if not isinstance(items, list | tuple):
        raise TemplateError(
            f"wrong type for value; expected []string; got {_type_name(items)} in join"
        )
    return separator.join(format_value(v) for v in items)


def _fn_title(s: object) -> str:
    text = _want_str(s, "title")
    out: list[str] = []
    prev_letter = False
    for ch in text:
        is_letter = ch.isalnum() or ch == "_" or ch == "'"
        out.append(ch.upper() if is_letter and not prev_letter else ch)
        prev_letter = is_letter
    return "".join(out)


def _fn_lower(s: object) -> str:
    return _want_str(s, "lower").lower()


def _fn_upper(s: object) -> str:
    return _want_str(s, "upper").upper()


def _fn_pad(s: object, before: object, after: object) -> str:
    left = max(_want_int(before, "pad"), 0)
    right = max(_want_int(after, "pad"), 0)
    return " " * left + _want_str(s, "pad") + " " * right


def _fn_truncate(s: object, length: object) -> str:
    text = _want_str(s, "truncate")
    n = _want_int(length, "truncate")
    return text[:n] if 0 <= n < len(text) else text


_FUNCS: dict[str, Callable[..., object]] = {
    "and": _fn_and,
    "or": _fn_or,
    "not": _fn_not,
    "len": _fn_len,
    "index": _fn_index,
    "slice": _fn_slice,
    "eq": _fn_eq,
    "ne": _fn_ne,
    "lt": _fn_lt,
    "le": _fn_le,
    "gt": _fn_gt,
    "ge": _fn_ge,
    "print": _fn_print,
    "printf": _fn_printf,
    "println": _fn_println,
    "json": _fn_json,
    "split": _fn_split,
    "join": _fn_join,
    "title": _fn_title,
    "lower": _fn_lower,
    "upper": _fn_upper,
    "pad": _fn_pad,
    "truncate": _fn_truncate,
}

# docker's HeaderFunctions: when rendering the header row of a table, string
# functions return their argument unchanged ("CONTAINER ID" stays upper case).
_HEADER_IDENTITY = frozenset(
    {"json", "split", "join", "title", "lower", "upper", "pad", "truncate"}
)

_ARITY: dict[str, tuple[int, int | None]] = {
    "and": (1, None),
    "or": (1, None),
    "not": (1, 1),
    "len": (1, 1),
    "index": (1, None),
    "slice": (1, None),
    "eq": (1, None),
    "ne": (2, 2),
    "lt": (2, 2),
    "le": (2, 2),
    "gt": (2, 2),
    "ge": (2, 2),
    "print": (0, None),
    "printf": (1, None),
    "println": (0, None),
    "json": (1, 1),
    "split": (2, 2),
    "join": (2, 2),
    "title": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "pad": (3, 3),
    "truncate": (2, 2),
}


# --- evaluation ----------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Exec:
    def __init__(self, root: object, header: bool) -> None:
        self.header = header
        self.scopes: list[dict[str, object]] = [{"$": root}]
        self.out: list[str] = []
        self.size = 0

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT:
            raise TemplateError("template output too large")
        self.out.append(text)

    def lookup(self, name: str) -> object:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f'undefined variable "{name}"')

    def assign(self, name: str, value: object) -> None:
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise TemplateError(f'undefined variable "{name}"')

    def walk(self, nodes: list[_Node], dot: object) -> None:
        for node in nodes:
            kind = node.kind
            if kind == "text":
                self.emit(node.text)
            elif kind == "action":
                assert node.pipe is not None
                if self.header:
                    # docker's header row: anything that does not evaluate
                    # against the title map prints as empty.
                    try:
                        value = self.pipeline(node.pipe, dot)
                    except TemplateError:
                        value = ""
                else:
                    value = self.pipeline(node.pipe, dot)
                if not node.pipe.decl:
                    self.emit(format_value(value))
            elif kind == "if":
                assert node.pipe is not None
                self.scopes.append({})
                try:
                    if truth(self.pipeline(node.pipe, dot)):
                        self.walk(node.body, dot)
                    else:
                        self.walk(node.else_body, dot)
                finally:
                    self.scopes.pop()
            elif kind == "with":
                assert node.pipe is not None
                self.scopes.append({})
                try:
                    value = self.pipeline(node.pipe, dot)
                    if truth(value):
                        self.walk(node.body, value)
                    else:
                        self.walk(node.else_body, dot)
                finally:
                    self.scopes.pop()
            elif kind == "range":
                self.range(node, dot)
            elif kind == "break":
                raise _Break
            else:
                raise _Continue

    def range(self, node: _Node, dot: object) -> None:
        assert node.pipe is not None
        decl = node.pipe.decl
        pipe = _Pipeline([], False, node.pipe.cmds, node.pipe.text)
        value = self.pipeline(pipe, dot)
        pairs: list[tuple[object, object]]
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value, key=str)]
        elif isinstance(value, list | tuple):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if value > MAX_WIDTH * 100:
                raise TemplateError("range: count too large")
            pairs = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            pairs = []
        else:
            raise TemplateError(f"range can't iterate over {format_value(value)}")
        if not pairs:
            self.scopes.append({})
            try:
                self.walk(node.else_body, dot)
            finally:
                self.scopes.pop()
            return
        for key, elem in pairs:
            scope: dict[str, object] = {}
            if len(decl) == 1:
                scope[decl[0]] = elem
            elif len(decl) == 2:
                scope[decl[0]] = key
                scope[decl[1]] = elem
            self.scopes.append(scope)
            try:
                self.walk(node.body, elem)
            except _Continue:
                continue
            except _Break:
                break
            finally:
                self.scopes.pop()

    def pipeline(self, pipe: _Pipeline, dot: object) -> object:
        value: object = MISSING
        has_input = False
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value if has_input else None, has_input, pipe.text)
            has_input = True
        if pipe.decl:
            if pipe.is_assign:
                self.assign(pipe.decl[-1], value)
            else:
                self.scopes[-1][pipe.decl[-1]] = value
        return value

    def command(
        self, cmd: list[_Operand], dot: object, piped: object, has_input: bool, text: str
    ) -> object:
        head = cmd[0]
        if head[0] == "ident":
            name = str(head[1])
            args = [self.operand(op, dot, text) for op in cmd[1:]]
            if has_input:
                args.append(piped)
            return self.call(name, args)
        if head[0] == "const" and head[1] is None:
            raise TemplateError("nil is not a command")
        extra = cmd[1:]
        if head[0] in ("field", "var", "pipe") and (extra or has_input):
            # A method call: the last element of the chain receives the arguments.
            args = [self.operand(op, dot, text) for op in extra]
            if has_input:
                args.append(piped)
            target = self.operand(head, dot, text, call_last=False)
            if not callable(target):
                raise TemplateError(f"executing at <{text}>: can't give argument to non-function")
            return self.invoke(target, args, text)
        if extra or has_input:
            raise TemplateError(f"executing at <{text}>: can't give argument to non-function")
        return self.operand(head, dot, text)

    def call(self, name: str, args: list[object]) -> object:
        low, high = _ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            want = str(low) if high == low else f"at least {low}"
            raise TemplateError(f"wrong number of args for {name}: want {want} got {len(args)}")
        if self.header and name in _HEADER_IDENTITY:
            return args[0]
        try:
            return _FUNCS[name](*args)
        except TemplateError as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None

    def invoke(self, fn: object, args: list[object], text: str) -> object:
        if self.header:
            return ""
        assert callable(fn)
        try:
            return fn(*args)
        except TypeError:
            raise TemplateError(
                f"executing at <{text}>: wrong number of args: got {len(args)}"
            ) from None

    def operand(self, op: _Operand, dot: object, text: str, *, call_last: bool = True) -> object:
        kind = op[0]
        if kind == "dot":
            return dot
        if kind == "const":
            return op[1]
        if kind == "ident":
            return self.call(str(op[1]), [])
        chain: object
        if kind == "field":
            base, chain = dot, op[1]
        elif kind == "var":
            base, chain = self.lookup(str(op[1])), op[2]
        else:
            inner = op[1]
            assert isinstance(inner, _Pipeline)
            base, chain = self.pipeline(inner, dot), op[2]
        assert isinstance(chain, list)
        for i, name in enumerate(chain):
            last = i == len(chain) - 1
            base = self.field(base, str(name), text)
            if callable(base) and (call_last or not last):
                base = self.invoke(base, [], text)
        return base

    def field(self, base: object, name: str, text: str) -> object:
        if self.header and not isinstance(base, dict):
            return ""
        if isinstance(base, Fields):
            if name not in base:
                raise TemplateError(
                    f"executing at <{text}>: can't evaluate field {name} in type {base.type_name}"
                )
            return base[name]
        if isinstance(base, dict):
            if name in base:
                return base[name]
            if self.header:
                return ""
            return _go_field(base, name)
        if base is None or base is MISSING:
            raise TemplateError(
                f"executing at <{text}>: nil pointer evaluating interface {{}}.{name}"
            )
        raise TemplateError(
            f"executing at <{text}>: can't evaluate field {name} in type {_type_name(base)}"
        )


def _go_field(data: dict[object, object], name: str) -> object:
    """A Go struct field name looked up in its JSON object.

    docker runs templates on its typed structs first, then on the raw JSON map,
    so both ``{{.ID}}`` (field ``ID``, JSON ``Id``) and ``{{.Id}}`` work, as do
    ``.APIVersion``/``.NanoCPUs``.  Their names differ only in case, so an
    exported (capitalized) name that is not a key matches a key that differs in
    case only.
    """
    if name[:1].isupper():
        folded = name.lower()
        for key, value in data.items():
            if isinstance(key, str) and key.lower() == folded:
                return value
    return MISSING


class Template:
    """A parsed ``--format`` template."""

    __slots__ = ("_nodes", "source")

    def __init__(self, source: str) -> None:
        """Parse ``source``.

        Raises:
            TemplateError: a syntax error, with Go's ``template: :LINE: ...`` prefix.
        """
        self.source = source
        try:
            self._nodes = _Parser(source).parse()
        except RecursionError:
            raise TemplateError("template: nesting too deep") from None
        except TemplateError as exc:
            raise TemplateError(_one_line(str(exc))) from None

    def render(self, data: object, *, header: bool = False) -> str:
        """Execute against ``data``.

        With ``header=True`` the template is run against a map of column titles
        and docker's string functions return their argument unchanged, which is
        how docker prints a table's header row.

        Raises:
            TemplateError: an execution error (unknown field of a struct, bad
                arguments, ...).
        """
        run = _Exec(data, header)
        try:
            run.walk(self._nodes, data)
        except (_Break, _Continue):
            raise TemplateError("{{break}} or {{continue}} outside {{range}}") from None
        except RecursionError:
            raise TemplateError("template: nesting too deep") from None
        except TemplateError as exc:
            msg = _one_line(str(exc))
            if not msg.startswith("template:"):
                msg = f"template: :1: {msg}"
            raise TemplateError(msg) from None
        return "".join(run.out)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def render(source: str, data: object) -> str:
    """Parse ``source`` and execute it against ``data`` (see ``Template``)."""
    return Template(source).render(data)
