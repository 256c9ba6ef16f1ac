"""``cli.main``: global options, exit codes and one-line errors."""

from __future__ import annotations

import pytest

from cli.main import main, split_global_options


@pytest.mark.parametrize(
    ("argv", "host", "rest"),
    [
        (["-H", "unix:///a.sock", "ps"], "unix:///a.sock", ["ps"]),
        (["--host", "unix:///b", "ps", "-a"], "unix:///b", ["ps", "-a"]),
        (["--host=unix:///c", "ps"], "unix:///c", ["ps"]),
        (["-Hunix:///d", "ps"], "unix:///d", ["ps"]),
        (["ps", "-H", "x"], None, ["ps", "-H", "x"]),
        (["-h"], None, ["--help"]),
    ],
)
def test_split_global_options(argv: list[str], host: str | None, rest: list[str]) -> None:
    result = split_global_options(argv)
    assert not isinstance(result, str)
    options, remaining = result
    assert (options.host, remaining) == (host, rest)


def test_host_flag_without_value_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["-H"]) == 2
    assert capfd.readouterr().err == "berth: flag needs an argument: -H. See 'berth --help'.\n"


def test_version_flag(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capfd.readouterr().out == "berth version 0.1.0\n"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["run", "--bogus", "busybox"], 125),
        (["create"], 125),
        (["ps", "--bogus"], 2),
        (["nope"], 2),
        (["run", "-m", "lots", "busybox"], 125),
        (["ps", "--filter", "status"], 2),
    ],
)
def test_usage_errors_exit_code_and_single_line(
    argv: list[str], code: int, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["-H", "unix:///nonexistent.sock", *argv]) == code
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("berth: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["version", "-f", "{{.Client.Version"],
        ["ps", "--format", "table {{.ID}"],
        ["images", "--format", "{{nope}}"],
        ["inspect", "-f", "{{if}}", "x"],
    ],
)
def test_bad_template_fails_before_contacting_the_daemon(
    argv: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["-H", "unix:///nonexistent.sock", *argv]) == 1
    err = capfd.readouterr().err
    assert err.startswith("template parsing error: template: :1: ")
    assert err.count("\n") == 1


def test_help_exits_zero(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Usage: berth COMMAND" in capfd.readouterr().out
