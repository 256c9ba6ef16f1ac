"""Tests for cli.cpcmd: Go path semantics, docker's copy decisions, the local tar
writer and the local extractor (which must never write outside its destination).

Expected messages were compared with the docker 28.2.2 CLI's.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.argspec import parse_argv
from cli.client import ClientError
from cli.cpcmd import (
    CopyInfo,
    Plan,
    asserts_directory,
    copy_info_destination_path,
    copy_info_source_path,
    get_rebase_name,
    go_base,
    go_clean,
    go_dir,
    go_join,
    human_size,
    output_mode_error,
    parse_stat,
    prepare_archive_copy,
    preserve_trailing_dot_or_separator,
    rebase_name,
    split_cp_arg,
    split_path_dir_entry,
    untar,
    validate_output_path,
)
from cli.cpcmd import (
    _local_tar as local_tar,
)
from tests.tarhelpers import spec_tar, tar_names

# -- Go's filepath ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "clean", "base", "dir_"),
    [
        ("", ".", ".", "."),
        ("/", "/", "/", "/"),
        ("a", "a", "a", "."),
        ("a/", "a", "a", "a"),
        ("/a/b/", "/a/b", "b", "/a/b"),
        ("//a//b", "/a/b", "b", "/a"),
        ("a/./b/../c", "a/c", "c", "a/./b/.."),
        ("a/.", "a", ".", "a"),
        ("../x", "../x", "x", ".."),
    ],
)
def test_go_path_functions(path: str, clean: str, base: str, dir_: str) -> None:
    assert go_clean(path) == clean
    assert go_base(path) == base
    assert go_dir(path) == go_clean(dir_)


def test_go_join_skips_empty_and_cleans() -> None:
    assert go_join("/a", "", "../b") == "/b"
    assert go_join("", "") == ""


@pytest.mark.parametrize(
    ("cleaned", "original", "out"),
    [
        ("/a/b", "a/b/", "/a/b/"),
        ("/a/b", "a/b/.", "/a/b/."),
        ("/", ".", "/."),
        ("/a", "a", "/a"),
    ],
)
def test_preserve_trailing_dot_or_separator(cleaned: str, original: str, out: str) -> None:
    assert preserve_trailing_dot_or_separator(cleaned, original) == out


@pytest.mark.parametrize(
    ("path", "split"),
    [
        ("/a/b", ("/a", "b")),
        ("/a/b/", ("/a", "b")),
        ("/a/b/.", ("/a/b", ".")),
        ("/", ("/", "/")),
        ("/.", ("/", ".")),
    ],
)
def test_split_path_dir_entry(path: str, split: tuple[str, str]) -> None:
    assert split_path_dir_entry(path) == split


def test_asserts_directory() -> None:
    assert asserts_directory("a/")
    assert asserts_directory("a/.")
    assert not asserts_directory("a")


@pytest.mark.parametrize(
    ("arg", "parts"),
    [
        ("c1:/tmp", ("c1", "/tmp")),
        ("c1:", ("c1", "")),
        ("c1:/a:b", ("c1", "/a:b")),
        ("/abs:path", ("", "/abs:path")),
        ("./file:name", ("", "./file:name")),
        ("file", ("", "file")),
        ("-", ("", "-")),
    ],
)
def test_split_cp_arg(arg: str, parts: tuple[str, str]) -> None:
    assert split_cp_arg(arg) == parts


@pytest.mark.parametrize(
    ("name", "old", "new", "out"),
    [
        ("src", "src", "dst", "dst"),
        ("src/a", "src", "dst", "dst/a"),
        ("./a", ".", "dst", "dst/a"),
        (".", ".", "dst", "dst"),
        ("/bin", "/", "root", "root/bin"),
        ("/", "/", "root", "root/"),
        ("other", "src", "dst", "other"),
    ],
)
def test_rebase_name_is_dockers_first_replacement(name: str, old: str, new: str, out: str) -> None:
    assert rebase_name(name, old, new) == out


@pytest.mark.parametrize(
    ("path", "resolved", "out"),
    [
        ("/a/link", "/a/target", ("/a/target", "link")),
        ("/a/link/", "/a/target", ("/a/target/", "link")),
        ("/a/link/.", "/a/target", ("/a/target/.", "")),
        ("/a/same", "/b/same", ("/b/same", "")),
    ],
)
def test_get_rebase_name(path: str, resolved: str, out: tuple[str, str]) -> None:
    assert get_rebase_name(path, resolved) == out


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (3, "3B"),
        (2048, "2.05kB"),
        (1_540, "1.54kB"),
        (52_428_800, "52.4MB"),
        (10**9, "1GB"),
    ],
)
def test_human_size_is_gos_three_digits(size: int, text: str) -> None:
    assert human_size(size) == text


def test_output_mode_error() -> None:
    assert output_mode_error((1 << 26) | (1 << 21) | 0o666) == "got a device"
    assert output_mode_error(1 << 19) == "got an irregular file"
    assert output_mode_error((1 << 31) | 0o755) is None
    assert output_mode_error(0o644) is None


def test_parse_stat() -> None:
    doc = {"name": "f", "size": 3, "mode": 420, "mtime": "x", "linkTarget": ""}
    assert parse_stat(base64.b64encode(json.dumps(doc).encode()).decode()) == doc
    assert parse_stat("") is None
    assert parse_stat("!!!") is None


# -- copy decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "plan"),
    [
        # file -> existing directory: into it, as is
        (CopyInfo("/c/f", True, False), CopyInfo("/h/d", True, True), Plan("/h/d", None)),
        # dir -> existing directory: into it (a "src" directory appears inside)
        (CopyInfo("/c/src", True, True), CopyInfo("/h/d", True, True), Plan("/h/d", None)),
        # file -> existing file: renamed to the file's name
        (CopyInfo("/c/f", True, False), CopyInfo("/h/g", True, False), Plan("/h", ("f", "g"))),
        # file -> new name
        (CopyInfo("/c/f", True, False), CopyInfo("/h/new"), Plan("/h", ("f", "new"))),
        # dir -> new name
        (CopyInfo("/c/src", True, True), CopyInfo("/h/new"), Plan("/h", ("src", "new"))),
        # dir contents -> new name
        (CopyInfo("/c/src/.", True, True), CopyInfo("/h/new"), Plan("/h", (".", "new"))),
        # rebased source (-L): its rebase name is what the entries carry
        (
            CopyInfo("/c/target", True, True, "link"),
            CopyInfo("/h/new"),
            Plan("/h", ("link", "new")),
        ),
    ],
    ids=["file-dir", "dir-dir", "file-file", "file-new", "dir-new", "contents-new", "rebased"],
)
def test_prepare_archive_copy(src: CopyInfo, dst: CopyInfo, plan: Plan) -> None:
    assert prepare_archive_copy(src, dst) == plan


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        (CopyInfo("/c/src", True, True), CopyInfo("/h/f", True, False), "cannot copy directory"),
        (CopyInfo("/c/f", True, False), CopyInfo("/h/new/"), "no such directory"),
        (CopyInfo("/c/f", True, False), CopyInfo("/h/new/."), "no such directory"),
    ],
)
def test_prepare_archive_copy_errors(src: CopyInfo, dst: CopyInfo, message: str) -> None:
    with pytest.raises(ClientError, match=message):
        prepare_archive_copy(src, dst)


def test_copy_info_source_path(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_bytes(b"x")
    os.symlink("dir", tmp_path / "link")
    base = str(tmp_path)
    assert copy_info_source_path(f"{base}/dir/f", follow_link=False) == CopyInfo(
        f"{base}/dir/f", True, False
    )
    # Without -L a symlink is copied as a symlink...
    assert copy_info_source_path(f"{base}/link", follow_link=False) == CopyInfo(
        f"{base}/link", True, False
    )
    # ... unless a trailing slash asks for the directory, named after the link.
    assert copy_info_source_path(f"{base}/link/", follow_link=False) == CopyInfo(
        f"{base}/dir/", True, True, "link"
    )
    assert copy_info_source_path(f"{base}/link", follow_link=True) == CopyInfo(
        f"{base}/dir", True, True, "link"
    )
    with pytest.raises(FileNotFoundError):
        copy_info_source_path(f"{base}/missing", follow_link=False)


def test_copy_info_destination_path(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "ld")
    os.symlink("new", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    base = str(tmp_path)
    assert copy_info_destination_path(f"{base}/d") == CopyInfo(f"{base}/d", True, True)
    assert copy_info_destination_path(f"{base}/ld") == CopyInfo(f"{base}/d", True, True)
    assert copy_info_destination_path(f"{base}/dangling") == CopyInfo(f"{base}/new")
    assert copy_info_destination_path(f"{base}/x") == CopyInfo(f"{base}/x")
    with pytest.raises(ClientError, match="too many symlinks in"):
        copy_info_destination_path(f"{base}/loop")
    with pytest.raises(ClientError, match="no such file or directory"):
        copy_info_destination_path(f"{base}/missing/x")


def test_validate_output_path(tmp_path: Path) -> None:
    validate_output_path(str(tmp_path / "new"))
    validate_output_path(str(tmp_path))
    with pytest.raises(ClientError, match=r'invalid output path: directory ".*/missing" does not'):
        validate_output_path(str(tmp_path / "missing" / "x"))
    with pytest.raises(ClientError, match="must be a directory or a regular file: got a device"):
        validate_output_path("/dev/null")


# -- argv ---------------------------------------------------------------------------------------


def test_cp_argv_parses_dashes_and_flags() -> None:
    parsed = parse_argv(["cp", "-a", "-L", "-q", "-", "c1:/tmp"])
    assert parsed is not None
    assert parsed.command == "cp"
    assert parsed.args == ["-", "c1:/tmp"]
    assert parsed.flag("archive")
    assert parsed.flag("follow_link")
    assert parsed.flag("quiet")
    alias = parse_argv(["container", "cp", "c1:/etc/hosts", "-"])
    assert alias is not None
    assert (alias.command, alias.args) == ("cp", ["c1:/etc/hosts", "-"])


# -- local tar ----------------------------------------------------------------------------------


def test_local_tar_names_and_content(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_bytes(b"hello")
    (src / "sub" / "g").write_bytes(b"")
    os.link(src / "f", src / "hard")
    os.symlink("/etc", src / "abs")
    data = b"".join(local_tar(str(src), "dst"))
    assert tar_names(data) == ["dst/", "dst/abs", "dst/f", "dst/hard", "dst/sub/", "dst/sub/g"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("dst/abs").linkname == "/etc"
        assert tar.getmember("dst/hard").islnk()
        f = tar.extractfile("dst/f")
        assert f is not None
        assert f.read() == b"hello"
    dot = b"".join(local_tar(f"{src}/.", "."))
    assert tar_names(dot)[:2] == ["./", "./abs"]  # tarfile reads "./" back as "."
    single = b"".join(local_tar(str(src / "f"), "renamed"))
    assert tar_names(single) == ["renamed"]


# -- local extraction ---------------------------------------------------------------------------

VICTIM = b"original"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    (tmp_path / "dest").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim").write_bytes(VICTIM)
    return tmp_path / "dest"


def assert_contained(dest: Path) -> None:
    outside = dest.parent / "outside"
    assert os.listdir(outside) == ["victim"]
    assert (outside / "victim").read_bytes() == VICTIM
    assert (outside / "victim").stat().st_nlink == 1
    assert sorted(os.listdir(dest.parent)) == ["dest", "outside"]


def extract(data: bytes, dest: Path, renames: list[tuple[str, str]] | None = None) -> None:
    untar(io.BufferedReader(io.BytesIO(data)), str(dest), renames=renames)


F, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def test_untar_benign_with_renames(dest: Path) -> None:
    data = spec_tar(("src", D, b""), ("src/f", F, b"x"), ("src/l", S, "f"), ("src/h", H, "src/f"))
    extract(data, dest, [("src", "new")])
    assert (dest / "new" / "f").read_bytes() == b"x"
    assert os.readlink(dest / "new" / "l") == "f"
    assert (dest / "new" / "f").stat().st_nlink == 2
    assert (dest / "new" / "f").stat().st_mtime == 1_000_000_000


def test_untar_root_archive_names_land_inside(dest: Path) -> None:
    extract(spec_tar(("/", D, b""), ("/etc", D, b""), ("/etc/x", F, b"1")), dest, [("/", "r")])
    assert (dest / "r" / "etc" / "x").read_bytes() == b"1"


def test_untar_dot_entry_leaves_the_destination_alone(dest: Path) -> None:
    dest.chmod(0o700)
    extract(spec_tar((".", D, b""), ("./a", F, b"a")), dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert (dest / "a").read_bytes() == b"a"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../x", F, b"x")], "is outside of"),
        ([("a/../../x", F, b"x")], "is outside of"),
        ([("l", S, "../outside"), ("l/victim", F, b"pwned")], "invalid symlink"),
        ([("l", S, "/"), ("l/etc/x", F, b"pwned")], "is outside of"),
        ([("s", S, "../../outside/victim")], "invalid symlink"),
        ([("h", H, "../outside/victim")], "invalid hardlink"),
    ],
    ids=[
        "dotdot",
        "inner-dotdot",
        "rel-symlink-parent",
        "abs-symlink-parent",
        "symlink",
        "hardlink",
    ],
)
def test_untar_refuses_escapes(
    dest: Path, entries: list[tuple[str, bytes, str | bytes]], message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        extract(spec_tar(*entries), dest)
    assert_contained(dest)


def test_untar_absolute_symlink_target_is_kept_but_never_followed(dest: Path) -> None:
    victim = str(dest.parent / "outside" / "victim")
    extract(spec_tar(("s", S, victim), ("s", F, b"replaced")), dest)
    assert (dest / "s").read_bytes() == b"replaced"
    assert_contained(dest)


def test_untar_never_overwrites_dir_with_file_or_back(dest: Path) -> None:
    (dest / "d").mkdir()
    (dest / "f").write_bytes(b"f")
    with pytest.raises(ClientError, match=r'cannot overwrite directory ".*/d" with non-directory'):
        extract(spec_tar(("d", F, b"x")), dest)
    with pytest.raises(ClientError, match=r'cannot overwrite non-directory ".*/f" with directory'):
        extract(spec_tar(("f", D, b"")), dest)


def test_untar_corrupt_tar_is_a_client_error(dest: Path) -> None:
    with pytest.raises(ClientError, match="invalid tar"):
        extract(b"x" * 1024, dest)


@given(st.data())
def test_untar_random_hostile_tars_stay_inside(data: st.DataObject) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "dest").mkdir()
        (base / "outside").mkdir()
        (base / "outside" / "victim").write_bytes(VICTIM)
        outside = str(base / "outside")
        comp = st.sampled_from(["a", "l", "victim", "..", ".", ""])
        name = st.lists(comp, min_size=1, max_size=4).map("/".join)
        target = st.one_of(st.sampled_from(["..", "../outside", outside, "/", "a"]), name)
        entry = st.one_of(
            st.tuples(name, st.just(F), st.just(b"pwned")),
            st.tuples(name, st.just(D), st.just(b"")),
            st.tuples(name, st.just(S), target),
            st.tuples(name, st.just(H), target),
        )
        entries = data.draw(st.lists(entry, max_size=6))
        with contextlib.suppress(ClientError):
            extract(spec_tar(*entries), base / "dest")
        assert_contained(base / "dest")
