"""docker's text output: tabwriter tables, go-units wording, ps/images rows, event lines."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest

from cli.data import normalize_reference, split_reference
from cli.render import (
    CONTAINER_HEADERS,
    HISTORY_HEADERS,
    HISTORY_TABLE,
    IMAGE_HEADERS,
    IMAGES_TABLE,
    NETWORK_HEADERS,
    NETWORKS_RAW,
    NETWORKS_TABLE,
    PS_TABLE,
    SEARCH_HEADERS,
    SEARCH_TABLE,
    VOLUME_HEADERS,
    VOLUMES_TABLE,
    bytes_size,
    container_fields,
    display_ports,
    ellipsis,
    event_line,
    go_quote,
    go_time_string,
    history_fields,
    human_duration,
    human_size,
    image_rows,
    info_text,
    list_format,
    natural_less,
    natural_sorted,
    network_fields,
    prepare_format,
    render_rows,
    rfc3339,
    rfc3339_nano,
    search_fields,
    tabwrite,
    truncate_id,
    version_text,
    volume_fields,
)
from cli.template import TemplateError

UTC = UTC
NOW = 1_700_000_000.0
CID = "4f2a9c0e1b7d" + "a" * 52


def test_tabwrite_pads_to_widest_cell_plus_three_min_ten() -> None:
    text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tx\n"
    assert tabwrite(text) == (
        "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   x\n"
    )


def test_tabwrite_last_cell_is_never_padded_and_empty_cells_align() -> None:
    assert tabwrite("a\t\tz\nbb\tc\t\n") == "a                   z\nbb        c         \n"


def test_tabwrite_blocks_split_on_lines_without_the_column() -> None:
    assert tabwrite("a\tb\nno tabs here\nlonger cell\tc\n") == (
        "a         b\nno tabs here\nlonger cell   c\n"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (5, "5 seconds"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (59 * 60 + 59, "59 minutes"),
        (3600, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration_go_units_wording(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (4_261_376, "4.26MB"),
        (1_240_000, "1.24MB"),
        (77_800_000, "77.8MB"),
        (187_000_000, "187MB"),
        (999_999, "1e+03kB"),
        (5 * 10**12, "5TB"),
    ],
)
def test_human_size_three_significant_digits(size: int, text: str) -> None:
    assert human_size(size) == text


def test_bytes_size_binary_four_digits() -> None:
    assert bytes_size(8_194_473_984) == "7.632GiB"
    assert bytes_size(512) == "512B"


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("sleep 1", '"sleep 1"'),
        ('echo "hi"', '"echo \\"hi\\""'),
        ("a\tb\n", '"a\\tb\\n"'),
        ("\x01", '"\\x01"'),
        ("caf\u00e9 \u2026", '"caf\u00e9 \u2026"'),
    ],
)
def test_go_quote(raw: str, quoted: str) -> None:
    assert go_quote(raw) == quoted


def test_ellipsis_and_truncate_id() -> None:
    assert ellipsis("short", 20) == "short"
    assert ellipsis("x" * 25, 20) == "x" * 19 + "\u2026"
    assert truncate_id("sha256:" + "b" * 64) == "b" * 12
    assert truncate_id(CID) == CID[:12]


def test_display_ports_groups_ranges_and_mappings() -> None:
    ports = [
        {"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
        {"PrivatePort": 8000, "Type": "tcp"},
        {"PrivatePort": 8001, "Type": "tcp"},
        {"PrivatePort": 80, "PublicPort": 8080, "IP": "::", "Type": "tcp"},
        {"PrivatePort": 443, "PublicPort": 443, "IP": "0.0.0.0", "Type": "tcp"},
    ]
    assert display_ports(ports) == (
        "53/udp, 0.0.0.0:443->443/tcp, 8000-8001/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
    )


CONTAINER = {
    "Id": CID,
    "Names": ["/web"],
    "Image": "busybox",
    "Command": "sleep 3600",
    "Created": int(NOW) - 5,
    "State": "running",
    "Status": "Up 4 seconds",
    "Ports": [],
    "Labels": {"b": "2", "a": "1"},
    "Mounts": [{"Name": "averyveryverylongvolumename", "Driver": "local"}],
    "NetworkSettings": {"Networks": {"bridge": {}, "alpha": {}}},
    "SizeRw": 0,
    "SizeRootFs": 4_261_376,
}


def test_container_fields_docker_columns() -> None:
    row = container_fields(CONTAINER, now=NOW, tz=UTC)
    assert row["ID"] == CID[:12]
    assert row["Names"] == "web"
    assert row["Command"] == '"sleep 3600"'
    assert row["RunningFor"] == "5 seconds ago"
    assert row["CreatedAt"] == "2023-11-14 22:13:15 +0000 UTC"
    assert row["Labels"] == "a=1,b=2"
    assert row["Mounts"] == "averyveryveryl\u2026"
    assert row["LocalVolumes"] == "1"
    assert row["Networks"] == "alpha,bridge"
    assert row["Size"] == "0B (virtual 4.26MB)"


def test_container_fields_no_trunc_keeps_everything() -> None:
    row = container_fields({**CONTAINER, "Command": "x" * 30}, now=NOW, tz=UTC, trunc=False)
    assert row["ID"] == CID
    assert row["Command"] == '"' + "x" * 30 + '"'


def test_ps_default_table_exact() -> None:
    rows = [
        container_fields(CONTAINER, now=NOW, tz=UTC),
        container_fields(
            {
                **CONTAINER,
                "Id": "f" * 64,
                "Names": ["/db"],
                "Image": "sha256:" + "c" * 64,
                "Command": "sh -c 'while true; do sleep 1; done'",
                "Created": int(NOW) - 7200,
                "Status": "Exited (0) 2 minutes ago",
                "Ports": [{"PrivatePort": 80, "Type": "tcp"}],
            },
            now=NOW,
            tz=UTC,
        ),
    ]
    text = render_rows(PS_TABLE, rows, headers=CONTAINER_HEADERS, default_table=PS_TABLE)
    assert text.splitlines() == [
        "CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS                     PORTS     NAMES",
        '4f2a9c0e1b7d   busybox        "sleep 3600"             5 seconds ago   Up 4 seconds                         web',
        'ffffffffffff   cccccccccccc   "sh -c \'while true; …"   2 hours ago     Exited (0) 2 minutes ago   80/tcp    db',
    ]


def test_ps_empty_table_is_just_the_header() -> None:
    text = render_rows(PS_TABLE, [], headers=CONTAINER_HEADERS, default_table=PS_TABLE)
    assert text == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"


def test_render_rows_custom_table_and_plain_formats() -> None:
    rows = [container_fields(CONTAINER, now=NOW, tz=UTC)]
    table = render_rows(
        "table {{.ID}}\\t{{.Image}}", rows, headers=CONTAINER_HEADERS, default_table=PS_TABLE
    )
    assert table == "CONTAINER ID   IMAGE\n4f2a9c0e1b7d   busybox\n"
    plain = render_rows(
        "{{.Names}}: {{.State}}", rows, headers=CONTAINER_HEADERS, default_table=PS_TABLE
    )
    assert plain == "web: running\n"
    label = render_rows('{{.Label "a"}}', rows, headers=CONTAINER_HEADERS, default_table=PS_TABLE)
    assert label == "1\n"
    as_json = render_rows("json", rows, headers=CONTAINER_HEADERS, default_table=PS_TABLE)
    assert as_json.startswith('{"ID":"4f2a9c0e1b7d","Names":"web"')
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render_rows("{{.Nope}}", rows, headers=CONTAINER_HEADERS, default_table=PS_TABLE)


def test_prepare_format() -> None:
    assert prepare_format("table {{.ID}}\\t{{.Names}}\\n") == (True, "{{.ID}}\t{{.Names}}\n")
    assert prepare_format(" {{.ID}} ") == (False, "{{.ID}}")


IMAGE = {
    "Id": "sha256:" + "d" * 64,
    "RepoTags": ["busybox:latest", "busybox:1.36", "localhost:5000/tools/bb:v1"],
    "RepoDigests": ["busybox@sha256:" + "e" * 64],
    "Created": int(NOW) - 3 * 86400,
    "Size": 4_261_376,
    "Containers": -1,
}


def test_image_rows_one_per_tag() -> None:
    rows = image_rows(IMAGE, now=NOW, tz=UTC)
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in rows] == [
        ("busybox", "latest", "<none>"),
        ("busybox", "1.36", "<none>"),
        ("localhost:5000/tools/bb", "v1", "<none>"),
    ]
    assert rows[0]["ID"] == "d" * 12
    assert rows[0]["CreatedSince"] == "3 days ago"
    assert rows[0]["Size"] == "4.26MB"


def test_image_rows_digests_and_dangling() -> None:
    rows = image_rows(IMAGE, now=NOW, tz=UTC, digests=True)
    assert rows[0]["Digest"] == "sha256:" + "e" * 64
    dangling = image_rows(
        {"Id": "sha256:" + "1" * 64, "RepoTags": None, "Size": 10}, now=NOW, tz=UTC
    )
    assert [(r["Repository"], r["Tag"]) for r in dangling] == [("<none>", "<none>")]
    digest_only = image_rows(
        {"Id": "sha256:" + "1" * 64, "RepoTags": [], "RepoDigests": ["alpine@sha256:" + "2" * 64]},
        now=NOW,
        tz=UTC,
    )
    assert [(r["Repository"], r["Tag"]) for r in digest_only] == [("alpine", "<none>")]


def test_images_default_table_exact() -> None:
    rows = image_rows(IMAGE, now=NOW, tz=UTC)[:1]
    text = render_rows(IMAGES_TABLE, rows, headers=IMAGE_HEADERS, default_table=IMAGES_TABLE)
    assert text.splitlines() == [
        "REPOSITORY   TAG       IMAGE ID       CREATED      SIZE",
        "busybox      latest    dddddddddddd   3 days ago   4.26MB",
    ]


def test_event_line_docker_default_format() -> None:
    event = {
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": CID, "Attributes": {"name": "x", "image": "busybox"}},
        "time": 1704067200,
        "timeNano": 1704067200123456789,
    }
    assert event_line(event, tz=UTC) == (
        f"2024-01-01T00:00:00.123456789Z container start {CID} (image=busybox, name=x)"
    )
    plus_one = timezone(timedelta(hours=1))
    assert event_line({**event, "Actor": {"ID": "x"}}, tz=plus_one) == (
        "2024-01-01T01:00:00.123456789+01:00 container start x"
    )


@pytest.mark.parametrize(
    ("ref", "split", "normalized"),
    [
        ("busybox", ("busybox", ""), "busybox:latest"),
        ("busybox:1.36", ("busybox", "1.36"), "busybox:1.36"),
        ("localhost:5000/bb", ("localhost:5000/bb", ""), "localhost:5000/bb:latest"),
        ("localhost:5000/bb:v1", ("localhost:5000/bb", "v1"), "localhost:5000/bb:v1"),
        ("bb@sha256:abc", ("bb", ""), "bb@sha256:abc"),
    ],
)
def test_references(ref: str, split: tuple[str, str], normalized: str) -> None:
    assert split_reference(ref) == split
    assert normalize_reference(ref) == normalized


def test_version_and_info_text() -> None:
    client = {
        "Version": "0.1.0",
        "ApiVersion": "1.43",
        "PythonVersion": "3.11.7",
        "Os": "linux",
        "Arch": "amd64",
    }
    server = {
        "Version": "0.1.0",
        "ApiVersion": "1.43",
        "MinAPIVersion": "1.24",
        "Os": "linux",
        "Arch": "amd64",
    }
    text = version_text(client, server)
    assert text.startswith("Client:\n Version:           0.1.0\n API version:       1.43\n")
    assert "  API version:      1.43 (minimum version 1.24)\n" in text
    assert version_text(client, None).count("\n") == 5
    info = info_text(
        "0.1.0",
        {
            "Containers": 3,
            "ContainersRunning": 1,
            "Images": 2,
            "MemTotal": 8_194_473_984,
            "NCPU": 2,
        },
    )
    assert " Containers: 3\n  Running: 1\n" in info
    assert " Total Memory: 7.632GiB\n" in info


def test_image_rows_need_digest_for_a_digest_format() -> None:
    rows = image_rows(IMAGE, now=NOW, tz=UTC, need_digest=True)
    assert rows[0]["Digest"] == "sha256:" + "e" * 64
    digest_only = {"Id": "sha256:1", "RepoTags": [], "RepoDigests": ["alpine@sha256:" + "2" * 64]}
    # docker: a digest-only reference without --digests has an empty DIGEST
    assert [r["Digest"] for r in image_rows(digest_only, now=NOW, tz=UTC)] == [""]
    with_flag = image_rows(digest_only, now=NOW, tz=UTC, digests=True)
    assert [r["Digest"] for r in with_flag] == ["sha256:" + "2" * 64]


def test_history_fields_and_table() -> None:
    items = [
        {
            "Id": "sha256:" + "f" * 64,
            "Created": int(NOW) - 90,
            "CreatedBy": "/bin/sh -c\tapk add --no-cache curl ca-certificates tzdata bash",
            "Size": 7_340_032,
            "Comment": "",
        },
        {"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 0, "Comment": "old"},
    ]
    rows = [history_fields(i, now=NOW, tz=UTC) for i in items]
    assert rows[0]["CreatedBy"] == "/bin/sh -c apk add --no-cache curl ca-certif…"
    assert rows[1]["CreatedSince"] == "N/A"  # before 2000: unknown
    text = render_rows(HISTORY_TABLE, rows, headers=HISTORY_HEADERS, default_table=HISTORY_TABLE)
    assert text.splitlines() == [
        "IMAGE          CREATED              CREATED BY                                      SIZE      COMMENT",
        "ffffffffffff   About a minute ago   /bin/sh -c apk add --no-cache curl ca-certif…   7.34MB    ",
        "<missing>      N/A                                                                  0B        old",
    ]
    raw = history_fields(
        items[0], now=NOW, tz=timezone(timedelta(hours=2)), human=False, trunc=False
    )
    assert raw["CreatedSince"] == raw["CreatedAt"] == "2023-11-15T00:11:50+02:00"
    assert raw["Size"] == "7340032"
    assert raw["ID"] == "sha256:" + "f" * 64
    as_json = render_rows("json", rows[:1], headers=HISTORY_HEADERS, default_table=HISTORY_TABLE)
    assert as_json.startswith('{"Comment":"","CreatedAt":"2023-11-14T22:11:50Z","CreatedBy":')


def test_search_fields() -> None:
    row = search_fields(
        {"name": "busybox", "description": "a\nb\rc", "star_count": 7, "is_official": True}
    )
    assert (row["Name"], row["Description"], row["StarCount"], row["IsOfficial"]) == (
        "busybox",
        "a b c",
        "7",
        "[OK]",
    )
    text = render_rows("json", [row], headers=SEARCH_HEADERS, default_table=SEARCH_TABLE)
    assert text == '{"Description":"a b c","IsOfficial":"true","Name":"busybox","StarCount":"7"}\n'
    plain = render_rows(
        "{{.IsOfficial}}|{{json .IsOfficial}}",
        [row],
        headers=SEARCH_HEADERS,
        default_table=SEARCH_TABLE,
    )
    assert plain == '[OK]|"[OK]"\n'
    empty = search_fields({"name": "x"})
    assert (empty["IsOfficial"], empty["StarCount"]) == ("", "0")


# --- PORTS column, natural order, networks and volumes -----------------------------------


def test_display_ports_published_ranges_on_both_families() -> None:
    ports = [
        {"PrivatePort": p, "PublicPort": p, "IP": ip, "Type": "tcp"}
        for ip in ("0.0.0.0", "::")
        for p in (8000, 8001, 8002)
    ] + [{"PrivatePort": 9000, "PublicPort": 32768, "IP": "127.0.0.1", "Type": "udp"}]
    assert display_ports(ports) == (
        "0.0.0.0:8000-8002->8000-8002/tcp, [::]:8000-8002->8000-8002/tcp, 127.0.0.1:32768->9000/udp"
    )
    assert display_ports([]) == ""


def test_ps_table_shows_only_what_the_daemon_reports_as_ports() -> None:
    row = {
        **CONTAINER,
        "Ports": [
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        ],
    }
    fields = container_fields(row, now=NOW, tz=UTC)
    assert fields["Ports"] == "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("net9", "net10"),
        ("a", "b"),
        ("1", "a"),  # digits before other characters
        ("x1a", "x01"),  # equal numbers, fewer zeros first: the rest is not looked at
        ("x1", "x01"),
        ("ab", "abc"),
        ("Z", "a"),  # bytewise
    ],
)
def test_natural_less(a: str, b: str) -> None:
    assert natural_less(a, b)
    assert not natural_less(b, a)


def test_natural_sorted() -> None:
    assert natural_sorted(["v10", "v9", "bridge", "v1", "host"]) == [
        "bridge",
        "host",
        "v1",
        "v9",
        "v10",
    ]
    assert natural_sorted(["80/tcp -> [::]:80", "80/tcp -> 0.0.0.0:80", "9/tcp -> 0.0.0.0:9"]) == [
        "9/tcp -> 0.0.0.0:9",
        "80/tcp -> 0.0.0.0:80",
        "80/tcp -> [::]:80",
    ]


@pytest.mark.parametrize(
    ("text", "tz", "shown"),
    [
        ("2024-05-01T10:00:00Z", UTC, "2024-05-01 10:00:00 +0000 UTC"),
        ("2024-05-01T10:00:00.500000000Z", UTC, "2024-05-01 10:00:00.5 +0000 UTC"),
        ("2024-05-01T10:00:00.123456789+02:00", UTC, "2024-05-01 10:00:00.123456789 +0200 +0200"),
        (
            "2024-05-01T10:00:00+01:00",
            timezone(timedelta(hours=1), "CET"),
            "2024-05-01 10:00:00 +0100 CET",
        ),
        ("", UTC, "0001-01-01 00:00:00 +0000 UTC"),
        ("yesterday", UTC, "yesterday"),
    ],
)
def test_go_time_string(text: str, tz: timezone, shown: str) -> None:
    assert go_time_string(text, tz) == shown


_STAMP = 1714557600  # 2024-05-01T10:00:00Z


@pytest.mark.parametrize(
    ("tz", "seconds", "nanos"),
    [
        (UTC, "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000000007Z"),
        (
            timezone(timedelta(hours=2)),
            "2024-05-01T12:00:00+02:00",
            "2024-05-01T12:00:00.000000007+02:00",
        ),
        (
            timezone(-timedelta(hours=5, minutes=30)),
            "2024-05-01T04:30:00-05:30",
            "2024-05-01T04:30:00.000000007-05:30",
        ),
    ],
    ids=["utc", "east", "west-half-hour"],
)
def test_rfc3339_zone_is_z_or_signed_offset(tz: timezone, seconds: str, nanos: str) -> None:
    assert rfc3339(_STAMP, tz) == seconds
    assert rfc3339_nano(_STAMP * 1_000_000_000 + 7, tz) == nanos


def test_network_fields_truncate_and_flags() -> None:
    network = {
        "Name": "app",
        "Id": "ab" * 32,
        "Driver": "bridge",
        "Scope": "local",
        "Internal": True,
        "EnableIPv6": False,
        "Labels": {"z": "1", "a": "2"},
    }
    fields = network_fields(network, tz=UTC)
    assert (fields["ID"], fields["Internal"], fields["IPv4"], fields["Labels"]) == (
        "ab" * 6,
        "true",
        "false",
        "a=2,z=1",
    )
    assert network_fields(network, tz=UTC, trunc=False)["ID"] == "ab" * 32
    table = render_rows(
        NETWORKS_TABLE, [fields], headers=NETWORK_HEADERS, default_table=NETWORKS_TABLE
    )
    assert (
        table
        == "NETWORK ID     NAME      DRIVER    SCOPE\nabababababab   app       bridge    local\n"
    )


def test_volume_fields_usage_data() -> None:
    fields = volume_fields(
        {"Name": "v", "Driver": "local", "UsageData": {"RefCount": 2, "Size": 2048}}
    )
    assert (fields["Links"], fields["Size"]) == ("2", "2.048kB")
    table = render_rows(
        VOLUMES_TABLE, [fields], headers=VOLUME_HEADERS, default_table=VOLUMES_TABLE
    )
    assert table == "DRIVER    VOLUME NAME\nlocal     v\n"


@pytest.mark.parametrize(
    ("fmt", "quiet", "expected"),
    [
        (None, False, NETWORKS_TABLE),
        ("table", True, "{{.ID}}"),
        (None, True, "{{.ID}}"),
        ("{{.Name}}", True, "{{.Name}}"),
        ("raw", False, NETWORKS_RAW[0]),
        ("raw", True, "network_id: {{.ID}}"),
    ],
)
def test_list_format(fmt: str | None, quiet: bool, expected: str) -> None:
    assert (
        list_format(
            fmt, quiet=quiet, table=NETWORKS_TABLE, quiet_format="{{.ID}}", raw=NETWORKS_RAW
        )
        == expected
    )
