"""Tests for supervisor.containers.overlay on real directories: the upper-dir walk, the
overlay-style lookup in lower layers, and Docker's size count."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.containers.changes import Kind, Node
from supervisor.containers.overlay import Lowers, container_changes, scan_upper, tree_size
from supervisor.images.unpack import OPAQUE_XATTR

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="whiteouts (mknod) and trusted.* xattrs need root"
)


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    os.setxattr(path, OPAQUE_XATTR, b"y")


def write(path: Path, data: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


def test_scan_upper_missing_dir_is_empty(tmp_path: Path) -> None:
    assert scan_upper(tmp_path / "nope") == []
    assert tree_size(tmp_path / "nope") == 0


def test_scan_upper_never_follows_symlinks(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    (upper / "link").symlink_to("/")
    entries = {e.path: e for e in scan_upper(upper)}
    assert set(entries) == {"/d", "/link"}
    assert entries["/link"].node is Node.OTHER and entries["/d"].node is Node.DIR


def test_lowers_merge_like_overlay(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    write(bottom / "etc" / "passwd")
    write(bottom / "etc" / "group")
    write(top / "etc" / "hosts")
    write(bottom / "lib" / "x")
    (top / "lib").mkdir()
    write(top / "opt")  # a file in the top layer hides the bottom's directory
    write(bottom / "opt" / "tool")
    (bottom / "usr").mkdir()
    (top / "usr").symlink_to("/", target_is_directory=True)
    lowers = Lowers([top, bottom])
    assert lowers.lookup("/etc/passwd") is not None
    assert lowers.lookup("/etc/hosts") is not None
    assert lowers.children("/etc") == ["group", "hosts", "passwd"]
    assert lowers.lookup("/lib/x") is not None
    entry = lowers.lookup("/opt")
    assert entry is not None and not entry.is_dir
    assert lowers.lookup("/opt/tool") is None
    assert lowers.lookup("/usr/bin") is None  # never through the top layer's link
    assert lowers.lookup("/missing") is None and lowers.children("/missing") == []


@needs_root
def test_lowers_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    write(bottom / "etc" / "passwd")
    write(bottom / "etc" / "group")
    (top / "etc").mkdir(parents=True)
    whiteout(top / "etc" / "group")
    write(bottom / "home" / "old")
    write(top / "home" / "new")
    opaque(top / "home")
    lowers = Lowers([top, bottom])
    assert lowers.lookup("/etc/group") is None
    assert lowers.children("/etc") == ["passwd"]
    assert lowers.lookup("/home/old") is None
    assert lowers.children("/home") == ["new"]


@needs_root
def test_container_changes_end_to_end(tmp_path: Path) -> None:
    image, upper = tmp_path / "layer", tmp_path / "upper"
    write(image / "etc" / "passwd")
    write(image / "etc" / "group")
    write(image / "home" / "user" / "notes")
    (image / "proc").mkdir()
    write(upper / "etc" / "passwd", "changed")
    whiteout(upper / "etc" / "group")
    write(upper / "etc" / "hosts")  # a runtime mount point: not a change
    (upper / "proc").mkdir()
    (upper / "home").mkdir()
    opaque(upper / "home")
    write(upper / "srv" / "new")
    found = [(c.path, c.kind) for c in container_changes(upper, [image])]
    assert found == [
        ("/etc", Kind.MODIFIED),
        ("/etc/group", Kind.DELETED),
        ("/etc/passwd", Kind.MODIFIED),
        ("/home", Kind.MODIFIED),
        ("/home/user", Kind.DELETED),
        ("/srv", Kind.ADDED),
        ("/srv/new", Kind.ADDED),
    ]


def test_tree_size_counts_files_and_links_once(tmp_path: Path) -> None:
    write(tmp_path / "a", "12345")
    write(tmp_path / "d" / "b", "123")
    os.link(tmp_path / "a", tmp_path / "d" / "hard")
    (tmp_path / "link").symlink_to("abc")  # a symlink counts its target's length
    (tmp_path / "empty").mkdir()
    assert tree_size(tmp_path) == 5 + 3 + 3
