"""Tests for supervisor.volumes.mounts: Docker's Binds / Mounts / Tmpfs / VolumesFrom /
Volumes rules and messages (moby ``volume/mounts`` Linux parser, ``registerMountPoints``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument, NotFound, Unsupported
from supervisor.runtime.spec import BindMount, TmpfsMount
from supervisor.volumes.model import ANONYMOUS_LABEL, MountPoint, MountType
from supervisor.volumes.mounts import (
    check_volume,
    clean_path,
    inherit,
    parse_bind,
    parse_mount,
    parse_tmpfs,
    parse_volumes_from,
    plan_mounts,
    tmpfs_options,
    to_api,
    to_spec,
    valid_mode,
    volume_name_error,
    volumes_from_refs,
)


def names() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{next(counter):064x}"


ANON1 = f"{1:064x}"
ANON2 = f"{2:064x}"


def bind(raw: str) -> MountPoint:
    return parse_bind(raw, new_name=names())


def mount(obj: object) -> MountPoint:
    return parse_mount(obj, new_name=names())


def plan(host_config: dict[str, Any], volumes: object = None, **kw: Any) -> tuple[MountPoint, ...]:
    return plan_mounts(host_config, volumes, new_name=names(), **kw)


def error_of(fn: Callable[[], object]) -> str:
    with pytest.raises(InvalidArgument) as info:
        fn()
    return str(info.value)


# -- clean_path / modes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("/a/b/", "/a/b"),
        ("//a//b", "/a/b"),
        ("/a/../b", "/b"),
        ("/..", "/"),
        ("a/./b", "a/b"),
        ("", "."),
        ("/", "/"),
    ],
    ids=["trailing", "double-slash", "dotdot", "above-root", "relative", "empty", "root"],
)
def test_clean_path_is_gos_path_clean(raw: str, cleaned: str) -> None:
    assert clean_path(raw) == cleaned


@pytest.mark.parametrize(
    ("mode", "valid"),
    [
        ("", True),
        ("ro", True),
        ("rw,Z", True),
        ("ro,z,rshared,nocopy,cached", True),
        ("ro,rw", False),
        ("z,Z", False),
        ("shared,slave", False),
        ("xyz", False),
        ("ro,", False),
    ],
    ids=[
        "empty",
        "ro",
        "rw-label",
        "one-of-each",
        "two-rw",
        "two-labels",
        "two-props",
        "unknown",
        "empty-option",
    ],
)
def test_valid_mode_at_most_one_of_each_kind(mode: str, valid: bool) -> None:
    assert valid_mode(mode) is valid


# -- Binds -----------------------------------------------------------------------------------


def test_parse_bind_host_path_is_a_bind_with_docker_defaults() -> None:
    assert bind("/host/dir/:/data/") == MountPoint(
        type=MountType.BIND,
        destination="/data",
        source="/host/dir",
        mode="",
        rw=True,
        propagation="rprivate",
        create_source=True,
    )


def test_parse_bind_read_only_with_label_and_propagation() -> None:
    m = bind("/h:/c:ro,Z,rshared")
    assert (m.rw, m.mode, m.propagation) == (False, "ro,Z,rshared", "rshared")


def test_parse_bind_name_is_a_named_volume_with_mode_z() -> None:
    assert bind("data:/var/lib/data") == MountPoint(
        type=MountType.VOLUME,
        destination="/var/lib/data",
        name="data",
        driver="local",
        mode="z",
        rw=True,
        copy_data=True,
    )


def test_parse_bind_volume_nocopy_and_ro() -> None:
    m = bind("data:/d:ro,nocopy")
    assert (m.rw, m.copy_data, m.mode, m.anonymous) == (False, False, "ro,nocopy", False)


def test_parse_bind_destination_only_is_an_anonymous_volume() -> None:
    m = bind("/data")
    assert m.type is MountType.VOLUME
    assert (m.name, m.anonymous, m.copy_data) == (ANON1, True, True)
    assert m.volume_labels == {ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        (":/x", "invalid volume specification: ':/x'"),
        ("/foo:rw", "invalid volume specification: '/foo:rw'"),
        ("/a:/b:xyz", "invalid mode: xyz"),
        ("/a:/b:ro,rw", "invalid mode: ro,rw"),
        (
            "data:relative",
            "invalid volume specification: 'data:relative': invalid mount config for type "
            "\"volume\": invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            "/x:/",
            "invalid volume specification: '/x:/': invalid mount config for type \"bind\": "
            "invalid specification: destination can't be '/'",
        ),
        (
            "/x://",
            "invalid volume specification: '/x://': invalid mount config for type \"bind\": "
            "invalid specification: destination can't be '/'",
        ),
        ("/x:", "invalid volume specification: '/x:'"),  # "" is a valid mode: no source
        (
            "/x:/y:nocopy",
            "invalid volume specification: '/x:/y:nocopy': invalid mount config for type "
            '"bind": field VolumeOptions must not be specified',
        ),
        (
            "data:/y:shared",
            "invalid volume specification: 'data:/y:shared': invalid mount config for type "
            '"volume": field BindOptions must not be specified',
        ),
        (
            "relative",
            "invalid volume specification: 'relative': invalid mount config for type "
            "\"volume\": invalid mount path: 'relative' mount path must be absolute",
        ),
    ],
    ids=[
        "too-many-colons",
        "empty-source",
        "dest-and-mode-only",
        "unknown-mode",
        "two-rw-modes",
        "relative-destination",
        "root-destination",
        "root-destination-uncleaned",
        "empty-destination",
        "nocopy-on-bind",
        "propagation-on-volume",
        "relative-anonymous",
    ],
)
def test_parse_bind_bad_input_has_dockers_message(raw: str, message: str) -> None:
    assert error_of(lambda: bind(raw)) == message


@given(st.text(alphabet="/:abrowzZsh,.-", max_size=24))
def test_parse_bind_raises_only_invalid_argument(raw: str) -> None:
    try:
        m = bind(raw)
    except InvalidArgument:
        return
    assert m.destination.startswith("/") and m.destination != "/"
    assert m.destination == clean_path(m.destination)
    if m.type is MountType.BIND:
        assert m.source.startswith("/")


# -- Mounts ------------------------------------------------------------------------------------


def test_parse_mount_bind_with_options() -> None:
    m = mount(
        {
            "Type": "bind",
            "Source": "/srv/",
            "Target": "/srv",
            "ReadOnly": True,
            "BindOptions": {"Propagation": "rslave", "NonRecursive": True},
        }
    )
    assert m == MountPoint(
        type=MountType.BIND,
        destination="/srv",
        source="/srv",
        rw=False,
        propagation="rslave",
        recursive=False,
    )
    assert not m.create_source  # --mount: the source must exist


def test_parse_mount_bind_create_mountpoint() -> None:
    m = mount(
        {"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"CreateMountpoint": True}}
    )
    assert m.create_source and m.propagation == "rprivate"


def test_parse_mount_named_volume_with_labels_nocopy_and_driver_options() -> None:
    m = mount(
        {
            "Type": "volume",
            "Source": "cache",
            "Target": "/cache",
            "VolumeOptions": {
                "NoCopy": True,
                "Labels": {"tier": "db"},
                "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}},
            },
        }
    )
    assert (m.name, m.driver, m.mode, m.copy_data, m.anonymous) == (
        "cache",
        "local",
        "z",
        False,
        False,
    )
    assert m.volume_labels == {"tier": "db"}
    assert m.volume_options == {"type": "tmpfs"}


def test_parse_mount_anonymous_volume_is_labelled() -> None:
    m = mount({"Type": "volume", "Target": "/x", "VolumeOptions": {"Labels": {"a": "b"}}})
    assert (m.name, m.anonymous, m.copy_data) == (ANON1, True, True)
    assert m.volume_labels == {"a": "b", ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize(
    ("size", "mode", "readonly", "options"),
    [
        (
            64 * 1024 * 1024,
            0o1777,
            False,
            ("noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=64m"),
        ),
        (1 << 30, 0, True, ("noexec", "nosuid", "nodev", "rprivate", "ro", "size=1g")),
        (3 * 1024, 0, False, ("noexec", "nosuid", "nodev", "rprivate", "size=3k")),
        (1000, 0, False, ("noexec", "nosuid", "nodev", "rprivate", "size=1000")),
        (0, 0, False, ("noexec", "nosuid", "nodev", "rprivate")),
    ],
    ids=["mode-and-megabytes", "ro-gigabyte", "kilobytes", "bytes", "defaults"],
)
def test_parse_mount_tmpfs_options_as_moby_converts_them(
    size: int, mode: int, readonly: bool, options: tuple[str, ...]
) -> None:
    m = mount(
        {
            "Type": "tmpfs",
            "Target": "/run",
            "ReadOnly": readonly,
            "TmpfsOptions": {"SizeBytes": size, "Mode": mode},
        }
    )
    assert m.type is MountType.TMPFS and m.tmpfs_options == options and m.rw is not readonly
    assert not m.from_tmpfs_map


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"Type": "bind", "Source": "/a"},
            'invalid mount config for type "bind": field Target must not be empty',
        ),
        (
            {"Type": "bind", "Target": "/b"},
            'invalid mount config for type "bind": field Source must not be empty',
        ),
        (
            {"Type": "bind", "Source": "rel", "Target": "/b"},
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            {"Type": "bind", "Source": "/a", "Target": "b"},
            "invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute",
        ),
        (
            {"Type": "volume", "Source": "v", "Target": "/"},
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
        ),
        (
            {
                "Type": "bind",
                "Source": "/a",
                "Target": "/b",
                "BindOptions": {"Propagation": "weird"},
            },
            'invalid mount config for type "bind": invalid propagation mode: weird',
        ),
        (
            {"Type": "bind", "Source": "/a", "Target": "/b", "VolumeOptions": {}},
            'invalid mount config for type "bind": field VolumeOptions must not be specified',
        ),
        (
            {"Type": "volume", "Target": "/b", "BindOptions": {}},
            'invalid mount config for type "volume": field BindOptions must not be specified',
        ),
        (
            {"Type": "volume", "Target": "/b", "ReadOnly": True},
            'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes',
        ),
        (
            {"Type": "tmpfs", "Source": "x", "Target": "/b"},
            'invalid mount config for type "tmpfs": field Source must not be specified',
        ),
        (
            {"Type": "tmpfs", "Target": "/b", "BindOptions": {}},
            'invalid mount config for type "tmpfs": field BindOptions must not be specified',
        ),
        (
            {"Type": "npipe", "Source": "/a", "Target": "/b"},
            'invalid mount config for type "npipe": mount type unknown',
        ),
        ({"Source": "/a", "Target": "/b"}, 'invalid mount config for type "": mount type unknown'),
        (
            {"Type": "tmpfs", "Target": "/b", "TmpfsOptions": {"SizeBytes": -1}},
            'invalid mount config for type "tmpfs": invalid tmpfs size: -1',
        ),
        (
            {"Type": "bind", "Source": 3, "Target": "/b"},
            "json: cannot unmarshal int into Go struct field Mount.HostConfig.Mounts.Source of type string",
        ),
        (
            {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": "yes"},
            "json: cannot unmarshal str into Go struct field Mount.HostConfig.Mounts.ReadOnly of type bool",
        ),
        (
            "bind",
            "json: cannot unmarshal into Go struct field HostConfig.Mounts of type mount.Mount",
        ),
    ],
    ids=[
        "no-target",
        "bind-no-source",
        "bind-relative-source",
        "relative-target",
        "root-target",
        "bad-propagation",
        "bind-volume-options",
        "volume-bind-options",
        "anonymous-read-only",
        "tmpfs-source",
        "tmpfs-bind-options",
        "unknown-type",
        "no-type",
        "negative-tmpfs-size",
        "source-not-string",
        "readonly-not-bool",
        "not-an-object",
    ],
)
def test_parse_mount_bad_input_has_dockers_message(obj: object, message: str) -> None:
    assert error_of(lambda: mount(obj)) == message


# -- Tmpfs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "options"),
    [
        ("", ("noexec", "nosuid", "nodev", "rprivate")),
        ("size=64m", ("noexec", "nosuid", "nodev", "rprivate", "size=64m")),
        ("exec,mode=1777", ("nosuid", "nodev", "rprivate", "exec", "mode=1777")),
        ("rshared,size=1m,size=2m", ("noexec", "nosuid", "nodev", "rshared", "size=2m")),
        ("defaults,ro", ("noexec", "nosuid", "nodev", "rprivate", "ro")),
        (
            "uid=1000,gid=1000,nr_inodes=10",
            ("noexec", "nosuid", "nodev", "rprivate", "uid=1000", "gid=1000", "nr_inodes=10"),
        ),
    ],
    ids=[
        "defaults",
        "size",
        "exec-replaces-noexec",
        "last-wins",
        "defaults-word-dropped",
        "data-keys",
    ],
)
def test_tmpfs_options_merge_as_moby(data: str, options: tuple[str, ...]) -> None:
    assert tmpfs_options(data) == options


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("bogus", 'invalid tmpfs option ["bogus"]'),
        ("colour=red", 'invalid tmpfs option ["colour" "red"]'),
        ("size=1m,,", 'invalid tmpfs option [""]'),
    ],
    ids=["unknown-flag", "unknown-key", "empty-option"],
)
def test_tmpfs_options_unknown_option_is_400(data: str, message: str) -> None:
    assert error_of(lambda: tmpfs_options(data)) == message


def test_parse_tmpfs_map_entry() -> None:
    m = parse_tmpfs("/run/", "size=1m,ro")
    assert (m.destination, m.rw, m.from_tmpfs_map) == ("/run", False, True)
    assert m.tmpfs_options[-2:] == ("size=1m", "ro")
    assert error_of(lambda: parse_tmpfs("run", "")) == (
        "invalid mount path: 'run' mount path must be absolute"
    )
    assert (
        error_of(lambda: parse_tmpfs("/", "")) == "invalid specification: destination can't be '/'"
    )


# -- VolumesFrom -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("web", ("web", "rw")), ("web:ro", ("web", "ro")), ("web:rw,z", ("web", "rw,z"))],
    ids=["default-rw", "ro", "rw-with-label"],
)
def test_parse_volumes_from(spec: str, parsed: tuple[str, str]) -> None:
    assert parse_volumes_from(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "volumes-from specification cannot be an empty string"),
        ("web:xyz", "invalid mode: xyz"),
        ("web:rshared", "invalid mode: rshared"),
        ("web:nocopy", "invalid mode: nocopy"),
    ],
    ids=["empty", "unknown-mode", "propagation", "nocopy"],
)
def test_parse_volumes_from_bad_spec(spec: str, message: str) -> None:
    assert error_of(lambda: parse_volumes_from(spec)) == message


def test_volumes_from_refs_validates_the_list() -> None:
    assert volumes_from_refs({"VolumesFrom": ["a", "b:ro"]}) == [("a", "rw"), ("b", "ro")]
    assert volumes_from_refs({}) == []
    assert "of type []string" in error_of(lambda: volumes_from_refs({"VolumesFrom": "a"}))


def test_inherit_keeps_mounts_but_not_tmpfs_map_and_never_copies() -> None:
    own = plan({"Binds": ["/h:/h:ro", "data:/data"], "Tmpfs": {"/run": ""}}, {"/anon": {}})
    inherited = inherit(own, "rw")
    assert [m.destination for m in inherited] == ["/anon", "/data", "/h"]
    assert all(not m.copy_data and m.mode == "" for m in inherited)
    by_dest = {m.destination: m for m in inherited}
    assert by_dest["/h"].rw is False  # read-only stays read-only
    assert by_dest["/anon"].anonymous and by_dest["/anon"].name == own[0].name
    assert all(not m.rw for m in inherit(own, "ro"))


# -- plan_mounts -----------------------------------------------------------------------------


def test_plan_mounts_combines_everything_one_per_destination_sorted() -> None:
    other = plan({"Binds": ["/x:/shared", "/y:/from-only"]})
    planned = plan(
        {
            "Binds": ["/h:/shared", "named:/named"],
            "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}],
            "Tmpfs": {"/run": "size=1m"},
        },
        {"/named": {}, "/image-vol": {}, "/run": {}},
        volumes_from=[(other, "ro")],
    )
    assert [m.destination for m in planned] == [
        "/from-only",
        "/image-vol",
        "/named",
        "/run",
        "/scratch",
        "/shared",
    ]
    by_dest = {m.destination: m for m in planned}
    assert by_dest["/shared"].source == "/h"  # a bind replaces a volumes-from mount
    assert by_dest["/from-only"].rw is False
    assert by_dest["/image-vol"].anonymous and by_dest["/image-vol"].mode == ""
    assert by_dest["/named"].name == "named"  # not replaced by the image's volume
    assert by_dest["/run"].from_tmpfs_map  # nor the tmpfs


def test_plan_mounts_anonymous_names_are_fresh_each() -> None:
    planned = plan({"Binds": ["/a"]}, {"/b": {}})
    assert {m.name for m in planned} == {ANON1, ANON2}


@pytest.mark.parametrize(
    ("host_config", "volumes", "message"),
    [
        ({"Binds": ["/a:/d", "/b:/d/"]}, None, "Duplicate mount point: /d"),
        (
            {"Binds": ["/a:/d"], "Mounts": [{"Type": "volume", "Target": "/d/"}]},
            None,
            "Duplicate mount point: /d/",
        ),
        ({"Binds": ["/a:/run"], "Tmpfs": {"/run": ""}}, None, "Duplicate mount point: /run"),
        (
            {"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/m"}], "Tmpfs": {"/m": ""}},
            None,
            "Duplicate mount point: /m",
        ),
        (
            {"Binds": "/a:/b"},
            None,
            "json: cannot unmarshal str into Go struct field HostConfig.Binds of type []string",
        ),
        (
            {"Mounts": {}},
            None,
            "json: cannot unmarshal into Go struct field HostConfig.Mounts of type []mount.Mount",
        ),
        (
            {"Tmpfs": ["/run"]},
            None,
            "json: cannot unmarshal into Go struct field HostConfig.Tmpfs of type map[string]string",
        ),
        (
            {},
            {"rel": {}},
            "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            {},
            {"/": {}},
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
        ),
        (
            {},
            ["/a"],
            "json: cannot unmarshal into Go struct field Config.Volumes of type map[string]struct {}",
        ),
        (
            {"Binds": ["a/b:/x"]},
            None,
            'create a/b: "a/b" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
        ),
        (
            {"Binds": ["a:/x"]},
            None,
            "create a: volume name is too short, names should be at least two alphanumeric characters",
        ),
    ],
    ids=[
        "two-binds",
        "bind-and-mount",
        "bind-and-tmpfs",
        "mount-and-tmpfs",
        "binds-not-list",
        "mounts-not-list",
        "tmpfs-not-map",
        "relative-config-volume",
        "root-config-volume",
        "config-volumes-not-map",
        "bad-volume-name",
        "short-volume-name",
    ],
)
def test_plan_mounts_bad_input_is_400(
    host_config: dict[str, Any], volumes: object, message: str
) -> None:
    assert error_of(lambda: plan(host_config, volumes)) == message


def test_plan_mounts_other_volume_driver_is_404_and_driver_options_501() -> None:
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        plan(
            {
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "v1",
                        "Target": "/v",
                        "VolumeOptions": {"DriverConfig": {"Name": "nfs"}},
                    }
                ]
            }
        )
    with pytest.raises(Unsupported):
        plan(
            {
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "v1",
                        "Target": "/v",
                        "VolumeOptions": {"DriverConfig": {"Options": {"type": "nfs"}}},
                    }
                ]
            }
        )


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "Binds": st.lists(st.text(alphabet="/:abroz,", max_size=12), max_size=3),
            "Tmpfs": st.dictionaries(
                st.text(alphabet="/ab", max_size=4),
                st.sampled_from(["", "size=1m", "x", "ro"]),
                max_size=2,
            ),
            "Mounts": st.lists(
                st.fixed_dictionaries(
                    {
                        "Type": st.sampled_from(["bind", "volume", "tmpfs", "x"]),
                        "Target": st.text(alphabet="/ab", max_size=4),
                    },
                    optional={
                        "Source": st.text(alphabet="/ab", max_size=4),
                        "ReadOnly": st.booleans(),
                    },
                ),
                max_size=3,
            ),
        },
    ),
    st.one_of(
        st.none(), st.dictionaries(st.text(alphabet="/ab", max_size=4), st.just({}), max_size=2)
    ),
)
def test_plan_mounts_raises_only_invalid_argument(
    host_config: dict[str, Any], volumes: object
) -> None:
    try:
        planned = plan(host_config, volumes)
    except InvalidArgument:
        return
    destinations = [m.destination for m in planned]
    assert destinations == sorted(set(destinations))
    assert all(d.startswith("/") and d != "/" for d in destinations)


# -- volume names and requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("ab", True),
        ("my_vol.1-x", True),
        ("0" * 64, True),
        ("a", False),
        ("-ab", False),
        ("a/b", False),
        ("..", False),
        ("", False),
        (".x", False),
    ],
    ids=[
        "two-chars",
        "punctuation",
        "hex-id",
        "one-char",
        "leading-dash",
        "slash",
        "dotdot",
        "empty",
        "leading-dot",
    ],
)
def test_volume_name_error(name: str, ok: bool) -> None:
    assert (volume_name_error(name) is None) is ok


def test_check_volume_options() -> None:
    check_volume("ok", "local", {})
    check_volume("ok", "", None)
    assert (
        error_of(lambda: check_volume("v1", "local", {"colour": "x"}))
        == 'create v1: invalid option: "colour"'
    )
    with pytest.raises(Unsupported):
        check_volume("v1", "local", {"type": "tmpfs", "device": "tmpfs"})


# -- views -----------------------------------------------------------------------------------


def test_to_spec_and_to_api_for_each_type() -> None:
    b, v, t = (
        bind("/h:/c:ro"),
        bind("data:/d"),
        mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}),
    )
    vol = "/var/lib/berth/volumes/data/_data"
    assert to_spec(b, "") == BindMount("/h", "/c", readonly=True, propagation="rprivate")
    assert to_spec(v, vol) == BindMount(vol, "/d", readonly=False, propagation="rprivate")
    assert to_spec(t, "") == TmpfsMount("/t", ("noexec", "nosuid", "nodev", "rprivate", "size=1m"))
    assert to_api(b, "") == {
        "Type": "bind",
        "Source": "/h",
        "Destination": "/c",
        "Mode": "ro",
        "RW": False,
        "Propagation": "rprivate",
    }
    assert to_api(v, vol) == {
        "Type": "volume",
        "Name": "data",
        "Source": vol,
        "Destination": "/d",
        "Driver": "local",
        "Mode": "z",
        "RW": True,
        "Propagation": "",
    }
    assert to_api(t, "") == {
        "Type": "tmpfs",
        "Source": "",
        "Destination": "/t",
        "Mode": "",
        "RW": True,
        "Propagation": "",
    }
