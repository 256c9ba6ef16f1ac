"""The command table of ``berth`` and its fast argv parser.

Theory of operation:
    ``SPECS`` is the single description of every command: its positional
    arguments, its options (docker's names), their kinds and help.  Two
    parsers read it:

    * ``cli.app`` builds the cyclopts application from it (help pages, error
      messages, every unusual spelling);
    * ``parse_argv`` here, a small pflag-like parser, handles the common
      spellings without importing cyclopts, which costs ~130 ms of start-up.
      Whenever it meets anything it is not sure about (``--help``, an unknown
      or repeated option, ``--flag=value`` on a boolean, an attached short
      value, a bad integer, a wrong number of arguments) it returns ``None``
      and ``cli.main`` hands the argv to cyclopts.  Tests check that both
      parsers give equal ``Parsed`` results whenever the fast one answers.

    Docker stops option parsing at the first argument of ``run``/``create``
    after IMAGE (pflag ``SetInterspersed(false)``): ``berth run busybox ls -l``
    passes ``-l`` to ``ls``.  An ``Arg`` of kind ``REST`` marks that point;
    ``insert_rest_delimiter`` adds the ``--`` cyclopts needs to do the same.

    Pure module: stdlib only.  It must stay cheap to import.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# Option kinds
FLAG = "flag"  # bool, no value
STR = "str"  # one value, may not repeat
INT = "int"  # one integer value, may not repeat
LIST = "list"  # repeatable, collects values

# Positional kinds
ONE = "one"  # exactly one
OPTIONAL = "optional"  # zero or one (only after ONE args)
MANY = "many"  # one or more
ANY = "any"  # zero or more
REST = "rest"  # everything after the previous positionals, options included


class Opt:
    """One option: ``dest`` is the Python name, ``names`` docker's spellings."""

    __slots__ = ("default", "dest", "help", "kind", "names")

    def __init__(
        self,
        dest: str,
        names: tuple[str, ...],
        kind: str,
        help: str,  # noqa: A002 - mirrors cyclopts' Parameter(help=...)
        default: str | int | bool | None = None,
    ) -> None:
        self.dest = dest
        self.names = names
        self.kind = kind
        self.help = help
        self.default = default


class Arg:
    """One positional argument (``dash``: ``-`` is a value, standard input)."""

    __slots__ = ("dash", "dest", "help", "kind", "metavar")

    def __init__(
        self,
        dest: str,
        metavar: str,
        kind: str,
        help: str,  # noqa: A002
        *,
        dash: bool = False,
    ) -> None:
        self.dest = dest
        self.metavar = metavar
        self.kind = kind
        self.help = help
        self.dash = dash


class Spec:
    """One command: name, help, positionals, options, exit code for usage errors.

    ``toplevel=False`` marks a command reached only through its group
    (``image prune``): its name is the two words, and ``ALIASES`` maps them.
    """

    __slots__ = ("args", "by_name", "help", "name", "opts", "toplevel", "usage_code")

    def __init__(
        self,
        name: str,
        help: str,  # noqa: A002
        args: tuple[Arg, ...],
        opts: tuple[Opt, ...],
        *,
        usage_code: int = 2,
        toplevel: bool = True,
    ) -> None:
        self.name = name
        self.help = help
        self.args = args
        self.opts = opts
        self.usage_code = usage_code
        self.toplevel = toplevel
        self.by_name = {n: o for o in opts for n in o.names}


class Parsed:
    """A parsed command line: canonical command, positionals, every option's value."""

    __slots__ = ("args", "command", "opts")

    def __init__(self, command: str, args: list[str], opts: dict[str, object]) -> None:
        self.command = command
        self.args = args
        self.opts = opts

    def flag(self, dest: str) -> bool:
        value = self.opts[dest]
        if not isinstance(value, bool):
            raise TypeError(f"{dest} is not a flag")
        return value

    def text(self, dest: str) -> str | None:
        value = self.opts[dest]
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{dest} is not a string option")
        return value

    def texts(self, dest: str) -> list[str]:
        value = self.opts[dest]
        if not isinstance(value, list):
            raise TypeError(f"{dest} is not a list option")
        return [str(v) for v in value]

    def number(self, dest: str) -> int | None:
        value = self.opts[dest]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{dest} is not an integer option")
        return value

    __hash__ = None  # type: ignore[assignment]  # mutable: compared, never hashed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Parsed):
            return NotImplemented
        return (self.command, self.args, self.opts) == (other.command, other.args, other.opts)

    def __repr__(self) -> str:
        return f"Parsed({self.command!r}, {self.args!r}, {self.opts!r})"


def defaults(spec: Spec) -> dict[str, object]:
    """Every option of ``spec`` at its default value."""
    values: dict[str, object] = {}
    for opt in spec.opts:
        if opt.kind == FLAG:
            values[opt.dest] = opt.default is True
        elif opt.kind == LIST:
            values[opt.dest] = []
        else:
            values[opt.dest] = opt.default
    return values


# --- the table ---------------------------------------------------------------------

_FORMAT = Opt("format", ("--format",), STR, "Format output using a custom template")
_FORMAT_F = Opt("format", ("-f", "--format"), STR, "Format output using a custom template")
_FILTER = Opt("filter", ("-f", "--filter"), LIST, "Filter output based on conditions provided")
_CONTAINERS = (Arg("containers", "CONTAINER", MANY, "Containers (names or ids)"),)
_CONTAINER = Arg("container", "CONTAINER", ONE, "Container name or id")
_OUTPUT = Opt("output", ("-o", "--output"), STR, "Write to a file, instead of STDOUT")
_NO_TRUNC = Opt("no_trunc", ("--no-trunc",), FLAG, "Don't truncate output")
_SIGNAL = Opt("signal", ("-s", "--signal"), STR, "Signal to send to the container")
_STOP_OPTS = (  # stop and restart
    Opt("time", ("-t", "--time", "--timeout"), INT, "Seconds to wait before killing the container"),
    _SIGNAL,
)
_FORCE_PRUNE = Opt("force", ("-f", "--force"), FLAG, "Do not prompt for confirmation")
_PRUNE_FILTER = Opt(
    "filter", ("--filter",), LIST, 'Provide filter values (e.g. "until=<timestamp>")'
)
_NO_TRUST = Opt(
    "disable_content_trust",
    ("--disable-content-trust",),
    FLAG,
    "Skip image verification (berth never verifies: accepted for docker compatibility)",
)


_DETACH_KEYS = Opt(
    "detach_keys",
    ("--detach-keys",),
    STR,
    "Override the key sequence for detaching a container",
)
_ATTACH_OPTS = (
    _DETACH_KEYS,
    Opt(
        "sig_proxy",
        ("--sig-proxy",),
        FLAG,
        "Proxy received signals to the process (--sig-proxy=false to not)",
        True,
    ),
)


def _run_opts(*, detach: bool) -> tuple[Opt, ...]:
    opts = [
        Opt("rm", ("--rm",), FLAG, "Automatically remove the container when it exits"),
        Opt("name", ("--name",), STR, "Assign a name to the container"),
        Opt("env", ("-e", "--env"), LIST, "Set environment variables"),
        Opt("env_file", ("--env-file",), LIST, "Read in a file of environment variables"),
        Opt("workdir", ("-w", "--workdir"), STR, "Working directory inside the container"),
        Opt("user", ("-u", "--user"), STR, "Username or UID (format: <name|uid>[:<group|gid>])"),
        Opt("entrypoint", ("--entrypoint",), STR, "Overwrite the default ENTRYPOINT of the image"),
        Opt("restart", ("--restart",), STR, "Restart policy to apply when a container exits"),
        Opt("restart_delay", ("--restart-delay",), STR, "Delay before the first restart (berth)"),
        Opt(
            "restart_max_delay", ("--restart-max-delay",), STR, "Cap of the restart backoff (berth)"
        ),
        Opt("memory", ("-m", "--memory"), STR, "Memory limit"),
        Opt(
            "memory_swap",
            ("--memory-swap",),
            STR,
            "Swap limit equal to memory plus swap: -1 for unlimited",
        ),
        Opt("cpus", ("--cpus",), STR, "Number of CPUs"),
        Opt("cpu_shares", ("-c", "--cpu-shares"), INT, "CPU shares (relative weight)"),
        Opt("pids_limit", ("--pids-limit",), INT, "Tune container pids limit (-1 for unlimited)"),
        Opt("init", ("--init",), FLAG, "Run an init inside the container"),
        Opt("privileged", ("--privileged",), FLAG, "Give extended privileges to this container"),
        Opt("cap_add", ("--cap-add",), LIST, "Add Linux capabilities"),
        Opt("cap_drop", ("--cap-drop",), LIST, "Drop Linux capabilities"),
        Opt("security_opt", ("--security-opt",), LIST, "Security Options"),
        Opt("ulimit", ("--ulimit",), LIST, "Ulimit options"),
        Opt("sysctl", ("--sysctl",), LIST, "Sysctl options"),
        Opt("shm_size", ("--shm-size",), STR, "Size of /dev/shm"),
        Opt(
            "oom_score_adj",
            ("--oom-score-adj",),
            INT,
            "Tune host's OOM preferences (-1000 to 1000)",
        ),
        Opt("pid", ("--pid",), STR, "PID namespace to use"),
        Opt("ipc", ("--ipc",), STR, "IPC mode to use"),
        Opt("uts", ("--uts",), STR, "UTS namespace to use"),
        Opt("group_add", ("--group-add",), LIST, "Add additional groups to join"),
        Opt("device", ("--device",), LIST, "Add a host device to the container"),
        Opt("cpuset_cpus", ("--cpuset-cpus",), STR, "CPUs in which to allow execution (0-3, 0,1)"),
        Opt("cpuset_mems", ("--cpuset-mems",), STR, "MEMs in which to allow execution (0-3, 0,1)"),
        Opt("memory_reservation", ("--memory-reservation",), STR, "Memory soft limit"),
        Opt("label", ("-l", "--label"), LIST, "Set meta data on a container"),
        Opt("stop_timeout", ("--stop-timeout",), INT, "Timeout (in seconds) to stop a container"),
        Opt("health_cmd", ("--health-cmd",), STR, "Command to run to check health"),
        Opt(
            "health_interval",
            ("--health-interval",),
            STR,
            "Time between running the check (ms|s|m|h) (default 0s)",
        ),
        Opt(
            "health_timeout",
            ("--health-timeout",),
            STR,
            "Maximum time to allow one check to run (ms|s|m|h) (default 0s)",
        ),
        Opt(
            "health_retries",
            ("--health-retries",),
            INT,
            "Consecutive failures needed to report unhealthy",
        ),
        Opt(
            "health_start_period",
            ("--health-start-period",),
            STR,
            "Start period for the container to initialize before starting health-retries "
            "countdown (ms|s|m|h) (default 0s)",
        ),
        Opt(
            "health_start_interval",
            ("--health-start-interval",),
            STR,
            "Time between running the check during the start period (ms|s|m|h) (default 0s)",
        ),
        Opt(
            "no_healthcheck",
            ("--no-healthcheck",),
            FLAG,
            "Disable any container-specified HEALTHCHECK",
        ),
        Opt(
            "health_on_failure",
            ("--health-on-failure",),
            STR,
            "Action when the container becomes unhealthy: none, kill, restart or stop (berth)",
        ),
        Opt("stop_signal", ("--stop-signal",), STR, "Signal to stop the container"),
        Opt("hostname", ("-h", "--hostname"), STR, "Container host name"),
        Opt("domainname", ("--domainname",), STR, "Container NIS domain name"),
        Opt("network", ("--network", "--net"), LIST, "Connect a container to a network"),
        Opt(
            "network_alias",
            ("--network-alias", "--net-alias"),
            LIST,
            "Add network-scoped alias for the container",
        ),
        Opt("ip", ("--ip",), STR, "IPv4 address (e.g., 172.30.100.104)"),
        Opt(
            "mac_address",
            ("--mac-address",),
            STR,
            "Container MAC address (e.g., 92:d0:c6:0a:29:33)",
        ),
        Opt("publish", ("-p", "--publish"), LIST, "Publish a container's port(s) to the host"),
        Opt(
            "publish_all",
            ("-P", "--publish-all"),
            FLAG,
            "Publish all exposed ports to random ports",
        ),
        Opt("expose", ("--expose",), LIST, "Expose a port or a range of ports"),
        Opt("add_host", ("--add-host",), LIST, "Add a custom host-to-IP mapping (host:ip)"),
        Opt("dns", ("--dns",), LIST, "Set custom DNS servers"),
        Opt("dns_search", ("--dns-search",), LIST, "Set custom DNS search domains"),
        Opt("dns_option", ("--dns-option", "--dns-opt"), LIST, "Set DNS options"),
        Opt("volume", ("-v", "--volume"), LIST, "Bind mount a volume"),
        Opt("mount", ("--mount",), LIST, "Attach a filesystem mount to the container"),
        Opt("tmpfs", ("--tmpfs",), LIST, "Mount a tmpfs directory"),
        Opt(
            "volumes_from",
            ("--volumes-from",),
            LIST,
            "Mount volumes from the specified container(s)",
        ),
        Opt(
            "read_only",
            ("--read-only",),
            FLAG,
            "Mount the container's root filesystem as read only",
        ),
        Opt("log_driver", ("--log-driver",), STR, "Logging driver for the container"),
        Opt("log_opt", ("--log-opt",), LIST, "Log driver options"),
        Opt("interactive", ("-i", "--interactive"), FLAG, "Keep STDIN open even if not attached"),
        Opt("tty", ("-t", "--tty"), FLAG, "Allocate a pseudo-TTY"),
    ]
    if detach:
        opts.insert(
            0,
            Opt(
                "detach",
                ("-d", "--detach"),
                FLAG,
                "Run container in background and print container ID",
            ),
        )
        opts.extend(_ATTACH_OPTS)  # run attaches (start -a has only --detach-keys)
    return tuple(opts)


_LIST_FORMAT = Opt(
    "format",
    ("--format",),
    STR,
    "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or 'TEMPLATE'",
)
_NETWORKS = (Arg("networks", "NETWORK", MANY, "Networks (names or ids)"),)
_NETWORK_AND_CONTAINER = (
    Arg("network", "NETWORK", ONE, "Network name or id"),
    _CONTAINER,
)

_NETWORK_SPECS = (
    Spec(
        "network create",
        "Create a network",
        (Arg("network", "NETWORK", ONE, "Name of the new network"),),
        (
            Opt("driver", ("-d", "--driver"), STR, "Driver to manage the Network", "bridge"),
            Opt(
                "subnet",
                ("--subnet",),
                LIST,
                "Subnet in CIDR format that represents a network segment",
            ),
            Opt("gateway", ("--gateway",), LIST, "IPv4 or IPv6 Gateway for the master subnet"),
            Opt("ip_range", ("--ip-range",), LIST, "Allocate container ip from a sub-range"),
            Opt("internal", ("--internal",), FLAG, "Restrict external access to the network"),
            Opt("attachable", ("--attachable",), FLAG, "Enable manual container attachment"),
            Opt("label", ("--label",), LIST, "Set metadata on a network"),
            Opt("opt", ("-o", "--opt"), LIST, "Set driver specific options"),
            Opt("ipam_driver", ("--ipam-driver",), STR, "IP Address Management Driver", "default"),
        ),
        toplevel=False,
    ),
    Spec(
        "network ls",
        "List networks",
        (),
        (
            Opt("quiet", ("-q", "--quiet"), FLAG, "Only display network IDs"),
            Opt(
                "filter",
                ("-f", "--filter"),
                LIST,
                'Provide filter values (e.g. "driver=bridge")',
            ),
            _LIST_FORMAT,
            Opt("no_trunc", ("--no-trunc",), FLAG, "Do not truncate the output"),
        ),
        toplevel=False,
    ),
    Spec(
        "network inspect",
        "Display detailed information on one or more networks",
        _NETWORKS,
        (
            _FORMAT_F,
            Opt("verbose", ("-v", "--verbose"), FLAG, "Verbose output for diagnostics"),
        ),
        toplevel=False,
    ),
    Spec(
        "network rm",
        "Remove one or more networks",
        _NETWORKS,
        (
            Opt(
                "force",
                ("-f", "--force"),
                FLAG,
                "Do not error if the network does not exist",
            ),
        ),
        toplevel=False,
    ),
    Spec(
        "network prune",
        "Remove all unused networks",
        (),
        (_FORCE_PRUNE, _PRUNE_FILTER),
        toplevel=False,
    ),
    Spec(
        "network connect",
        "Connect a container to a network",
        _NETWORK_AND_CONTAINER,
        (
            Opt("ip", ("--ip",), STR, 'IPv4 address (e.g., "172.30.100.104")'),
            Opt("alias", ("--alias",), LIST, "Add network-scoped alias for the container"),
            Opt("driver_opt", ("--driver-opt",), LIST, "driver options for the network"),
        ),
        toplevel=False,
    ),
    Spec(
        "network disconnect",
        "Disconnect a container from a network",
        _NETWORK_AND_CONTAINER,
        (
            Opt(
                "force",
                ("-f", "--force"),
                FLAG,
                "Force the container to disconnect from a network",
            ),
        ),
        toplevel=False,
    ),
)

_VOLUMES = (Arg("volumes", "VOLUME", MANY, "Volume names"),)

_VOLUME_SPECS = (
    Spec(
        "volume create",
        "Create a volume",
        (Arg("volume", "VOLUME", OPTIONAL, "Name of the new volume (default: a random id)"),),
        (
            Opt("driver", ("-d", "--driver"), STR, "Specify volume driver name", "local"),
            Opt("name", ("--name",), STR, "Specify volume name"),
            Opt("label", ("--label",), LIST, "Set metadata for a volume"),
            Opt("opt", ("-o", "--opt"), LIST, "Set driver specific options"),
        ),
        toplevel=False,
    ),
    Spec(
        "volume ls",
        "List volumes",
        (),
        (
            Opt("quiet", ("-q", "--quiet"), FLAG, "Only display volume names"),
            Opt(
                "filter",
                ("-f", "--filter"),
                LIST,
                'Provide filter values (e.g. "dangling=true")',
            ),
            _LIST_FORMAT,
        ),
        toplevel=False,
    ),
    Spec(
        "volume inspect",
        "Display detailed information on one or more volumes",
        _VOLUMES,
        (_FORMAT_F,),
        toplevel=False,
    ),
    Spec(
        "volume rm",
        "Remove one or more volumes",
        _VOLUMES,
        (
            Opt(
                "force",
                ("-f", "--force"),
                FLAG,
                "Force the removal of one or more volumes",
            ),
        ),
        toplevel=False,
    ),
    Spec(
        "volume prune",
        "Remove unused local volumes",
        (),
        (
            Opt(
                "all",
                ("-a", "--all"),
                FLAG,
                "Remove all unused volumes, not just anonymous ones",
            ),
            _FORCE_PRUNE,
            Opt(
                "filter",
                ("--filter",),
                LIST,
                'Provide filter values (e.g. "label=<label>")',
            ),
        ),
        toplevel=False,
    ),
)

# top, stats, diff, update, system df/prune (cli/opscmds.py)
_OPS_SPECS = (
    Spec(
        "top",
        "Display the running processes of a container",
        (
            _CONTAINER,
            Arg("ps_args", "ps OPTIONS", REST, "Options for ps (default -ef)"),
        ),
        (),
    ),
    Spec(
        "stats",
        "Display a live stream of container(s) resource usage statistics",
        (Arg("containers", "CONTAINER", ANY, "Containers (default: all running)"),),
        (
            Opt("all", ("-a", "--all"), FLAG, "Show all containers (default shows just running)"),
            _FORMAT,
            Opt(
                "no_stream",
                ("--no-stream",),
                FLAG,
                "Disable streaming stats and only pull the first result",
            ),
            Opt("no_trunc", ("--no-trunc",), FLAG, "Do not truncate output"),
        ),
    ),
    Spec(
        "diff",
        "Inspect changes to files or directories on a container's filesystem",
        (_CONTAINER,),
        (),
    ),
    Spec(
        "update",
        "Update configuration of one or more containers",
        _CONTAINERS,
        (
            Opt(
                "blkio_weight",
                ("--blkio-weight",),
                INT,
                "Block IO (relative weight), between 10 and 1000, or 0 to disable",
            ),
            Opt(
                "cpu_period",
                ("--cpu-period",),
                INT,
                "Limit CPU CFS (Completely Fair Scheduler) period",
            ),
            Opt(
                "cpu_quota",
                ("--cpu-quota",),
                INT,
                "Limit CPU CFS (Completely Fair Scheduler) quota",
            ),
            Opt(
                "cpu_rt_period",
                ("--cpu-rt-period",),
                INT,
                "Limit the CPU real-time period in microseconds",
            ),
            Opt(
                "cpu_rt_runtime",
                ("--cpu-rt-runtime",),
                INT,
                "Limit the CPU real-time runtime in microseconds",
            ),
            Opt("cpu_shares", ("-c", "--cpu-shares"), INT, "CPU shares (relative weight)"),
            Opt("cpus", ("--cpus",), STR, "Number of CPUs"),
            Opt(
                "cpuset_cpus",
                ("--cpuset-cpus",),
                STR,
                "CPUs in which to allow execution (0-3, 0,1)",
            ),
            Opt(
                "cpuset_mems",
                ("--cpuset-mems",),
                STR,
                "MEMs in which to allow execution (0-3, 0,1)",
            ),
            Opt("memory", ("-m", "--memory"), STR, "Memory limit"),
            Opt("memory_reservation", ("--memory-reservation",), STR, "Memory soft limit"),
            Opt(
                "memory_swap",
                ("--memory-swap",),
                STR,
                "Swap limit equal to memory plus swap: -1 to enable unlimited swap",
            ),
            Opt(
                "pids_limit",
                ("--pids-limit",),
                INT,
                "Tune container pids limit (set -1 for unlimited)",
            ),
            Opt("restart", ("--restart",), STR, "Restart policy to apply when a container exits"),
        ),
    ),
    Spec(
        "system df",
        "Show berth disk usage",
        (),
        (
            _FORMAT,
            Opt("verbose", ("-v", "--verbose"), FLAG, "Show detailed information on space usage"),
        ),
        toplevel=False,
    ),
    Spec(
        "system prune",
        "Remove unused data",
        (),
        (
            Opt("all", ("-a", "--all"), FLAG, "Remove all unused images not just dangling ones"),
            _PRUNE_FILTER,
            _FORCE_PRUNE,
            Opt("volumes", ("--volumes",), FLAG, "Prune anonymous volumes"),
        ),
        toplevel=False,
    ),
)

# build (cli/buildcmd.py): docker's classic builder options
_BUILD_SPEC = Spec(
    "build",
    "Build an image from a Dockerfile",
    (Arg("context", "PATH | -", ONE, "Context directory, or - for standard input", dash=True),),
    (
        Opt("tag", ("-t", "--tag"), LIST, 'Name and optionally a tag in the "name:tag" format'),
        Opt("file", ("-f", "--file"), STR, 'Name of the Dockerfile (Default is "PATH/Dockerfile")'),
        Opt("build_arg", ("--build-arg",), LIST, "Set build-time variables"),
        Opt("label", ("--label",), LIST, "Set metadata for an image"),
        Opt("target", ("--target",), STR, "Set the target build stage to build"),
        Opt("no_cache", ("--no-cache",), FLAG, "Do not use cache when building the image"),
        Opt("pull", ("--pull",), FLAG, "Always attempt to pull a newer version of the image"),
        Opt(
            "rm",
            ("--rm",),
            FLAG,
            "Remove intermediate containers after a successful build (--rm=false to keep)",
            True,
        ),
        Opt("force_rm", ("--force-rm",), FLAG, "Always remove intermediate containers"),
        Opt(
            "quiet",
            ("-q", "--quiet"),
            FLAG,
            "Suppress the build output and print image ID on success",
        ),
        Opt("iidfile", ("--iidfile",), STR, "Write the image ID to the file"),
        Opt(
            "network",
            ("--network",),
            STR,
            "Set the networking mode for the RUN instructions during build",
        ),
        Opt("platform", ("--platform",), STR, "Set platform if server is multi-platform capable"),
        Opt("add_host", ("--add-host",), LIST, 'Add a custom host-to-IP mapping ("host:ip")'),
        Opt("cache_from", ("--cache-from",), LIST, "Images to consider as cache sources"),
        _NO_TRUST,
    ),
)

# exec and attach (cli/execcmd.py)
_EXEC_SPECS = (
    Spec(
        "exec",
        "Execute a command in a running container",
        (
            _CONTAINER,
            Arg("command", "COMMAND", REST, "Command and arguments"),
        ),
        (
            Opt("detach", ("-d", "--detach"), FLAG, "Detached mode: run command in the background"),
            _DETACH_KEYS,
            Opt("env", ("-e", "--env"), LIST, "Set environment variables"),
            Opt("env_file", ("--env-file",), LIST, "Read in a file of environment variables"),
            Opt(
                "interactive", ("-i", "--interactive"), FLAG, "Keep STDIN open even if not attached"
            ),
            Opt("privileged", ("--privileged",), FLAG, "Give extended privileges to the command"),
            Opt("tty", ("-t", "--tty"), FLAG, "Allocate a pseudo-TTY"),
            Opt(
                "user", ("-u", "--user"), STR, "Username or UID (format: <name|uid>[:<group|gid>])"
            ),
            Opt("workdir", ("-w", "--workdir"), STR, "Working directory inside the container"),
        ),
    ),
    Spec(
        "attach",
        "Attach local standard input, output, and error streams to a running container",
        (_CONTAINER,),
        (
            _DETACH_KEYS,
            Opt("no_stdin", ("--no-stdin",), FLAG, "Do not attach STDIN"),
            _ATTACH_OPTS[1],
        ),
    ),
)

_IMAGE_CMD = (
    Arg("image", "IMAGE", ONE, "The image to run"),
    Arg("command", "COMMAND", REST, "Command and arguments"),
)

SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec(
            "run",
            "Create and run a new container from an image",
            _IMAGE_CMD,
            _run_opts(detach=True),
            usage_code=125,
        ),
        Spec(
            "create", "Create a new container", _IMAGE_CMD, _run_opts(detach=False), usage_code=125
        ),
        Spec(
            "ps",
            "List containers",
            (),
            (
                Opt(
                    "all", ("-a", "--all"), FLAG, "Show all containers (default shows just running)"
                ),
                Opt("quiet", ("-q", "--quiet"), FLAG, "Only display container IDs"),
                _FILTER,
                _FORMAT,
                _NO_TRUNC,
                Opt(
                    "last",
                    ("-n", "--last"),
                    INT,
                    "Show n last created containers (includes all states)",
                ),
                Opt(
                    "latest",
                    ("-l", "--latest"),
                    FLAG,
                    "Show the latest created container (includes all states)",
                ),
                Opt("size", ("-s", "--size"), FLAG, "Display total file sizes"),
            ),
        ),
        Spec(
            "logs",
            "Fetch the logs of a container",
            (_CONTAINER,),
            (
                Opt("follow", ("-f", "--follow"), FLAG, "Follow log output"),
                Opt(
                    "tail",
                    ("-n", "--tail"),
                    STR,
                    "Number of lines to show from the end of the logs",
                    "all",
                ),
                Opt("since", ("--since",), STR, "Show logs since timestamp or relative (e.g. 42m)"),
                Opt(
                    "until",
                    ("--until",),
                    STR,
                    "Show logs before a timestamp or relative (e.g. 42m)",
                ),
                Opt("timestamps", ("-t", "--timestamps"), FLAG, "Show timestamps"),
                Opt("details", ("--details",), FLAG, "Show extra details provided to logs"),
            ),
        ),
        Spec(
            "start",
            "Start one or more stopped containers",
            _CONTAINERS,
            (
                Opt("attach", ("-a", "--attach"), FLAG, "Attach STDOUT/STDERR and forward signals"),
                Opt("interactive", ("-i", "--interactive"), FLAG, "Attach container's STDIN"),
                _DETACH_KEYS,
            ),
        ),
        Spec(
            "stop",
            "Stop one or more running containers",
            _CONTAINERS,
            _STOP_OPTS,
        ),
        Spec(
            "restart",
            "Restart one or more containers",
            _CONTAINERS,
            _STOP_OPTS,
        ),
        Spec(
            "kill",
            "Kill one or more running containers",
            _CONTAINERS,
            (_SIGNAL,),
        ),
        Spec(
            "rm",
            "Remove one or more containers",
            _CONTAINERS,
            (
                Opt(
                    "force",
                    ("-f", "--force"),
                    FLAG,
                    "Force the removal of a running container (uses SIGKILL)",
                ),
                Opt(
                    "volumes",
                    ("-v", "--volumes"),
                    FLAG,
                    "Remove anonymous volumes associated with the container",
                ),
                Opt("link", ("-l", "--link"), FLAG, "Remove the specified link"),
            ),
        ),
        Spec(
            "wait",
            "Block until one or more containers stop, then print their exit codes",
            _CONTAINERS,
            (),
        ),
        Spec(
            "inspect",
            "Return low-level information on containers, images, networks or volumes",
            (Arg("objects", "NAME|ID", MANY, "Containers, images, networks or volumes"),),
            (
                _FORMAT_F,
                Opt(
                    "type",
                    ("--type",),
                    STR,
                    "Only inspect objects of the given type (container|image|network|volume)",
                ),
                Opt(
                    "size",
                    ("-s", "--size"),
                    FLAG,
                    "Display total file sizes if the type is container",
                ),
            ),
        ),
        Spec(
            "events",
            "Get real time events from the server",
            (),
            (
                Opt("since", ("--since",), STR, "Show all events created since timestamp"),
                Opt("until", ("--until",), STR, "Stream events until this timestamp"),
                _FILTER,
                _FORMAT,
            ),
        ),
        Spec(
            "images",
            "List images",
            (
                Arg(
                    "repository",
                    "REPOSITORY[:TAG]",
                    OPTIONAL,
                    "Only images matching this reference",
                ),
            ),
            (
                Opt(
                    "all",
                    ("-a", "--all"),
                    FLAG,
                    "Show all images (default hides intermediate images)",
                ),
                Opt("quiet", ("-q", "--quiet"), FLAG, "Only show image IDs"),
                _FILTER,
                _FORMAT,
                _NO_TRUNC,
                Opt("digests", ("--digests",), FLAG, "Show digests"),
            ),
        ),
        Spec(
            "import",
            "Import the contents from a tarball to create a filesystem image",
            (
                Arg("file", "FILE|-", ONE, "Tar archive, or - for standard input", dash=True),
                Arg("reference", "REPOSITORY[:TAG]", OPTIONAL, "Name of the new image"),
            ),
            (
                Opt(
                    "change",
                    ("-c", "--change"),
                    LIST,
                    "Apply Dockerfile instruction to the created image",
                ),
                Opt("message", ("-m", "--message"), STR, "Set commit message for imported image"),
                Opt(
                    "platform",
                    ("--platform",),
                    STR,
                    "Set platform if server is multi-platform capable",
                ),
            ),
        ),
        Spec(
            "tag",
            "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
            (
                Arg("source", "SOURCE_IMAGE[:TAG]", ONE, "Existing image"),
                Arg("target", "TARGET_IMAGE[:TAG]", ONE, "New reference"),
            ),
            (),
        ),
        Spec(
            "rmi",
            "Remove one or more images",
            (Arg("images", "IMAGE", MANY, "Images (references or ids)"),),
            (
                Opt("force", ("-f", "--force"), FLAG, "Force removal of the image"),
                Opt("no_prune", ("--no-prune",), FLAG, "Do not delete untagged parents"),
            ),
        ),
        Spec(
            "pull",
            "Download an image from a registry",
            (Arg("name", "NAME[:TAG|@DIGEST]", ONE, "Image to pull"),),
            (
                Opt(
                    "all_tags",
                    ("-a", "--all-tags"),
                    FLAG,
                    "Download all tagged images in the repository",
                ),
                Opt("quiet", ("-q", "--quiet"), FLAG, "Suppress verbose output"),
                Opt("platform", ("--platform",), STR, "Set platform if server is multi-platform"),
                _NO_TRUST,
            ),
        ),
        Spec(
            "push",
            "Upload an image to a registry",
            (Arg("name", "NAME[:TAG]", ONE, "Image to push"),),
            (
                Opt(
                    "all_tags",
                    ("-a", "--all-tags"),
                    FLAG,
                    "Push all tags of an image to the repository",
                ),
                Opt("quiet", ("-q", "--quiet"), FLAG, "Suppress verbose output"),
                _NO_TRUST,
            ),
        ),
        Spec(
            "login",
            "Authenticate to a registry (default: Docker Hub)",
            (Arg("server", "SERVER", OPTIONAL, "Registry address"),),
            (
                Opt("username", ("-u", "--username"), STR, "Username"),
                Opt(
                    "password",
                    ("-p", "--password"),
                    STR,
                    "Password or Personal Access Token (PAT)",
                ),
                Opt(
                    "password_stdin",
                    ("--password-stdin",),
                    FLAG,
                    "Take the Password or Personal Access Token (PAT) from stdin",
                ),
            ),
        ),
        Spec(
            "logout",
            "Log out from a registry (default: Docker Hub)",
            (Arg("server", "SERVER", OPTIONAL, "Registry address"),),
            (),
        ),
        Spec(
            "search",
            "Search Docker Hub for images",
            (Arg("term", "TERM", ONE, "Search term"),),
            (
                _FILTER,
                Opt("limit", ("--limit",), INT, "Max number of search results"),
                _NO_TRUNC,
                Opt("format", ("--format",), STR, "Pretty-print search using a Go template"),
            ),
        ),
        Spec(
            "commit",
            "Create a new image from a container's changes",
            (
                _CONTAINER,
                Arg("reference", "REPOSITORY[:TAG]", OPTIONAL, "Name of the new image"),
            ),
            (
                Opt(
                    "author",
                    ("-a", "--author"),
                    STR,
                    'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
                ),
                Opt("message", ("-m", "--message"), STR, "Commit message"),
                Opt(
                    "change",
                    ("-c", "--change"),
                    LIST,
                    "Apply Dockerfile instruction to the created image",
                ),
                Opt(
                    "pause",
                    ("-p", "--pause"),
                    FLAG,
                    "Pause container during commit (--pause=false to not)",
                    True,
                ),
            ),
        ),
        Spec(
            "save",
            "Save one or more images to a tar archive (streamed to STDOUT by default)",
            (Arg("images", "IMAGE", MANY, "Images (references or ids)"),),
            (_OUTPUT,),
        ),
        Spec(
            "load",
            "Load an image from a tar archive or STDIN",
            (),
            (
                Opt(
                    "input", ("-i", "--input"), STR, "Read from tar archive file, instead of STDIN"
                ),
                Opt("quiet", ("-q", "--quiet"), FLAG, "Suppress the load output"),
            ),
        ),
        Spec(
            "export",
            "Export a container's filesystem as a tar archive",
            (_CONTAINER,),
            (_OUTPUT,),
        ),
        Spec(
            "cp",
            "Copy files/folders between a container and the local filesystem",
            (
                Arg("source", "SRC_PATH", ONE, "CONTAINER:SRC_PATH, a local path, or -", dash=True),
                Arg(
                    "destination", "DEST_PATH", ONE, "CONTAINER:DEST_PATH, a path, or -", dash=True
                ),
            ),
            (
                Opt(
                    "archive",
                    ("-a", "--archive"),
                    FLAG,
                    "Archive mode (copy all uid/gid information)",
                ),
                Opt(
                    "follow_link",
                    ("-L", "--follow-link"),
                    FLAG,
                    "Always follow symbol link in SRC_PATH",
                ),
                Opt(
                    "quiet",
                    ("-q", "--quiet"),
                    FLAG,
                    "Suppress progress output during copy (automatic without a terminal)",
                ),
            ),
        ),
        Spec(
            "history",
            "Show the history of an image",
            (Arg("image", "IMAGE", ONE, "Image reference or id"),),
            (
                Opt(
                    "human",
                    ("-H", "--human"),
                    FLAG,
                    "Print sizes and dates in human readable format (--human=false to not)",
                    True,
                ),
                Opt("quiet", ("-q", "--quiet"), FLAG, "Only show image IDs"),
                _NO_TRUNC,
                _FORMAT,
            ),
        ),
        Spec(
            "image prune",
            "Remove unused images",
            (),
            (
                Opt(
                    "all",
                    ("-a", "--all"),
                    FLAG,
                    "Remove all unused images, not just dangling ones",
                ),
                _FORCE_PRUNE,
                _PRUNE_FILTER,
            ),
            toplevel=False,
        ),
        Spec(
            "builder prune",
            "Remove build cache",
            (),
            (
                Opt(
                    "all",
                    ("-a", "--all"),
                    FLAG,
                    "Remove all unused build cache, not just dangling ones",
                ),
                _FORCE_PRUNE,
                _PRUNE_FILTER,
            ),
            toplevel=False,
        ),
        Spec(
            "container prune",
            "Remove all stopped containers",
            (),
            (_FORCE_PRUNE, _PRUNE_FILTER),
            toplevel=False,
        ),
        Spec(
            "port",
            "List port mappings or a specific mapping for the container",
            (
                _CONTAINER,
                Arg("private_port", "PRIVATE_PORT[/PROTO]", OPTIONAL, "Only this port"),
            ),
            (),
        ),
        *_EXEC_SPECS,
        *_NETWORK_SPECS,
        *_VOLUME_SPECS,
        *_OPS_SPECS,
        _BUILD_SPEC,
        Spec("version", "Show the berth version information", (), (_FORMAT_F,)),
        Spec("info", "Display system-wide information", (), (_FORMAT_F,)),
    )
}

# Two-word spellings: (group, verb) -> (command, options preset by the alias).
ALIASES: dict[tuple[str, str], tuple[str, dict[str, object]]] = {
    ("container", "run"): ("run", {}),
    ("container", "create"): ("create", {}),
    ("container", "ls"): ("ps", {}),
    ("container", "ps"): ("ps", {}),
    ("container", "list"): ("ps", {}),
    ("container", "logs"): ("logs", {}),
    ("container", "start"): ("start", {}),
    ("container", "stop"): ("stop", {}),
    ("container", "restart"): ("restart", {}),
    ("container", "kill"): ("kill", {}),
    ("container", "rm"): ("rm", {}),
    ("container", "remove"): ("rm", {}),
    ("container", "wait"): ("wait", {}),
    ("container", "inspect"): ("inspect", {"type": "container"}),
    ("container", "commit"): ("commit", {}),
    ("container", "export"): ("export", {}),
    ("container", "cp"): ("cp", {}),
    ("container", "prune"): ("container prune", {}),
    ("image", "ls"): ("images", {}),
    ("image", "list"): ("images", {}),
    ("image", "import"): ("import", {}),
    ("image", "tag"): ("tag", {}),
    ("image", "rm"): ("rmi", {}),
    ("image", "remove"): ("rmi", {}),
    ("image", "inspect"): ("inspect", {"type": "image"}),
    ("image", "history"): ("history", {}),
    ("image", "pull"): ("pull", {}),
    ("image", "push"): ("push", {}),
    ("image", "save"): ("save", {}),
    ("image", "load"): ("load", {}),
    ("image", "prune"): ("image prune", {}),
    ("container", "port"): ("port", {}),
    ("container", "exec"): ("exec", {}),
    ("container", "attach"): ("attach", {}),
    ("network", "create"): ("network create", {}),
    ("network", "ls"): ("network ls", {}),
    ("network", "list"): ("network ls", {}),
    ("network", "inspect"): ("network inspect", {}),
    ("network", "rm"): ("network rm", {}),
    ("network", "remove"): ("network rm", {}),
    ("network", "prune"): ("network prune", {}),
    ("network", "connect"): ("network connect", {}),
    ("network", "disconnect"): ("network disconnect", {}),
    ("volume", "create"): ("volume create", {}),
    ("volume", "ls"): ("volume ls", {}),
    ("volume", "list"): ("volume ls", {}),
    ("volume", "inspect"): ("volume inspect", {}),
    ("volume", "rm"): ("volume rm", {}),
    ("volume", "remove"): ("volume rm", {}),
    ("volume", "prune"): ("volume prune", {}),
    ("system", "events"): ("events", {}),
    ("system", "info"): ("info", {}),
    ("container", "top"): ("top", {}),
    ("container", "stats"): ("stats", {}),
    ("container", "diff"): ("diff", {}),
    ("container", "update"): ("update", {}),
    ("system", "df"): ("system df", {}),
    ("system", "prune"): ("system prune", {}),
    ("image", "build"): ("build", {}),
    ("builder", "build"): ("build", {}),
    ("builder", "prune"): ("builder prune", {}),
}

GROUPS = {
    "container": "Manage containers",
    "image": "Manage images",
    "network": "Manage networks",
    "volume": "Manage volumes",
    "system": "Manage berth",
    "builder": "Manage builds",
}


def resolve_command(argv: Sequence[str]) -> tuple[Spec, dict[str, object], int] | None:
    """Find the command named at the start of ``argv``.

    Returns:
        ``(spec, preset options, number of argv words naming it)``, or None.
    """
    if not argv:
        return None
    spec = SPECS.get(argv[0])
    if spec is not None and spec.toplevel and argv[0] not in GROUPS:
        return spec, {}, 1
    if len(argv) >= 2:
        alias = ALIASES.get((argv[0], argv[1]))
        if alias is not None:
            return SPECS[alias[0]], alias[1], 2
    return None


# --- parsing ---------------------------------------------------------------------------


def _is_int(text: str) -> bool:
    body = text[1:] if text[:1] == "-" else text
    return body.isascii() and body.isdigit()


def _slot_takes_dash(spec: Spec, index: int) -> bool:
    """Whether the ``index``-th positional may be ``-`` (standard input)."""
    for arg in spec.args:
        if arg.kind in (MANY, ANY, REST) or index == 0:
            return arg.dash
        index -= 1
    return False


def _rest_index(spec: Spec) -> int:
    """How many positionals come before the ``REST`` argument; -1 without one."""
    if not any(a.kind == REST for a in spec.args):
        return -1
    return sum(1 for a in spec.args if a.kind in (ONE, OPTIONAL))


def _store(values: dict[str, object], seen: set[str], opt: Opt, value: str | None) -> bool:
    """Record one occurrence of ``opt``; False if cyclopts should judge it."""
    if value == "--":
        return False  # pflag would take it as the value; cyclopts reads a delimiter
    if opt.kind == LIST:
        assert value is not None
        current = values[opt.dest]
        assert isinstance(current, list)
        current.append(value)
        return True
    if opt.dest in seen:
        return False  # cyclopts reports "specified multiple times"
    seen.add(opt.dest)
    if opt.kind == FLAG:
        values[opt.dest] = True
    elif opt.kind == INT:
        assert value is not None
        if not _is_int(value):
            return False
        values[opt.dest] = int(value)
    else:
        values[opt.dest] = value
    return True


def _parse_tokens(spec: Spec, tokens: Sequence[str]) -> tuple[list[str], dict[str, object]] | None:
    values = defaults(spec)
    seen: set[str] = set()
    positionals: list[str] = []
    rest_at = _rest_index(spec)
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        i += 1
        if len(positionals) == rest_at and positionals:
            positionals.append(tok)
            positionals.extend(tokens[i:])
            break
        if tok == "--":
            positionals.extend(tokens[i:])
            break
        if tok.startswith("--"):
            name, eq, value = tok.partition("=")
            opt = spec.by_name.get(name)
            if opt is None:
                return None
            if opt.kind == FLAG:
                if eq:
                    return None
                value = ""
            elif not eq:
                if i >= n:
                    return None
                value = tokens[i]
                i += 1
            if not _store(values, seen, opt, value if opt.kind != FLAG else None):
                return None
            continue
        if tok == "-" and not _slot_takes_dash(spec, len(positionals)):
            return None  # cyclopts reads a lone "-" as an option there
        if tok.startswith("-") and tok != "-":
            cluster = tok[1:]
            for j, ch in enumerate(cluster):
                opt = spec.by_name.get("-" + ch)
                if opt is None:
                    return None
                if opt.kind == FLAG:
                    if not _store(values, seen, opt, None):
                        return None
                    continue
                if j != len(cluster) - 1 or i >= n:
                    return None  # attached value (-eFOO) or missing value
                if not _store(values, seen, opt, tokens[i]):
                    return None
                i += 1
            continue
        positionals.append(tok)
    return positionals, values


def _check_positionals(spec: Spec, positionals: list[str]) -> bool:
    need = 0
    maximum: int | None = 0
    for arg in spec.args:
        if arg.kind == ONE:
            need += 1
        if maximum is not None:
            maximum = None if arg.kind in (MANY, ANY, REST) else maximum + 1
        if arg.kind == MANY:
            need += 1
    return len(positionals) >= need and (maximum is None or len(positionals) <= maximum)


def parse_argv(argv: Sequence[str]) -> Parsed | None:
    """Parse a command line (without the program name and global options).

    Returns:
        The ``Parsed`` command, or None when cyclopts should handle ``argv``
        (help, errors, unusual spellings, unknown commands).
    """
    found = resolve_command(argv)
    if found is None:
        return None
    spec, preset, words = found
    result = _parse_tokens(spec, argv[words:])
    if result is None:
        return None
    positionals, values = result
    if not _check_positionals(spec, positionals):
        return None
    fixed = len(positionals) if _rest_index(spec) < 0 else _rest_index(spec)
    if any(p.startswith("-") and p != "-" for p in positionals[:fixed]):
        return None  # "-x" after "--": no image or container is named so
    for key, value in preset.items():
        if values.get(key) is None:
            values[key] = value
    return Parsed(spec.name, positionals, values)


def insert_rest_delimiter(spec: Spec, tokens: Sequence[str]) -> list[str]:
    """Insert ``--`` where a ``REST`` argument begins, for cyclopts.

    ``run -d busybox sh -c 'x' -e`` becomes ``run -d busybox -- sh -c 'x' -e``
    so that options after IMAGE belong to the container's command, as in
    docker.  A ``--`` the user put before IMAGE is moved after it.
    """
    rest_at = _rest_index(spec)
    if rest_at < 0:
        return list(tokens)
    out: list[str] = []
    count = 0
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        i += 1
        if tok == "--":
            # Everything after is positional: the first rest_at-count words
            # are ours, then the delimiter, then the command.
            take = max(rest_at - count, 0)
            out.extend(tokens[i : i + take])
            out.append("--")
            out.extend(tokens[i + take :])
            return out
        if tok.startswith("--") and tok != "--":
            out.append(tok)
            opt = spec.by_name.get(tok.partition("=")[0])
            if opt is not None and opt.kind != FLAG and "=" not in tok and i < n:
                out.append(tokens[i])
                i += 1
            continue
        if tok.startswith("-") and tok != "-":
            out.append(tok)
            for j, ch in enumerate(tok[1:]):
                opt = spec.by_name.get("-" + ch)
                if opt is not None and opt.kind != FLAG:
                    if j == len(tok) - 2 and i < n:
                        out.append(tokens[i])
                        i += 1
                    break
            continue
        out.append(tok)
        count += 1
        if count == rest_at:
            out.append("--")
            out.extend(tokens[i:])
            return out
    return out
