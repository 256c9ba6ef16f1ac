"""``cli.mounts``: Go's CSV record, ``--mount``, ``-v`` and ``--tmpfs`` as docker 28 parses them.

The error messages in the tables were recorded from the docker 28.2.2 CLI.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.mounts import (
    parse_mount,
    parse_tmpfs,
    parse_volume_spec,
    read_csv_record,
    split_volumes,
)
from cli.units import InvalidArgument

# --- Go's encoding/csv --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("a,b", ["a", "b"]),
        ("a,,b", ["a", "", "b"]),
        ('"a,b",c', ["a,b", "c"]),
        ('"a""b"', ['a"b']),
        ('"a\nb",c', ["a\nb", "c"]),
        ('"a\r\nb"', ["a\nb"]),
        ("\n\na,b\nc,d", ["a", "b"]),
        ("a,b\r\n", ["a", "b"]),
        ("a,", ["a", ""]),
        ('""', [""]),
        ("é,ü", ["é", "ü"]),
    ],
)
def test_csv_record_fields(text: str, fields: list[str]) -> None:
    assert read_csv_record(text) == fields


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "EOF"),
        ("\n\n", "EOF"),
        ('a"b,dst=/x', 'parse error on line 1, column 2: bare " in non-quoted-field'),
        ('"type=bind",dst=/x"', 'parse error on line 1, column 19: bare " in non-quoted-field'),
        ('"dst=/x', 'parse error on line 1, column 8: extraneous or missing " in quoted-field'),
        (
            'type=bind,"src=/a,b",dst=/x,x"y',
            'parse error on line 1, column 30: bare " in non-quoted-field',
        ),
        ('"ab"x', 'parse error on line 1, column 4: extraneous or missing " in quoted-field'),
        (
            'dst=/x,"ab"x',
            'parse error on line 1, column 11: extraneous or missing " in quoted-field',
        ),
        (
            '"a\nbc',
            "record on line 1; parse error on line 2, column 3: "
            'extraneous or missing " in quoted-field',
        ),
        (
            '"a\nb"c',
            "record on line 1; parse error on line 2, column 2: "
            'extraneous or missing " in quoted-field',
        ),
        (
            '"a\nb\ncd"e',
            "record on line 1; parse error on line 3, column 3: "
            'extraneous or missing " in quoted-field',
        ),
        ('dst=/x,a"\nb', 'parse error on line 1, column 9: bare " in non-quoted-field'),
        ('\n\na"b', 'parse error on line 3, column 2: bare " in non-quoted-field'),
    ],
)
def test_csv_record_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        read_csv_record(text)
    assert str(info.value) == message


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\n\r') or text == "":
        return '"' + text.replace('"', '""') + '"'
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet='ab ,"\né=', max_size=6), min_size=1, max_size=5))
def test_csv_record_round_trip(fields: list[str]) -> None:
    fields = [f.replace("\r", "") for f in fields]
    if fields == [""]:
        fields = ['""']  # a lone empty field is written quoted, and reads back as ""
        assert read_csv_record(fields[0]) == [""]
        return
    assert read_csv_record(",".join(_csv_field(f) for f in fields)) == fields


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab,"\n\r=', max_size=20))
def test_csv_record_fails_only_with_invalid_argument(text: str) -> None:
    try:
        fields = read_csv_record(text)
    except InvalidArgument:
        return
    assert fields


# --- --mount -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mount"),
    [
        ("dst=/x", {"Type": "volume", "Target": "/x"}),
        (
            "type=bind,src=/a,dst=/b,readonly",
            {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True},
        ),
        (
            "TYPE=BIND,SOURCE=/a,DESTINATION=/b,Ro=True",
            {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True},
        ),
        (
            "type=bind,src=/a,target=/b,ro=0",
            {"Type": "bind", "Source": "/a", "Target": "/b"},
        ),
        (
            "type=bind,src=./rel,dst=/b",
            {"Type": "bind", "Source": "/work/dir/rel", "Target": "/b"},
        ),
        (
            "type=bind,src=../up,dst=/b",
            {"Type": "bind", "Source": "/work/up", "Target": "/b"},
        ),
        (
            "type=bind,src=/a,dst=/b,bind-propagation=RShared,bind-recursive=disabled",
            {
                "Type": "bind",
                "Source": "/a",
                "Target": "/b",
                "BindOptions": {"Propagation": "rshared", "NonRecursive": True},
            },
        ),
        (
            "type=bind,src=/a,dst=/b,bind-recursive=enabled",
            {"Type": "bind", "Source": "/a", "Target": "/b"},
        ),
        (
            "type=bind,src=/a,dst=/b,bind-nonrecursive=false",
            {"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {}},
        ),
        (
            "type=bind,src=/a,dst=/b,ro,bind-recursive=readonly,bind-propagation=rprivate",
            {
                "Type": "bind",
                "Source": "/a",
                "Target": "/b",
                "ReadOnly": True,
                "BindOptions": {"Propagation": "rprivate", "ReadOnlyForceRecursive": True},
            },
        ),
        (
            "src=data,dst=/d,volume-nocopy=false,volume-subpath=sub",
            {
                "Type": "volume",
                "Source": "data",
                "Target": "/d",
                "VolumeOptions": {"DriverConfig": {}, "Subpath": "sub"},
            },
        ),
        (
            "dst=/d,volume-label=a=b,volume-label==x,volume-opt=size",
            {
                "Type": "volume",
                "Target": "/d",
                "VolumeOptions": {"Labels": {"a": "b"}, "DriverConfig": {"Options": {"size": ""}}},
            },
        ),
        (
            "type=tmpfs,dst=/t,tmpfs-size=1g,tmpfs-mode=700",
            {
                "Type": "tmpfs",
                "Target": "/t",
                "TmpfsOptions": {"SizeBytes": 1 << 30, "Mode": 0o700},
            },
        ),
        (
            "type=image,src=busybox,dst=/i,image-subpath=/bin",
            {
                "Type": "image",
                "Source": "busybox",
                "Target": "/i",
                "ImageOptions": {"Subpath": "/bin"},
            },
        ),
        (
            'type=bind,"src=/a,b",dst=/c,consistency=Cached',
            {"Type": "bind", "Source": "/a,b", "Target": "/c", "Consistency": "cached"},
        ),
        ("type=foo,dst=/x", {"Type": "foo", "Target": "/x"}),  # the daemon judges the type
    ],
)
def test_parse_mount(value: str, mount: dict[str, object]) -> None:
    assert parse_mount(value, "/work/dir") == mount


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("type=foo", "target is required"),
        ("src=/a", "target is required"),
        ("type=,dst=/x", "type is required"),
        ("type=bind,,dst=/x", "invalid field '' must be a key=value pair"),
        ("type=bind,dst=/x,rw", "invalid field 'rw' must be a key=value pair"),
        ("type=bind,source=/x,target=/a,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("type=bind,src=/x,dst=/a,readonly=maybe", "invalid value for readonly: maybe"),
        ("type=bind,src=/x,dst=/a,RO=yes", "invalid value for ro: yes"),
        ("type=tmpfs,tmpfs-size=abc,dst=/a", "invalid value for tmpfs-size: abc"),
        ("dst=/a,tmpfs-mode=abc,type=tmpfs", "invalid value for tmpfs-mode: abc"),
        ("dst=/a,tmpfs-mode=8,type=tmpfs", "invalid value for tmpfs-mode: 8"),
        ("dst=/a,volume-nocopy=2", "invalid value for volume-nocopy: 2"),
        (
            "type=volume,dst=/a,bind-propagation=rshared",
            "cannot mix 'bind-*' options with mount type 'volume'",
        ),
        (
            "type=bind,src=/x,dst=/a,volume-nocopy",
            "cannot mix 'volume-*' options with mount type 'bind'",
        ),
        ("dst=/a,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'"),
        ("dst=/a,image-subpath=x", "cannot mix 'image-*' options with mount type 'volume'"),
        (
            "type=bind,dst=/x,bind-recursive=writable",
            "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction",
        ),
        (
            "type=bind,dst=/x,bind-recursive=readonly",
            "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction",
        ),
        (
            "type=bind,dst=/x,ro,bind-recursive=readonly",
            "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' "
            "to be specified in conjunction",
        ),
        (
            "type=bind,dst=/x,bind-recursive=maybe",
            'invalid value for bind-recursive: maybe (must be "enabled", "disabled", '
            '"writable", or "readonly")',
        ),
        ("", "EOF"),
    ],
)
def test_parse_mount_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_mount(value)
    assert str(info.value) == message


_PATH = st.from_regex(r"/[a-z0-9,\"=_ -]{0,8}", fullmatch=True)


@st.composite
def mounts(draw: st.DrawFn) -> dict[str, object]:
    """A ``HostConfig.Mounts`` entry that ``--mount`` can express."""
    kind = draw(st.sampled_from(["bind", "volume", "tmpfs"]))
    mount: dict[str, object] = {"Type": kind}
    if kind != "tmpfs" or draw(st.booleans()):
        mount["Source"] = draw(_PATH)
    mount["Target"] = draw(_PATH)
    if draw(st.booleans()):
        mount["ReadOnly"] = True
    if kind == "bind" and draw(st.booleans()):
        mount["BindOptions"] = {
            "Propagation": draw(st.sampled_from(["rprivate", "shared", "rslave"]))
        }
    if kind == "volume" and draw(st.booleans()):
        options: dict[str, object] = {"DriverConfig": {}}
        if draw(st.booleans()):
            options["NoCopy"] = True
        labels = draw(st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), _PATH))
        if labels:
            options["Labels"] = labels
        mount["VolumeOptions"] = options
    if kind == "tmpfs" and draw(st.booleans()):
        mount["TmpfsOptions"] = {
            "SizeBytes": draw(st.integers(1, 1 << 40)),
            "Mode": draw(st.integers(1, 0o7777)),
        }
    return mount


def format_mount(mount: dict[str, object]) -> str:
    """The ``--mount`` value for ``mount`` (CSV, quoting what needs it)."""
    fields = [f"type={mount['Type']}"]
    if "Source" in mount:
        fields.append(f"source={mount['Source']}")
    fields.append(f"target={mount['Target']}")
    if mount.get("ReadOnly"):
        fields.append("readonly")
    bind = mount.get("BindOptions")
    if isinstance(bind, dict):
        fields.append(f"bind-propagation={bind['Propagation']}")
    volume = mount.get("VolumeOptions")
    if isinstance(volume, dict):
        fields.append(f"volume-nocopy={'true' if volume.get('NoCopy') else 'false'}")
        labels = volume.get("Labels", {})
        assert isinstance(labels, dict)
        fields.extend(f"volume-label={k}={v}" for k, v in labels.items())
    tmpfs = mount.get("TmpfsOptions")
    if isinstance(tmpfs, dict):
        fields.append(f"tmpfs-size={tmpfs['SizeBytes']}")
        fields.append(f"tmpfs-mode={tmpfs['Mode']:o}")
    return ",".join(_csv_field(f) for f in fields)


@settings(max_examples=300, deadline=None)
@given(mounts())
def test_parse_mount_round_trip(mount: dict[str, object]) -> None:
    assert parse_mount(format_mount(mount)) == mount


_MOUNT_WORDS = st.sampled_from(
    [
        "type=", "bind", "volume", "tmpfs", "src=", "dst=", "/x", "./y", "ro", "readonly=",
        "true", "1", "no", "bind-propagation=", "volume-nocopy", "volume-label=", "a=b",
        "volume-opt=", "tmpfs-size=", "64m", "tmpfs-mode=", "755", "9", "bind-recursive=",
        "readonly", "writable", ",", '"', "=", "\n",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_MOUNT_WORDS, max_size=12).map("".join))
def test_parse_mount_fails_only_with_invalid_argument(value: str) -> None:
    try:
        mount = parse_mount(value, "/cwd")
    except InvalidArgument:
        return
    assert mount["Target"]


# --- -v / --volume ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("/data", ("", "/data")),
        ("/d", ("", "/d")),
        ("ab", ("", "ab")),
        ("vol:/x", ("vol", "/x")),
        ("vol:/x:ro", ("vol", "/x")),
        ("/a:/b:rshared,nocopy", ("/a", "/b")),
        ("c:/foo:/bar", ("c:/foo", "/bar")),
        ("a:b:c", ("a:b", "c")),
    ],
)
def test_volume_spec_parts(spec: str, parts: tuple[str, str]) -> None:
    assert parse_volume_spec(spec) == parts


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "invalid empty volume spec"),
        (":/a", "invalid spec: :/a: empty section between colons"),
        ("/a::/b", "invalid spec: /a::/b: empty section between colons"),
        ("/a:/b:ro:x", "invalid spec: /a:/b:ro:x: too many colons"),
        ("/a:", "invalid spec: /a:: empty section between colons"),
    ],
)
def test_volume_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_volume_spec(spec)
    assert str(info.value) == message


def test_split_volumes_binds_named_and_anonymous() -> None:
    binds, volumes = split_volumes(
        ["/data", "vol:/x:ro", "./rel:/y", "~/h:/h", "/a:/b", "/data", "vol:/x:ro"], cwd="/srv"
    )
    assert binds == ["vol:/x:ro", "/srv/rel:/y", "~/h:/h", "/a:/b"]
    assert volumes == {"/data": {}}


def test_split_volumes_without_cwd_keeps_relative_sources() -> None:
    assert split_volumes(["./rel:/y"]) == (["./rel:/y"], {})


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab/.:~,", max_size=12))
def test_volume_specs_fail_only_with_invalid_argument(spec: str) -> None:
    try:
        binds, volumes = split_volumes([spec], cwd="/cwd")
    except InvalidArgument:
        return
    assert len(binds) + len(volumes) == 1


def test_tmpfs_paths_and_options() -> None:
    assert parse_tmpfs(["/run:rw,size=1m", "/tmp", "/x:"]) == {
        "/run": "rw,size=1m",
        "/tmp": "",
        "/x": "",
    }
