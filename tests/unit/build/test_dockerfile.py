from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.build.dockerfile import (
    Dockerfile,
    DockerfileParseError,
    Instruction,
    parse,
    parse_line,
    render,
    split_words,
)
from supervisor.errors import InvalidArgument


def test_parse_continuation_joins_lines_and_drops_comments() -> None:
    df = parse("FROM a\nRUN echo a \\\n  # note\n\n  && echo b\nCMD x\n")
    run = df.instructions[1]
    assert run.keyword == "run"
    assert run.args == ("echo a   && echo b",)
    assert run.line == 2
    assert df.instructions[2].line == 6


def test_parse_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n")
    assert df.escape == "`"
    assert df.instructions[1].args == ("dir c:\\   && echo",)


def test_parse_directive_after_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM a\n")
    assert df.escape == "\\"


def test_parse_syntax_directive_recorded() -> None:
    assert parse("# syntax=docker/dockerfile:1\nFROM a\n").syntax == "docker/dockerfile:1"


def test_parse_bad_escape_names_line() -> None:
    with pytest.raises(DockerfileParseError, match="line 1: invalid ESCAPE"):
        parse("# escape=x\nFROM a\n")


def test_parse_unknown_instruction_names_line() -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse("FROM a\n\nFOO bar\n")
    assert str(info.value) == "Dockerfile parse error line 3: unknown instruction: FOO"
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("text", "args", "is_json"),
    [
        ('CMD ["a", "b c"]', ("a", "b c"), True),
        ("CMD a b", ("a b",), False),
        ('RUN ["a", ', ('["a",',), False),  # not JSON: Docker falls back to the shell form
        ("CMD [1, 2]", ("[1, 2]",), False),
        ('COPY ["a b", "/c"]', ("a b", "/c"), True),
        ("COPY a b /c", ("a", "b", "/c"), False),
        ('SHELL ["/bin/bash", "-c"]', ("/bin/bash", "-c"), True),
    ],
    ids=[
        "cmd-json",
        "cmd-shell",
        "run-bad-json",
        "cmd-non-strings",
        "copy-json",
        "copy-words",
        "shell",
    ],
)
def test_parse_json_and_shell_forms(text: str, args: tuple[str, ...], is_json: bool) -> None:
    ins = parse_line(text, line=1)
    assert (ins.args, ins.json) == (args, is_json)


def test_parse_shell_requires_json() -> None:
    with pytest.raises(
        DockerfileParseError, match="SHELL requires the arguments to be in JSON form"
    ):
        parse("FROM a\nSHELL /bin/bash\n")


def test_parse_flags() -> None:
    ins = parse_line("COPY --from=build --chown=1:2 --chmod=600 /a /b", line=1)
    assert ins.flags == (("from", "build"), ("chown", "1:2"), ("chmod", "600"))
    assert ins.flag("from") == "build"
    assert ins.flag("nope") is None
    assert ins.args == ("/a", "/b")


def test_parse_bad_flag() -> None:
    with pytest.raises(DockerfileParseError, match="invalid flag"):
        parse_line("COPY --=x a b", line=4)


def test_parse_env_forms() -> None:
    assert parse_line('ENV A=1 B="x y" C=z\\ w', line=1).args == (
        "A",
        "1",
        "B",
        '"x y"',
        "C",
        "z\\ w",
    )
    assert parse_line("ENV A  some value", line=1).args == ("A", "some value")
    with pytest.raises(DockerfileParseError, match="must have two arguments"):
        parse_line("ENV A", line=1)
    with pytest.raises(DockerfileParseError, match="can't find ="):
        parse_line("LABEL a=1 b", line=1)
    with pytest.raises(DockerfileParseError, match="names can not be blank"):
        parse_line("LABEL =1", line=1)


def test_parse_heredocs() -> None:
    df = parse("FROM a\nRUN <<EOF\necho $A\nEOF\nCOPY <<-'X' /f\n\thi\n\tX\nCMD x\n")
    run, copy = df.instructions[1], df.instructions[2]
    assert run.heredocs[0].content == "echo $A\n"
    assert run.heredocs[0].expand
    assert copy.heredocs[0].name == "X"
    assert copy.heredocs[0].content == "hi\n"
    assert not copy.heredocs[0].expand
    assert df.instructions[3].keyword == "cmd"
    assert df.instructions[3].line == 8


def test_parse_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileParseError, match="line 2: unterminated heredoc EOF"):
        parse("FROM a\nRUN <<EOF\necho\n")


def test_parse_healthcheck() -> None:
    assert parse_line("HEALTHCHECK NONE", line=1).args == ("NONE",)
    ins = parse_line('HEALTHCHECK --interval=5s CMD ["true"]', line=1)
    assert ins.args == ("CMD", "true")
    assert ins.json
    with pytest.raises(DockerfileParseError, match="Unknown type"):
        parse_line("HEALTHCHECK FOO", line=1)


@pytest.mark.parametrize(
    "text",
    ["FROM", "RUN", "COPY a", "ARG", "EXPOSE", "USER", "WORKDIR"],
)
def test_parse_missing_arguments(text: str) -> None:
    with pytest.raises(DockerfileParseError):
        parse_line(text, line=1)


def test_parse_crlf_and_bom() -> None:
    df = parse("\ufeffFROM a\r\nCMD b\r\n")
    assert [i.keyword for i in df.instructions] == ["from", "cmd"]


def test_split_words_keeps_quotes() -> None:
    assert split_words("a='b c' d=\"e f\" g\\ h", "\\") == ["a='b c'", 'd="e f"', "g\\ h"]


# No leading "-": "--" ends an instruction's flags (Docker's parser does the same).
_word = st.from_regex(r"[a-z0-9/._][a-z0-9/._-]{0,7}", fullmatch=True)


@st.composite
def _instructions(draw: st.DrawFn) -> Instruction:
    kind = draw(st.sampled_from(["run", "cmd", "copy", "env", "expose", "workdir"]))
    words = draw(st.lists(_word, min_size=2, max_size=4))
    if kind in ("run", "cmd"):
        text = " ".join(words)
        return Instruction(kind, (text,), line=0, original=f"{kind.upper()} {text}")
    if kind == "env":
        text = " ".join(f"K{i}={w}" for i, w in enumerate(words))
        args = tuple(x for i, w in enumerate(words) for x in (f"K{i}", w))
        return Instruction(kind, args, line=0, original=f"ENV {text}")
    if kind == "workdir":
        return Instruction(kind, (words[0],), line=0, original=f"WORKDIR {words[0]}")
    return Instruction(kind, tuple(words), line=0, original=f"{kind.upper()} {' '.join(words)}")


@given(st.lists(_instructions(), max_size=6), st.sampled_from(["\\", "`"]))
def test_parse_render_round_trip(instructions: list[Instruction], escape: str) -> None:
    df = Dockerfile(instructions=tuple(instructions), escape=escape)
    back = parse(render(df))
    start = 2 if escape != "\\" else 1
    assert back.escape == escape
    assert [(i.keyword, i.args) for i in back.instructions] == [
        (i.keyword, i.args) for i in instructions
    ]
    assert [i.line for i in back.instructions] == list(range(start, start + len(instructions)))


@given(st.text(max_size=200))
def test_parse_never_raises_other_errors(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        parse(text)
