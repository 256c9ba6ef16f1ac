"""Tests for deploy/busybox_tar.py (the busybox base image tarball) and deploy/mkbusybox."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("busybox_tar", DEPLOY / "busybox_tar.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


busybox_tar = _load()

try:
    BUSYBOX: Path | None = busybox_tar.find_busybox()
except busybox_tar.BusyboxError:
    BUSYBOX = None

needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="busybox-static not installed")


def _build() -> bytes:
    assert BUSYBOX is not None
    buf = io.BytesIO()
    busybox_tar.write_busybox_tar(buf, busybox=BUSYBOX)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tar_bytes() -> bytes:
    if BUSYBOX is None:
        pytest.skip("busybox-static not installed")
    return _build()


@pytest.fixture(scope="module")
def members(tar_bytes: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(tar_bytes: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@needs_busybox
def test_busybox_tar_has_static_binary_and_shell_link(
    tar_bytes: bytes, members: dict[str, tarfile.TarInfo]
) -> None:
    assert BUSYBOX is not None
    binary = members["bin/busybox"]
    assert binary.isreg()
    assert binary.mode == 0o755
    assert _read(tar_bytes, "bin/busybox") == BUSYBOX.read_bytes()
    for applet in ("bin/sh", "bin/sleep", "usr/bin/env", "bin/true"):
        assert members[applet].issym()
        assert members[applet].linkname == "/bin/busybox"


@needs_busybox
def test_busybox_tar_has_an_entry_per_applet(members: dict[str, tarfile.TarInfo]) -> None:
    assert BUSYBOX is not None
    listed = subprocess.run(
        [str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert set(listed) <= set(members)


@needs_busybox
def test_busybox_tar_directories_and_tmp_mode(members: dict[str, tarfile.TarInfo]) -> None:
    for name in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "home", "dev", "proc", "sys"):
        assert members[name].isdir()
        assert members[name].mode == 0o755
    for name in ("run", "var/log", "root"):
        assert members[name].isdir()
    assert members["tmp"].isdir()
    assert members["tmp"].mode == 0o1777


@needs_busybox
def test_busybox_tar_etc_files(tar_bytes: bytes) -> None:
    passwd = _read(tar_bytes, "etc/passwd").decode().splitlines()
    assert passwd[0] == "root:x:0:0:root:/root:/bin/sh"
    assert "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" in passwd
    assert any(line.startswith("www-data:x:33:33:") for line in passwd)
    assert any(line.startswith("daemon:x:1:1:") for line in passwd)
    group = {line.split(":")[0]: line for line in _read(tar_bytes, "etc/group").decode().split()}
    assert group["nogroup"] == "nogroup:x:65534:"
    assert {"root", "daemon", "www-data"} <= set(group)
    assert _read(tar_bytes, "etc/hostname") == b""


@needs_busybox
def test_busybox_tar_owned_by_root_with_fixed_mtime(members: dict[str, tarfile.TarInfo]) -> None:
    for info in members.values():
        assert (info.uid, info.gid) == (0, 0)
        assert info.mtime == busybox_tar.MTIME
        assert not info.name.startswith(("/", "./"))
        assert ".." not in info.name.split("/")


@needs_busybox
def test_busybox_tar_parents_come_before_children(tar_bytes: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        seen: set[str] = set()
        for info in tar.getmembers():
            parent = info.name.rpartition("/")[0]
            assert not parent or parent in seen
            seen.add(info.name)


@needs_busybox
def test_busybox_tar_two_runs_identical(tar_bytes: bytes) -> None:
    assert _build() == tar_bytes


def test_busybox_tar_dynamic_binary_refused() -> None:
    with pytest.raises(busybox_tar.BusyboxError, match="statically linked"):
        busybox_tar.write_busybox_tar(io.BytesIO(), busybox=Path(sys.executable).resolve())


def test_busybox_tar_missing_binary_refused(tmp_path: Path) -> None:
    with pytest.raises(busybox_tar.BusyboxError, match="busybox-static"):
        busybox_tar.write_busybox_tar(io.BytesIO(), busybox=tmp_path / "nope")


@needs_busybox
def test_mkbusybox_script_writes_the_same_tar(tmp_path: Path, tar_bytes: bytes) -> None:
    out = tmp_path / "busybox.tar"
    script = DEPLOY / "mkbusybox"
    assert os.access(script, os.X_OK)
    subprocess.run([sys.executable, str(script), str(out)], check=True)
    assert out.read_bytes() == tar_bytes
    piped = subprocess.run([sys.executable, str(script), "-"], check=True, capture_output=True)
    assert piped.stdout == tar_bytes
