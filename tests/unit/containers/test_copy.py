"""Tests for supervisor.containers.copy: resolution inside a container root, the tar
writer, extraction of hostile and benign uploads, and the async bridges.

A "container" here is a plain directory ``root/`` with a volume directory ``vol/`` mounted
at ``/data`` and a file standing for the generated ``/etc/hosts``. Hostile symlinks name
the sibling ``outside/`` directory by its real host path: if anything ever resolved them
on the host, the throwaway ``outside/victim`` would be read or changed (these tests run as
root), which every test checks it is not.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import socket
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.containers.copy import (
    ContainerFS,
    ExtractTarget,
    _TarWriter,
    extract_from_body,
    stream_source,
)
from supervisor.containers.copypath import (
    GO_MODE_DIR,
    GO_MODE_SYMLINK,
    Mount,
    NoSuchPath,
    parse_container_path,
)
from supervisor.errors import BerthError, InvalidArgument
from tests.tarhelpers import (
    MTIME,
    Entry,
    directory,
    file,
    hardlink,
    make_tar,
    symlink,
    tar_info,
)

VICTIM = b"original"


# -- a container on disk --------------------------------------------------------------------


class Box:
    """A fake container tree under ``base`` (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.vol = base / "vol"
        self.outside = base / "outside"
        self.hosts = base / "hosts"
        for d in (self.root, self.vol, self.outside, self.root / "data", self.root / "tmp"):
            d.mkdir()
        (self.outside / "victim").write_bytes(VICTIM)
        (self.root / "etc").mkdir()
        (self.root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nu:x:7:8::/:/bin/sh\n")
        (self.root / "etc" / "group").write_text("root:x:0:\ng:x:8:\n")
        (self.root / "etc" / "hosts").write_text("from the image\n")
        self.hosts.write_text("generated hosts\n")
        (self.root / "data" / "decoy").write_text("under the mount point\n")
        (self.vol / "inside").write_text("volume data\n")
        self.mounts = [
            Mount(("data",), str(self.vol)),
            Mount(("etc", "hosts"), str(self.hosts)),
        ]

    def fs(
        self, *, readonly_rootfs: bool = False, mounts: list[Mount] | None = None
    ) -> ContainerFS:
        return ContainerFS(
            self.root,
            self.mounts if mounts is None else mounts,
            container="c1",
            readonly_rootfs=readonly_rootfs,
        )

    def assert_contained(self) -> None:
        assert os.listdir(self.outside) == ["victim"]
        victim = self.outside / "victim"
        st_victim = victim.lstat()
        assert stat.S_ISREG(st_victim.st_mode)
        assert st_victim.st_nlink == 1
        assert victim.read_bytes() == VICTIM
        assert sorted(os.listdir(self.base)) == ["hosts", "outside", "root", "vol"]


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def tree(box: Box) -> Box:
    """The layout dockerd was probed with: /src with every kind of link."""
    src = box.root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_bytes(b"hi\n")
    (src / "sub" / "g").write_bytes(b"s\n")
    os.symlink("/etc", src / "abs")
    os.symlink("sub", src / "rel")
    os.symlink("../../../../etc", src / "esc")
    os.symlink(str(box.outside), src / "host")  # a host path: means root/<that path>
    os.symlink("nowhere/x", src / "dangling")
    os.symlink("loop2", src / "loop1")
    os.symlink("loop1", src / "loop2")
    os.symlink("/data", box.root / "todata")
    os.symlink("/src", box.vol / "back")  # inside the volume, absolute: the container's /src
    return box


def stat_of(box: Box, path: str) -> tuple[str, int, int, str]:
    s = box.fs().stat_path(parse_container_path(path), shown=path)
    return s.name, s.size, s.mode, s.link_target


# -- resolution and stat --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "mode", "link"),
    [
        ("/src", "src", GO_MODE_DIR | 0o755, ""),
        ("/src/", "src", GO_MODE_DIR | 0o755, ""),
        ("/src/.", ".", GO_MODE_DIR | 0o755, ""),
        ("/src/f", "f", 0o644, ""),
        ("/src/abs", "abs", GO_MODE_SYMLINK | 0o777, "/etc"),
        ("/src/rel", "rel", GO_MODE_SYMLINK | 0o777, "/src/sub"),
        ("/src/rel/", "rel", GO_MODE_DIR | 0o755, ""),
        ("/src/esc", "esc", GO_MODE_SYMLINK | 0o777, "/etc"),  # .. stops at the root
        ("/src/esc/passwd", "passwd", 0o644, ""),  # the container's, not the host's
        ("/src/dangling", "dangling", GO_MODE_SYMLINK | 0o777, "/src/nowhere/x"),
        ("/todata", "todata", GO_MODE_SYMLINK | 0o777, "/data"),
        ("/todata/", "todata", GO_MODE_DIR | 0o755, ""),
        ("/data/back/f", "f", 0o644, ""),  # volume symlink back into the root file system
        ("/data/../src/f", "f", 0o644, ""),
    ],
)
def test_stat_path_resolves_inside_the_root(
    box: Box, path: str, name: str, mode: int, link: str
) -> None:
    tree(box)
    (box.root / "src").chmod(0o755)
    (box.root / "src" / "sub").chmod(0o755)
    (box.root / "src" / "f").chmod(0o644)
    (box.root / "etc" / "passwd").chmod(0o644)
    got = stat_of(box, path)
    assert (got[0], got[2], got[3]) == (name, mode, link)
    box.assert_contained()


def test_stat_path_root_is_named_slash(box: Box) -> None:
    assert stat_of(box, "/")[0] == "/"


def test_stat_path_sees_mounts_not_the_mount_point(box: Box) -> None:
    os.utime(box.vol, ns=(MTIME * 10**9, MTIME * 10**9))
    s = box.fs().stat_path(parse_container_path("/data"), shown="/data")
    assert s.mtime_ns == MTIME * 10**9
    assert stat_of(box, "/data/inside")[1] == len("volume data\n")
    assert stat_of(box, "/etc/hosts")[1] == len("generated hosts\n")
    with pytest.raises(NoSuchPath):
        stat_of(box, "/data/decoy")


def test_stat_path_host_symlink_is_resolved_in_the_root(box: Box) -> None:
    tree(box)
    with pytest.raises(NoSuchPath):  # root/<outside> does not exist
        stat_of(box, "/src/host/victim")
    inner = box.root / str(box.outside).lstrip("/")
    inner.mkdir(parents=True)
    (inner / "victim").write_bytes(b"inner")
    assert stat_of(box, "/src/host/victim")[1] == len(b"inner")
    box.assert_contained()


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/nonexist", NoSuchPath, "Could not find the file /nonexist in container c1"),
        ("/src/f/x", NoSuchPath, "Could not find the file /src/f/x in container c1"),
        ("/src/dangling/", NoSuchPath, "Could not find the file"),
        ("/src/f/", InvalidArgument, "/src/f/: not a directory"),
        ("/src/loop1/", InvalidArgument, "too many levels of symbolic links"),
    ],
)
def test_stat_path_errors(box: Box, path: str, error: type[Exception], message: str) -> None:
    tree(box)
    with pytest.raises(error, match=message):
        stat_of(box, path)


def test_stat_path_symlink_loop_as_last_element_is_reported_as_a_link(box: Box) -> None:
    tree(box)
    assert stat_of(box, "/src/loop1")[2:] == (GO_MODE_SYMLINK | 0o777, "")


def test_read_file_follows_links_inside(box: Box) -> None:
    os.symlink("/etc/passwd", box.root / "pw")
    os.symlink(str(box.outside / "victim"), box.root / "evil")
    fs = box.fs()
    assert fs.read_file("/pw", limit=4) == b"root"
    assert fs.read_file("/evil") is None
    assert fs.read_file("/etc") is None
    assert fs.read_file("/etc/hosts") == b"generated hosts\n"


# -- the tar writer ---------------------------------------------------------------------------


def archive(box: Box, path: str, fs: ContainerFS | None = None) -> list[tarfile.TarInfo]:
    members, _ = archive_with_data(box, path, fs)
    return members


def archive_with_data(
    box: Box, path: str, fs: ContainerFS | None = None
) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    source = (fs or box.fs()).open_source(parse_container_path(path), shown=path)
    out = io.BytesIO()
    try:
        source.write_tar(out)
    finally:
        source.close()
    out.seek(0)
    data: dict[str, bytes] = {}
    with tarfile.open(fileobj=out, mode="r:") as tar:
        members = tar.getmembers()
        for m in members:
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                data[m.name] = f.read()
    return members, data


def raw_names(box: Box, path: str) -> list[str]:
    """Member names as stored (tarfile strips a directory's trailing slash on reading)."""
    source = box.fs().open_source(parse_container_path(path), shown=path)
    out = io.BytesIO()
    try:
        source.write_tar(out)
    finally:
        source.close()
    out.seek(0)
    names: list[str] = []
    while True:
        block = out.read(512)
        if not block.strip(b"\0"):
            return names
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        names.append(block[:100].rstrip(b"\0").decode())
        out.seek((info.size + 511) // 512 * 512, io.SEEK_CUR)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/src", ["src/", "src/abs", "src/dangling", "src/esc", "src/f", "src/host"]),
        ("/src/", ["src/", "src/abs", "src/dangling", "src/esc", "src/f", "src/host"]),
        ("/src/.", ["./", "./abs", "./dangling", "./esc", "./f", "./host"]),
        ("/src/f", ["f"]),
        ("/src/abs", ["abs"]),
        ("/src/rel/", ["rel/", "rel/g"]),
    ],
)
def test_write_tar_names_entries_as_docker(box: Box, path: str, names: list[str]) -> None:
    tree(box)
    assert raw_names(box, path)[: len(names)] == names  # dockerd's order: sorted


def test_write_tar_of_root_names_entries_from_slash(box: Box) -> None:
    names = raw_names(box, "/")
    assert names[0] == "/"
    assert "/etc/" in names
    assert "/etc/passwd" in names


def test_write_tar_keeps_links_as_links_and_content(box: Box) -> None:
    tree(box)
    members, data = archive_with_data(box, "/src")
    by_name = {m.name: m for m in members}
    assert by_name["src/abs"].issym()
    assert by_name["src/abs"].linkname == "/etc"
    assert by_name["src/esc"].linkname == "../../../../etc"
    assert by_name["src/host"].linkname == str(box.outside)
    assert data["src/f"] == b"hi\n"
    assert data["src/sub/g"] == b"s\n"
    assert "src/host/victim" not in by_name
    box.assert_contained()


def test_write_tar_crosses_into_mounts_and_hides_what_they_cover(box: Box) -> None:
    _, data = archive_with_data(box, "/")
    assert data["/data/inside"] == b"volume data\n"
    assert data["/etc/hosts"] == b"generated hosts\n"
    assert "/data/decoy" not in data


def test_write_tar_lists_a_mount_whose_mount_point_is_missing(box: Box) -> None:
    extra = box.base / "vol" / "sub"
    extra.mkdir()
    (extra / "x").write_bytes(b"x")
    fs = box.fs(mounts=[*box.mounts, Mount(("opt",), str(extra))])
    _, data = archive_with_data(box, "/", fs)
    assert data["/opt/x"] == b"x"


def test_write_tar_from_inside_a_volume(box: Box) -> None:
    members, data = archive_with_data(box, "/data")
    assert [m.name for m in members] == ["data", "data/inside"]
    assert data == {"data/inside": b"volume data\n"}


def test_write_tar_hardlinks_become_link_entries(box: Box) -> None:
    d = box.root / "h"
    d.mkdir()
    (d / "a").write_bytes(b"same")
    os.link(d / "a", d / "b")
    members = archive(box, "/h")
    by_name = {m.name: m for m in members}
    assert by_name["h/a"].isreg()
    assert by_name["h/b"].islnk()
    assert by_name["h/b"].linkname == "h/a"


def test_write_tar_keeps_modes_owners_times(box: Box) -> None:
    f = box.root / "tmp" / "f"
    f.write_bytes(b"x")
    os.chown(f, 1234, 5678)
    f.chmod(0o4751)  # after chown, which clears setuid
    os.utime(f, (MTIME, MTIME))
    (m,) = archive(box, "/tmp/f")
    assert (m.mode, m.uid, m.gid, m.mtime, m.size) == (0o4751, 1234, 5678, MTIME, 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_write_tar_devices_and_fifos_but_no_sockets(box: Box) -> None:
    d = box.root / "dev"
    d.mkdir()
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(d / "fifo")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(d / "sock"))
        members = archive(box, "/dev")
    by_name = {m.name: m for m in members}
    assert by_name["dev/null"].ischr()
    assert (by_name["dev/null"].devmajor, by_name["dev/null"].devminor) == (1, 3)
    assert by_name["dev/fifo"].isfifo()
    assert "dev/sock" not in by_name


def test_write_tar_long_and_undecodable_names_round_trip(box: Box) -> None:
    d = box.root / "n"
    d.mkdir()
    long_name = "x" * 150
    (d / long_name).write_bytes(b"1")
    raw = os.fsencode(str(d)) + b"/caf\xe9"
    with open(raw, "wb") as f:
        f.write(b"2")
    source = box.fs().open_source(parse_container_path("/n"), shown="/n")
    out = io.BytesIO()
    source.write_tar(out)
    source.close()
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r:", errors="surrogateescape") as tar:
        names = tar.getnames()
    assert f"n/{long_name}" in names
    assert "n/caf\udce9" in names


def test_write_tar_pads_a_file_that_shrank_after_its_header(box: Box) -> None:
    f = box.root / "tmp" / "f"
    f.write_bytes(b"12")
    out = io.BytesIO()
    writer = _TarWriter(out, box.fs())
    fd = os.open(f, os.O_RDONLY)
    try:
        writer._copy(fd, 5)  # the header said 5 bytes: the stream must carry 5
    finally:
        os.close(fd)
    assert out.getvalue() == b"12" + bytes(510)


# -- extraction -------------------------------------------------------------------------------


@contextlib.contextmanager
def target(box: Box, path: str, fs: ContainerFS | None = None) -> Iterator[ExtractTarget]:
    t = (fs or box.fs()).open_target(parse_container_path(path), shown=path)
    try:
        yield t
    finally:
        t.close()


def put(box: Box, path: str, data: bytes, fs: ContainerFS | None = None, **kw: object) -> None:
    with target(box, path, fs) as t:
        t.extract(io.BytesIO(data), **kw)  # type: ignore[arg-type]  # keyword options


def test_extract_files_and_dirs_merge_into_existing(box: Box) -> None:
    (box.root / "tmp" / "keep").write_bytes(b"k")
    put(box, "/tmp", make_tar(directory("d", mode=0o700), file("d/f", b"new", mode=0o600)))
    assert (box.root / "tmp" / "d" / "f").read_bytes() == b"new"
    assert stat.S_IMODE((box.root / "tmp" / "d").stat().st_mode) == 0o700
    assert (box.root / "tmp" / "keep").read_bytes() == b"k"


def test_extract_dot_entry_leaves_the_destination_alone(box: Box) -> None:
    (box.root / "tmp").chmod(0o1777)
    put(box, "/tmp", make_tar(directory(".", mode=0o750, uid=3, gid=4), file("./a", b"a")))
    st_tmp = (box.root / "tmp").stat()
    # dockerd: /tmp keeps drwxrwxrwt root/root
    assert (stat.S_IMODE(st_tmp.st_mode), st_tmp.st_uid, st_tmp.st_gid) == (0o1777, 0, 0)
    assert (box.root / "tmp" / "a").read_bytes() == b"a"


def test_extract_keeps_tar_owners_or_uses_the_given_owner(box: Box) -> None:
    put(box, "/tmp", make_tar(file("a", uid=11, gid=12)))
    put(box, "/tmp", make_tar(file("b", uid=11, gid=12)), owner=(7, 8))
    assert ((box.root / "tmp" / "a").stat().st_uid, (box.root / "tmp" / "a").stat().st_gid) == (
        11,
        12,
    )
    assert ((box.root / "tmp" / "b").stat().st_uid, (box.root / "tmp" / "b").stat().st_gid) == (
        7,
        8,
    )


def test_extract_absolute_and_dotdot_names_land_inside(box: Box) -> None:
    put(box, "/tmp", make_tar(file("/abs1", b"1"), file("x/../inside", b"2")))
    assert (box.root / "tmp" / "abs1").read_bytes() == b"1"
    assert (box.root / "tmp" / "inside").read_bytes() == b"2"


def test_extract_into_a_symlink_to_a_directory_extracts_into_the_directory(box: Box) -> None:
    tree(box)
    put(box, "/src/abs", make_tar(file("a", b"x")))
    assert (box.root / "etc" / "a").read_bytes() == b"x"


def test_extract_through_a_symlink_member_stays_in_the_root(box: Box) -> None:
    put(box, "/tmp", make_tar(symlink("lnk", "/etc"), file("lnk/pwned", b"x")))
    assert (box.root / "etc" / "pwned").read_bytes() == b"x"  # dockerd: the container's /etc
    put(box, "/tmp", make_tar(symlink("h", str(box.outside)), file("h/victim", b"x")))
    assert (box.root / str(box.outside).lstrip("/") / "victim").read_bytes() == b"x"
    box.assert_contained()


def test_extract_through_an_existing_escaping_symlink_stays_in_the_root(box: Box) -> None:
    os.symlink("../../../../../../../..", box.root / "tmp" / "up")
    put(box, "/tmp", make_tar(file("up/etc/x", b"x")))
    assert (box.root / "etc" / "x").read_bytes() == b"x"
    box.assert_contained()


def test_extract_into_a_volume_writes_the_volume(box: Box) -> None:
    put(box, "/data", make_tar(file("v", b"v")))
    put(box, "/", make_tar(directory("data"), file("data/w", b"w")))
    assert (box.vol / "v").read_bytes() == b"v"
    assert (box.vol / "w").read_bytes() == b"w"
    assert not (box.root / "data" / "v").exists()


def test_extract_whiteout_names_are_ordinary_files(box: Box) -> None:
    put(box, "/tmp", make_tar(file(".wh.foo", b"w"), file(".wh..wh..opq", b"o")))
    assert (box.root / "tmp" / ".wh.foo").read_bytes() == b"w"
    assert (box.root / "tmp" / ".wh..wh..opq").read_bytes() == b"o"


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress, lambda b: b],
    ids=["gzip", "bzip2", "xz", "plain"],
)
def test_extract_accepts_dockers_compressions(box: Box, compress: object) -> None:
    assert callable(compress)
    put(box, "/tmp", compress(make_tar(file("z", b"z"))))
    assert (box.root / "tmp" / "z").read_bytes() == b"z"


def test_extract_empty_upload_is_nothing_to_do(box: Box) -> None:
    put(box, "/tmp", b"")


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_extract_device_nodes_inside_the_root(box: Box) -> None:
    null = tar_info("null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    put(box, "/tmp", make_tar((null, None)))
    st_null = (box.root / "tmp" / "null").lstat()
    assert stat.S_ISCHR(st_null.st_mode)
    assert os.major(st_null.st_rdev) == 1


def test_extract_hardlink_inside_shares_the_inode(box: Box) -> None:
    put(box, "/tmp", make_tar(file("a", b"x"), hardlink("b", "a"), hardlink("c", "/a")))
    a = (box.root / "tmp" / "a").stat()
    assert a.st_nlink == 3


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([file("../../esc1", b"x")], r'"\.\./\.\./esc1" is outside of "/tmp"'),
        ([hardlink("hl", "../../etc/passwd")], "invalid hardlink"),
        ([symlink("s", "../../x")], "invalid symlink"),
        ([file("f", b"x"), directory("f")], None),  # replaced: fine without the option
    ],
)
def test_extract_refuses_escaping_members(
    box: Box, entries: list[Entry], message: str | None
) -> None:
    if message is None:
        put(box, "/tmp", make_tar(*entries))
        return
    with pytest.raises(InvalidArgument, match=message):
        put(box, "/tmp", make_tar(*entries))
    box.assert_contained()


def test_extract_hardlink_to_a_file_outside_through_a_symlink_stays_in_the_root(
    box: Box,
) -> None:
    victim = str(box.outside / "victim")
    entries = [symlink("o", str(box.outside)), hardlink("h", "o/victim")]
    with pytest.raises(InvalidArgument, match="not found"):
        put(box, "/tmp", make_tar(*entries))
    box.assert_contained()
    assert os.lstat(victim).st_nlink == 1


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([file("d", b"x")], 'cannot overwrite directory "/tmp/d" with non-directory "/tmp"'),
        ([directory("f")], 'cannot overwrite non-directory "/tmp/f" with directory "/tmp"'),
    ],
)
def test_extract_no_overwrite_dir_non_dir(box: Box, entries: list[Entry], message: str) -> None:
    (box.root / "tmp" / "d").mkdir()
    (box.root / "tmp" / "f").write_bytes(b"f")
    with pytest.raises(InvalidArgument) as info:
        put(box, "/tmp", make_tar(*entries), no_overwrite_dir_non_dir=True)
    assert str(info.value) == message
    put(box, "/tmp", make_tar(*entries))  # without the option: replaced, as Docker


def test_extract_read_only_volume_and_rootfs(box: Box) -> None:
    ro = [Mount(("data",), str(box.vol), read_only=True)]
    with pytest.raises(InvalidArgument, match="mounted volume is marked read-only"):
        put(box, "/data", make_tar(file("x")), box.fs(mounts=ro))
    with pytest.raises(InvalidArgument, match="container rootfs is marked read-only"):
        put(box, "/tmp", make_tar(file("x")), box.fs(readonly_rootfs=True))
    put(box, "/data", make_tar(file("x", b"ok")), box.fs(readonly_rootfs=True))
    assert (box.vol / "x").read_bytes() == b"ok"
    # A member that walks into a read-only mount from a writable destination.
    with pytest.raises(InvalidArgument, match="mounted volume is marked read-only"):
        put(box, "/", make_tar(file("data/sub/y", b"no")), box.fs(mounts=ro))
    assert not (box.vol / "sub").exists()


def test_extract_refuses_to_replace_a_mount_point(box: Box) -> None:
    with pytest.raises(InvalidArgument, match="cannot replace mount point /data"):
        put(box, "/", make_tar(file("data", b"x")))
    with pytest.raises(InvalidArgument, match="cannot replace mount point /etc/hosts"):
        put(box, "/etc", make_tar(file("hosts", b"x")))
    assert (box.vol / "inside").exists()


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/nonexist", NoSuchPath, "Could not find the file /nonexist in container c1"),
        ("/etc/passwd", InvalidArgument, "extraction point is not a directory"),
    ],
)
def test_open_target_errors(box: Box, path: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        box.fs().open_target(parse_container_path(path), shown=path)


def test_extract_corrupt_tar_raises_invalid_argument(box: Box) -> None:
    with pytest.raises(InvalidArgument):
        put(box, "/tmp", b"garbage" * 100)
    with pytest.raises(InvalidArgument):
        put(box, "/tmp", make_tar(file("a", b"x" * 2000))[:1024])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@pytest.mark.slow
def test_extract_random_hostile_tars_never_touch_anything_outside(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        box = Box(Path(tmp))
        outside = str(box.outside)
        comp = st.sampled_from(["a", "link", "link", "victim", "data", "..", ".", ""])
        name = st.builds(
            lambda lead, parts: lead + "/".join(parts),
            st.sampled_from(["", "", "./", "/", "../"]),
            st.lists(comp, min_size=1, max_size=4),
        )
        link_target = st.one_of(
            st.sampled_from(
                ["/", "..", "../..", "../../..", outside, outside + "/victim", "/data", "a"]
            ),
            name,
        )
        entry = st.one_of(
            st.builds(lambda n: file(n, b"pwned"), name),
            st.builds(directory, name),
            st.builds(symlink, name, link_target),
            st.builds(hardlink, name, link_target),
        )
        first = st.lists(st.builds(symlink, st.just("link"), link_target), max_size=1)
        entries = data.draw(first) + data.draw(st.lists(entry, max_size=8))
        dest = data.draw(st.sampled_from(["/tmp", "/", "/data", "/tmp/"]))
        with contextlib.suppress(InvalidArgument, BerthError):
            put(box, dest, make_tar(*entries))
        box.assert_contained()
        assert (box.hosts).read_text() == "generated hosts\n"


# -- async bridges ----------------------------------------------------------------------------


async def _chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await trio.lowlevel.checkpoint()


async def test_extract_from_body_feeds_the_thread(box: Box) -> None:
    payload = os.urandom(300_000)  # more than a pipe holds
    tar = make_tar(file("big", payload))
    with target(box, "/tmp") as t:
        stats = await extract_from_body(_chunks(tar, 7000), t.extract)
    assert stats.content_bytes == len(payload)
    assert (box.root / "tmp" / "big").read_bytes() == payload


async def test_extract_from_body_thread_failure_stops_the_feed(box: Box) -> None:
    endless_garbage = b"\xff" * 10_000_000

    with target(box, "/tmp") as t, pytest.raises(InvalidArgument):
        await extract_from_body(_chunks(endless_garbage, 65536), t.extract)


async def test_extract_from_body_truncated_body_is_a_truncated_tar(box: Box) -> None:
    tar = make_tar(file("big", os.urandom(100_000)))

    async def breaks_off() -> AsyncIterator[bytes]:
        yield tar[:50_000]
        raise InvalidArgument("request body ended early")

    with target(box, "/tmp") as t, pytest.raises(InvalidArgument):
        await extract_from_body(breaks_off(), t.extract)


async def test_stream_source_streams_the_tar(box: Box) -> None:
    (box.root / "tmp" / "big").write_bytes(os.urandom(500_000))
    got = bytearray()

    async def write(chunk: bytes) -> None:
        got.extend(chunk)

    source = box.fs().open_source(parse_container_path("/tmp"), shown="/tmp")
    try:
        await stream_source(source, write)
    finally:
        source.close()
    with tarfile.open(fileobj=io.BytesIO(bytes(got))) as tar:
        assert tar.getmember("tmp/big").size == 500_000


async def test_stream_source_client_gone_ends_the_thread(box: Box) -> None:
    (box.root / "tmp" / "big").write_bytes(os.urandom(2_000_000))

    async def write(chunk: bytes) -> None:
        raise trio.BrokenResourceError("client went away")

    source = box.fs().open_source(parse_container_path("/tmp"), shown="/tmp")
    try:
        with pytest.raises(trio.BrokenResourceError):
            await stream_source(source, write)
    finally:
        source.close()
