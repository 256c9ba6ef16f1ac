"""Tests for supervisor.volumes.copyup on real directories in tmp_path: what is copied,
and that neither a hostile image nor a planted link leads outside the two trees."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.volumes.copyup import CopyUpError, copy_up, open_dir_in_root, tree_size


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "var" / "lib" / "app" / "sub").mkdir(parents=True)
    (r / "var" / "lib" / "app" / "conf").write_text("conf\n")
    (r / "var" / "lib" / "app" / "sub" / "deep").write_bytes(b"x" * 70000)
    os.chmod(r / "var" / "lib" / "app" / "conf", 0o640)
    os.chmod(r / "var" / "lib" / "app", 0o750)
    os.symlink("/etc/shadow", r / "var" / "lib" / "app" / "abs-link")
    os.symlink("../../../..", r / "var" / "lib" / "app" / "up-link")
    os.mkfifo(r / "var" / "lib" / "app" / "fifo")
    return r


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    v = tmp_path / "volumes" / "data" / "_data"
    v.mkdir(parents=True)
    return v


def read_dir(fd: int) -> list[str]:
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def test_copy_up_copies_files_dirs_links_and_metadata(root: Path, volume: Path) -> None:
    assert copy_up(root, "/var/lib/app", volume) is True
    assert sorted(os.listdir(volume)) == ["abs-link", "conf", "fifo", "sub", "up-link"]
    assert (volume / "conf").read_text() == "conf\n"
    assert stat.S_IMODE((volume / "conf").stat().st_mode) == 0o640
    assert (volume / "sub" / "deep").read_bytes() == b"x" * 70000
    assert os.readlink(volume / "abs-link") == "/etc/shadow"  # copied as a link, not followed
    assert os.readlink(volume / "up-link") == "../../../.."
    assert stat.S_ISFIFO(os.lstat(volume / "fifo").st_mode)
    assert stat.S_IMODE(volume.stat().st_mode) == 0o750  # the directory's own mode too
    assert tree_size(volume.parent) == 5 + 70000


def test_copy_up_only_into_an_empty_volume(root: Path, volume: Path) -> None:
    (volume / "mine").write_text("kept")
    assert copy_up(root, "/var/lib/app", volume) is False
    assert os.listdir(volume) == ["mine"]


@pytest.mark.parametrize("path", ["/nowhere", "/var/lib/app/conf"], ids=["missing", "a-file"])
def test_copy_up_nothing_to_copy(root: Path, volume: Path, path: str) -> None:
    assert copy_up(root, path, volume) is False
    assert os.listdir(volume) == []


def test_open_dir_in_root_resolves_links_inside_the_root(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("no")
    os.symlink(str(tmp_path / "outside"), root / "escape")  # absolute: restarts at the root
    os.symlink("../../../../../../..", root / "var" / "dotdot")
    os.symlink("/var/lib/app", root / "data")
    fd = open_dir_in_root(root, "/data")
    assert fd is not None and read_dir(fd) == sorted(os.listdir(root / "var" / "lib" / "app"))
    assert open_dir_in_root(root, "/escape") is None  # <root>/<tmp>/outside does not exist
    fd = open_dir_in_root(root, "/var/dotdot")  # ".." stops at the root
    assert fd is not None and read_dir(fd) == sorted(os.listdir(root))
    fd = open_dir_in_root(root, "/var/lib/app/up-link/var/lib")  # clamped at the root
    assert fd is not None and read_dir(fd) == ["app"]


def test_open_dir_in_root_link_loop_is_an_error(root: Path) -> None:
    os.symlink("/loop", root / "loop")
    with pytest.raises(CopyUpError, match="too many levels"):
        open_dir_in_root(root, "/loop")


def test_copy_up_never_writes_through_a_link_in_the_volume(
    root: Path, volume: Path, tmp_path: Path
) -> None:
    # A container sharing the volume plants a link where the copy will create "conf":
    # the volume is no longer empty, so nothing is copied at all.
    target = tmp_path / "victim"
    target.write_text("safe")
    os.symlink(str(target), volume / "conf")
    assert copy_up(root, "/var/lib/app", volume) is False
    assert target.read_text() == "safe"
