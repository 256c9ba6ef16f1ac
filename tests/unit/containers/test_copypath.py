"""Tests for supervisor.containers.copypath: docker cp's path, stat and name rules.

Expected values marked "dockerd" were observed from Docker 20.10's archive API.
"""

from __future__ import annotations

import base64
import json
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.containers.copypath import (
    GO_MODE_CHAR_DEVICE,
    GO_MODE_DEVICE,
    GO_MODE_DIR,
    GO_MODE_NAMED_PIPE,
    GO_MODE_SETUID,
    GO_MODE_SOCKET,
    GO_MODE_STICKY,
    GO_MODE_SYMLINK,
    ContainerPath,
    Mount,
    NoSuchPath,
    PathStat,
    check_upload_symlink,
    covering_mount,
    format_go_time,
    go_file_mode,
    join_lexically,
    mounts_from_api,
    parse_container_path,
    show_path,
    stat_header,
    upload_hardlink_parts,
    upload_member_parts,
    writable_error,
)
from supervisor.errors import InvalidArgument

# -- request paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/src", ContainerPath(("src",), follow_last=False, name="src")),
        ("/src/", ContainerPath(("src",), follow_last=True, name="src")),
        ("/src/.", ContainerPath(("src",), follow_last=True, name=".")),
        ("/", ContainerPath((), follow_last=True, name="/")),
        (".", ContainerPath((), follow_last=True, name=".")),
        ("/.", ContainerPath((), follow_last=True, name=".")),
        ("tmp", ContainerPath(("tmp",), follow_last=False, name="tmp")),
        ("/a/../b", ContainerPath(("b",), follow_last=False, name="b")),
        ("/a/..", ContainerPath((), follow_last=True, name="/")),
        ("/../../etc", ContainerPath(("etc",), follow_last=False, name="etc")),
        ("//a//b/./c", ContainerPath(("a", "b", "c"), follow_last=False, name="c")),
        ("/a/b/./", ContainerPath(("a", "b"), follow_last=True, name="b")),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else "",
)
def test_parse_container_path_cleans_lexically_and_keeps_trailing_markers(
    raw: str, expected: ContainerPath
) -> None:
    assert parse_container_path(raw) == expected


def test_parse_container_path_nul_raises_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        parse_container_path("/a\x00b")


@given(st.text(alphabet="ab./", max_size=20))
def test_parse_container_path_parts_are_always_clean(raw: str) -> None:
    p = parse_container_path(raw)
    assert all(c not in ("", ".", "..") and "/" not in c for c in p.parts)
    assert p.follow_last or p.parts


def test_join_lexically_never_climbs_above_root() -> None:
    assert join_lexically(("a",), ["..", "..", "b", ".", "c"]) == ["b", "c"]


def test_show_path() -> None:
    assert show_path(()) == "/"
    assert show_path(("a", "b")) == "/a/b"


def test_no_such_path_message_is_dockers() -> None:
    assert str(NoSuchPath("/nonexist", "c1")) == "Could not find the file /nonexist in container c1"
    assert NoSuchPath("/x", "c").status == 404


# -- stat header ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("st_mode", "go"),
    [
        (stat.S_IFDIR | 0o755, 2147484141),  # dockerd
        (stat.S_IFLNK | 0o777, 134218239),  # dockerd
        (stat.S_IFREG | 0o644, 420),  # dockerd
        (stat.S_IFREG | 0o755, 493),
        (stat.S_IFCHR | 0o666, GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o666),
        (stat.S_IFBLK | 0o660, GO_MODE_DEVICE | 0o660),
        (stat.S_IFIFO | 0o600, GO_MODE_NAMED_PIPE | 0o600),
        (stat.S_IFSOCK | 0o777, GO_MODE_SOCKET | 0o777),
        (stat.S_IFDIR | 0o1777, GO_MODE_DIR | GO_MODE_STICKY | 0o777),
        (stat.S_IFREG | 0o4755, GO_MODE_SETUID | 0o755),
    ],
    ids=["dir", "symlink", "file", "exec", "chr", "blk", "fifo", "socket", "sticky", "setuid"],
)
def test_go_file_mode_matches_go(st_mode: int, go: int) -> None:
    assert go_file_mode(st_mode) == go


def test_go_mode_bits_are_gos() -> None:
    assert (GO_MODE_DIR, GO_MODE_SYMLINK) == (1 << 31, 1 << 27)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_795_836_502_000_000_000, "2026-11-28T03:28:22Z"),
        (1_795_836_502_354_019_137, "2026-11-28T03:28:22.354019137Z"),
        (1_795_836_502_500_000_000, "2026-11-28T03:28:22.5Z"),
        (1_795_836_502_000_000_100, "2026-11-28T03:28:22.0000001Z"),
    ],
)
def test_format_go_time_is_rfc3339nano(ns: int, text: str) -> None:
    assert format_go_time(ns) == text


def test_stat_header_is_dockers_base64_json() -> None:
    s = PathStat("src", 4096, 2147484141, 1_795_836_502_000_000_000)
    decoded = base64.b64decode(stat_header(s)).decode()
    # dockerd's byte order and compact separators
    assert decoded == (
        '{"name":"src","size":4096,"mode":2147484141,"mtime":"2026-11-28T03:28:22Z",'
        '"linkTarget":""}'
    )
    assert s.is_dir


def test_stat_header_link_target_and_non_ascii_name() -> None:
    s = PathStat("né", 4, 134218239, 0, "/etc")
    doc = json.loads(base64.b64decode(stat_header(s)))
    assert doc["linkTarget"] == "/etc"
    assert doc["name"] == "né"
    assert not s.is_dir


# -- mounts -----------------------------------------------------------------------------------


def test_mounts_from_api_skips_tmpfs_and_reads_rw() -> None:
    mounts = mounts_from_api(
        [
            {"Type": "volume", "Source": "/v/_data", "Destination": "/data", "RW": True},
            {"Type": "bind", "Source": "/h", "Destination": "/opt//ro/", "RW": False},
            {"Type": "tmpfs", "Source": "", "Destination": "/run", "RW": True},
            {"Type": "bind", "Source": "/x", "Destination": "/", "RW": True},
            {"Type": "bind", "Destination": "/nosource"},
            {"Type": "bind", "Source": "/s", "Destination": None},
        ]
    )
    assert mounts == [
        Mount(("data",), "/v/_data", read_only=False),
        Mount(("opt", "ro"), "/h", read_only=True),
    ]


def test_covering_mount_is_the_longest_destination_prefix() -> None:
    outer = Mount(("data",), "/a")
    inner = Mount(("data", "sub"), "/b")
    mounts = [outer, inner]
    assert covering_mount(("data", "sub", "x"), mounts) is inner
    assert covering_mount(("data", "sub"), mounts) is inner
    assert covering_mount(("data", "subway"), mounts) is outer
    assert covering_mount(("database",), mounts) is None
    assert covering_mount((), mounts) is None


@pytest.mark.parametrize(
    ("parts", "readonly_rootfs", "error"),
    [
        (("tmp",), False, None),
        (("tmp",), True, "container rootfs is marked read-only"),
        (("data", "x"), True, None),
        (("ro",), False, "mounted volume is marked read-only"),
        (("ro", "deep"), True, "mounted volume is marked read-only"),
    ],
)
def test_writable_error_uses_dockers_messages(
    parts: tuple[str, ...], readonly_rootfs: bool, error: str | None
) -> None:
    mounts = [Mount(("data",), "/v"), Mount(("ro",), "/r", read_only=True)]
    assert writable_error(parts, mounts, readonly_rootfs=readonly_rootfs) == error


# -- upload names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dest", "parts"),
    [
        ("a", ("tmp",), ("a",)),
        ("./a/./b/", ("tmp",), ("a", "b")),
        ("/abs1", ("tmp",), ("abs1",)),  # dockerd: lands in /tmp/abs1
        ("x/../inside", ("tmp",), ("inside",)),  # dockerd
        ("/../x", ("tmp",), ("x",)),
        ("../tmp/x", ("tmp",), ("x",)),  # Join("/tmp", "../tmp/x") is inside
        ("../x", (), ("x",)),  # nothing escapes "/"
        (".", ("tmp",), ()),
        ("./", ("tmp",), ()),
        ("/", ("tmp",), ()),
        ("", ("tmp",), ()),
    ],
)
def test_upload_member_parts_follows_dockers_join(
    name: str, dest: tuple[str, ...], parts: tuple[str, ...]
) -> None:
    assert upload_member_parts(name, dest) == parts


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../esc1", '"../../esc1" is outside of "/tmp"'),  # dockerd
        ("a/../../b", '"a/../../b" is outside of "/tmp"'),
        ("..", '".." is outside of "/tmp"'),
        ("../tmpfoo", '"../tmpfoo" is outside of "/tmp"'),  # no string-prefix confusion
        ("a\x00b", "is outside of"),
    ],
)
def test_upload_member_parts_escape_raises_dockers_message(name: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("\\", "")) as info:
        upload_member_parts(name, ("tmp",))
    assert message in str(info.value)


@given(
    st.lists(st.sampled_from(["a", "b", "..", ".", ""]), max_size=6).map("/".join),
    st.lists(st.sampled_from(["tmp", "x"]), max_size=2).map(tuple),
)
def test_upload_member_parts_stays_below_dest_or_raises_invalid_argument(
    name: str, dest: tuple[str, ...]
) -> None:
    try:
        parts = upload_member_parts(name, dest)
    except InvalidArgument:
        return
    assert all(p not in ("", ".", "..") for p in parts)


def test_upload_hardlink_parts_inside_and_out() -> None:
    assert upload_hardlink_parts(("hl",), "sub/f", ("tmp",)) == ("sub", "f")
    assert upload_hardlink_parts(("hl",), "/etc/passwd", ("tmp",)) == ("etc", "passwd")
    with pytest.raises(
        InvalidArgument, match=r'invalid hardlink "/tmp/hl" -> "\.\./\.\./etc/passwd"'
    ):
        upload_hardlink_parts(("hl",), "../../etc/passwd", ("tmp",))  # dockerd
    with pytest.raises(InvalidArgument, match="invalid hardlink"):
        upload_hardlink_parts(("hl",), ".", ("tmp",))


@pytest.mark.parametrize(
    ("dest", "parts", "target", "ok"),
    [
        (("data",), ("src", "esc"), "../../../../etc", False),  # dockerd refuses
        ((), ("src", "esc"), "../../../../etc", True),  # dockerd accepts into "/"
        (("data",), ("src", "abs"), "/etc", True),
        (("data",), ("src", "rel"), "sub", True),
        (("data",), ("src", "up"), "..", True),
        (("data",), ("src", "up"), "../..", False),
        (("tmp",), ("a",), "../tmp/x", True),
        (("tmp",), ("a",), "b/../../x", False),
    ],
)
def test_check_upload_symlink_refuses_relative_targets_above_dest(
    dest: tuple[str, ...], parts: tuple[str, ...], target: str, ok: bool
) -> None:
    if ok:
        check_upload_symlink(parts, target, dest)
    else:
        with pytest.raises(InvalidArgument, match="invalid symlink"):
            check_upload_symlink(parts, target, dest)


def test_check_upload_symlink_message_is_dockers() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_upload_symlink(("src", "esc"), "../../../../etc", ("data",))
    assert str(info.value) == 'invalid symlink "/data/src/esc" -> "../../../../etc"'


def test_check_upload_symlink_nul_in_target_raises() -> None:
    with pytest.raises(InvalidArgument, match="invalid symlink"):
        check_upload_symlink(("a",), "x\x00y", ("tmp",))
