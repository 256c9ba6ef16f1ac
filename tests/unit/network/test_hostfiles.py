"""Tests for supervisor.network.hostfiles."""

from __future__ import annotations

from pathlib import Path

from supervisor.network.hostfiles import read_host_file


def test_read_host_file_returns_the_text(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.1\n")
    assert read_host_file(str(path)) == "nameserver 192.0.2.1\n"


def test_read_host_file_missing_is_empty(tmp_path: Path) -> None:
    assert read_host_file(str(tmp_path / "absent")) == ""
