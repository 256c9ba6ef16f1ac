"""Tests for cli.buildcontext: what ``berth build`` uploads, and what it never leaks.

The expected tar contents and messages are the docker 28.2.2 CLI's (compared by pointing
it at a fake daemon that recorded the body of ``POST /build``).
"""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from cli.buildcontext import (
    BuildContext,
    directory_context,
    is_archive,
    iter_context_tar,
    open_build_context,
    stdin_context,
    walk_context,
)
from cli.client import ClientError

NOW = 1_700_000_000.0


def _tar(context: BuildContext) -> tarfile.TarFile:
    data = b"".join(context.chunks)
    assert len(data) % 512 == 0
    return tarfile.open(fileobj=io.BytesIO(data))


def _names(context: BuildContext) -> list[str]:
    with _tar(context) as tar:
        return [m.name for m in tar]


def _content(context: BuildContext, name: str) -> bytes:
    with _tar(context) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "keep").mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "a.txt").write_text("a")
    (root / "b.md").write_text("b")
    (root / "sub" / "x.go").write_text("x")
    (root / "sub" / "deep" / "y.go").write_text("y")
    (root / "sub" / "foo").write_text("")
    (root / "foo").write_text("")
    (root / "xfoo").write_text("")
    (root / "keep" / "k").write_text("k")
    return root


def test_directory_context_sorted_walk_without_ignore(ctx: Path) -> None:
    context = directory_context(str(ctx), None, now=NOW)
    assert context.dockerfile == "Dockerfile"
    assert _names(context) == [
        "Dockerfile",
        "a.txt",
        "b.md",
        "foo",
        "keep",
        "keep/k",
        "sub",
        "sub/deep",
        "sub/deep/y.go",
        "sub/foo",
        "sub/x.go",
        "xfoo",
    ]


def test_directory_context_honours_dockerignore_like_docker(ctx: Path) -> None:
    (ctx / ".dockerignore").write_text("**/foo\n*.md\n")
    assert _names(directory_context(str(ctx), None, now=NOW)) == [
        ".dockerignore",
        "Dockerfile",
        "a.txt",
        "keep",
        "keep/k",
        "sub",
        "sub/deep",
        "sub/deep/y.go",
        "sub/x.go",
        "xfoo",
    ]


def test_directory_context_entries_owned_by_root_with_modes_and_content(ctx: Path) -> None:
    (ctx / "a.txt").chmod(0o640)
    os.utime(ctx / "a.txt", (NOW, NOW))
    context = directory_context(str(ctx), None, now=NOW)
    with _tar(context) as tar:
        member = tar.getmember("a.txt")
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mode == 0o640
        assert member.mtime == int(NOW)
        assert tar.getmember("sub").isdir()
    assert _content(directory_context(str(ctx), None), "sub/deep/y.go") == b"y"


def test_ignored_dockerfile_and_dockerignore_are_still_sent(ctx: Path) -> None:
    (ctx / ".dockerignore").write_text("*\n")
    assert _names(directory_context(str(ctx), None, now=NOW)) == [".dockerignore", "Dockerfile"]


def test_exception_inside_ignored_directory_sends_file_without_directory_entry(
    ctx: Path,
) -> None:
    (ctx / ".dockerignore").write_text("sub\n!sub/deep/y.go\n")
    names = _names(directory_context(str(ctx), None, now=NOW))
    assert "sub/deep/y.go" in names
    assert "sub" not in names
    assert "sub/deep" not in names
    assert "sub/x.go" not in names


def test_walk_keeps_dockers_parent_result_quirk(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_text("")
    (tmp_path / "a" / "c").write_text("")
    assert [e.path for e in walk_context(str(tmp_path), ["a/b", "!a"])] == ["a", "a/c"]


def test_dockerfile_in_ignored_subdirectory_is_kept(ctx: Path) -> None:
    (ctx / "docs").mkdir()
    (ctx / "docs" / "Dockerfile.dev").write_text("FROM scratch\n")
    (ctx / "docs" / "other").write_text("")
    (ctx / ".dockerignore").write_text("docs\n")
    context = directory_context(str(ctx), str(ctx / "docs" / "Dockerfile.dev"), now=NOW)
    assert context.dockerfile == "docs/Dockerfile.dev"
    names = _names(context)
    assert "docs/Dockerfile.dev" in names
    assert "docs/other" not in names


def test_lowercase_dockerfile_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / "dockerfile").write_text("FROM scratch\n")
    assert directory_context(str(tmp_path), None).dockerfile == "dockerfile"


def test_dockerfile_flag_is_relative_to_the_current_directory(
    ctx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ctx / "sub" / "Dockerfile.sub").write_text("FROM scratch\n")
    monkeypatch.chdir(ctx / "sub")
    assert directory_context(str(ctx), "Dockerfile.sub").dockerfile == "sub/Dockerfile.sub"


def test_dockerfile_outside_context_travels_under_a_generated_name(
    ctx: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "out" / "Df"
    outside.parent.mkdir()
    outside.write_bytes(b"FROM outside\n")
    (ctx / ".dockerignore").write_text("**/foo\n*.md\n")
    context = directory_context(str(ctx), str(outside), now=NOW, name=lambda: ".dockerfile.x1")
    assert context.dockerfile == ".dockerfile.x1"
    names = _names(context)
    assert names[0] == ".dockerignore"
    assert names[-1] == ".dockerfile.x1"
    assert _content(context_again(ctx, outside), ".dockerfile.x1") == b"FROM outside\n"
    assert _content(context_again(ctx, outside), ".dockerignore") == (
        b"**/foo\n*.md\n\n.dockerfile.x1\n"
    )
    with _tar(context_again(ctx, outside)) as tar:
        assert tar.getmember(".dockerfile.x1").mode == 0o600


def context_again(ctx: Path, outside: Path) -> BuildContext:
    return directory_context(str(ctx), str(outside), now=NOW, name=lambda: ".dockerfile.x1")


def test_dockerfile_from_stdin_adds_a_dockerignore_when_missing(ctx: Path) -> None:
    context = directory_context(
        str(ctx), None, stdin_dockerfile=b"FROM stdin\n", now=NOW, name=lambda: ".dockerfile.s"
    )
    assert context.dockerfile == ".dockerfile.s"
    names = _names(context)
    assert names[-2:] == [".dockerignore", ".dockerfile.s"]
    assert "Dockerfile" in names  # the one in the context is an ordinary file now
    again = directory_context(
        str(ctx), None, stdin_dockerfile=b"FROM stdin\n", now=NOW, name=lambda: ".dockerfile.s"
    )
    assert _content(again, ".dockerignore") == b".dockerignore\n.dockerfile.s\n"


def test_generated_names_look_like_dockers(ctx: Path, tmp_path: Path) -> None:
    outside = tmp_path / "Df"
    outside.write_text("FROM x\n")
    name = directory_context(str(ctx), str(outside)).dockerfile
    assert name is not None
    assert name.startswith(".dockerfile.")
    assert len(name) == len(".dockerfile.") + 20
    int(name.removeprefix(".dockerfile."), 16)


def test_symlinks_are_sent_as_symlinks_never_followed(ctx: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("TOP SECRET")
    (ctx / "link").symlink_to("/etc/passwd")
    (ctx / "dirlink").symlink_to(secret)
    context = directory_context(str(ctx), None, now=NOW)
    data = b"".join(context.chunks)
    assert b"TOP SECRET" not in data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("link").issym()
        assert tar.getmember("link").linkname == "/etc/passwd"
        assert tar.getmember("dirlink").issym()
        assert "dirlink/key" not in tar.getnames()


def test_symlink_swapped_in_after_the_walk_fails_instead_of_leaking(
    ctx: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("TOP SECRET")
    entries = walk_context(str(ctx), [])
    (ctx / "a.txt").unlink()
    (ctx / "a.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(ClientError, match=r"a\.txt"):
        b"".join(iter_context_tar(str(ctx), entries))


def test_directory_swapped_for_symlink_after_the_walk_fails(ctx: Path, tmp_path: Path) -> None:
    decoy = tmp_path / "decoy" / "deep"
    decoy.mkdir(parents=True)
    (decoy / "y.go").write_text("TOP SECRET")
    entries = walk_context(str(ctx), [])
    (ctx / "sub").rename(tmp_path / "moved")
    (ctx / "sub").symlink_to(tmp_path / "decoy")
    with pytest.raises(ClientError):
        b"".join(iter_context_tar(str(ctx), entries))


def test_hardlinks_become_tar_links(ctx: Path) -> None:
    os.link(ctx / "a.txt", ctx / "z-hard")
    with _tar(directory_context(str(ctx), None)) as tar:
        member = tar.getmember("z-hard")
        assert member.islnk()
        assert member.linkname == "a.txt"


def test_sockets_are_skipped_fifos_kept(ctx: Path) -> None:
    os.mkfifo(ctx / "fifo")
    path = ctx / "sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        names = _names(directory_context(str(ctx), None))
    finally:
        server.close()
    assert "fifo" in names
    assert "sock" not in names


def test_unreadable_file_reported_before_sending(ctx: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    (ctx / "a.txt").chmod(0)
    with pytest.raises(ClientError, match="no permission to read from"):
        directory_context(str(ctx), None)


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        ("!\n", 'error checking context: illegal exclusion pattern: "!"'),
        ("x[\n", "error checking context: syntax error in pattern"),
    ],
)
def test_bad_dockerignore_reports_dockers_error(ctx: Path, ignore: str, message: str) -> None:
    (ctx / ".dockerignore").write_text(ignore)
    with pytest.raises(ClientError, match=message.replace("[", r"\[")):
        directory_context(str(ctx), None)


def test_missing_context_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ClientError) as info:
        open_build_context("nonexist", None, stdin=io.BytesIO())
    assert str(info.value) == 'unable to prepare context: path "nonexist" not found'


def test_context_must_be_a_directory(ctx: Path) -> None:
    with pytest.raises(ClientError) as info:
        open_build_context(str(ctx / "a.txt"), None, stdin=io.BytesIO())
    assert str(info.value) == f"unable to prepare context: context must be a directory: {ctx}/a.txt"


def test_missing_dockerfile_names_the_path(ctx: Path) -> None:
    with pytest.raises(ClientError) as info:
        open_build_context(str(ctx / "sub"), None, stdin=io.BytesIO())
    assert str(info.value) == (
        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
        f"lstat {ctx}/sub/Dockerfile: no such file or directory"
    )


def test_stdin_for_both_context_and_dockerfile_is_refused() -> None:
    with pytest.raises(ClientError) as info:
        open_build_context("-", "-", stdin=io.BytesIO(b"FROM x\n"))
    assert str(info.value) == (
        "invalid argument: can't use stdin for both build context and dockerfile"
    )


def test_dockerfile_flag_dash_reads_stdin_for_a_directory(ctx: Path) -> None:
    context = open_build_context(str(ctx), "-", stdin=io.BytesIO(b"FROM piped\n"), now=NOW)
    assert context.dockerfile is not None
    assert context.dockerfile.startswith(".dockerfile.")
    assert _names(context)[-1] == context.dockerfile


def test_stdin_dockerfile_becomes_a_one_file_context() -> None:
    context = stdin_context(io.BytesIO(b"FROM stdin2\n"), None, now=NOW)
    assert context.dockerfile == "Dockerfile"
    with _tar(context) as tar:
        member = tar.getmember("Dockerfile")
        assert member.mode == 0o644
        assert member.mtime == int(NOW)
    again = stdin_context(io.BytesIO(b"FROM stdin2\n"), "ignored", now=NOW)
    assert again.dockerfile == "Dockerfile"
    assert _content(again, "Dockerfile") == b"FROM stdin2\n"


def test_stdin_empty_is_an_empty_dockerfile() -> None:
    context = stdin_context(io.BytesIO(b""), None)
    assert _content(context, "Dockerfile") == b""


def _small_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        data = b"FROM scratch\n" * 100
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_stdin_archive_is_passed_through_unchanged(compress: bool) -> None:
    raw = _small_tar()
    body = gzip.compress(raw) if compress else raw
    context = stdin_context(io.BytesIO(body), None)
    assert context.dockerfile is None
    assert b"".join(context.chunks) == body
    with_flag = stdin_context(io.BytesIO(body), "sub/Df")
    assert with_flag.dockerfile == "sub/Df"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x1f\x8b\x08rest", True),
        (b"BZh91AY", True),
        (b"\xfd7zXZ\x00..", True),
        (b"\x28\xb5\x2f\xfd..", True),
        (b"FROM busybox\n", False),
        (b"\0" * 512, False),
        (b"x" * 512, False),
    ],
    ids=["gzip", "bzip2", "xz", "zstd", "dockerfile", "zero-block", "garbage"],
)
def test_is_archive_table(head: bytes, expected: bool) -> None:
    assert is_archive(head) is expected


def test_is_archive_accepts_a_real_tar_header() -> None:
    assert is_archive(_small_tar()[:512])
