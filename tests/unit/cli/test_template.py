"""The Go text/template subset behind --format."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.template import Fields, Template, TemplateError, format_value, go_json, render

INSPECT = {
    "Id": "4f2a9c0e1b7d" + "0" * 52,
    "Name": "/web",
    "State": {"Status": "running", "Pid": 4242, "ExitCode": 0, "Running": True, "Health": None},
    "Config": {
        "Env": ["PATH=/bin", "A=1"],
        "Cmd": ["sh", "-c", "echo <hi> & bye"],
        "Labels": {"com.example.team": "infra", "a": "b"},
        "Image": "busybox",
    },
    "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000},
    "Mounts": [{"Source": "/srv", "Destination": "/data"}, {"Source": "/tmp", "Destination": "/t"}],
    "Ratio": 0.25,
}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("{{.Id}}", INSPECT["Id"]),
        ("{{.ID}}", INSPECT["Id"]),
        ("{{.HostConfig.NanoCPUs}}", "500000000"),
        ("{{.id}}", "<no value>"),
        ("{{.Name}}", "/web"),
        ("{{.State.Status}}", "running"),
        ("{{.State.Pid}}", "4242"),
        ("{{.State.Running}}", "true"),
        ("{{.State.Health}}", "<nil>"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Config.Env}}", "[PATH=/bin A=1]"),
        ("{{.Config.Labels}}", "map[a:b com.example.team:infra]"),
        ("{{.HostConfig.Memory}}", "67108864"),
        ("{{.Ratio}}", "0.25"),
        ("{{json .Config.Cmd}}", '["sh","-c","echo <hi> & bye"]'),
        (
            "{{json .State}}",
            '{"Status":"running","Pid":4242,"ExitCode":0,"Running":true,"Health":null}',
        ),
        ('{{index .Config.Labels "com.example.team"}}', "infra"),
        ('{{index .Config.Labels "absent"}}', ""),
        ("{{index .Config.Env 1}}", "A=1"),
        ("{{lower .Config.Image}} {{upper .Config.Image}}", "busybox BUSYBOX"),
        ("{{.Config.Image | upper}}", "BUSYBOX"),
        ("{{title .State.Status}}", "Running"),
        ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/srv:/data /tmp:/t "),
        ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}};{{end}}", "0=/srv;1=/tmp;"),
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a=b,com.example.team=infra,"),
        ("{{range .Nope}}x{{else}}empty{{end}}", "empty"),
        ('{{range .Mounts}}{{if eq .Source "/tmp"}}{{break}}{{end}}{{.Source}}{{end}}', "/srv"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ('{{if eq .State.Status "exited"}}x{{else if eq .State.Status "running"}}r{{end}}', "r"),
        ("{{if not .State.ExitCode}}ok{{end}}", "ok"),
        ("{{if and .State.Running (gt .State.Pid 1)}}yes{{end}}", "yes"),
        ("{{with .State}}{{.Status}}/{{.Pid}}{{end}}", "running/4242"),
        ("{{$n := .Name}}{{$n}}", "/web"),
        ("{{len .Mounts}} {{len .Name}}", "2 4"),
        ('{{join .Config.Cmd " "}}', "sh -c echo <hi> & bye"),
        ('{{split "a,b" ","}}', "[a b]"),
        ('{{printf "%s-%05d-%q" .Name .State.Pid "x"}}', '/web-04242-"x"'),
        ('{{pad "x" 2 1}}|{{truncate .Config.Image 3}}', "  x |bus"),
        ("a\tb {{/* comment */}}c", "a\tb c"),
        ("x  {{- .Name -}}  y", "x/weby"),
        ("{{`raw \\n`}}", "raw \\n"),
        ("{{.Config.Cmd | len}}", "3"),
        ("{{(index .Mounts 0).Source}}", "/srv"),
        ('{{print 1 2 "a" 3}}', "1 2a3"),
        ("{{println .Name}}", "/web\n"),
        ("no actions", "no actions"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_render_inspect_data(fmt: str, expected: str) -> None:
    assert render(fmt, INSPECT) == expected


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{{.Id", "unclosed action"),
        ("{{nope .Id}}", 'function "nope" not defined'),
        ("{{if .Id}}x", "unexpected EOF"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{.Missing.Deeper}}", "nil pointer evaluating interface {}.Deeper"),
        ("{{.Name.Deeper}}", "can't evaluate field Deeper in type string"),
        ("{{range .Name}}{{end}}", "range can't iterate over /web"),
        ("{{index .Mounts 9}}", "index out of range: 9"),
        ("{{lower 1}}", "expected string"),
        ("{{.Name 1}}", "can't give argument to non-function"),
        ("{{break}}", "outside {{range}}"),
        ("{{$undefined}}", 'undefined variable "$undefined"'),
        ('{{define "x"}}{{end}}', "not supported"),
        ('{{"unterminated}}', "unclosed action"),
        ('{{"bad \\q"}}', "invalid escape"),
        ('{{eq .State.Pid "x"}}', "incompatible types for comparison"),
        ('{{pad "x" 99999999 0}}', "out of range"),
        ("{{( }}", "unclosed left paren"),
    ],
)
def test_errors_are_template_errors(fmt: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(fmt, INSPECT)


def test_errors_are_one_line_with_go_prefix() -> None:
    with pytest.raises(TemplateError) as info:
        render("line one\n{{.Id", INSPECT)
    assert str(info.value) == "template: :2: unclosed action"


def test_fields_unknown_field_is_an_error_and_methods_take_arguments() -> None:
    row = Fields(
        "*formatter.ContainerContext", {"ID": "abc", "Label": lambda k: {"x": "1"}.get(k, "")}
    )
    assert render('{{.ID}} {{.Label "x"}}|{{.Label "y"}}', row) == "abc 1|"
    with pytest.raises(
        TemplateError, match=r"can't evaluate field Nope in type \*formatter.ContainerContext"
    ):
        render("{{.Nope}}", row)
    assert go_json(row) == '{"ID":"abc"}'


def test_header_mode_keeps_titles_and_blanks_what_does_not_apply() -> None:
    header = {"ID": "CONTAINER ID", "Image": "IMAGE"}
    template = Template("{{lower .ID}}\t{{.Image}}\t{{.State.Status}}\t{{index .Nope 3}}")
    assert template.render(header, header=True) == "CONTAINER ID\tIMAGE\t\t"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "<nil>"),
        (True, "true"),
        (1.0, "1"),
        (1234567.0, "1.234567e+06"),
        (123456.0, "123456"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        ([1, "a", None], "[1 a <nil>]"),
        ({"b": [1], "a": {}}, "map[a:map[] b:[1]]"),
    ],
)
def test_format_value_matches_go_fmt(value: object, text: str) -> None:
    assert format_value(value) == text


fragments = st.sampled_from(
    [
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        ".Id",
        ".State",
        ".Status",
        ".Config.Env",
        "$",
        "$x",
        ":=",
        "|",
        "(",
        ")",
        '"',
        '"s"',
        "`r`",
        "'c'",
        "1",
        "-1",
        "0x1f",
        "1.5e3",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "continue",
        "index",
        "len",
        "json",
        "printf",
        '"%d %s %v %q %5.2f %x"',
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "lower",
        "pad",
        "truncate",
        "split",
        "join",
        "slice",
        "nil",
        "true",
        "/*",
        "*/",
        "\\",
        "\n",
        ",",
        "=",
    ]
)


@pytest.mark.slow
@settings(max_examples=200)
@given(st.lists(fragments, max_size=25).map("".join))
def test_never_raises_anything_but_template_error_grammar(fmt: str) -> None:
    message = ""
    try:
        render(fmt, INSPECT)
    except TemplateError as exc:
        message = str(exc)
    assert "\n" not in message  # errors are printed as one line


@given(st.text(max_size=40))
def test_never_raises_anything_but_template_error_text(fmt: str) -> None:
    with contextlib.suppress(TemplateError):
        render(fmt, INSPECT)
