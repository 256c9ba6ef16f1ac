"""Apply ``--change`` Dockerfile instructions (``import -c``, later ``commit -c``) to an
image's run config. Pure.

Supported as Docker's import: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
VOLUME, WORKDIR, STOPSIGNAL. Shell forms become ``["/bin/sh", "-c", ...]``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

from supervisor.errors import InvalidArgument

ALLOWED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
)


def _json_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    rest = rest.strip()
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidArgument(f"{what}: {exc}") from None
    if words and "=" not in words[0]:
        # Legacy form: ENV KEY value with spaces (buildkit's parseNameVal)
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise InvalidArgument(f"{what} must have two arguments")
        return [(parts[0], parts[1])]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidArgument(
                f"{what} names can not be blank"
                if not key
                else f"{what} requires key=value: {word}"
            )
        out.append((key, value))
    return out


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``config`` (an image's ``config`` object) with ``changes`` applied."""
    out: dict[str, Any] = json.loads(json.dumps(config))
    for change in changes:
        change = change.strip()
        if not change:
            continue
        word, _, rest = change.partition(" ")
        instruction = word.upper()
        if instruction not in ALLOWED:
            raise InvalidArgument(f"{word} is not a valid change command")
        if instruction == "CMD":
            out["Cmd"] = _json_or_shell(rest)
        elif instruction == "ENTRYPOINT":
            out["Entrypoint"] = _json_or_shell(rest)
        elif instruction == "ENV":
            env = list(out.get("Env") or [])
            for key, value in _pairs(rest, "ENV"):
                # moby's dispatchEnv: replace the first entry with this key in place, or append
                keys = [e.split("=", 1)[0] for e in env]
                if key in keys:
                    env[keys.index(key)] = f"{key}={value}"
                else:
                    env.append(f"{key}={value}")
            out["Env"] = env
        elif instruction == "LABEL":
            labels = dict(out.get("Labels") or {})
            labels.update(_pairs(rest, "LABEL"))
            out["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            out["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            vols = dict(out.get("Volumes") or {})
            for v in _json_or_shell(rest) if rest.strip().startswith("[") else rest.split():
                vols[v] = {}
            out["Volumes"] = vols
        elif instruction == "USER":
            out["User"] = rest.strip()
        elif instruction == "WORKDIR":
            out["WorkingDir"] = rest.strip()
        elif instruction == "STOPSIGNAL":
            out["StopSignal"] = rest.strip()
        elif instruction == "ONBUILD":
            out["OnBuild"] = [*(out.get("OnBuild") or []), rest.strip()]
    return out
