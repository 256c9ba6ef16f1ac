"""``cli.auth``: config.json in docker's format and the X-Registry-Auth header."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from cli.auth import (
    INDEX_SERVER,
    ConfigError,
    ConfigFile,
    auth_config_key,
    config_path,
    convert_to_hostname,
    decode_auth,
    encode_registry_auth,
    load_config,
    registry_auth_header,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_config_path_precedence() -> None:
    assert config_path({"BERTH_CONFIG": "/b", "DOCKER_CONFIG": "/d", "HOME": "/h"}) == (
        "/b/config.json"
    )
    assert config_path({"DOCKER_CONFIG": "/d", "HOME": "/h"}) == "/d/config.json"
    assert config_path({"HOME": "/h"}) == "/h/.docker/config.json"


def test_encode_registry_auth() -> None:
    assert encode_registry_auth({}) == "e30="
    value = encode_registry_auth(
        {"serveraddress": "r:5000", "password": "p&<>", "username": "u", "identitytoken": ""}
    )
    decoded = base64.urlsafe_b64decode(value).decode()
    # Go's encoding/json: field order of AuthConfig, HTML characters escaped.
    assert (
        decoded == '{"username":"u","password":"p\\u0026\\u003c\\u003e","serveraddress":"r:5000"}'
    )
    assert "+" not in encode_registry_auth({"password": "\xfb\xff"})  # base64url


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("localhost:5000", "localhost:5000"),
        ("https://localhost:5000", "localhost:5000"),
        ("http://reg.io/v2/", "reg.io"),
        ("https://user@reg.io:443/x?y", "reg.io:443"),
        ("https://[::1]:5000/", "[::1]:5000"),
        ("reg.io/some/path", "reg.io"),
        (INDEX_SERVER, "index.docker.io"),
    ],
)
def test_convert_to_hostname(address: str, host: str) -> None:
    assert convert_to_hostname(address) == host


def test_auth_config_key() -> None:
    assert auth_config_key("docker.io") == INDEX_SERVER
    assert auth_config_key("index.docker.io") == INDEX_SERVER
    assert auth_config_key("localhost:5000") == "localhost:5000"


def test_decode_auth() -> None:
    assert decode_auth(b64("bob:pa:ss")) == ("bob", "pa:ss")
    assert decode_auth("") == ("", "")
    with pytest.raises(ConfigError, match="Invalid auth configuration file"):
        decode_auth(b64("nouser"))
    with pytest.raises(ConfigError, match="illegal base64"):
        decode_auth("!!!")


def test_lookup_exact_then_by_hostname(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "https://reg.io": {"auth": b64("a:1")},
                    "reg.io": {"auth": b64("b:2")},
                    "http://other:5000/v1/": {"username": "c", "password": "3", "email": "e"},
                    INDEX_SERVER: {"auth": b64("hub:4"), "identitytoken": "tok"},
                }
            }
        )
    )
    config = ConfigFile.load(str(path))
    assert config.credentials("reg.io")["username"] == "b"  # the exact key wins
    found = config.credentials("other:5000")
    assert (found["username"], found["password"], found["serveraddress"]) == (
        "c",
        "3",
        "http://other:5000/v1/",
    )
    hub = config.credentials(INDEX_SERVER)
    assert (hub["username"], hub["identitytoken"]) == ("hub", "tok")
    assert config.credentials("docker.io") == {}  # no magic beyond docker's
    assert config.credentials("nowhere") == {}


def test_store_erase_save_keep_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"psFormat": "x", "auths": {"a": {"auth": b64("u:p")}}, "z": [1]}))
    os.chmod(path, 0o640)
    config = ConfigFile.load(str(path))
    assert config.store("b", "u2", "p2") is True
    assert config.store("b", "u2", "p2") is False  # unchanged: docker skips the write
    assert config.store("c", "u3", "", "token") is True
    assert config.erase("a") is True
    assert config.erase("a") is False
    config.save()
    assert json.loads(path.read_text()) == {
        "psFormat": "x",
        "auths": {"b": {"auth": b64("u2:p2")}, "c": {"auth": b64("u3:"), "identitytoken": "token"}},
        "z": [1],
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_save_creates_private_directory_and_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.json"
    config = ConfigFile.load(str(path))
    assert config.data == {}
    config.store(INDEX_SERVER, "u", "p")
    config.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == (
        '{\n\t"auths": {\n\t\t"https://index.docker.io/v1/": {\n\t\t\t"auth": "dTpw"\n\t\t}\n\t}\n}'
    )


def test_save_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "config.json"
    link.symlink_to(real)
    config = ConfigFile.load(str(link))
    config.store("r", "u", "p")
    config.save()
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"auths": {"r": {"auth": b64("u:p")}}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{oops", "parsing config file"),
        ("[1]", "not a JSON object"),
        ('{"auths": {"r": {"auth": "!!"}}}', "illegal base64"),
        ('{"auths": {"r": 3}}', "invalid auths entry for r"),
    ],
)
def test_broken_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ConfigFile.load(str(path))
    warnings: list[str] = []
    config = load_config({"BERTH_CONFIG": str(tmp_path)}, warnings.append)
    assert config.data == {}
    assert warnings[0].startswith("WARNING: Error ")


def test_registry_auth_header(tmp_path: Path) -> None:
    env = {"BERTH_CONFIG": str(tmp_path)}
    assert registry_auth_header("docker.io", env, print) == "e30="
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {INDEX_SERVER: {"auth": b64("u:p"), "email": "e@x"}}})
    )
    value = registry_auth_header("docker.io", env, print)
    assert json.loads(base64.urlsafe_b64decode(value)) == {
        "username": "u",
        "password": "p",
        "serveraddress": INDEX_SERVER,
    }
