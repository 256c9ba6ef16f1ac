"""What each Dockerfile instruction does to a build's state, without touching files. Pure.

Theory of operation: a build stage is a run config (the image config's ``config``) plus
the ARG scope. The functions here take an :class:`~supervisor.build.dockerfile.Instruction`
and the current values and return the new ones: :func:`apply_metadata` for the
instructions that change the config (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, WORKDIR (the
builder also makes its directory), USER, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL,
ONBUILD, MAINTAINER), :func:`run_argv` for RUN's command line, :func:`heredoc_text` for
the files COPY/ADD heredocs make, and :func:`created_by` for the history text (Docker's
classic builder wording: ``/bin/sh -c #(nop)  CMD ["sh"]``), which is also what the
layer cache keys on. Substitution follows Docker's per-instruction rules
(``expand.EXPANDING``): the stage's environment, where ENV wins over ARG. Errors are
DockerfileParseError (400) naming the line. Never imports I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from supervisor.build.dockerfile import DockerfileParseError, Heredoc, Instruction
from supervisor.build.expand import env_map, process_heredoc, process_word
from supervisor.errors import InvalidArgument

DEFAULT_SHELL = ("/bin/sh", "-c")
# Docker's predefined ARGs: usable without a declaration, never in the image history.
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    }
)  # fmt: skip
ALLOWED_FLAGS: dict[str, frozenset[str]] = {
    "from": frozenset({"platform"}),
    "copy": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "add": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "run": frozenset({"mount", "network", "security"}),
    "healthcheck": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def check_flags(ins: Instruction) -> None:
    allowed = ALLOWED_FLAGS.get(ins.keyword, frozenset())
    for name, _ in ins.flags:
        if name not in allowed:
            raise DockerfileParseError(ins.line, f"Unknown flag: {name}")


def expand(ins: Instruction, word: str, env: Mapping[str, str], escape: str) -> str:
    try:
        return process_word(word, env, escape=escape)
    except InvalidArgument as exc:
        raise DockerfileParseError(ins.line, str(exc)) from None


def heredoc_text(ins: Instruction, doc: Heredoc, env: Mapping[str, str]) -> str:
    """The file a COPY/ADD heredoc makes: its body with the stage's variables
    substituted, or as written when the delimiter is quoted (``<<"EOF"``, ``<<'EOF'``),
    as BuildKit's dockerfile frontend does (the classic builder has no heredocs)."""
    if not doc.expand:
        return doc.content
    try:
        return process_heredoc(doc.content, env)
    except InvalidArgument as exc:
        raise DockerfileParseError(ins.line, str(exc)) from None


def stage_env(config: Mapping[str, Any], args: Mapping[str, str]) -> dict[str, str]:
    """The variables substitution sees: ARGs in scope, overridden by the config's Env."""
    return {**args, **env_map(list(config.get("Env") or []))}


def parse_duration(ins: Instruction, text: str) -> int:
    """A Go duration (``30s``, ``1m30s``) in nanoseconds."""
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise DockerfileParseError(ins.line, f'time: invalid duration "{text}"')
    return total


def _set_env(env: list[str], key: str, value: str) -> list[str]:
    out = [e for e in env if e.partition("=")[0] != key]
    return [*out, f"{key}={value}"]


def _command(ins: Instruction, shell: list[str]) -> list[str]:
    if ins.json:
        return list(ins.args)
    return [*shell, ins.args[0]] if ins.args else []


def apply_metadata(
    ins: Instruction,
    config: dict[str, Any],
    env: Mapping[str, str],
    *,
    escape: str = "\\",
) -> dict[str, Any]:
    """The run config after a metadata-only instruction (a new dict; ``config`` is kept).

    ``env`` is what substitution sees (:func:`stage_env`).
    """
    check_flags(ins)
    cfg: dict[str, Any] = json.loads(json.dumps(config))
    shell = list(cfg.get("Shell") or DEFAULT_SHELL)
    k = ins.keyword

    def x(word: str) -> str:
        return expand(ins, word, env, escape)

    if k == "cmd":
        cfg["Cmd"] = _command(ins, shell)
    elif k == "entrypoint":
        cfg["Entrypoint"] = _command(ins, shell) or None
    elif k == "shell":
        if not ins.args:
            raise DockerfileParseError(ins.line, "SHELL requires at least one argument")
        cfg["Shell"] = list(ins.args)
    elif k in ("env", "label"):
        pairs = list(zip(ins.args[::2], ins.args[1::2], strict=True))
        if k == "env":
            env_list = list(cfg.get("Env") or [])
            scope = dict(env)
            for key, raw in pairs:
                name, value = x(key), expand(ins, raw, scope, escape)
                scope[name] = value
                env_list = _set_env(env_list, name, value)
            cfg["Env"] = env_list
        else:
            labels = dict(cfg.get("Labels") or {})
            for key, raw in pairs:
                labels[x(key)] = x(raw)
            cfg["Labels"] = labels
    elif k == "expose":
        ports = dict(cfg.get("ExposedPorts") or {})
        for word in ins.args:
            for port in x(word).split():
                number, _, proto = port.partition("/")
                if not number or not all(p.isdigit() for p in number.split("-")):
                    raise DockerfileParseError(ins.line, f"invalid containerPort: {number}")
                ports[f"{number}/{(proto or 'tcp').lower()}"] = {}
        cfg["ExposedPorts"] = ports
    elif k == "workdir":
        path = x(ins.args[0])
        if not path.startswith("/"):
            path = (cfg.get("WorkingDir") or "/").rstrip("/") + "/" + path
        cfg["WorkingDir"] = _clean(path)
    elif k == "user":
        cfg["User"] = x(ins.args[0])
    elif k == "volume":
        volumes = dict(cfg.get("Volumes") or {})
        for word in ins.args:
            for v in x(word).split() if not ins.json else [x(word)]:
                if not v:
                    raise DockerfileParseError(
                        ins.line, "VOLUME specified can not be an empty string"
                    )
                volumes[v] = {}
        cfg["Volumes"] = volumes
    elif k == "stopsignal":
        cfg["StopSignal"] = x(ins.args[0])
    elif k == "onbuild":
        trigger = ins.args[0]
        first = trigger.split(None, 1)[0].upper()
        if first in ("ONBUILD", "FROM", "MAINTAINER"):
            message = (
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
                if first == "ONBUILD"
                else f"{first} isn't allowed as an ONBUILD trigger"
            )
            raise DockerfileParseError(ins.line, message)
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), trigger]
    elif k == "healthcheck":
        cfg["Healthcheck"] = _healthcheck(ins, shell)
    elif k == "maintainer":
        pass  # recorded as the image's author by the builder
    else:  # pragma: no cover - the builder sends only metadata instructions here
        raise DockerfileParseError(ins.line, f"{k.upper()} is not a metadata instruction")
    return cfg


def _healthcheck(ins: Instruction, shell: list[str]) -> dict[str, Any]:
    if ins.args[0] == "NONE":
        return {"Test": ["NONE"]}
    hc: dict[str, Any] = {
        "Test": ["CMD", *ins.args[1:]] if ins.json else ["CMD-SHELL", ins.args[1]]
    }
    del shell
    for flag, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        value = ins.flag(flag)
        if value is not None:
            hc[key] = parse_duration(ins, value)
    retries = ins.flag("retries")
    if retries is not None:
        if not retries.isdigit():
            raise DockerfileParseError(ins.line, f"invalid retries: {retries}")
        hc["Retries"] = int(retries)
    return hc


def _clean(path: str) -> str:
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/" + "/".join(parts)


def run_argv(ins: Instruction, config: Mapping[str, Any]) -> list[str]:
    """RUN's command line: the exec form as written, the shell form through SHELL.

    Heredocs: ``RUN <<EOF`` alone runs the body as the script; otherwise the shell gets
    the text with the bodies, and reads them as its own heredocs.
    """
    shell = list(config.get("Shell") or DEFAULT_SHELL)
    if ins.json:
        return list(ins.args)
    text = ins.args[0]
    if ins.heredocs:
        rest = text
        for doc in ins.heredocs:
            rest = re.sub(r"<<-?(['\"]?)" + re.escape(doc.name) + r"\1", "", rest, count=1)
        if not rest.strip() and len(ins.heredocs) == 1:
            return [*shell, ins.heredocs[0].content]
        text = text + "\n" + "".join(d.content + d.name + "\n" for d in ins.heredocs)
    return [*shell, text]


def created_by(ins: Instruction, config: Mapping[str, Any], detail: str = "") -> str:
    """The history entry's ``created_by``, as Docker's classic builder writes it."""
    shell = " ".join(config.get("Shell") or DEFAULT_SHELL)
    if ins.keyword == "run":
        argv = run_argv(ins, config)
        return " ".join(argv) if ins.json else f"{shell} {argv[-1]}"
    text = detail or ins.original
    # The classic builder's commit comment is ``[*shell, "#(nop) ", text]`` joined with
    # spaces (two after ``#(nop)``), except WORKDIR, COPY and ADD, whose comment is one
    # string ``"#(nop) " + text`` (one space).
    gap = " " if ins.keyword in ("workdir", "copy", "add") else "  "
    return f"{shell} #(nop){gap}{text}"


def build_arg_prefix(run_args: Mapping[str, str]) -> str:
    """Docker's ``|N a=1 b=2`` prefix of a RUN's history when build args are in scope."""
    if not run_args:
        return ""
    items = sorted(run_args.items())
    return f"|{len(items)} " + " ".join(f"{k}={v}" for k, v in items) + " "


def parse_arg(ins: Instruction, word: str) -> tuple[str, str | None]:
    name, eq, default = word.partition("=")
    if not name:
        raise DockerfileParseError(ins.line, "ARG names can not be blank")
    return name, (default if eq else None)
