"""The image store's filesystem helpers."""

from __future__ import annotations

import array
import fcntl
import os
from pathlib import Path

from supervisor.images import store


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, store._FS_IOC_GETFLAGS, flags, True)
        return int(flags[0])
    finally:
        os.close(fd)


def test_spread_subdirectories_sets_topdir_where_the_filesystem_has_it(tmp_path: Path) -> None:
    spread = store.spread_subdirectories(tmp_path)
    if spread:  # ext2/3/4: the flag is there, and setting it twice is harmless
        assert _flags(tmp_path) & store._FS_TOPDIR_FL
        assert store.spread_subdirectories(tmp_path)


def test_spread_subdirectories_missing_directory_is_false(tmp_path: Path) -> None:
    assert store.spread_subdirectories(tmp_path / "missing") is False
