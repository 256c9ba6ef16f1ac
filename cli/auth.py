"""Registry credentials: docker's ``config.json`` and the ``X-Registry-Auth`` header.

Theory of operation:
    Credentials live client-side, as with docker, in ``config.json`` under
    ``$BERTH_CONFIG``, else ``$DOCKER_CONFIG``, else ``~/.docker``, in
    docker's format::

        {"auths": {"https://index.docker.io/v1/": {"auth": "<base64 user:pass>"},
                   "localhost:5000": {"auth": "...", "identitytoken": "..."}}}

    ``ConfigFile`` reads that file, looks credentials up the way docker's
    file store does (the exact key, else a key whose host[:port] matches, so
    ``https://host:5000`` serves ``host:5000``), stores and erases entries,
    and writes the file back atomically (directory 0700, file 0600, existing
    permissions kept) without touching keys it does not know.

    ``encode_registry_auth`` builds what the daemon reads from the
    ``X-Registry-Auth`` header: base64url of the JSON ``AuthConfig`` with
    empty fields left out (``e30=``, i.e. ``{}``, without credentials).

    Credential helpers (``credsStore``/``credHelpers``) are not run: berth
    reads and writes plain ``auths`` entries only.

    Stdlib only; imported only by the registry commands.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

INDEX_SERVER = "https://index.docker.io/v1/"
"""The config key of Docker Hub's credentials (``registry.IndexServer``)."""

CONFIG_FILE_NAME = "config.json"

# The fields of the API's AuthConfig, in docker's JSON order (all omitempty).
_AUTH_FIELDS = (
    "username",
    "password",
    "auth",
    "email",
    "serveraddress",
    "identitytoken",
    "registrytoken",
)


class ConfigError(Exception):
    """``config.json`` cannot be read or parsed; the message is docker's."""


def config_dir(environ: Mapping[str, str]) -> str:
    """``$BERTH_CONFIG``, else ``$DOCKER_CONFIG``, else ``~/.docker``."""
    for name in ("BERTH_CONFIG", "DOCKER_CONFIG"):
        value = environ.get(name)
        if value:
            return value
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".docker")


def config_path(environ: Mapping[str, str]) -> str:
    return os.path.join(config_dir(environ), CONFIG_FILE_NAME)


def auth_config_key(domain: str) -> str:
    """``getAuthConfigKey``: Docker Hub's full index address, else the registry host[:port]."""
    if domain in ("docker.io", "index.docker.io"):
        return INDEX_SERVER
    return domain


def convert_to_hostname(address: str) -> str:
    """``credentials.ConvertToHostname``: ``https://host:5000/v2/`` → ``host:5000``."""
    if "://" in address:
        rest = address.split("://", 1)[1]
        for stop in "/?#":
            rest = rest.split(stop, 1)[0]
        authority = rest.rpartition("@")[2]
        if authority.startswith("["):
            host, _, tail = authority[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else ""
        else:
            host, _, port = authority.partition(":")
        if host:
            if not port:
                return host
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return address.split("/", 1)[0]


def decode_auth(auth: str) -> tuple[str, str]:
    """``decodeAuth``: ``base64(user:password)`` → ``(user, password)``.

    Raises:
        ConfigError: not base64, or no user.
    """
    if not auth:
        return "", ""
    try:
        decoded = base64.b64decode(auth, validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"illegal base64 data in auth configuration: {exc}") from None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        raise ConfigError("Invalid auth configuration file")
    return user, password.strip("\x00")


def encode_auth(username: str, password: str) -> str:
    """``encodeAuth``: the ``auth`` value of a config entry ("" without credentials)."""
    if not username and not password:
        return ""
    return base64.b64encode(f"{username}:{password}".encode("utf-8", "surrogateescape")).decode()


def _go_json(value: object) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (HTML characters escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def encode_registry_auth(credentials: Mapping[str, str]) -> str:
    """``registry.EncodeAuthConfig``: the ``X-Registry-Auth`` header value.

    Base64url (padded) of the JSON ``AuthConfig``, empty fields left out, so
    no credentials at all gives ``e30=`` (``{}``).
    """
    body = {key: credentials[key] for key in _AUTH_FIELDS if credentials.get(key)}
    return base64.urlsafe_b64encode(_go_json(body).encode("utf-8", "surrogateescape")).decode()


class ConfigFile:
    """One ``config.json``: its decoded JSON, kept whole so that unknown keys survive."""

    def __init__(self, path: str, data: dict[str, object] | None = None) -> None:
        self.path = path
        self.data: dict[str, object] = data if data is not None else {}

    @classmethod
    def load(cls, path: str) -> ConfigFile:
        """Read ``path``; a missing file is an empty configuration.

        Raises:
            ConfigError: unreadable, not a JSON object, or a malformed ``auths`` entry.
        """
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise ConfigError(f"loading config file: {os_error(exc, path)}") from None
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ConfigError(f"parsing config file ({path}): {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"parsing config file ({path}): not a JSON object")
        config = cls(path, data)
        for key, entry in config.auths().items():
            try:
                config._decode(key, entry)
            except ConfigError as exc:
                raise ConfigError(f"parsing config file ({path}): {exc}") from None
        return config

    def auths(self) -> dict[str, object]:
        """The raw ``auths`` map (empty if absent or not an object)."""
        auths = self.data.get("auths")
        return auths if isinstance(auths, dict) else {}

    @staticmethod
    def _decode(key: str, entry: object) -> dict[str, str]:
        if not isinstance(entry, dict):
            raise ConfigError(f"invalid auths entry for {key}")
        fields = {k: v for k, v in entry.items() if isinstance(v, str)}
        username, password = fields.get("username", ""), fields.get("password", "")
        if fields.get("auth"):
            username, password = decode_auth(fields["auth"])
        return {
            "username": username,
            "password": password,
            "email": fields.get("email", ""),
            "serveraddress": key,
            "identitytoken": fields.get("identitytoken", ""),
            "registrytoken": fields.get("registrytoken", ""),
        }

    def credentials(self, key: str) -> dict[str, str]:
        """The credentials stored for ``key`` (docker's file store ``Get``).

        An exact key first, then any key whose host[:port] is ``key``
        (``https://host:5000/`` for ``host:5000``); ``{}`` when none.
        """
        auths = self.auths()
        if key in auths:
            return self._decode(key, auths[key])
        for stored, entry in auths.items():
            if convert_to_hostname(stored) == key:
                return self._decode(stored, entry)
        return {}

    def store(self, server: str, username: str, password: str, identitytoken: str = "") -> bool:
        """Set the entry of ``server`` as docker writes it; False if it was already so."""
        entry: dict[str, object] = {}
        auth = encode_auth(username, password)
        if auth:
            entry["auth"] = auth
        if identitytoken:
            entry["identitytoken"] = identitytoken
        auths = self.data.get("auths")
        if not isinstance(auths, dict):
            auths = {}
            self.data["auths"] = auths
        if auths.get(server) == entry:
            return False
        auths[server] = entry
        return True

    def erase(self, server: str) -> bool:
        """Remove the entry of ``server``; False if there was none."""
        auths = self.auths()
        if server not in auths:
            return False
        del auths[server]
        return True

    def save(self) -> None:
        """Write the file atomically: a temporary file in the same directory, then rename.

        The directory is created 0700, a new file is 0600, an existing file
        keeps its mode; a symbolic link is followed, as docker does.

        Raises:
            OSError: the directory or file cannot be written.
        """
        import tempfile

        target = os.path.realpath(self.path)
        directory = os.path.dirname(target)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        text = json.dumps(self.data, indent="\t", ensure_ascii=False)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(target))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8", "surrogateescape"))
            try:
                mode = os.stat(target).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o600
            os.chmod(temp, mode)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise


def os_reason(exc: OSError) -> str:
    """The reason of an ``OSError`` as Go words it: ``no such file or directory``."""
    reason = exc.strerror or str(exc)
    return reason[:1].lower() + reason[1:]


def os_error(exc: OSError, path: str = "") -> str:
    """An ``OSError`` as Go words it: ``open PATH: no such file or directory``."""
    reason = os_reason(exc)
    name = path or exc.filename
    return f"open {name}: {reason}" if name else reason


def load_config(environ: Mapping[str, str], warn: Callable[[str], None]) -> ConfigFile:
    """The user's ``config.json`` for reading; a broken file is a warning and no credentials."""
    path = config_path(environ)
    try:
        return ConfigFile.load(path)
    except ConfigError as exc:
        warn(f"WARNING: Error {exc}")
        return ConfigFile(path)


def registry_auth_header(
    domain: str, environ: Mapping[str, str], warn: Callable[[str], None]
) -> str:
    """``X-Registry-Auth`` for a registry ``domain`` (``docker.io`` for Docker Hub)."""
    config = load_config(environ, warn)
    found = config.credentials(auth_config_key(domain))
    return encode_registry_auth(
        {
            "username": found.get("username", ""),
            "password": found.get("password", ""),
            "serveraddress": found.get("serveraddress", ""),
            "identitytoken": found.get("identitytoken", ""),
            "registrytoken": found.get("registrytoken", ""),
        }
    )
