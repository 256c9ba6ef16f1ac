"""Typed access to decoded JSON and docker image references.

Theory of operation:
    API answers are decoded JSON, typed ``object``: these accessors check
    the shape and fall back to a default instead of trusting the daemon.
    The reference helpers split ``name[:tag][@digest]`` the way docker's
    ``reference`` package does for the cases the CLI needs.

    Pure module, stdlib only, and cheap to import: ``berth run`` uses it.
"""

from __future__ import annotations


def get_str(obj: object, key: str, default: str = "") -> str:
    """``obj[key]`` if ``obj`` is a dict and the value is a string, else ``default``."""
    if isinstance(obj, dict):
        value = obj.get(key)
        if isinstance(value, str):
            return value
    return default


def get_int(obj: object, key: str, default: int = 0) -> int:
    """``obj[key]`` as an int (JSON numbers), else ``default``."""
    if isinstance(obj, dict):
        value = obj.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return default


def get_list(obj: object, key: str) -> list[object]:
    """``obj[key]`` if it is a list, else ``[]``."""
    if isinstance(obj, dict):
        value = obj.get(key)
        if isinstance(value, list):
            return value
    return []


def get_dict(obj: object, key: str) -> dict[str, object]:
    """``obj[key]`` if it is an object, else ``{}``."""
    if isinstance(obj, dict):
        value = obj.get(key)
        if isinstance(value, dict):
            return value
    return {}


def split_reference(ref: str) -> tuple[str, str]:
    """Split ``name[:tag]`` (a registry port is not a tag); the tag may be ""."""
    name, _, _digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, ""


def normalize_reference(ref: str) -> str:
    """Add ``:latest`` when a reference has neither tag nor digest (docker's TagNameOnly)."""
    if "@" in ref:
        return ref
    _, tag = split_reference(ref)
    return ref if tag else f"{ref}:latest"
