"""Tests for supervisor.images.unpack: hostile layers are refused without touching anything
outside the destination; benign layers keep owners, modes, times, xattrs, devices, links.

Hostile symlinks point at a sibling ``outside/`` directory of the destination rather than at
``/`` or ``/etc``: a regression must damage a throwaway directory, not the host (these tests
run as root).
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.errors import BerthError, InvalidArgument
from supervisor.images.unpack import (
    OPAQUE_XATTR,
    UnpackStats,
    Whiteout,
    WhiteoutKind,
    classify_whiteout,
    normalise_member_name,
    open_layer_stream,
    unpack_layer,
)
from tests.tarhelpers import (
    MTIME,
    Entry,
    directory,
    file,
    hardlink,
    make_tar,
    node,
    symlink,
    tar_info,
)

VICTIM = b"original"
WO_OPQ = ".wh..wh..opq"

# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """An empty ``dest`` with a sibling ``outside/victim`` that must never change."""
    (tmp_path / "dest").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim").write_bytes(VICTIM)
    return tmp_path / "dest"


def unpack(data: bytes, dest: Path) -> UnpackStats:
    return unpack_layer(io.BytesIO(data), dest)


def assert_contained(base: Path) -> None:
    assert sorted(os.listdir(base)) == ["dest", "outside"]
    assert os.listdir(base / "outside") == ["victim"]
    victim = base / "outside" / "victim"
    st_victim = victim.lstat()
    assert stat.S_ISREG(st_victim.st_mode)
    assert st_victim.st_nlink == 1  # no hardlink to it was made anywhere
    assert victim.read_bytes() == VICTIM
    assert not os.listxattr(base / "outside")


# -- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a", ("a",)),
        ("./a", ("a",)),
        ("a/b/", ("a", "b")),
        ("a//b", ("a", "b")),
        ("a/./b", ("a", "b")),
        (".//etc", ("etc",)),
        (".", ()),
        ("./", ()),
        ("...", ("...",)),
        ("a..b/..c", ("a..b", "..c")),
    ],
    ids=repr,
)
def test_normalise_member_name_valid_returns_components(name: str, parts: tuple[str, ...]) -> None:
    assert normalise_member_name(name) == parts


@pytest.mark.parametrize(
    "name",
    ["", "/", "/etc/passwd", "../x", "a/../../x", "a/..", "./../x", "a/b/../c", "a\x00b", ".."],
    ids=repr,
)
def test_normalise_member_name_escaping_raises_invalid_argument(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid tar member path"):
        normalise_member_name(name)


@given(st.lists(st.sampled_from(["a", "b", ".", "/", "\x00", "..", ".wh.", "é"])).map("".join))
def test_normalise_member_name_never_escapes(name: str) -> None:
    try:
        parts = normalise_member_name(name)
    except InvalidArgument:
        return
    for part in parts:
        assert part not in ("", ".", "..")
        assert "/" not in part
        assert "\x00" not in part
    joined = os.path.normpath(os.path.join("/root", *parts))
    assert joined == "/root" or joined.startswith("/root/")


@given(st.text())
def test_normalise_member_name_any_text_raises_only_invalid_argument(name: str) -> None:
    with contextlib.suppress(InvalidArgument):
        normalise_member_name(name)


_component = st.text(min_size=1).filter(lambda s: s not in (".", "..") and "/" not in s)


@given(st.lists(_component.filter(lambda s: "\x00" not in s), max_size=5), st.booleans())
def test_normalise_member_name_round_trips_clean_paths(parts: list[str], dot: bool) -> None:
    name = ("./" if dot else "") + "/".join(parts)
    if not name:
        return
    assert normalise_member_name(name) == tuple(parts)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("a", "b"), None),
        ((), None),
        (("a", ".wh.b"), Whiteout(WhiteoutKind.FILE, ("a",), "b")),
        ((".wh.b",), Whiteout(WhiteoutKind.FILE, (), "b")),
        (("a", ".wh..wh..opq"), Whiteout(WhiteoutKind.OPAQUE, ("a",))),
        ((".wh..wh..opq",), Whiteout(WhiteoutKind.OPAQUE, ())),
        (("a", ".wh..wh.plnk"), Whiteout(WhiteoutKind.META, ("a",))),
        (("a", ".wh.x.wh."), Whiteout(WhiteoutKind.FILE, ("a",), "x.wh.")),
        (("a.wh.b",), None),
    ],
    ids=repr,
)
def test_classify_whiteout_table(parts: tuple[str, ...], expected: Whiteout | None) -> None:
    assert classify_whiteout(parts) == expected


@pytest.mark.parametrize("base", [".wh.", ".wh..", ".wh..."], ids=repr)
def test_classify_whiteout_hiding_dot_or_parent_raises(base: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid whiteout"):
        classify_whiteout(("a", base))


@given(st.lists(_component, max_size=4))
def test_classify_whiteout_names_a_valid_component(parts: list[str]) -> None:
    try:
        result = classify_whiteout(tuple(parts))
    except InvalidArgument:
        return
    if result is not None:
        assert result.parent == tuple(parts[:-1])
        if result.kind is WhiteoutKind.FILE:
            assert result.name not in ("", ".", "..")
            assert "/" not in result.name
        else:
            assert result.name == ""


# -- hostile layers -------------------------------------------------------------------------


def _hostile_cases(outside: Path) -> dict[str, list[Entry]]:
    victim = str(outside / "victim")
    return {
        "absolute": [file(victim, b"pwned")],
        "absolute-root": [file("/x", b"pwned")],
        "dotdot": [file("../outside/victim", b"pwned")],
        "nested-dotdot": [file("a/../../outside/victim", b"pwned")],
        "dot-dotdot": [file("./../outside/victim", b"pwned")],
        "dir-dotdot": [directory("../outside/newdir")],
        "symlink-abs-then-file": [symlink("link", str(outside)), file("link/victim", b"pwned")],
        "symlink-root-then-file": [symlink("link", "/"), file("link" + victim, b"pwned")],
        "symlink-rel-then-file": [symlink("link", ".."), file("link/outside/victim", b"pwned")],
        "symlink-then-dir": [
            directory("a"),
            symlink("a/b", "../../outside"),
            directory("a/b/c"),
        ],
        "symlink-then-deep-file": [
            directory("a"),
            symlink("a/b", str(outside)),
            file("a/b/sub/x", b"pwned"),
        ],
        "hardlink-abs": [hardlink("h", victim)],
        "hardlink-etc-passwd": [hardlink("h", "/etc/passwd")],
        "hardlink-dotdot": [hardlink("h", "../outside/victim")],
        "hardlink-through-symlink": [symlink("l", str(outside)), hardlink("h", "l/victim")],
        "whiteout-through-symlink": [symlink("l", str(outside)), file("l/.wh.victim")],
        "opaque-through-symlink": [symlink("l", str(outside)), file("l/.wh..wh..opq")],
        "whiteout-dotdot": [directory("a"), file("a/.wh...")],
        "whiteout-dot": [file(".wh..")],
        "xattr-through-symlink-dir": [
            symlink("l", str(outside)),
            directory("l/sub", pax_headers={"SCHILY.xattr.user.pwned": "1"}),
        ],
    }


_HOSTILE_IDS = list(_hostile_cases(Path("/x")))


@pytest.mark.parametrize("case", _HOSTILE_IDS)
def test_unpack_layer_hostile_raises_invalid_argument_and_stays_inside(
    dest: Path, case: str
) -> None:
    entries = _hostile_cases(dest.parent / "outside")[case]
    with pytest.raises(InvalidArgument):
        unpack(make_tar(*entries), dest)
    assert_contained(dest.parent)


def test_unpack_layer_symlink_parent_error_message_names_the_escape(dest: Path) -> None:
    data = make_tar(symlink("link", "/"), file("link/etc/passwd", b"x"))
    with pytest.raises(InvalidArgument, match="escapes through a symlink"):
        unpack(data, dest)


def test_unpack_layer_file_over_symlink_replaces_the_link(dest: Path) -> None:
    victim = dest.parent / "outside" / "victim"
    unpack(make_tar(symlink("f", str(victim)), file("f", b"mine")), dest)
    assert not (dest / "f").is_symlink()
    assert (dest / "f").read_bytes() == b"mine"
    assert_contained(dest.parent)


def test_unpack_layer_dir_over_symlink_replaces_the_link(dest: Path) -> None:
    outside = dest.parent / "outside"
    unpack(make_tar(symlink("d", str(outside)), directory("d"), file("d/victim", b"x")), dest)
    assert (dest / "d").is_dir()
    assert not (dest / "d").is_symlink()
    assert (dest / "d" / "victim").read_bytes() == b"x"
    assert_contained(dest.parent)


def test_unpack_layer_hardlink_to_outward_symlink_links_the_symlink(dest: Path) -> None:
    victim = str(dest.parent / "outside" / "victim")
    unpack(make_tar(symlink("s", victim), hardlink("h", "s")), dest)
    assert os.readlink(dest / "h") == victim
    assert os.lstat(dest / "h").st_ino == os.lstat(dest / "s").st_ino
    assert_contained(dest.parent)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
@pytest.mark.slow
def test_unpack_layer_random_layers_never_write_outside(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "dest").mkdir()
        (base / "outside").mkdir()
        (base / "outside" / "victim").write_bytes(VICTIM)
        outside = str(base / "outside")
        comp = st.sampled_from(["a", "link", "link", "victim", "..", ".", ".wh.victim", WO_OPQ])
        name = st.builds(
            lambda lead, parts: lead + "/".join(parts),
            st.sampled_from(["", "", "./", "/"]),
            st.lists(comp, min_size=1, max_size=3),
        )
        target = st.one_of(
            st.sampled_from(["/", "..", "../..", outside, outside + "/victim", "link/..", "a"]),
            name,
        )
        entry = st.one_of(
            st.builds(lambda n: file(n, b"pwned"), name),
            st.builds(directory, name),
            st.builds(symlink, name, target),
            st.builds(hardlink, name, target),
        )
        # Start most layers with a symlink "link" somewhere dangerous: the interesting case.
        first = st.lists(st.builds(symlink, st.just("link"), target), max_size=1)
        entries = data.draw(first) + data.draw(st.lists(entry, max_size=8))
        with contextlib.suppress(InvalidArgument):
            unpack(make_tar(*entries), base / "dest")
        assert_contained(base)


# -- benign layers --------------------------------------------------------------------------


def test_unpack_layer_files_keep_modes_owners_mtimes(dest: Path) -> None:
    data = make_tar(
        directory("etc", mode=0o750, uid=7, gid=8, mtime=MTIME + 5),
        file("etc/conf", b"hello", mode=0o640, uid=1000, gid=1001, mtime=MTIME + 1),
        file("./bin/tool", b"\x7fELF", mode=0o4755, uid=1000, gid=0),
        directory("shared", mode=0o2775, gid=50),
        directory("tmp", mode=0o1777),
    )
    stats = unpack(data, dest)

    conf = os.lstat(dest / "etc" / "conf")
    assert (conf.st_uid, conf.st_gid) == (1000, 1001)
    assert stat.S_IMODE(conf.st_mode) == 0o640
    assert conf.st_mtime == MTIME + 1
    assert (dest / "etc" / "conf").read_bytes() == b"hello"

    etc = os.lstat(dest / "etc")
    assert (etc.st_uid, etc.st_gid, stat.S_IMODE(etc.st_mode)) == (7, 8, 0o750)
    assert etc.st_mtime == MTIME + 5  # set after the child was created

    tool = os.lstat(dest / "bin" / "tool")
    assert stat.S_IMODE(tool.st_mode) == 0o4755  # survived the chown
    assert tool.st_uid == 1000
    assert stat.S_IMODE(os.lstat(dest / "bin").st_mode) == 0o755  # implicit parent
    assert stat.S_IMODE(os.lstat(dest / "shared").st_mode) == 0o2775
    assert stat.S_IMODE(os.lstat(dest / "tmp").st_mode) == 0o1777

    assert stats == UnpackStats(files=5, bytes=len(data), content_bytes=9)


def test_unpack_layer_nested_directory_mtimes_set_deepest_first(dest: Path) -> None:
    unpack(
        make_tar(
            directory("a", mtime=100),
            directory("a/b", mtime=200),
            directory("a/b/c", mtime=300),
            file("a/b/c/f", mtime=400),
        ),
        dest,
    )
    assert [os.lstat(dest / p).st_mtime for p in ("a", "a/b", "a/b/c", "a/b/c/f")] == [
        100,
        200,
        300,
        400,
    ]


def test_unpack_layer_root_entry_sets_dest_metadata(dest: Path) -> None:
    unpack(make_tar(directory("./", mode=0o711, mtime=123), file("f")), dest)
    root = os.stat(dest)
    assert stat.S_IMODE(root.st_mode) == 0o711
    assert root.st_mtime == 123


def test_unpack_layer_root_entry_that_is_not_a_directory_is_refused(dest: Path) -> None:
    with pytest.raises(InvalidArgument):
        unpack(make_tar(file(".", b"x")), dest)


def test_unpack_layer_device_nodes_and_fifo(dest: Path) -> None:
    unpack(
        make_tar(
            node("dev/null", tarfile.CHRTYPE, 1, 3, mode=0o666),
            node("dev/loop0", tarfile.BLKTYPE, 7, 0, mode=0o660, gid=6),
            node("run/fifo", tarfile.FIFOTYPE, mode=0o620, uid=5),
        ),
        dest,
    )
    null = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode)
    assert (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(dest / "dev" / "loop0")
    assert stat.S_ISBLK(loop.st_mode)
    assert (os.major(loop.st_rdev), os.minor(loop.st_rdev), loop.st_gid) == (7, 0, 6)
    fifo = os.lstat(dest / "run" / "fifo")
    assert stat.S_ISFIFO(fifo.st_mode)
    assert (stat.S_IMODE(fifo.st_mode), fifo.st_uid) == (0o620, 5)
    assert fifo.st_mtime == MTIME


def test_unpack_layer_hardlink_inside_shares_the_inode(dest: Path) -> None:
    unpack(make_tar(file("a/orig", b"data", mode=0o600), hardlink("b/link", "./a/orig")), dest)
    orig, link = os.lstat(dest / "a" / "orig"), os.lstat(dest / "b" / "link")
    assert orig.st_ino == link.st_ino
    assert orig.st_nlink == 2


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([hardlink("h", "missing")], "not found"),
        ([hardlink("h", "nodir/missing")], "not found"),
        ([directory("d"), hardlink("h", "d")], "hardlink to a directory"),
        ([file("h"), hardlink("h", "h")], "bad hardlink target"),
        ([hardlink("h", ".")], "bad hardlink target"),
        ([file("a/a"), hardlink("a", "a/a")], "bad hardlink target"),
    ],
    ids=["missing", "missing-parent", "directory", "self", "root", "below-itself"],
)
def test_unpack_layer_bad_hardlink_raises(dest: Path, entries: list[Entry], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        unpack(make_tar(*entries), dest)


def test_unpack_layer_symlink_with_absolute_target_is_stored_verbatim(dest: Path) -> None:
    unpack(make_tar(symlink("etc/mtab", "/proc/self/mounts", uid=3, gid=4, mtime=77)), dest)
    link = dest / "etc" / "mtab"
    assert os.readlink(link) == "/proc/self/mounts"
    st_link = os.lstat(link)
    assert (st_link.st_uid, st_link.st_gid, st_link.st_mtime) == (3, 4, 77)


def test_unpack_layer_xattrs_are_applied(dest: Path) -> None:
    binary = b"\xff\x00\x01".decode("utf-8", "surrogateescape")
    unpack(
        make_tar(
            directory("d", pax_headers={"SCHILY.xattr.user.dir": "yes"}),
            file(
                "d/f",
                b"x",
                pax_headers={"SCHILY.xattr.user.foo": "bar", "SCHILY.xattr.user.bin": binary},
            ),
            file("g", pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
        ),
        dest,
    )
    assert os.getxattr(dest / "d" / "f", "user.foo") == b"bar"
    assert os.getxattr(dest / "d" / "f", "user.bin") == b"\xff\x00\x01"
    assert os.getxattr(dest / "d", "user.dir") == b"yes"
    # Overlay's own xattrs are never taken from a layer.
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "g")


def test_unpack_layer_xattr_refused_by_filesystem_raises_berth_error(dest: Path) -> None:
    # user.* xattrs are not allowed on symlinks (EPERM): not ENOTSUP, so not skipped.
    data = make_tar(symlink("l", "x", pax_headers={"SCHILY.xattr.user.foo": "bar"}))
    with pytest.raises(BerthError, match="unpacking 'l'"):
        unpack(data, dest)


def test_unpack_layer_whiteouts_become_overlay_whiteouts(dest: Path) -> None:
    unpack(
        make_tar(
            directory("etc"),
            file("etc/.wh.gone", uid=0),
            file("var/lib/.wh..wh..opq"),
            file(".wh..wh..opq"),
            file("etc/.wh..wh.plnk"),
            directory("kept"),
            file("kept/.wh..wh..opq"),
            file("kept/child", b"x"),
        ),
        dest,
    )
    gone = os.lstat(dest / "etc" / "gone")
    assert stat.S_ISCHR(gone.st_mode)
    assert gone.st_rdev == 0
    assert not (dest / "etc" / ".wh.gone").exists()
    assert not os.path.lexists(dest / "etc" / ".wh..wh.plnk")
    assert os.getxattr(dest / "var" / "lib", OPAQUE_XATTR) == b"y"
    assert os.getxattr(dest, OPAQUE_XATTR) == b"y"
    assert os.getxattr(dest / "kept", OPAQUE_XATTR) == b"y"
    assert (dest / "kept" / "child").read_bytes() == b"x"
    assert sorted(os.listdir(dest / "etc")) == ["gone"]


def test_unpack_layer_whiteout_replaces_an_earlier_entry(dest: Path) -> None:
    unpack(make_tar(directory("a/b"), file("a/b/f"), file("a/.wh.b")), dest)
    assert stat.S_ISCHR(os.lstat(dest / "a" / "b").st_mode)


@pytest.mark.parametrize(
    ("entries", "check"),
    [
        ([file("x", b"1"), file("x", b"2")], lambda d: (d / "x").read_bytes() == b"2"),
        (
            [directory("d"), file("d/f"), file("d", b"now a file")],
            lambda d: (d / "d").read_bytes() == b"now a file",
        ),
        ([file("x"), directory("x"), file("x/f")], lambda d: (d / "x" / "f").is_file()),
        (
            [directory("d", mode=0o700), file("d/f"), directory("d", mode=0o755)],
            lambda d: stat.S_IMODE(os.lstat(d / "d").st_mode) == 0o755 and (d / "d/f").exists(),
        ),
        (
            [symlink("s", "a"), symlink("s", "b")],
            lambda d: os.readlink(d / "s") == "b",
        ),
    ],
    ids=["file-file", "dir-file", "file-dir", "dir-dir-keeps-children", "symlink-symlink"],
)
def test_unpack_layer_later_entries_override_earlier(
    dest: Path, entries: list[Entry], check: object
) -> None:
    unpack(make_tar(*entries), dest)
    assert callable(check)
    assert check(dest)


def test_unpack_layer_parent_that_is_a_file_raises(dest: Path) -> None:
    with pytest.raises(InvalidArgument, match="is not a directory"):
        unpack(make_tar(file("a"), file("a/b")), dest)


def test_unpack_layer_unsupported_member_type_raises(dest: Path) -> None:
    with pytest.raises(InvalidArgument, match="unsupported type"):
        unpack(make_tar((tar_info("x", b"Z"), None)), dest)


def test_unpack_layer_out_of_range_uid_raises(dest: Path) -> None:
    with pytest.raises(InvalidArgument, match="uid"):
        unpack(make_tar(file("x", pax_headers={"uid": str(2**40)})), dest)


# -- destination and stream checks --------------------------------------------------------


def test_unpack_layer_refuses_non_empty_dest(dest: Path) -> None:
    (dest / "already").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="not empty"):
        unpack(make_tar(file("x")), dest)


@pytest.mark.parametrize("kind", ["missing", "file", "symlink"])
def test_unpack_layer_refuses_dest_that_is_not_a_directory(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "dest"
    if kind == "file":
        target.write_bytes(b"")
    elif kind == "symlink":
        (tmp_path / "real").mkdir()
        target.symlink_to(tmp_path / "real")
    with pytest.raises(InvalidArgument, match="not a directory"):
        unpack(make_tar(file("x")), target)


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not a tar archive" * 40, make_tar(file("x", b"a" * 4000))[:1500]],
    ids=["empty", "garbage", "truncated"],
)
def test_unpack_layer_malformed_tar_raises_invalid_argument(dest: Path, data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        unpack(data, dest)


def test_open_layer_stream_gzip_layer_unpacks(dest: Path) -> None:
    data = make_tar(file("bin/sh", b"#!", mode=0o755), directory("etc"))
    with open_layer_stream(io.BytesIO(gzip.compress(data))) as stream:
        stats = unpack_layer(stream, dest)
    assert (dest / "bin" / "sh").read_bytes() == b"#!"
    assert stats.bytes == len(data)
    assert stats.files == 2


def test_open_layer_stream_plain_tar_passes_through(dest: Path) -> None:
    data = make_tar(file("a", b"x"))
    with open_layer_stream(io.BytesIO(data)) as stream:
        assert stream.read() == data


def test_open_layer_stream_short_input_passes_through() -> None:
    with open_layer_stream(io.BytesIO(b"\x1f")) as stream:
        assert stream.read() == b"\x1f"


@pytest.mark.parametrize(
    "blob",
    [
        gzip.compress(make_tar(file("a", b"x" * 10000)))[:-30],
        b"\x1f\x8b" + b"\x00" * 64,
    ],
    ids=["truncated", "corrupt"],
)
def test_open_layer_stream_bad_gzip_raises_invalid_argument(dest: Path, blob: bytes) -> None:
    with pytest.raises(InvalidArgument), open_layer_stream(io.BytesIO(blob)) as stream:
        unpack_layer(stream, dest)


_HAVE_ZSTD = importlib.util.find_spec("zstandard") is not None
_ZSTD_FRAME = bytes.fromhex("28b52ffd")  # magic only: enough to be sniffed


@pytest.mark.skipif(_HAVE_ZSTD, reason="zstandard is installed")
def test_open_layer_stream_zstd_without_module_raises_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="zstd layers need"):
        open_layer_stream(io.BytesIO(_ZSTD_FRAME + b"\x00" * 16))


@pytest.mark.skipif(not _HAVE_ZSTD, reason="zstandard is not installed")
def test_open_layer_stream_zstd_layer_unpacks(dest: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    data = make_tar(file("a", b"zz"))
    blob = zstandard.ZstdCompressor().compress(data)
    with open_layer_stream(io.BytesIO(blob)) as stream:
        unpack_layer(stream, dest)
    assert (dest / "a").read_bytes() == b"zz"


class _Trickle(io.RawIOBase):
    """A source that returns at most 3 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = 3 if size < 0 else min(size, 3)
        out, self._data = self._data[:n], self._data[n:]
        return out


def test_open_layer_stream_sniffs_across_short_reads(dest: Path) -> None:
    data = make_tar(file("a", b"x"))
    source = _Trickle(gzip.compress(data))
    with open_layer_stream(source) as stream:  # type: ignore[arg-type]  # a RawIOBase fake
        unpack_layer(stream, dest)
    assert (dest / "a").read_bytes() == b"x"


def test_content_bytes_counts_as_dockerd(dest: Path) -> None:
    """A layer's Size as moby's directory.Size: regular files (a hardlinked one once)
    and each symlink's target length (its lstat size); directories and nodes count 0."""
    data = make_tar(
        directory("bin"),
        file("bin/busybox", b"x" * 100),
        hardlink("bin/ls", "bin/busybox"),
        symlink("bin/sh", "busybox"),
        symlink("lib64", "/lib"),
        node("null", tarfile.CHRTYPE, 1, 3),
    )
    stats = unpack(data, dest)
    assert stats.content_bytes == 100 + len("busybox") + len("/lib")
    on_disk = sum(
        os.lstat(p).st_size
        for p in dest.rglob("*")
        if not p.is_dir() or p.is_symlink()
        if p.name != "ls" and p.name != "null"
    )
    assert stats.content_bytes == on_disk
