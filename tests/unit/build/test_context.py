"""``supervisor.build.context``: what COPY/ADD put in the tar for sources that are not
paths (heredocs, downloads), and WORKDIR's directory made inside a stage's root."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from supervisor.build.context import BuildFS, CopyRequest, InlineFile, collect
from supervisor.errors import BerthError


def _request(sources: tuple[str, ...], dest: str, *, chmod: int | None = None) -> CopyRequest:
    return CopyRequest(
        sources=sources,
        dest=dest,
        dest_is_dir=dest.endswith("/"),
        owner=None,
        chmod=chmod,
        extract_archives=True,
        from_context=True,
    )


def _members(tar: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tar) as t:
        return {m.name: m for m in t.getmembers()}


@pytest.mark.parametrize(
    ("item", "chmod", "mode", "mtime"),
    [
        (InlineFile(b"body\n"), None, 0o644, 0),
        (InlineFile(b"body\n", mode=0o600, mtime=1_700_000_000), None, 0o600, 1_700_000_000),
        (InlineFile(b"body\n", mode=0o600), 0o755, 0o755, 0),
    ],
    ids=["heredoc-0644", "download-0600", "chmod-overrides-download"],
)
def test_collect_inline_file_mode_and_mtime(
    tmp_path: Path, item: InlineFile, chmod: int | None, mode: int, mtime: int
) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    fs = BuildFS(root, [], container="context")
    work = tmp_path / "work"
    work.mkdir()
    got = collect(fs, _request(("f",), "/data/", chmod=chmod), work, inline={"f": item})
    member = _members(got.tar)["data/f"]
    assert (stat.S_IMODE(member.mode), member.mtime, member.uid, member.gid) == (mode, mtime, 0, 0)


def test_collect_inline_file_mode_changes_checksum(tmp_path: Path) -> None:
    fs = BuildFS(tmp_path, [], container="context")
    sums = set()
    for n, mode in enumerate((0o644, 0o600)):
        work = tmp_path / f"w{n}"
        work.mkdir()
        got = collect(fs, _request(("f",), "/f"), work, inline={"f": InlineFile(b"x", mode=mode)})
        sums.add(got.checksum)
    assert len(sums) == 2


@pytest.mark.parametrize(
    ("sources", "dest", "kind"),
    [
        (("a.txt",), "/a.txt", "file"),
        (("src",), "/app/", "dir"),
        (("a.txt", "src"), "/app/", "multi"),
    ],
)
def test_collect_names_the_content_as_dockerd_history(
    tmp_path: Path, sources: tuple[str, ...], dest: str, kind: str
) -> None:
    """dockerd's classic builder writes ``COPY file:<hash> in /dest`` (dir:, multi:)."""
    root = tmp_path / "ctx"
    (root / "src").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "src" / "b.txt").write_text("b")
    work = tmp_path / "work"
    work.mkdir()
    got = collect(BuildFS(root, [], container="context"), _request(sources, dest), work, inline={})
    prefix, _, digest = got.checksum.partition(":")
    assert prefix == kind and len(digest) == 64


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (stat.S_IMODE(p.lstat().st_mode), p.lstat().st_uid)
        for p in sorted(root.rglob("*"))
    }


def test_make_workdir_makes_missing_parents_0755(tmp_path: Path) -> None:
    os.umask(old := os.umask(0o022))
    BuildFS(tmp_path, [], container="build").make_workdir("/a/b/c")
    assert _tree(tmp_path) == {
        "a": (0o755 & ~old, os.geteuid()),
        "a/b": (0o755 & ~old, os.geteuid()),
        "a/b/c": (0o755 & ~old, os.geteuid()),
    }


def test_make_workdir_existing_directory_left_alone(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp").chmod(0o1777)
    before = (tmp_path / "tmp").stat()
    BuildFS(tmp_path, [], container="build").make_workdir("/tmp")
    after = (tmp_path / "tmp").stat()
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)


def test_make_workdir_follows_symlinks_inside_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "lnk").symlink_to("/etc")
    (tmp_path / "dangle").symlink_to("/nonexist/abs")
    fs = BuildFS(tmp_path, [], container="build")
    fs.make_workdir("/lnk/sub")
    fs.make_workdir("/dangle/q")
    assert (tmp_path / "etc/sub").is_dir()
    assert (tmp_path / "nonexist/abs/q").is_dir()


def test_make_workdir_never_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "up").symlink_to("../../../..")
    BuildFS(root, [], container="build").make_workdir("/up/escaped")
    assert (root / "escaped").is_dir()
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/bin/sh", "Cannot mkdir: /bin/sh is not a directory"),
        ("/bin/sh/x", "mkdir /bin/sh/x: not a directory"),
    ],
    ids=["last", "middle"],
)
def test_make_workdir_file_in_the_way_raises(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/busybox").write_bytes(b"")
    (tmp_path / "bin/sh").symlink_to("busybox")
    with pytest.raises(BerthError, match=message):
        BuildFS(tmp_path, [], container="build").make_workdir(path)
