"""berthd's configuration: flags (dockerd's names) over a TOML file over defaults."""

from __future__ import annotations

import argparse
import tomllib
import uuid
from pathlib import Path

import attrs

from supervisor.errors import InvalidArgument

DEFAULT_CONFIG = Path("/etc/berth/daemon.toml")


@attrs.frozen
class DaemonConfig:
    hosts: tuple[str, ...] = ("unix:///run/berth/berth.sock",)
    data_root: Path = Path("/var/lib/berth")
    exec_root: Path = Path("/run/berth")
    runtime: str = "auto"
    log_level: str = "info"
    log_format: str = "auto"
    pidfile: Path | None = None
    group: str = ""
    events_retention_count: int = 100_000
    events_retention_days: float = 30.0
    insecure_registries: tuple[str, ...] = ()  # plain HTTP allowed (loopback always is)
    restart_delay_s: float | None = None  # None: Docker's 100 ms
    restart_max_delay_s: float | None = None  # None: Docker's 1 min
    daemon_id: str = ""
    bip: str = "10.213.0.1/20"  # the default bridge's gateway address and subnet
    bridge: str = "berth0"  # the default bridge's interface; "none" disables it
    address_pools: tuple[str, ...] = ("10.213.0.0/16",)  # carved into /24 user networks

    def socket_paths(self) -> list[Path]:
        out = []
        for host in self.hosts:
            if not host.startswith("unix://"):
                raise InvalidArgument(f"unsupported host {host!r}: only unix:// sockets are served")
            out.append(Path(host[len("unix://") :]))
        return out


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    p = argparse.ArgumentParser(prog="berthd", description="berth container engine daemon")
    p.add_argument(
        "-H", "--host", action="append", dest="hosts", help="socket to listen on (unix://PATH)"
    )
    p.add_argument(
        "--data-root", type=Path, help="root of persistent state (default /var/lib/berth)"
    )
    p.add_argument("--exec-root", type=Path, help="root of runtime state (default /run/berth)")
    p.add_argument("--runtime", help="OCI runtime: auto, crun, runc or a path (default auto)")
    p.add_argument(
        "--log-level", "-l", choices=["debug", "info", "warn", "warning", "error", "fatal"]
    )
    p.add_argument("--log-format", choices=["json", "console", "auto"])
    p.add_argument("--pidfile", "-p", type=Path)
    p.add_argument("--group", "-G", help="group that may use the socket")
    p.add_argument(
        "--insecure-registry",
        action="append",
        dest="insecure_registries",
        help="registry reached over plain HTTP (host[:port] or CIDR); loopback always is",
    )
    p.add_argument("--bip", help="default bridge gateway and subnet (default 10.213.0.1/20)")
    p.add_argument("--bridge", "-b", help="default bridge interface name (default berth0)")
    p.add_argument(
        "--default-address-pool",
        action="append",
        dest="address_pools",
        help="base=CIDR,size=N pool for user-defined networks (default base=10.213.0.0/16,size=24)",
    )
    p.add_argument(
        "--config-file", type=Path, default=None, help=f"TOML config (default {DEFAULT_CONFIG})"
    )
    ns = p.parse_args(argv)
    file_values: dict[str, object] = {}
    config_path = ns.config_file or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if config_path is not None:
        try:
            file_values = tomllib.loads(Path(config_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            p.error(f"cannot read config file {config_path}: {exc}")
    events = file_values.get("events") if isinstance(file_values.get("events"), dict) else {}
    assert isinstance(events, dict)
    restart = file_values.get("restart") if isinstance(file_values.get("restart"), dict) else {}
    assert isinstance(restart, dict)
    try:
        restart_delay = parse_duration(restart["delay"]) if "delay" in restart else None
        restart_max = parse_duration(restart["max-delay"]) if "max-delay" in restart else None
    except ValueError as exc:
        p.error(f"config file {config_path}: [restart] {exc}")

    def pick(flag: object, key: str, default: object) -> object:
        return flag if flag is not None else file_values.get(key, default)

    d = DaemonConfig()
    data_root = Path(str(pick(ns.data_root, "data-root", d.data_root)))
    return DaemonConfig(
        hosts=tuple(ns.hosts or file_values.get("hosts") or d.hosts),  # type: ignore[arg-type]
        data_root=data_root,
        exec_root=Path(str(pick(ns.exec_root, "exec-root", d.exec_root))),
        runtime=str(pick(ns.runtime, "runtime", d.runtime)),
        log_level=str(pick(ns.log_level, "log-level", d.log_level)),
        log_format=str(pick(ns.log_format, "log-format", d.log_format)),
        pidfile=Path(str(pick(ns.pidfile, "pidfile", "")))
        if pick(ns.pidfile, "pidfile", None)
        else None,
        group=str(pick(ns.group, "group", "")),
        events_retention_count=int(events.get("retention-count", d.events_retention_count)),
        events_retention_days=float(events.get("retention-days", d.events_retention_days)),
        insecure_registries=tuple(
            str(r)
            for r in (ns.insecure_registries or _list(file_values.get("insecure-registries")))
        ),
        restart_delay_s=restart_delay,
        restart_max_delay_s=restart_max,
        daemon_id=_daemon_id(data_root),
        bip=str(pick(ns.bip, "bip", d.bip)),
        bridge=str(pick(ns.bridge, "bridge", d.bridge)),
        address_pools=tuple(
            _pool_text(x)
            for x in (ns.address_pools or _list(file_values.get("default-address-pools")))
        )
        or d.address_pools,
    )


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: object) -> float:
    """A Go-style duration ("100ms", "1m30s") in seconds. Raises ValueError."""
    import re

    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid duration {text!r}")
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _pool_text(value: object) -> str:
    """A pool as ``base=CIDR,size=N``, from a flag or a TOML table ``{base, size}``."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except OSError:
        return str(uuid.uuid4())
