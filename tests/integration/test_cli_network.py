"""``berth network``, ``berth port`` and run's network flags against a real berthd.

The session runs in a network namespace of its own (tests/conftest.py): the bridges
and veths berthd makes never touch the host's interfaces, and traffic goes only to
loopback and to container addresses inside that namespace.
"""

from __future__ import annotations

import random
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.daemon import Client, Daemon
from tests.integration.test_cli import Cli

pytestmark = pytest.mark.root

HTTPD = [
    "sh",
    "-c",
    "mkdir -p /www && echo hello-cli > /www/index.html && exec httpd -f -p 80 -h /www",
]
HEX64 = re.compile(r"[0-9a-f]{64}\n")


@pytest.fixture(scope="module")
def cli(daemon: Daemon) -> Cli:
    return Cli(daemon)


@pytest.fixture
def names(api: Client) -> Iterator[Callable[[str], str]]:
    """Unique names; containers, then networks of those names are removed afterwards."""
    made: list[str] = []

    def make(kind: str) -> str:
        made.append(f"cli{kind}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for n in made:
        api.request("DELETE", f"/containers/{n}", params={"force": 1})
    for n in made:
        api.request("DELETE", f"/networks/{n}")


def subnet() -> tuple[str, str, str]:
    """A /24 unlikely to meet another test's: (subnet, gateway, a host address)."""
    third = random.randrange(1, 254)
    base = f"10.231.{third}"
    return f"{base}.0/24", f"{base}.1", f"{base}.77"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, timeout: float = 10) -> bytes:
    """GET / on a loopback port; httpd may need a moment after start returns."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            reply = b"".join(chunks)
            if reply:
                return reply
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no HTTP answer on 127.0.0.1:{port}"
        time.sleep(0.05)


# --- network create / ls / inspect / rm ----------------------------------------------------


def test_network_lifecycle(cli: Cli, names: Callable[[str], str]) -> None:
    net = names("net")
    sub, gateway, _ = subnet()
    created = cli.ok(
        "network", "create", "--subnet", sub, "--gateway", gateway, "--label", "cli=yes", net
    )
    assert HEX64.fullmatch(created)
    ident = created.strip()

    table = cli.ok("network", "ls")
    assert table.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [ident[:12], net, "bridge", "local"] in [line.split() for line in table.splitlines()]
    assert cli.ok("network", "ls", "-q", "--filter", f"name={net}") == ident[:12] + "\n"
    assert cli.ok("network", "ls", "--no-trunc", "-q", "-f", f"id={ident}") == ident + "\n"
    shown = cli.ok("network", "ls", "-f", "label=cli=yes", "--format", "{{.Name}} {{.Labels}}")
    assert f"{net} cli=yes\n" in shown

    ipam = "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}"
    assert cli.ok("network", "inspect", "-f", ipam, net) == f"{sub} {gateway}\n"
    assert cli.ok("network", "inspect", "-f", "{{.Id}} {{.Driver}}", ident[:12]) == (
        f"{ident} bridge\n"
    )
    assert cli.ok("inspect", "-f", "{{.Name}}", net) == net + "\n"  # falls back to networks
    assert cli.ok("inspect", "--type", "network", "-f", "{{.Name}}", net) == net + "\n"

    assert cli.ok("network", "rm", net) == net + "\n"
    gone = cli("network", "inspect", net)
    assert gone.returncode == 1
    assert gone.stdout == "[]\n"
    assert gone.stderr.startswith("Error response from daemon: ")
    assert cli("network", "rm", "-f", net).returncode == 0


def test_network_create_errors(cli: Cli, names: Callable[[str], str]) -> None:
    net = names("net")
    cli.ok("network", "create", net)
    again = cli("network", "create", net)
    assert again.returncode == 1
    assert again.stderr.startswith("Error response from daemon: ")
    assert net in again.stderr
    orphan = cli("network", "create", "--gateway", "10.0.0.1", names("net"))
    assert (orphan.returncode, orphan.stderr) == (
        1,
        "every ip-range or gateway must have a corresponding subnet\n",
    )


def test_builtin_networks_are_listed(cli: Cli) -> None:
    rows = [line.split()[1:] for line in cli.ok("network", "ls").splitlines()[1:]]
    assert ["bridge", "bridge", "local"] in rows


# --- run on networks --------------------------------------------------------------------


def test_run_on_a_user_network_with_fixed_ip_and_alias(
    cli: Cli, names: Callable[[str], str]
) -> None:
    net, server = names("net"), names("ctr")
    sub, _, address = subnet()
    cli.ok("network", "create", "--subnet", sub, net)
    cli.ok(
        "run", "-d", "--name", server, "--network", net, "--ip", address,
        "--network-alias", "web", "busybox", *HTTPD,
    )  # fmt: skip
    fmt = f'{{{{with index .NetworkSettings.Networks "{net}"}}}}{{{{.IPAddress}}}} {{{{.Aliases}}}}{{{{end}}}}'
    ip, aliases = cli.ok("inspect", "-f", fmt, server).split(" ", 1)
    assert ip == address
    assert "web" in aliases

    fetch = f"for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {address} 80 && exit 0; sleep 0.1; done; exit 1"
    reply = cli.ok("run", "--rm", "--network", net, "busybox", "sh", "-c", fetch)
    assert "hello-cli" in reply


def test_network_none_has_only_loopback(cli: Cli) -> None:
    assert cli.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net") == "lo\n"


def test_network_connect_and_disconnect(cli: Cli, names: Callable[[str], str]) -> None:
    net, ctr = names("net"), names("ctr")
    sub, _, address = subnet()
    cli.ok("network", "create", "--subnet", sub, net)
    cli.ok("run", "-d", "--name", ctr, "busybox", "sleep", "60")
    assert cli.ok("network", "connect", "--ip", address, "--alias", "db", net, ctr) == ""
    fmt = f'{{{{with index .NetworkSettings.Networks "{net}"}}}}{{{{.IPAddress}}}}{{{{end}}}}'
    assert cli.ok("inspect", "-f", fmt, ctr) == address + "\n"
    members = cli.ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", net)
    assert ctr in members.split()

    in_use = cli("network", "rm", net)
    assert in_use.returncode == 1
    assert in_use.stderr.startswith("Error response from daemon: ")

    assert cli.ok("network", "disconnect", net, ctr) == ""
    assert cli.ok("inspect", "-f", fmt, ctr) == "\n"
    assert cli.ok("network", "rm", net) == net + "\n"


def test_network_prune_removes_only_unused_ones(cli: Cli, names: Callable[[str], str]) -> None:
    label = f"prune={uuid.uuid4().hex[:6]}"
    unused, used, ctr = names("net"), names("net"), names("ctr")
    for net in (unused, used):
        cli.ok("network", "create", "--label", label, net)
    cli.ok("run", "-d", "--name", ctr, "--network", used, "busybox", "sleep", "60")
    out = cli.ok("network", "prune", "-f", "--filter", f"label={label}")
    assert out == f"Deleted Networks:\n{unused}\n\n"
    assert cli.ok("network", "ls", "-q", "-f", f"label={label}", "--format", "{{.Name}}") == (
        used + "\n"
    )
    assert cli.ok("network", "prune", "-f", "--filter", f"label={label}") == ""


# --- published ports ---------------------------------------------------------------------


def test_publish_port_and_ps_port_columns(cli: Cli, names: Callable[[str], str]) -> None:
    ctr = names("ctr")
    port = free_port()
    cli.ok("run", "-d", "--name", ctr, "-p", f"127.0.0.1:{port}:80", "busybox", *HTTPD)
    reply = http_get(port)
    assert b"200 OK" in reply and b"hello-cli" in reply

    assert cli.ok("port", ctr) == f"80/tcp -> 127.0.0.1:{port}\n"
    assert cli.ok("port", ctr, "80") == f"127.0.0.1:{port}\n"
    assert cli.ok("container", "port", ctr, "80/tcp") == f"127.0.0.1:{port}\n"
    missing = cli("port", ctr, "81")
    assert (missing.returncode, missing.stderr) == (
        1,
        f"Error: No public port '81' published for {ctr}\n",
    )
    ports = cli.ok("ps", "--filter", f"name={ctr}", "--format", "{{.Ports}}")
    assert ports == f"127.0.0.1:{port}->80/tcp\n"
    published = '{{json (index .HostConfig.PortBindings "80/tcp")}}'
    assert cli.ok("inspect", "-f", published, ctr) == (
        f'[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]\n'
    )


def test_publish_all_exposed_ports(cli: Cli, names: Callable[[str], str]) -> None:
    ctr = names("ctr")
    cli.ok("run", "-d", "--name", ctr, "-P", "--expose", "80", "busybox", *HTTPD)
    lines = cli.ok("port", ctr).splitlines()
    assert lines, "no port published"
    assert all(re.fullmatch(r"80/tcp -> (0\.0\.0\.0|\[::\]):\d+", line) for line in lines), lines
    host_port = int(lines[0].rsplit(":", 1)[1])
    assert b"hello-cli" in http_get(host_port)


def test_bad_publish_flag_is_a_usage_error(cli: Cli) -> None:
    proc = cli("run", "-p", "x", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (
        125,
        "berth: invalid containerPort: x. See 'berth run --help'.\n",
    )


# --- hosts, DNS and names ---------------------------------------------------------------


def test_hosts_dns_and_hostname_flags(cli: Cli) -> None:
    script = "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; hostname"
    out = cli.ok(
        "run", "--rm", "--add-host", "db.local:10.1.2.3", "--dns", "10.0.0.53",
        "--dns-search", "example.org", "--dns-option", "ndots:2", "-h", "box",
        "busybox", "sh", "-c", script,
    )  # fmt: skip
    hosts, resolv, hostname = out.split("---\n")
    assert ["10.1.2.3", "db.local"] in [line.split() for line in hosts.splitlines()]
    assert "nameserver 10.0.0.53" in resolv.splitlines()
    assert "search example.org" in resolv.splitlines()
    assert "options ndots:2" in resolv.splitlines()
    assert hostname == "box\n"


def test_domainname_is_sent(cli: Cli, names: Callable[[str], str]) -> None:
    ctr = names("ctr")
    cli.ok("create", "--name", ctr, "--domainname", "example.org", "busybox", "true")
    assert cli.ok("inspect", "-f", "{{.Config.Domainname}}", ctr) == "example.org\n"


def test_domainname_reaches_the_uts_namespace(cli: Cli) -> None:
    out = cli.ok(
        "run", "--rm", "--domainname", "example.org", "busybox",
        "cat", "/proc/sys/kernel/domainname",
    )  # fmt: skip
    assert out == "example.org\n"
