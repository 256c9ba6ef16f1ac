"""Tests for supervisor.images.diff: an overlay upper dir written as an OCI layer and unpacked
again by supervisor.images.unpack gives back the same tree (whiteouts as overlay whiteouts);
the bytes are a function of the tree alone; symlinks are never followed.

Building upper dirs needs root (char devices, chown, ``trusted.*`` xattrs): those tests carry
the ``root`` marker.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.errors import BerthError, InvalidArgument
from supervisor.images.diff import (
    DigestWriter,
    LayerStats,
    compress_gzip,
    tee_digest,
    write_layer,
)
from supervisor.images.unpack import OPAQUE_XATTR, open_layer_stream, unpack_layer

EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
T = 1_600_000_000
BIG = random.Random(1).randbytes((1 << 20) + 3)  # more than one read chunk, not a block multiple

# -- tree snapshots -------------------------------------------------------------------------


@attrs.frozen
class Entry:
    kind: str
    perm: int = 0
    owner: tuple[int, int] = (0, 0)
    mtime: int = 0
    payload: object = None  # file data, symlink target, device numbers
    xattrs: tuple[tuple[str, bytes], ...] = ()
    link: bytes | None = None  # first path of a hardlinked inode, in walk order


Snapshot = dict[bytes, Entry]


def _xattrs(path: bytes) -> tuple[tuple[str, bytes], ...]:
    names = sorted(n for n in os.listxattr(path, follow_symlinks=False) if n != "security.selinux")
    return tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in names)


def snapshot(root: Path) -> Snapshot:
    """Everything a layer must preserve, by path below ``root`` (root itself excluded).

    Whiteouts record only their owner (unpack gives them a fresh mtime, and overlayfs
    shares one inode between them).
    """
    out: Snapshot = {}
    first: dict[tuple[int, int], bytes] = {}

    def visit(rel: bytes) -> None:
        path = os.path.join(os.fsencode(root), rel) if rel else os.fsencode(root)
        for name in sorted(os.listdir(path)):
            child = os.path.join(rel, name) if rel else name
            full = os.path.join(path, name)
            s = os.lstat(full)
            mode = s.st_mode
            owner = (s.st_uid, s.st_gid)
            if stat.S_ISCHR(mode) and s.st_rdev == 0:
                out[child] = Entry("whiteout", owner=owner)
                continue
            if stat.S_ISSOCK(mode):
                out[child] = Entry("socket")
                continue
            link = None
            if not stat.S_ISDIR(mode) and s.st_nlink > 1:
                link = first.setdefault((s.st_dev, s.st_ino), child)
            common = {
                "perm": stat.S_IMODE(mode),
                "owner": owner,
                "mtime": s.st_mtime_ns // 1_000_000_000,
                "xattrs": _xattrs(full),
                "link": link,
            }
            if stat.S_ISDIR(mode):
                out[child] = Entry("dir", **common)  # type: ignore[arg-type]
                visit(child)
            elif stat.S_ISREG(mode):
                with open(full, "rb") as f:
                    out[child] = Entry("file", payload=f.read(), **common)  # type: ignore[arg-type]
            elif stat.S_ISLNK(mode):
                out[child] = Entry("symlink", payload=os.readlink(full), **common)  # type: ignore[arg-type]
            elif stat.S_ISFIFO(mode):
                out[child] = Entry("fifo", **common)  # type: ignore[arg-type]
            else:
                kind = "chr" if stat.S_ISCHR(mode) else "blk"
                dev = (os.major(s.st_rdev), os.minor(s.st_rdev))
                out[child] = Entry(kind, payload=dev, **common)  # type: ignore[arg-type]

    visit(b"")
    return out


def expected_after_round_trip(src: Snapshot) -> Snapshot:
    """What unpack(write_layer(src)) must give: sockets gone, overlay xattrs other than the
    opaque flag gone."""
    return {
        path: attrs.evolve(
            entry,
            xattrs=tuple(
                (n, v)
                for n, v in entry.xattrs
                if not n.startswith("trusted.overlay.") or n == OPAQUE_XATTR
            ),
        )
        for path, entry in src.items()
        if entry.kind != "socket"
    }


def write(upper: Path) -> tuple[bytes, LayerStats]:
    buf = io.BytesIO()
    stats = write_layer(upper, buf)
    return buf.getvalue(), stats


def round_trip(upper: Path, dst: Path) -> tuple[bytes, LayerStats]:
    data, stats = write(upper)
    dst.mkdir()
    unpack_layer(io.BytesIO(data), dst)
    return data, stats


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmembers()


def set_times_bottom_up(root: Path) -> None:
    """Give every directory, symlink and special file below ``root`` a fixed mtime,
    children first (regular files got theirs when written): two trees built in
    different seconds must give the same bytes."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(p).st_mode):
                os.utime(p, ns=(T * 10**9, T * 10**9), follow_symlinks=False)
        for d in dirnames:
            p = os.path.join(dirpath, d)
            os.utime(p, ns=(T * 10**9, T * 10**9), follow_symlinks=False)


# -- a rich upper dir ---------------------------------------------------------------------------


def _file(
    path: Path, data: bytes, mode: int, *, uid: int = 0, gid: int = 0, mtime: int = T
) -> None:
    path.write_bytes(data)
    os.chown(path, uid, gid)  # before chmod: chown clears setuid
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))


def build_rich_upper(upper: Path, *, reverse: bool = False) -> None:
    """An upper dir with every kind of entry; ``reverse`` creates them in another order."""
    u = upper
    latin1 = Path(os.fsdecode(os.fsencode(upper) + b"/caf\xe9"))
    dirs = [
        "etc",
        "bin",
        "usr/bin",
        "home/user",
        "dev",
        "run",
        "var/cache/sub",
        "tmp",
        "deep/a/b/c",
    ]
    # Phase 1 makes entries, phase 2 what depends on them (links, xattrs, directory modes).
    phase1: list[Callable[[], object]] = [
        lambda: _file(u / "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
        lambda: _file(u / "bin/busybox", b"\x7fELF" + bytes(range(256)) * 40, 0o4755),
        lambda: os.symlink("busybox", u / "bin/sh"),
        lambda: os.symlink("/lib", u / "lib64"),
        lambda: os.symlink("../nowhere/at/all", u / "dangling"),
        lambda: _file(u / "home/user/notes", b"x" * 512, 0o600, uid=1000, gid=1000),
        lambda: _file(u / "big", BIG, 0o640, uid=3_000_000, gid=7),
        lambda: _file(u / "empty", b"", 0o2755, gid=50),
        lambda: _file(u / "old", b"1969", 0o444, mtime=-1000),
        lambda: _file(u / "future", b"2242", 0o444, mtime=2**33),
        lambda: _file(u / ("n" * 150), b"long name", 0o644),
        lambda: _file(u / "deep/a/b/c" / ("d" * 90), b"long path", 0o644),
        lambda: _file(latin1, b"latin-1 name", 0o644),
        lambda: _file(u / "caf\u00e9", b"utf-8 name", 0o644),
        lambda: os.mkfifo(u / "run/fifo", 0o620),
        lambda: os.mknod(u / "run/sock", stat.S_IFSOCK | 0o755),
        lambda: os.mknod(u / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3)),
        lambda: os.mknod(u / "dev/loop0", stat.S_IFBLK | 0o660, os.makedev(7, 0)),
        # An overlay whiteout: a 0/0 character device.
        lambda: os.mknod(u / "etc/removed", stat.S_IFCHR, os.makedev(0, 0)),
        lambda: _file(u / "var/cache/sub/new", b"new", 0o644),
    ]
    phase2: list[Callable[[], object]] = [
        lambda: os.link(u / "bin/busybox", u / "bin/ls"),
        lambda: os.link(u / "bin/busybox", u / "usr/bin/ls2"),
        # Linux >= 5.8 makes whiteouts as hardlinks to one shared 0/0 inode.
        lambda: os.link(u / "etc/removed", u / "usr/gone"),
        lambda: os.setxattr(u / "home/user/notes", "user.x", b"value"),
        lambda: os.setxattr(u / "home/user", "user.bin", b"\xff\x00\xfe binary"),
        lambda: os.setxattr(u / "etc/passwd", "trusted.overlay.origin", b"\x00\xfb"),
        lambda: os.setxattr(u / "var/cache", OPAQUE_XATTR, b"y"),
        lambda: os.chown(u / "dev/loop0", 0, 6),
        lambda: os.chmod(u / "tmp", 0o1777),
        lambda: os.chown(u / "home/user", 1000, 1000),
        lambda: os.chmod(u / "home/user", 0o700),
    ]
    for d in reversed(dirs) if reverse else dirs:
        (u / d).mkdir(parents=True, exist_ok=True)
    for step in [*reversed(phase1), *reversed(phase2)] if reverse else [*phase1, *phase2]:
        step()
    set_times_bottom_up(upper)


@pytest.fixture
def upper(tmp_path: Path) -> Path:
    path = tmp_path / "upper"
    path.mkdir()
    build_rich_upper(path)
    return path


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.root
def test_round_trip_keeps_every_kind_of_entry(upper: Path, tmp_path: Path) -> None:
    before = snapshot(upper)
    data, stats = round_trip(upper, tmp_path / "dst")
    after = snapshot(tmp_path / "dst")
    assert after == expected_after_round_trip(before)
    # spot checks, in case the snapshot missed a category
    assert after[b"etc/removed"] == Entry("whiteout")
    assert after[b"usr/gone"] == Entry("whiteout")
    assert os.getxattr(tmp_path / "dst/var/cache", OPAQUE_XATTR) == b"y"
    assert after[b"bin/busybox"].perm == 0o4755
    assert after[b"bin/ls"].link == b"bin/busybox"
    assert after[b"home/user/notes"].xattrs == (("user.x", b"value"),)
    assert after[b"etc/passwd"].xattrs == ()
    assert after[b"caf\xe9"].payload == b"latin-1 name"
    assert b"run/sock" not in after
    assert stats == LayerStats(
        files=len(members(data)),
        size=len(data),
        diff_id="sha256:" + hashlib.sha256(data).hexdigest(),
    )


@pytest.mark.root
def test_layer_members_follow_oci_and_docker_conventions(upper: Path) -> None:
    data, _ = write(upper)
    ms = members(data)
    names = [m.name for m in ms]
    by_name = {m.name: m for m in ms}
    # no root entry, no "./" prefix, depth first with each directory's entries in byte order
    assert names[:4] == ["big", "bin", "bin/busybox", "bin/ls"]
    assert names.index("var/cache/.wh..wh..opq") == names.index("var/cache") + 1
    assert names.index("deep/a/b/c") < names.index("deep/a/b/c/" + "d" * 90) < names.index("dev")
    assert "run/sock" not in names
    # whiteouts
    for wh in ("etc/.wh.removed", "usr/.wh.gone"):
        m = by_name[wh]
        assert (m.type, m.mode, m.size) == (tarfile.REGTYPE, 0, 0)
    assert "etc/removed" not in by_name
    opq = by_name["var/cache/.wh..wh..opq"]
    assert (opq.type, opq.size) == (tarfile.REGTYPE, 0)
    assert not any(k.startswith("SCHILY.xattr.trusted.") for m in ms for k in m.pax_headers)
    # hardlinks, symlinks, devices, xattrs, owners
    assert (by_name["bin/ls"].type, by_name["bin/ls"].linkname) == (tarfile.LNKTYPE, "bin/busybox")
    assert (by_name["usr/bin/ls2"].type, by_name["usr/bin/ls2"].linkname) == (
        tarfile.LNKTYPE,
        "bin/busybox",
    )
    assert by_name["bin/busybox"].mode == 0o4755
    assert by_name["lib64"].linkname == "/lib"
    assert (by_name["dev/null"].devmajor, by_name["dev/null"].devminor) == (1, 3)
    assert by_name["dev/loop0"].type == tarfile.BLKTYPE
    assert by_name["run/fifo"].type == tarfile.FIFOTYPE
    assert by_name["home/user/notes"].pax_headers["SCHILY.xattr.user.x"] == "value"
    assert all(m.uname == "" and m.gname == "" for m in ms)
    assert by_name["big"].uid == 3_000_000
    assert by_name["old"].mtime == -1000
    assert by_name["future"].mtime == 2**33
    assert all(m.mtime == int(m.mtime) for m in ms)  # whole seconds, no atime/ctime records
    assert not any(k in m.pax_headers for m in ms for k in ("atime", "ctime"))
    assert by_name["old"].pax_headers["mtime"] == "-1000"
    # no record padding: the stream ends right after two zero blocks
    assert data.endswith(bytes(1024))
    assert len(data) % 512 == 0
    assert data[-1536:-1024] != bytes(512)


@pytest.mark.root
def test_same_tree_gives_same_bytes(upper: Path, tmp_path: Path) -> None:
    first, stats = write(upper)
    for p in upper.rglob("*"):  # reading changes atimes, which must not matter
        if p.is_file() and not p.is_symlink():
            p.read_bytes()
    assert write(upper)[0] == first
    other = tmp_path / "other"
    other.mkdir()
    build_rich_upper(other, reverse=True)
    assert write(other)[0] == first
    assert write(other)[1] == stats


def test_empty_upper_is_the_well_known_empty_layer(tmp_path: Path) -> None:
    data, stats = write(tmp_path)
    assert data == bytes(1024)
    assert stats == LayerStats(files=0, size=1024, diff_id=EMPTY_LAYER_DIFF_ID)


def test_symlinks_are_archived_not_followed(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret").write_bytes(b"host secret")
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink(tmp_path / "outside", upper / "escape")
    os.symlink("/", upper / "root")
    data, _ = write(upper)
    assert b"host secret" not in data
    assert [(m.name, m.type) for m in members(data)] == [
        ("escape", tarfile.SYMTYPE),
        ("root", tarfile.SYMTYPE),
    ]


@pytest.mark.parametrize("kind", ["symlink", "missing", "file"])
def test_bad_upper_is_refused(tmp_path: Path, kind: str) -> None:
    (tmp_path / "real").mkdir()
    bad = tmp_path / "bad"
    if kind == "symlink":
        os.symlink(tmp_path / "real", bad)
    elif kind == "file":
        bad.write_bytes(b"")
    with pytest.raises(InvalidArgument, match="layer source"):
        write_layer(bad, io.BytesIO())


@pytest.mark.root
@pytest.mark.parametrize("xattr", ["trusted.overlay.metacopy", "trusted.overlay.redirect"])
def test_metacopy_and_redirect_are_refused(tmp_path: Path, xattr: str) -> None:
    (tmp_path / "d").mkdir()
    os.setxattr(tmp_path / "d", xattr, b"/elsewhere")
    with pytest.raises(BerthError, match="metacopy"):
        write_layer(tmp_path, io.BytesIO())


@pytest.mark.root
def test_opaque_flag_other_than_y_is_not_an_opaque_dir(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.setxattr(tmp_path / "d", OPAQUE_XATTR, b"x")  # Linux 6.7 "has xwhiteouts" marker
    data, _ = write(tmp_path)
    [m] = members(data)
    assert m.name == "d"
    assert not m.pax_headers


# -- hashing and compression ------------------------------------------------------------------


def test_digest_writer_and_tee_digest() -> None:
    sink = io.BytesIO()
    w = DigestWriter(sink)
    assert w.write(b"abc") == 3
    assert w.write(memoryview(b"defg")) == 4
    assert (w.digest, w.size) == ("sha256:" + hashlib.sha256(b"abcdefg").hexdigest(), 7)
    assert sink.getvalue() == b"abcdefg"
    data = os.urandom(3 << 20)
    out = io.BytesIO()
    assert tee_digest(io.BytesIO(data), out) == (
        "sha256:" + hashlib.sha256(data).hexdigest(),
        len(data),
    )
    assert out.getvalue() == data
    assert tee_digest(io.BytesIO(data), None)[1] == len(data)


@pytest.mark.parametrize("level", [1, 6, 9, 0])
def test_compress_gzip_round_trips_and_is_deterministic(level: int) -> None:
    data = b"layer " * 200_000 + os.urandom(100_000)
    out = io.BytesIO()
    digest, size = compress_gzip(io.BytesIO(data), out, level=level)
    blob = out.getvalue()
    assert (digest, size) == ("sha256:" + hashlib.sha256(blob).hexdigest(), len(blob))
    assert gzip.decompress(blob) == data
    assert open_layer_stream(io.BytesIO(blob)).read() == data
    again = io.BytesIO()
    assert compress_gzip(io.BytesIO(data), again, level=level) == (digest, size)
    if level:
        assert size < len(data)


def test_compress_gzip_default_is_level_1() -> None:
    data = b"0123456789abcdef" * 100_000 + os.urandom(1000)
    a, b = io.BytesIO(), io.BytesIO()
    compress_gzip(io.BytesIO(data), a)
    compress_gzip(io.BytesIO(data), b, level=1)
    assert a.getvalue() == b.getvalue()


@pytest.mark.parametrize("level", [-1, 10])
def test_compress_gzip_rejects_bad_levels(level: int) -> None:
    with pytest.raises(InvalidArgument, match="gzip level"):
        compress_gzip(io.BytesIO(b""), io.BytesIO(), level=level)


# -- random trees -------------------------------------------------------------------------------


@attrs.frozen
class File:
    data: bytes
    mode: int
    uid: int
    gid: int
    mtime: int
    xattr: bytes | None


@attrs.frozen
class Link:
    index: int  # the index-th regular file already made (mod their count)


@attrs.frozen
class Sym:
    target: str


@attrs.frozen
class Fifo:
    mode: int


@attrs.frozen
class Whiteout:
    uid: int


@attrs.frozen
class Dir:
    children: dict[str, object]
    mode: int
    uid: int
    opaque: bool
    xattr: bytes | None


_names = st.text(alphabet="abAB.-_ \u00e9\u4e2d", min_size=1, max_size=5).filter(
    lambda n: n not in (".", "..") and not n.startswith(".wh.")
)
_ids = st.integers(0, 70_000)
_leaf = st.one_of(
    st.builds(
        File,
        data=st.binary(max_size=1100),
        mode=st.integers(0, 0o7777),
        uid=_ids,
        gid=_ids,
        mtime=st.integers(-(2**31), 2**33),  # unpack refuses times past 2262 (int64 ns)
        xattr=st.none() | st.binary(max_size=16),
    ),
    st.builds(Link, index=st.integers(0, 50)),
    st.builds(Sym, target=st.text(min_size=1, max_size=12).filter(lambda t: "\x00" not in t)),
    st.builds(Fifo, mode=st.integers(0, 0o777)),
    st.builds(Whiteout, uid=_ids),
)
_node = st.recursive(
    _leaf,
    lambda kids: st.builds(
        Dir,
        children=st.dictionaries(_names, kids, max_size=4),
        mode=st.integers(0, 0o7777),
        uid=_ids,
        opaque=st.booleans(),
        xattr=st.none() | st.binary(max_size=16),
    ),
    max_leaves=12,
)
_trees = st.dictionaries(_names, _node, max_size=5)


def _materialise(root: Path, tree: dict[str, object]) -> None:
    made: list[Path] = []
    dirs: list[tuple[Path, Dir]] = []

    def build(base: Path, children: dict[str, object]) -> None:
        for name, node in children.items():
            p = base / name
            if isinstance(node, File):
                _file(p, node.data, node.mode, uid=node.uid, gid=node.gid, mtime=node.mtime)
                if node.xattr is not None:
                    os.setxattr(p, "user.x", node.xattr)
                made.append(p)
            elif isinstance(node, Link):
                if made:
                    os.link(made[node.index % len(made)], p)
                else:
                    _file(p, b"", 0o644)
                    made.append(p)
            elif isinstance(node, Sym):
                os.symlink(node.target, p)
                os.utime(p, (T, T), follow_symlinks=False)
            elif isinstance(node, Fifo):
                os.mkfifo(p)
                os.chmod(p, node.mode)
                os.utime(p, (T, T))
            elif isinstance(node, Whiteout):
                os.mknod(p, stat.S_IFCHR, 0)
                os.chown(p, node.uid, node.uid, follow_symlinks=False)
            elif isinstance(node, Dir):
                p.mkdir()
                build(p, node.children)
                dirs.append((p, node))

    build(root, tree)
    for p, node in dirs:  # children before parents: build() appended them in that order
        os.chown(p, node.uid, node.uid)
        os.chmod(p, node.mode)
        if node.opaque:
            os.setxattr(p, OPAQUE_XATTR, b"y")
        if node.xattr is not None:
            os.setxattr(p, "user.d", node.xattr)
        os.utime(p, (T, T))


@pytest.mark.root
@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees)
def test_random_trees_round_trip(tree: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        upper, dst = Path(tmp, "upper"), Path(tmp, "dst")
        upper.mkdir()
        _materialise(upper, tree)
        before = snapshot(upper)
        data, stats = round_trip(upper, dst)
        assert snapshot(dst) == expected_after_round_trip(before)
        assert write(upper)[0] == data  # deterministic
        assert stats.size == len(data)


# -- a real overlayfs upper dir ------------------------------------------------------------------


def _mount_overlay(
    lower: str, merged: Path, *, upper: Path | None = None, work: Path | None = None
) -> None:
    opts = f"lowerdir={lower},redirect_dir=off,metacopy=off,index=off"
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work}"
    result = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount overlayfs here: {result.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True)


@pytest.mark.root
def test_real_overlay_upper_gives_a_layer_that_recreates_the_merged_view(tmp_path: Path) -> None:
    """Changes made through a real overlay mount; the layer written from its upper dir,
    unpacked and stacked on the same lower, must show exactly the merged tree."""
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    _file(lower / "keep", b"kept\n", 0o644)
    _file(lower / "gone", b"deleted\n", 0o644)
    _file(lower / "renamed", b"moved\n", 0o600)
    (lower / "dir/sub").mkdir(parents=True)
    _file(lower / "dir/old", b"old\n", 0o644)
    _file(lower / "dir/sub/deep", b"deep\n", 0o644)
    (lower / "tree").mkdir()
    _file(lower / "tree/a", b"a\n", 0o644)
    set_times_bottom_up(lower)

    _mount_overlay(str(lower), merged, upper=upper, work=work)
    try:
        (merged / "gone").unlink()  # -> whiteout
        shutil.rmtree(merged / "dir")  # removed, then made again: an opaque directory
        (merged / "dir").mkdir()
        _file(merged / "dir/new", b"new\n", 0o640)
        with (merged / "keep").open("ab") as f:  # copy-up
            f.write(b"changed\n")
        os.chmod(merged / "keep", 0o4755)
        os.rename(merged / "renamed", merged / "tree/renamed")  # whiteout + new file
        (merged / "tree/b").symlink_to("a")
        os.mkfifo(merged / "tree/fifo")
        os.setxattr(merged / "tree/a", "user.note", b"copied up for an xattr")
        os.link(merged / "dir/new", merged / "dir/new-link")
        os.utime(merged / "keep", (T, T))
        set_times_bottom_up(merged)
        expected = snapshot(merged)
    finally:
        _umount(merged)

    assert {b"gone", b"renamed", b"dir/old", b"dir/sub"}.isdisjoint(expected)
    assert {b"keep", b"dir/new", b"tree/renamed", b"tree/a"} <= set(expected)
    assert os.getxattr(upper / "dir", OPAQUE_XATTR) == b"y"
    assert stat.S_ISCHR(os.lstat(upper / "gone").st_mode)
    layer_dir = tmp_path / "layer"
    data, _ = round_trip(upper, layer_dir)
    names = [m.name for m in members(data)]
    assert {"dir/.wh..wh..opq", ".wh.gone", ".wh.renamed"} <= set(names)

    view = tmp_path / "view"
    view.mkdir()
    _mount_overlay(f"{layer_dir}:{lower}", view)
    try:
        assert snapshot(view) == expected
    finally:
        _umount(view)


@pytest.mark.root
@pytest.mark.parametrize(
    ("source", "message"),
    [("/proc/version", "grew"), ("/sys/kernel/uevent_seqnum", "shrank")],
    ids=["proc-file-larger-than-its-size", "sysfs-file-smaller-than-its-size"],
)
def test_file_whose_size_changes_while_read_fails_the_layer(
    tmp_path: Path, source: str, message: str
) -> None:
    """What a running container appending to or truncating a file looks like: procfs and
    sysfs files report sizes their contents do not have, so a bind mount of one stands in."""
    if not os.path.exists(source):
        pytest.skip(f"{source} is absent")
    (tmp_path / "f").write_bytes(b"")
    result = subprocess.run(
        ["mount", "--bind", source, str(tmp_path / "f")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {result.stderr.strip()}")
    try:
        with pytest.raises(BerthError, match=f"'f' {message} while being archived"):
            write_layer(tmp_path, io.BytesIO())
    finally:
        _umount(tmp_path / "f")
