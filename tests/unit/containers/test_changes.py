"""Tests for supervisor.containers.changes: upper-dir entries → Docker's A/C/D list."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.changes import (
    Change,
    Kind,
    LowerEntry,
    Node,
    UpperEntry,
    compute_changes,
    sort_key,
)

DIR = LowerEntry(is_dir=True, mode=0o755)
FILE = LowerEntry(is_dir=False, mode=0o644)
# The image: /etc (passwd, group), /bin/sh, /home (a, b), /var/log as a file.
IMAGE: dict[str, LowerEntry] = {
    "/etc": DIR,
    "/etc/passwd": FILE,
    "/etc/group": FILE,
    "/bin": DIR,
    "/bin/sh": FILE,
    "/home": DIR,
    "/home/a": DIR,
    "/home/b": FILE,
    "/var": DIR,
    "/var/log": FILE,
}


def children(path: str) -> list[str]:
    prefix = path.rstrip("/") + "/"
    return sorted(
        p[len(prefix) :] for p in IMAGE if p.startswith(prefix) and "/" not in p[len(prefix) :]
    )


def changes(*entries: UpperEntry) -> list[tuple[str, Kind]]:
    found = compute_changes(entries, lower=IMAGE.get, lower_children=children)
    return [(c.path, c.kind) for c in found]


def d(path: str, *, opaque: bool = False, mode: int = 0o755) -> UpperEntry:
    return UpperEntry(path, Node.DIR, opaque=opaque, mode=mode)


def f(path: str) -> UpperEntry:
    return UpperEntry(path, Node.OTHER, mode=0o644)


def wh(path: str) -> UpperEntry:
    return UpperEntry(path, Node.WHITEOUT)


def test_modified_file_marks_its_parent_changed() -> None:
    assert changes(d("/etc"), f("/etc/passwd")) == [
        ("/etc", Kind.MODIFIED),
        ("/etc/passwd", Kind.MODIFIED),
    ]


def test_new_directory_tree_is_added_under_a_changed_parent() -> None:
    assert changes(
        d("/srv"), d("/srv/www"), f("/srv/www/index.html"), d("/etc"), f("/etc/new")
    ) == [
        ("/etc", Kind.MODIFIED),
        ("/etc/new", Kind.ADDED),
        ("/srv", Kind.ADDED),
        ("/srv/www", Kind.ADDED),
        ("/srv/www/index.html", Kind.ADDED),
    ]


def test_whiteout_is_deleted() -> None:
    assert changes(d("/etc"), wh("/etc/group")) == [
        ("/etc", Kind.MODIFIED),
        ("/etc/group", Kind.DELETED),
    ]


def test_opaque_directory_is_changed_and_hides_its_lower_children() -> None:
    assert changes(d("/home", opaque=True), f("/home/b")) == [
        ("/home", Kind.MODIFIED),
        ("/home/a", Kind.DELETED),
        ("/home/b", Kind.MODIFIED),
    ]


def test_directory_copied_up_on_the_way_down_is_not_reported_alone() -> None:
    assert changes(d("/home"), d("/home/a")) == []


def test_directory_with_new_mode_is_changed() -> None:
    assert changes(d("/home", mode=0o700)) == [("/home", Kind.MODIFIED)]


def test_directory_replacing_a_lower_file_is_added() -> None:
    assert changes(d("/var"), d("/var/log"), f("/var/log/x")) == [
        ("/var", Kind.MODIFIED),
        ("/var/log", Kind.ADDED),
        ("/var/log/x", Kind.ADDED),
    ]


def test_file_replacing_a_lower_directory_is_changed() -> None:
    assert changes(d("/home"), f("/home/a")) == [
        ("/home", Kind.MODIFIED),
        ("/home/a", Kind.MODIFIED),
    ]


def test_init_layer_mount_points_never_show() -> None:
    # What runc makes for every container: /proc, /sys, /dev and the /etc bind targets.
    made = [
        d("/proc"),
        d("/sys"),
        d("/dev"),
        d("/etc"),
        f("/etc/hosts"),
        f("/etc/hostname"),
        f("/etc/resolv.conf"),
    ]
    assert changes(*made) == []
    assert changes(*made, f("/etc/passwd")) == [
        ("/etc", Kind.MODIFIED),
        ("/etc/passwd", Kind.MODIFIED),
    ]


def test_init_dir_missing_from_the_image_is_not_added() -> None:
    # an image without /etc: Docker's init layer has one, so only what is below shows
    assert (
        compute_changes(
            [d("/etc"), f("/etc/hosts")], lower=lambda p: None, lower_children=lambda p: []
        )
        == []
    )


def test_order_is_component_by_component() -> None:
    paths = ["/a-b", "/a/b", "/a", "/a.c"]
    assert sorted(paths, key=sort_key) == ["/a", "/a/b", "/a-b", "/a.c"]


def test_to_api() -> None:
    assert Change("/x", Kind.DELETED).to_api() == {"Path": "/x", "Kind": 2}


_names = st.sampled_from(["etc", "home", "a", "b", "x", "new"])
_paths = st.lists(_names, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))


def _tree(paths: Iterable[str]) -> list[UpperEntry]:
    """An upper dir holding ``paths`` as files, with their parent directories."""
    entries: dict[str, UpperEntry] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            entries.setdefault(parent, d(parent))
        entries.setdefault(path, f(path))
    files = [e for e in entries.values() if e.node is Node.OTHER]
    # a path can't be both a directory and a file: keep the directory
    return [e for e in entries.values() if e.node is Node.DIR] + [
        e for e in files if not any(o.path.startswith(e.path + "/") for o in entries.values())
    ]


@given(st.lists(_paths, max_size=8))
def test_every_change_has_its_parents_reported(paths: list[str]) -> None:
    found = compute_changes(_tree(paths), lower=IMAGE.get, lower_children=children)
    reported = {c.path for c in found}
    assert [c.path for c in found] == sorted(reported, key=sort_key)
    for c in found:
        parent = c.path.rsplit("/", 1)[0]
        if parent:
            assert parent in reported


@pytest.mark.parametrize("kind", list(Kind))
def test_kind_values_are_dockers(kind: Kind) -> None:
    assert {Kind.MODIFIED: 0, Kind.ADDED: 1, Kind.DELETED: 2}[kind] == int(kind)
