"""The command table, the fast argv parser, and its agreement with cyclopts."""

from __future__ import annotations

import functools

import pytest
from cyclopts import App
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.app import build_app, parse_with_cyclopts
from cli.argspec import (
    FLAG,
    INT,
    LIST,
    MANY,
    ONE,
    OPTIONAL,
    REST,
    SPECS,
    STR,
    Parsed,
    insert_rest_delimiter,
    parse_argv,
)


@functools.cache
def _app() -> App:
    return build_app()


def cyclopts_parse(argv: list[str]) -> Parsed | int:
    return parse_with_cyclopts(argv, app=_app())


def test_run_options_before_image_belong_to_run_after_to_the_command() -> None:
    parsed = parse_argv(["run", "--rm", "-e", "A=1", "busybox", "sh", "-c", "echo hi", "-d"])
    assert parsed is not None
    assert parsed.command == "run"
    assert parsed.args == ["busybox", "sh", "-c", "echo hi", "-d"]
    assert parsed.flag("rm") is True
    assert parsed.flag("detach") is False
    assert parsed.texts("env") == ["A=1"]


def test_combined_short_flags_and_values() -> None:
    parsed = parse_argv(["run", "-dit", "--name=web", "-m", "64m", "-c", "512", "busybox"])
    assert parsed is not None
    assert (parsed.flag("detach"), parsed.flag("interactive"), parsed.flag("tty")) == (
        True,
        True,
        True,
    )
    assert parsed.text("name") == "web"
    assert parsed.text("memory") == "64m"
    assert parsed.number("cpu_shares") == 512


def test_value_may_start_with_a_dash_like_pflag() -> None:
    parsed = parse_argv(["run", "--memory-swap", "-1", "--entrypoint", "", "busybox"])
    assert parsed is not None
    assert parsed.text("memory_swap") == "-1"
    assert parsed.text("entrypoint") == ""


def test_double_dash_ends_options() -> None:
    parsed = parse_argv(["run", "--rm", "--", "busybox", "--rm"])
    assert parsed is not None
    assert parsed.args == ["busybox", "--rm"]
    assert parsed.flag("rm") is True


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["run"],
        ["run", "--help"],
        ["run", "--bogus", "busybox"],
        ["run", "--rm=true", "busybox"],
        ["run", "-eA=1", "busybox"],
        ["run", "--name", "a", "--name", "b", "busybox"],
        ["run", "-c", "x", "busybox"],
        ["run", "-e"],
        ["stop"],
        ["logs", "a", "b"],
        ["tag", "a"],
        ["ps", "extra"],
        ["container"],
    ],
    ids=lambda argv: " ".join(argv) or "empty",
)
def test_fast_parser_declines_what_cyclopts_must_judge(argv: list[str]) -> None:
    assert parse_argv(argv) is None


def test_aliases_map_to_commands_with_presets() -> None:
    assert parse_argv(["container", "ls", "-a"]) == parse_argv(["ps", "-a"])
    parsed = parse_argv(["image", "inspect", "busybox"])
    assert parsed is not None
    assert (parsed.command, parsed.text("type")) == ("inspect", "image")
    parsed = parse_argv(["image", "rm", "-f", "busybox"])
    assert parsed is not None
    assert parsed.command == "rmi"


def test_insert_rest_delimiter_for_cyclopts() -> None:
    spec = SPECS["run"]
    assert insert_rest_delimiter(spec, ["-d", "busybox", "ls", "-l"]) == [
        "-d",
        "busybox",
        "--",
        "ls",
        "-l",
    ]
    assert insert_rest_delimiter(spec, ["-e", "X", "-m64m", "bb"]) == [
        "-e",
        "X",
        "-m64m",
        "bb",
        "--",
    ]
    assert insert_rest_delimiter(spec, ["--name", "a", "--", "bb", "x"]) == [
        "--name",
        "a",
        "bb",
        "--",
        "x",
    ]
    assert insert_rest_delimiter(SPECS["ps"], ["-a"]) == ["-a"]


def test_cyclopts_agrees_on_examples() -> None:
    for argv in (
        ["run", "--rm", "-e", "A=1", "-e", "B", "busybox", "sh", "-c", "x", "-d"],
        ["run", "-dit", "--restart", "on-failure:3", "-l", "a=b", "busybox"],
        ["create", "--name", "x", "-h", "host", "--pids-limit", "-1", "busybox", "true"],
        ["ps", "-aq", "--filter", "status=exited", "-n", "3"],
        ["logs", "-f", "--tail", "10", "web"],
        ["stop", "-t", "3", "a", "b"],
        ["import", "-", "busybox:latest", "-c", "CMD sh"],
        ["image", "ls", "-q"],
        ["container", "inspect", "a"],
        ["tag", "a", "b:1"],
        ["version"],
        ["pull", "-aq", "busybox"],
        ["image", "push", "--quiet", "localhost:5000/a:1"],
        ["login", "-u", "bob", "--password-stdin", "localhost:5000"],
        ["logout"],
        ["search", "--limit", "3", "-f", "is-official=true", "--no-trunc", "busybox"],
        ["commit", "-a", "me", "-m", "msg", "-c", "CMD sh", "-c", "ENV A=1", "web", "app:1"],
        ["container", "commit", "-p", "web"],
        ["save", "-o", "x.tar", "a", "b"],
        ["image", "load", "-qi", "x.tar"],
        ["export", "--output", "x.tar", "web"],
        ["history", "-H", "--no-trunc", "-q", "busybox"],
        ["image", "prune", "-af", "--filter", "until=24h"],
        ["container", "prune", "--force"],
    ):
        fast = parse_argv(argv)
        assert fast is not None, argv
        assert cyclopts_parse(argv) == fast, argv


def test_flags_that_default_to_true_turn_off_with_false() -> None:
    parsed = parse_argv(["commit", "web"])
    assert parsed is not None
    assert parsed.flag("pause") is True
    assert parse_argv(["commit", "--pause=false", "web"]) is None  # cyclopts' job
    for argv in (["commit", "--pause=false", "web"], ["commit", "-p=false", "web"]):
        parsed_slow = cyclopts_parse(argv)
        assert isinstance(parsed_slow, Parsed)
        assert parsed_slow.flag("pause") is False
    slow = cyclopts_parse(["history", "--human=false", "busybox"])
    assert isinstance(slow, Parsed)
    assert (slow.command, slow.flag("human")) == ("history", False)


def test_group_only_commands() -> None:
    parsed = parse_argv(["image", "prune", "-a"])
    assert parsed is not None
    assert (parsed.command, parsed.flag("all"), parsed.flag("force")) == (
        "image prune",
        True,
        False,
    )
    parsed = parse_argv(["container", "prune", "-f"])
    assert parsed is not None
    assert parsed.command == "container prune"
    assert parse_argv(["image prune"]) is None
    assert parse_argv(["prune"]) is None
    assert parse_argv(["image", "prune", "extra"]) is None
    for group, verb, command in (
        ("image", "pull", "pull"),
        ("image", "push", "push"),
        ("image", "save", "save"),
        ("image", "load", "load"),
        ("image", "history", "history"),
        ("image", "import", "import"),
        ("image", "tag", "tag"),
        ("image", "rm", "rmi"),
        ("image", "inspect", "inspect"),
        ("container", "export", "export"),
        ("container", "commit", "commit"),
    ):
        args = {"load": [], "tag": ["a", "b"], "import": ["-", "a"]}.get(verb, ["x"])
        found = parse_argv([group, verb, *args])
        assert found is not None, (group, verb)
        assert found.command == command


def test_cyclopts_knows_group_only_commands(capfd: pytest.CaptureFixture[str]) -> None:
    assert cyclopts_parse(["image", "prune", "--help"]) == 0
    assert "Remove unused images" in capfd.readouterr().out
    assert cyclopts_parse(["image prune"]) == 2
    assert cyclopts_parse(["image", "prune", "x"]) == 2
    err = capfd.readouterr().err.splitlines()
    assert err[-1].endswith("See 'berth image prune --help'.")


def test_cyclopts_usage_errors_are_one_line_with_exit_codes(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert cyclopts_parse(["run", "--bogus", "busybox"]) == 125
    assert cyclopts_parse(["ps", "--bogus"]) == 2
    assert cyclopts_parse(["stop"]) == 2
    assert cyclopts_parse(["nope"]) == 2
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("berth: Unknown option: --bogus.")
    assert lines[0].endswith("See 'berth run --help'.")
    assert (
        lines[2] == "berth: \"berth stop\" requires at least 1 argument. See 'berth stop --help'."
    )
    assert lines[3].startswith("berth: unknown command: berth nope.")


def test_cyclopts_help_returns_zero(capfd: pytest.CaptureFixture[str]) -> None:
    assert cyclopts_parse(["run", "--help"]) == 0
    assert "--restart-max-delay" in capfd.readouterr().out


SAFE_WORD = st.from_regex(r"[a-z0-9][a-z0-9=:./_]{0,8}", fullmatch=True)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(sorted(SPECS)))
    spec = SPECS[name]
    opts = draw(st.lists(st.sampled_from(spec.opts), max_size=6)) if spec.opts else []
    argv = name.split()  # "image prune" is reached through its group
    used: set[str] = set()
    for opt in opts:
        if opt.kind != LIST and opt.dest in used:
            continue
        used.add(opt.dest)
        spelling = draw(st.sampled_from(opt.names))
        if opt.kind == FLAG:
            argv.append(spelling)
        else:
            value = str(draw(st.integers(-5, 500))) if opt.kind == INT else draw(SAFE_WORD)
            if spelling.startswith("--") and draw(st.booleans()):
                argv.append(f"{spelling}={value}")
            else:
                argv += [spelling, value]
    for arg in spec.args:
        if arg.kind == ONE:
            argv.append(draw(SAFE_WORD))
        elif arg.kind == OPTIONAL:
            argv += draw(st.lists(SAFE_WORD, max_size=1))
        elif arg.kind == MANY:
            argv += draw(st.lists(SAFE_WORD, min_size=1, max_size=3))
        elif arg.kind == REST:
            argv += draw(
                st.lists(st.sampled_from(["ls", "-l", "--rm", "-d", "x=1", "--"]), max_size=4)
            )
    return argv


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(command_lines())
def test_fast_parser_matches_cyclopts(argv: list[str]) -> None:
    fast = parse_argv(argv)
    assert fast is not None, argv
    assert cyclopts_parse(argv) == fast


def test_every_option_kind_is_known() -> None:
    for spec in SPECS.values():
        for opt in spec.opts:
            assert opt.kind in (FLAG, STR, INT, LIST)
            assert all(n.startswith("-") for n in opt.names)


def test_network_volume_and_port_commands_parse_alike() -> None:
    for argv in (
        ["network", "create", "-d", "bridge", "--subnet", "10.9.0.0/24", "--internal", "n"],
        ["network", "create", "--label", "a=b", "-o", "x=y", "--attachable", "n"],
        ["network", "ls", "-q", "-f", "driver=bridge", "--no-trunc"],
        ["network", "list", "--format", "{{.Name}}"],
        ["network", "inspect", "-f", "{{.Id}}", "-v", "a", "b"],
        ["network", "rm", "-f", "a", "b"],
        ["network", "remove", "a"],
        ["network", "prune", "-f", "--filter", "until=1h"],
        ["network", "connect", "--ip", "10.0.0.2", "--alias", "a", "--alias", "b", "n", "c"],
        ["network", "disconnect", "-f", "n", "c"],
        ["volume", "create", "--label", "a=b", "-o", "type=tmpfs", "-d", "local", "v"],
        ["volume", "create"],
        ["volume", "ls", "-q", "-f", "dangling=true"],
        ["volume", "inspect", "-f", "{{.Name}}", "v"],
        ["volume", "rm", "-f", "v", "w"],
        ["volume", "prune", "-af", "--filter", "label=x"],
        ["port", "web"],
        ["port", "web", "80/tcp"],
        ["container", "port", "web", "80"],
        ["inspect", "--type", "network", "n"],
        [
            "run", "-p", "8080:80", "-P", "--expose", "90", "--network", "n", "--network-alias",
            "a", "--ip", "10.0.0.3", "--mac-address", "02:42:ac:11:00:02", "--add-host", "h:1.2.3.4",
            "--dns", "8.8.8.8", "--dns-search", "x.org", "--dns-option", "ndots:1",
            "--domainname", "d", "-v", "/a:/b", "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/run",
            "--volumes-from", "c", "--read-only", "busybox", "ls", "-v",
        ],
    ):  # fmt: skip
        fast = parse_argv(argv)
        assert fast is not None, argv
        assert cyclopts_parse(argv) == fast, argv


def test_run_repeatable_network_and_storage_flags() -> None:
    parsed = parse_argv(
        ["run", "-p", "80", "--publish", "81", "-v", "/a", "--volume", "/b", "--net", "x", "bb"]
    )
    assert parsed is not None
    assert parsed.texts("publish") == ["80", "81"]
    assert parsed.texts("volume") == ["/a", "/b"]
    assert parsed.texts("network") == ["x"]
    assert parsed.args == ["bb"]


def test_group_help_lists_network_and_volume_commands(capfd: pytest.CaptureFixture[str]) -> None:
    assert cyclopts_parse(["--help"]) == 0
    top = capfd.readouterr().out
    assert "Manage networks" in top
    assert "Manage volumes" in top
    assert "List port mappings" in top
    assert cyclopts_parse(["network", "--help"]) == 0
    text = capfd.readouterr().out
    for verb in ("connect", "create", "disconnect", "inspect", "ls", "prune", "rm"):
        assert f" {verb} " in text, verb
    assert cyclopts_parse(["volume", "--help"]) == 0
    text = capfd.readouterr().out
    for verb in ("create", "inspect", "ls", "prune", "rm"):
        assert f" {verb} " in text, verb


def test_network_commands_usage_errors(capfd: pytest.CaptureFixture[str]) -> None:
    assert parse_argv(["network", "create"]) is None
    assert cyclopts_parse(["network", "create"]) == 2
    assert parse_argv(["network", "connect", "n"]) is None
    assert parse_argv(["port"]) is None
    assert parse_argv(["port", "a", "b", "c"]) is None
    capfd.readouterr()
