"""The host's name-resolution files (``/etc/hosts``, ``/etc/resolv.conf``): the I/O
edge that feeds their text to the PURE ``network/etc.py``."""

from __future__ import annotations

from pathlib import Path

HOSTS = "/etc/hosts"
RESOLV_CONF = "/etc/resolv.conf"


def read_host_file(path: str) -> str:
    """The text of a host file; ``""`` when it is missing or unreadable, which the
    callers treat as "the host says nothing" (Docker's defaults then apply)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""
