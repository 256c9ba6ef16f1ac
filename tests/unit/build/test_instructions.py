from __future__ import annotations

from typing import Any

import pytest

from supervisor.build.dockerfile import DockerfileParseError, parse, parse_line
from supervisor.build.instructions import (
    apply_metadata,
    build_arg_prefix,
    created_by,
    heredoc_text,
    parse_duration,
    run_argv,
    stage_env,
)


def _apply(
    text: str, cfg: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    return apply_metadata(parse_line(text, line=3), cfg or {}, env or {})


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('CMD ["a", "b"]', "Cmd", ["a", "b"]),
        ("CMD echo $HOME", "Cmd", ["/bin/sh", "-c", "echo $HOME"]),
        ("ENTRYPOINT top -b", "Entrypoint", ["/bin/sh", "-c", "top -b"]),
        ("WORKDIR /a/b/../c", "WorkingDir", "/a/c"),
        ("USER ${U:-app}", "User", "app"),
        ("EXPOSE 80 53/UDP", "ExposedPorts", {"80/tcp": {}, "53/udp": {}}),
        ("VOLUME /data /logs", "Volumes", {"/data": {}, "/logs": {}}),
        ('VOLUME ["/data"]', "Volumes", {"/data": {}}),
        ("STOPSIGNAL SIGKILL", "StopSignal", "SIGKILL"),
        ('SHELL ["/bin/bash", "-c"]', "Shell", ["/bin/bash", "-c"]),
        ("ONBUILD RUN echo hi", "OnBuild", ["RUN echo hi"]),
        ("HEALTHCHECK NONE", "Healthcheck", {"Test": ["NONE"]}),
        (
            "HEALTHCHECK --interval=1m30s --retries=2 CMD true",
            "Healthcheck",
            {"Test": ["CMD-SHELL", "true"], "Interval": 90 * 10**9, "Retries": 2},
        ),
    ],
)
def test_apply_metadata_table(text: str, key: str, value: object) -> None:
    assert _apply(text)[key] == value


def test_apply_metadata_env_sees_earlier_pairs_and_args() -> None:
    cfg = _apply('ENV A=1 B="$A $V" C=${A:+x}', env={"V": "arg"})
    assert cfg["Env"] == ["A=1", "B=1 arg", "C=x"]
    cfg = _apply("ENV A=2", cfg)
    assert cfg["Env"] == ["B=1 arg", "C=x", "A=2"]


def test_apply_metadata_relative_workdir_and_label() -> None:
    cfg = _apply("WORKDIR sub", {"WorkingDir": "/app"})
    assert cfg["WorkingDir"] == "/app/sub"
    assert _apply('LABEL "a b"="c d" e=$X', env={"X": "y"})["Labels"] == {"a b": "c d", "e": "y"}


def test_apply_metadata_keeps_input() -> None:
    cfg: dict[str, Any] = {"Env": ["A=1"]}
    _apply("ENV A=2", cfg)
    assert cfg == {"Env": ["A=1"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
        ("ONBUILD FROM x", "FROM isn't allowed"),
        ("EXPOSE abc", "invalid containerPort"),
        ("HEALTHCHECK --interval=5x CMD true", "invalid duration"),
        ("CMD --foo=1 x", "Unknown flag: foo"),
        ("USER ${A", "line 3"),
    ],
)
def test_apply_metadata_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileParseError, match=message):
        _apply(text)


def test_run_argv_forms() -> None:
    assert run_argv(parse_line('RUN ["echo", "a"]', line=1), {}) == ["echo", "a"]
    assert run_argv(parse_line("RUN echo a", line=1), {"Shell": ["/bin/bash", "-c"]}) == [
        "/bin/bash",
        "-c",
        "echo a",
    ]


def test_created_by_wording() -> None:
    assert created_by(parse_line("RUN echo a", line=1), {}) == "/bin/sh -c echo a"
    assert (
        created_by(parse_line("CMD x", line=1), {}, 'CMD ["x"]') == '/bin/sh -c #(nop)  CMD ["x"]'
    )
    assert build_arg_prefix({"b": "2", "a": "1"}) == "|2 a=1 b=2 "
    assert build_arg_prefix({}) == ""


@pytest.mark.parametrize(
    ("text", "detail", "expected"),
    [
        ("USER 1", "USER 1", "/bin/sh -c #(nop)  USER 1"),
        ("ARG A=1", "ARG A=1", "/bin/sh -c #(nop)  ARG A=1"),
        ("WORKDIR /w", "WORKDIR /w", "/bin/sh -c #(nop) WORKDIR /w"),
        ("COPY a /b", "COPY sha256:x in /b ", "/bin/sh -c #(nop) COPY sha256:x in /b "),
        ("ADD a /b", "ADD sha256:x in /b ", "/bin/sh -c #(nop) ADD sha256:x in /b "),
    ],
    ids=["user", "arg", "workdir", "copy", "add"],
)
def test_created_by_nop_spacing_as_classic_builder(text: str, detail: str, expected: str) -> None:
    # dockerd 20.10: two spaces after #(nop) but for WORKDIR, COPY and ADD.
    assert created_by(parse_line(text, line=1), {}, detail) == expected


def test_stage_env_env_wins_over_args() -> None:
    assert stage_env({"Env": ["A=env"]}, {"A": "arg", "B": "b"}) == {"A": "env", "B": "b"}


def test_parse_duration() -> None:
    line = parse_line("CMD x", line=1)
    assert parse_duration(line, "1h2m3s") == 3723 * 10**9
    assert parse_duration(line, "500ms") == 5 * 10**8
    with pytest.raises(DockerfileParseError):
        parse_duration(line, "")


def test_heredoc_text_unquoted_delimiter_expands_stage_env() -> None:
    ins = parse('FROM x\nCOPY <<EOF /f\nhome=$HOME "$HOME"\nEOF\n').instructions[1]
    assert heredoc_text(ins, ins.heredocs[0], {"HOME": "/root"}) == 'home=/root "/root"\n'


@pytest.mark.parametrize("delimiter", ['"EOF"', "'EOF'"], ids=["double", "single"])
def test_heredoc_text_quoted_delimiter_keeps_body(delimiter: str) -> None:
    ins = parse(f"FROM x\nCOPY <<{delimiter} /f\n$HOME \\$x\nEOF\n").instructions[1]
    assert heredoc_text(ins, ins.heredocs[0], {"HOME": "/root"}) == "$HOME \\$x\n"


def test_heredoc_text_bad_substitution_names_line() -> None:
    ins = parse("FROM x\n\nADD <<EOF /f\n${X\nEOF\n").instructions[1]
    with pytest.raises(DockerfileParseError, match="line 3"):
        heredoc_text(ins, ins.heredocs[0], {})
