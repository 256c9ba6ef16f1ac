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

    Networking (``--network``, ``-p``, ``--expose``, DNS, hosts) comes from
    ``cli.netopts`` and storage (``-v``, ``--mount``, ``--tmpfs``) from
    ``cli.mounts``; both are imported only when such a flag is given, so a
    plain ``berth run`` stays cheap.  Fields docker always sends are sent
    here too (``PortBindings: {}``, ``Dns: []``, the ``default`` endpoint),
    those it leaves out when empty (``ExposedPorts``, ``Mounts``, ``Tmpfs``)
    are left out.

    Host facts (the environment for bare ``-e KEY``, the contents of env
    files, the working directory relative bind sources start from) are
    parameters.  Invalid values raise ``InvalidArgument`` with docker's
    wording: ``invalid argument "V" for "FLAG" flag: ...`` where docker
    checks the value as the flag is parsed, the bare message where docker
    checks it afterwards (``invalid containerPort: x``).
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


def _security_opt(value: str) -> str:
    """``seccomp=<file>`` is sent as the file's contents, as the docker CLI does."""
    key, sep, path = value.partition("=")
    if key != "seccomp" or not sep or path == "unconfined":
        return value
    try:
        with open(path, encoding="utf-8") as f:
            return f"seccomp={f.read()}"
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {exc}") from None


def _device(value: str) -> dict[str, str]:
    """``--device host[:container][:permissions]`` (the docker CLI's ``parseDevice``)."""
    parts = value.split(":")
    host, inside, perms = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if parts[1] and not set(parts[1]) - set("rwm"):
            perms = parts[1]
        else:
            inside = parts[1]
    elif len(parts) == 3:
        inside, perms = parts[1], parts[2]
    if len(parts) > 3 or not host or not inside or not perms or set(perms) - set("rwm"):
        raise _flag_error(
            "--device", value, InvalidArgument(f"invalid device specification: {value}")
        )
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}


def _ulimit(value: str) -> dict[str, object]:
    """``--ulimit name=soft[:hard]`` (go-units ``ParseUlimit``)."""
    name, sep, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        if not sep or not name:
            raise ValueError
        numbers = int(soft), int(hard or soft)
    except ValueError:
        message = InvalidArgument(f"invalid ulimit argument: {value}")
        raise _flag_error("--ulimit", value, message) from None
    return {"Name": name, "Soft": numbers[0], "Hard": numbers[1]}


def _flag_error(flag: str, value: str, exc: InvalidArgument) -> InvalidArgument:
    import json  # already loaded by the client; Go's %q for the value

    quoted = json.dumps(value, ensure_ascii=False)
    return InvalidArgument(f'invalid argument {quoted} for "{flag}" flag: {exc}')


def build_create_body(
    parsed: Parsed,
    *,
    environ: Mapping[str, str],
    read_file: Callable[[str], bytes],
    cwd: str = "",
) -> dict[str, object]:
    """The JSON body for ``POST /containers/create`` (the name goes in the query).

    Args:
        parsed: a ``run`` or ``create`` command line.
        environ: where bare ``-e KEY`` and env-file ``KEY`` lines take values.
        read_file: reads an ``--env-file``; raises ``InvalidArgument`` or ``OSError``.
        cwd: the directory ``./relative`` bind sources are resolved against
            ("" leaves them relative).

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
        "Privileged": parsed.flag("privileged"),
        "CapAdd": parsed.texts("cap_add") or None,
        "CapDrop": parsed.texts("cap_drop") or None,
        "SecurityOpt": [_security_opt(o) for o in parsed.texts("security_opt")] or None,
        "Ulimits": [_ulimit(u) for u in parsed.texts("ulimit")] or None,
        "Sysctls": parse_kv(parsed.texts("sysctl")) or None,
        "ShmSize": _sized(parsed, "shm_size", "--shm-size", parse_size),
        "OomScoreAdj": parsed.number("oom_score_adj") or 0,
        "PidMode": parsed.text("pid") or "",
        "IpcMode": parsed.text("ipc") or "",
        "UTSMode": parsed.text("uts") or "",
        "GroupAdd": parsed.texts("group_add") or None,
        "Devices": [_device(d) for d in parsed.texts("device")],
        "CpusetCpus": parsed.text("cpuset_cpus") or "",
        "CpusetMems": parsed.text("cpuset_mems") or "",
        "MemoryReservation": _sized(
            parsed, "memory_reservation", "--memory-reservation", parse_size
        ),
        "NetworkMode": "default",
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
        "Domainname": parsed.text("domainname") or "",
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
    healthcheck = _healthcheck(parsed)
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    on_failure = parsed.text("health_on_failure")
    if on_failure:
        host["HealthOnFailure"] = on_failure  # berth's extension; the daemon validates it
    _add_storage(parsed, body, host, cwd=cwd)
    _add_networking(parsed, body, host)
    return body


def _validated(parsed: Parsed, dest: str, flag: str, check: Callable[[str], str]) -> list[str]:
    """A repeatable flag's values through one of docker's flag validators."""
    out: list[str] = []
    for value in parsed.texts(dest):
        try:
            out.append(check(value))
        except InvalidArgument as exc:
            raise _flag_error(flag, value, exc) from None
    return out


def _add_storage(
    parsed: Parsed, body: dict[str, object], host: dict[str, object], *, cwd: str
) -> None:
    """``-v``, ``--mount``, ``--tmpfs``, ``--volumes-from``, ``--read-only``."""
    volumes = parsed.texts("volume")
    mounts = parsed.texts("mount")
    tmpfs = parsed.texts("tmpfs")
    binds: list[str] = []
    anonymous: dict[str, dict[str, object]] = {}
    if volumes or mounts or tmpfs:
        from cli.mounts import parse_mount, parse_tmpfs, split_volumes

        host["Mounts"] = [_mount(value, parse_mount, cwd) for value in mounts]
        binds, anonymous = split_volumes(volumes, cwd=cwd)
        host["Tmpfs"] = parse_tmpfs(tmpfs)
        for key in ("Mounts", "Tmpfs"):
            if not host[key]:
                del host[key]  # omitempty in docker's HostConfig
    body["Volumes"] = anonymous
    host["Binds"] = binds or None
    host["VolumesFrom"] = parsed.texts("volumes_from") or None
    host["ReadonlyRootfs"] = parsed.flag("read_only")


def _mount(
    value: str, parse: Callable[[str, str], dict[str, object]], cwd: str
) -> dict[str, object]:
    try:
        return parse(value, cwd)
    except InvalidArgument as exc:
        raise _flag_error("--mount", value, exc) from None


def _add_networking(parsed: Parsed, body: dict[str, object], host: dict[str, object]) -> None:
    """``--network``, ``-p``/``-P``, ``--expose``, ``--add-host``, DNS, ``--ip``, ``--mac-address``."""
    from cli import netopts

    host["ExtraHosts"] = (
        _validated(parsed, "add_host", "--add-host", netopts.check_extra_host) or None
    )
    host["Dns"] = _validated(parsed, "dns", "--dns", netopts.check_ip)
    host["DnsSearch"] = _validated(parsed, "dns_search", "--dns-search", netopts.check_dns_search)
    host["DnsOptions"] = parsed.texts("dns_option")
    mac = parsed.text("mac_address") or ""
    if mac:
        netopts.check_mac(mac)
    exposed, bindings = netopts.publish(parsed.texts("publish"))
    exposed.extend(netopts.expose(parsed.texts("expose")))
    if exposed:
        body["ExposedPorts"] = {key: {} for key in dict.fromkeys(exposed)}
    host["PortBindings"] = bindings
    host["PublishAllPorts"] = parsed.flag("publish_all")
    mode, endpoints = netopts.endpoints(
        parsed.texts("network"),
        aliases=parsed.texts("network_alias"),
        ip=parsed.text("ip") or "",
        mac=mac,
    )
    host["NetworkMode"] = mode
    # API < 1.44 reads the container-wide MAC; docker copies the endpoint's there.
    main = endpoints.get(mode)
    mac = str(main["MacAddress"]) if main is not None else mac
    if mac:
        body["MacAddress"] = mac
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}


def _sized(parsed: Parsed, dest: str, flag: str, parse: Callable[[str], int]) -> int:
    value = parsed.text(dest)
    if value is None:
        return 0
    try:
        return parse(value)
    except InvalidArgument as exc:
        raise _flag_error(flag, value, exc) from None


_HEALTH_FIELDS = (  # docker's order of the "cannot be negative" checks
    ("health_interval", "--health-interval", "Interval"),
    ("health_timeout", "--health-timeout", "Timeout"),
    ("health_retries", "--health-retries", "Retries"),
    ("health_start_period", "--health-start-period", "StartPeriod"),
    ("health_start_interval", "--health-start-interval", "StartInterval"),
)


def _healthcheck(parsed: Parsed) -> dict[str, object] | None:
    """``Config.Healthcheck`` from the ``--health-*`` flags, as docker 28 builds it: only
    the fields given (``omitempty``), ``--health-cmd`` as ``CMD-SHELL``, and
    ``--no-healthcheck`` as ``Test: ["NONE"]``; ``None`` when no flag asks for one."""
    values: dict[str, int] = {}
    for dest, flag, key in _HEALTH_FIELDS:
        if dest == "health_retries":
            values[key] = parsed.number(dest) or 0
            continue
        text = parsed.text(dest)
        try:
            values[key] = parse_duration_ns(text) if text is not None else 0
        except InvalidArgument as exc:
            raise _flag_error(flag, text or "", exc) from None
    command = parsed.text("health_cmd") or ""
    if parsed.flag("no_healthcheck"):
        if command or any(values.values()):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not command and not any(values.values()):
        return None
    for _dest, flag, key in _HEALTH_FIELDS:
        if values[key] < 0:
            raise InvalidArgument(f"{flag} cannot be negative")
    check: dict[str, object] = {"Test": ["CMD-SHELL", command]} if command else {}
    check.update((key, values[key]) for _d, _f, key in _HEALTH_FIELDS if values[key])
    return check


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
