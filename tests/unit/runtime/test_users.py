"""Tests for supervisor.runtime.users: ``--user`` resolved as runc's ``user.GetExecUser``."""

from __future__ import annotations

import pytest

from supervisor.runtime.users import ExecUser, UnknownUser, resolve_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin

app:x:1000:1000::/home/app:/bin/sh
nohome:x:1001:1001:::/bin/sh
broken:x:7
dup:x:2000:2000::/first:/bin/sh
dup:x:2001:2001::/second:/bin/sh
"""

GROUP = """\
root:x:0:root
daemon:x:1:root,daemon
wheel:x:10:root,app
nginx:x:101:
app:x:1000:
docker:x:999:app,nginx
audio:x:29:app
# comment
staff:x:50
"""


def resolve(spec: str, passwd: str | None = PASSWD, group: str | None = GROUP) -> ExecUser:
    return resolve_user(spec, passwd=passwd, group=group)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ExecUser(0, 0, (1, 10), "/root")),
        ("root", ExecUser(0, 0, (1, 10), "/root")),
        ("0", ExecUser(0, 0, (1, 10), "/root")),
        ("nginx", ExecUser(101, 101, (999,), "/var/cache/nginx")),
        ("app", ExecUser(1000, 1000, (10, 29, 999), "/home/app")),
        ("1000", ExecUser(1000, 1000, (10, 29, 999), "/home/app")),
        ("daemon", ExecUser(1, 1, (), "/usr/sbin")),
        ("nohome", ExecUser(1001, 1001, (), "/")),
        ("dup", ExecUser(2000, 2000, (), "/first")),
    ],
    ids=[
        "empty-is-root",
        "root-name",
        "root-uid",
        "name",
        "name-with-groups",
        "uid-in-passwd",
        "primary-group-not-repeated",
        "empty-home-is-root",
        "first-entry-wins",
    ],
)
def test_resolve_user_name_or_uid_uses_passwd(spec: str, expected: ExecUser) -> None:
    assert resolve(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("4242", ExecUser(4242, 0, (), "/")),
        ("4242:4242", ExecUser(4242, 4242, (), "/")),
        ("4242:docker", ExecUser(4242, 999, (), "/")),
        ("65534", ExecUser(65534, 0, (), "/")),
    ],
    ids=["uid-only-gid-0", "uid-gid", "uid-group-name", "nobody-uid"],
)
def test_resolve_user_numeric_uid_not_in_passwd_is_accepted(spec: str, expected: ExecUser) -> None:
    assert resolve(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app:docker", ExecUser(1000, 999, (), "/home/app")),
        ("app:10", ExecUser(1000, 10, (), "/home/app")),
        ("app:5555", ExecUser(1000, 5555, (), "/home/app")),
        ("1000:1000", ExecUser(1000, 1000, (), "/home/app")),
        ("nginx:root", ExecUser(101, 0, (), "/var/cache/nginx")),
        (":docker", ExecUser(0, 999, (), "/root")),
    ],
    ids=[
        "name-group",
        "name-gid",
        "name-unknown-gid",
        "uid-gid-in-files",
        "group-root",
        "group-only",
    ],
)
def test_resolve_user_explicit_group_drops_supplementary_groups(
    spec: str, expected: ExecUser
) -> None:
    assert resolve(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nobody", "unable to find user nobody: no matching entries in passwd file"),
        ("nobody:root", "unable to find user nobody: no matching entries in passwd file"),
        ("app:nogroup", "unable to find group nogroup: no matching entries in group file"),
        ("1000:nogroup", "unable to find group nogroup: no matching entries in group file"),
        ("broken", "unable to find user broken: no matching entries in passwd file"),
    ],
    ids=[
        "unknown-name",
        "unknown-name-with-group",
        "unknown-group",
        "uid-unknown-group",
        "short-line-ignored",
    ],
)
def test_resolve_user_unknown_name_raises_docker_message(spec: str, message: str) -> None:
    with pytest.raises(UnknownUser) as info:
        resolve(spec)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ExecUser(0, 0, (), "/")),
        ("123", ExecUser(123, 0, (), "/")),
        ("123:456", ExecUser(123, 456, (), "/")),
    ],
    ids=["root", "uid", "uid-gid"],
)
def test_resolve_user_no_files_numeric_specs_work(spec: str, expected: ExecUser) -> None:
    assert resolve(spec, passwd=None, group=None) == expected


@pytest.mark.parametrize("spec", ["root", "app"], ids=["root", "app"])
def test_resolve_user_no_passwd_file_name_raises(spec: str) -> None:
    with pytest.raises(UnknownUser, match="no matching entries in passwd file"):
        resolve(spec, passwd=None)


def test_resolve_user_no_group_file_name_group_raises() -> None:
    with pytest.raises(UnknownUser, match="no matching entries in group file"):
        resolve("app:docker", group=None)


def test_resolve_user_no_group_file_has_no_supplementary_groups() -> None:
    assert resolve("app", group=None) == ExecUser(1000, 1000, (), "/home/app")


def test_unknown_user_is_a_value_error() -> None:
    assert issubclass(UnknownUser, ValueError)
