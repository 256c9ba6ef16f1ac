"""The body of ``POST /containers/create`` from ``run``/``create`` flags.

Theory of operation:
    ``build_create_body`` maps the parsed flags onto the Engine API's
    ``ContainerConfig`` + ``HostConfig`` the way docker's CLI does
    (``cli/command/container/opts.go``): unset strings are ``""``, unset
    pointers (``PidsLimit``, ``Init``) are ``null``, ``--entrypoint ""``
    resets the image's entrypoint to ``[""]``, env files come before ``-e``
    values, and a detached run attaches nothing.  berth's restart backoff
    flags add ``Delay``/``MaxDelay`` (integer nanoseconds) to the restart
    policy.

    Host facts (the environment for bare ``-e KEY``, the contents of env
    files) are parameters.  Invalid values raise ``InvalidArgument`` with
    docker's wording, naming the flag.
"""

from __future__ import annotations

from cli.units import (
    InvalidArgument,
    parse_cpus,
    parse_duration_ns,
    parse_env,
    parse_env_file,
    parse_kv,
    parse_labels,
    parse_memory_swap,
    parse_restart_policy,
    parse_size,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cli.argspec import Parsed


def _flag_error(flag: str, value: str, exc: InvalidArgument) -> InvalidArgument:
    return InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: {exc}')


def build_create_body(
    parsed: Parsed,
    *,
    environ: Mapping[str, str],
    read_file: Callable[[str], bytes],
) -> dict[str, object]:
    """The JSON body for ``POST /containers/create`` (the name goes in the query).

    Args:
        parsed: a ``run`` or ``create`` command line.
        environ: where bare ``-e KEY`` and env-file ``KEY`` lines take values.
        read_file: reads an ``--env-file``; raises ``InvalidArgument`` or ``OSError``.

    Raises:
        InvalidArgument: a flag value docker would reject.
    """
    image = parsed.args[0]
    command = parsed.args[1:]
    detach = "detach" in parsed.opts and parsed.flag("detach")
    interactive = parsed.flag("interactive")

    env: list[str] = []
    for path in parsed.texts("env_file"):
        env.extend(parse_env_file(read_file(path), environ=environ, name=path))
    env.extend(parse_env(parsed.texts("env"), environ=environ))

    entrypoint: list[str] | None = None
    entry = parsed.text("entrypoint")
    if entry is not None:
        entrypoint = [entry]  # docker does not split it: "--entrypoint ''" gives [""]

    host: dict[str, object] = {
        "AutoRemove": parsed.flag("rm"),
        "RestartPolicy": _restart_policy(parsed),
        "Memory": _sized(parsed, "memory", "-m, --memory", parse_size),
        "MemorySwap": _sized(parsed, "memory_swap", "--memory-swap", parse_memory_swap),
        "NanoCpus": _sized(parsed, "cpus", "--cpus", parse_cpus),
        "CpuShares": parsed.number("cpu_shares") or 0,
        "PidsLimit": parsed.number("pids_limit"),
        "Init": True if parsed.flag("init") else None,
        "NetworkMode": parsed.text("network") or "default",
        "LogConfig": {
            "Type": parsed.text("log_driver") or "json-file",
            "Config": parse_kv(parsed.texts("log_opt")),
        },
    }
    policy = host["RestartPolicy"]
    assert isinstance(policy, dict)
    if parsed.flag("rm") and policy["Name"] not in ("", "no"):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")

    try:
        labels = parse_labels(parsed.texts("label"))
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid argument for -l, --label flag: {exc}") from None

    body: dict[str, object] = {
        "Hostname": parsed.text("hostname") or "",
        "Domainname": "",
        "User": parsed.text("user") or "",
        "AttachStdin": interactive and not detach,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "Tty": parsed.flag("tty"),
        "OpenStdin": interactive,
        "StdinOnce": interactive and not detach,
        "Env": env,
        "Cmd": command or None,
        "Image": image,
        "WorkingDir": parsed.text("workdir") or "",
        "Entrypoint": entrypoint,
        "Labels": labels,
        "HostConfig": host,
    }
    stop_signal = parsed.text("stop_signal")
    if stop_signal:
        body["StopSignal"] = stop_signal
    stop_timeout = parsed.number("stop_timeout")
    if stop_timeout is not None:
        body["StopTimeout"] = stop_timeout
    return body


def _sized(parsed: Parsed, dest: str, flag: str, parse: Callable[[str], int]) -> int:
    value = parsed.text(dest)
    if value is None:
        return 0
    try:
        return parse(value)
    except InvalidArgument as exc:
        raise _flag_error(flag, value, exc) from None


def _restart_policy(parsed: Parsed) -> dict[str, object]:
    text = parsed.text("restart") or ""
    try:
        policy = parse_restart_policy(text)
    except InvalidArgument as exc:
        raise _flag_error("--restart", text, exc) from None
    for dest, flag, key in (
        ("restart_delay", "--restart-delay", "Delay"),
        ("restart_max_delay", "--restart-max-delay", "MaxDelay"),
    ):
        value = parsed.text(dest)
        if value is None:
            continue
        try:
            nanos = parse_duration_ns(value)
        except InvalidArgument as exc:
            raise _flag_error(flag, value, exc) from None
        if nanos < 0:
            raise InvalidArgument(
                f'invalid argument "{value}" for "{flag}" flag: must not be negative'
            )
        policy[key] = nanos
    return policy
