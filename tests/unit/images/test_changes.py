"""Tests for supervisor.images.changes: ``import --change`` instructions on a run config."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images.changes import ALLOWED, apply_changes

BASE: dict[str, Any] = {
    "Env": ["PATH=/usr/bin:/bin", "A=1", "B=2"],
    "Cmd": ["sh"],
    "Labels": {"keep": "me"},
    "ExposedPorts": {"22/tcp": {}},
    "Volumes": {"/data": {}},
}


@pytest.mark.parametrize(
    ("change", "key", "value"),
    [
        ("CMD echo hi", "Cmd", ["/bin/sh", "-c", "echo hi"]),
        ('CMD ["echo", "hi"]', "Cmd", ["echo", "hi"]),
        ("CMD [not json", "Cmd", ["/bin/sh", "-c", "[not json"]),
        ('CMD ["a", 1]', "Cmd", ["/bin/sh", "-c", '["a", 1]']),
        ("cmd  spaced   out ", "Cmd", ["/bin/sh", "-c", "spaced   out"]),
        ("ENTRYPOINT /entry.sh", "Entrypoint", ["/bin/sh", "-c", "/entry.sh"]),
        ('ENTRYPOINT ["/entry.sh", "--x"]', "Entrypoint", ["/entry.sh", "--x"]),
        ("USER app:app", "User", "app:app"),
        ("WORKDIR /srv/app", "WorkingDir", "/srv/app"),
        ("STOPSIGNAL SIGINT", "StopSignal", "SIGINT"),
        ("ONBUILD RUN make", "OnBuild", ["RUN make"]),
    ],
    ids=[
        "cmd-shell",
        "cmd-exec",
        "cmd-bad-json",
        "cmd-non-string-json",
        "lowercase-instruction",
        "entrypoint-shell",
        "entrypoint-exec",
        "user",
        "workdir",
        "stopsignal",
        "onbuild",
    ],
)
def test_apply_changes_scalar_instruction_sets_key(change: str, key: str, value: object) -> None:
    assert apply_changes(BASE, [change])[key] == value


@pytest.mark.parametrize(
    ("change", "env"),
    [
        ("ENV C=3", ["PATH=/usr/bin:/bin", "A=1", "B=2", "C=3"]),
        ("ENV A=9", ["PATH=/usr/bin:/bin", "A=9", "B=2"]),
        ("ENV A=9 C=3", ["PATH=/usr/bin:/bin", "A=9", "B=2", "C=3"]),
        ('ENV C="x y" D=', ["PATH=/usr/bin:/bin", "A=1", "B=2", "C=x y", "D="]),
        ("ENV C value with  spaces", ["PATH=/usr/bin:/bin", "A=1", "B=2", "C=value with  spaces"]),
        ("ENV A\tnew", ["PATH=/usr/bin:/bin", "A=new", "B=2"]),
        ("ENV PATH=/opt/bin", ["PATH=/opt/bin", "A=1", "B=2"]),
    ],
    ids=[
        "add",
        "replace-in-place",
        "replace-and-add",
        "quoted-and-empty",
        "legacy-form",
        "legacy-tab",
        "path",
    ],
)
def test_apply_changes_env_replaces_in_place_or_appends(change: str, env: list[str]) -> None:
    assert apply_changes(BASE, [change])["Env"] == env


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ENV =x", "ENV names can not be blank"),
        ("ENV A=1 B", "ENV requires key=value: B"),
        ("ENV A", "ENV must have two arguments"),
        ("LABEL lonely", "LABEL must have two arguments"),
        ('ENV A="unclosed', "ENV: No closing quotation"),
        ("LABEL =v", "LABEL names can not be blank"),
    ],
    ids=[
        "env-blank-name",
        "env-mixed-forms",
        "env-one-word",
        "label-one-word",
        "env-bad-quote",
        "label-blank",
    ],
)
def test_apply_changes_bad_key_value_raises_invalid(change: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        apply_changes(BASE, [change])
    assert str(info.value) == message


def test_apply_changes_label_merges_into_labels() -> None:
    out = apply_changes(BASE, ['LABEL a=b "c d"=e keep=new'])
    assert out["Labels"] == {"keep": "new", "a": "b", "c d": "e"}


def test_apply_changes_label_legacy_form() -> None:
    assert apply_changes({}, ["LABEL version 1.0 beta"])["Labels"] == {"version": "1.0 beta"}


def test_apply_changes_expose_defaults_to_tcp_and_keeps_existing() -> None:
    out = apply_changes(BASE, ["EXPOSE 80 53/udp 443/tcp"])
    assert out["ExposedPorts"] == {"22/tcp": {}, "80/tcp": {}, "53/udp": {}, "443/tcp": {}}


@pytest.mark.parametrize(
    ("change", "volumes"),
    [
        ("VOLUME /a /b", {"/data": {}, "/a": {}, "/b": {}}),
        ('VOLUME ["/c", "/d e"]', {"/data": {}, "/c": {}, "/d e": {}}),
    ],
    ids=["words", "json"],
)
def test_apply_changes_volume_adds_volumes(
    change: str, volumes: dict[str, dict[str, object]]
) -> None:
    assert apply_changes(BASE, [change])["Volumes"] == volumes


def test_apply_changes_onbuild_appends() -> None:
    out = apply_changes({"OnBuild": ["RUN a"]}, ["ONBUILD RUN b", "onbuild COPY . /x"])
    assert out["OnBuild"] == ["RUN a", "RUN b", "COPY . /x"]


def test_apply_changes_later_change_wins() -> None:
    assert apply_changes(BASE, ["USER a", "USER b", "CMD x", "CMD y"])["User"] == "b"
    assert apply_changes(BASE, ["CMD x", "CMD y"])["Cmd"] == ["/bin/sh", "-c", "y"]


def test_apply_changes_blank_changes_are_skipped() -> None:
    assert apply_changes(BASE, ["", "   "]) == BASE


def test_apply_changes_does_not_modify_input() -> None:
    before = copy.deepcopy(BASE)
    out = apply_changes(BASE, ["ENV A=0", "LABEL x=y", "EXPOSE 1", "VOLUME /v", "ONBUILD RUN z"])
    assert before == BASE
    assert out is not BASE
    assert out["Env"] is not BASE["Env"]


def test_apply_changes_empty_config_gains_keys() -> None:
    out = apply_changes({}, ["ENV A=1", "EXPOSE 80", "VOLUME /v", "LABEL a=b"])
    assert out == {
        "Env": ["A=1"],
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/v": {}},
        "Labels": {"a": "b"},
    }


@pytest.mark.parametrize(
    "change",
    ["RUN echo hi", "FROM busybox", "COPY . /", "ADD x /", "ARG A=1", 'SHELL ["bash"]', "BOGUS x"],
    ids=["run", "from", "copy", "add", "arg", "shell", "bogus"],
)
def test_apply_changes_disallowed_instruction_raises_docker_message(change: str) -> None:
    word = change.split()[0]
    with pytest.raises(InvalidArgument) as info:
        apply_changes(BASE, [change])
    assert str(info.value) == f"{word} is not a valid change command"


def test_allowed_instructions_are_dockers_import_set() -> None:
    assert set(ALLOWED) == {
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "LABEL",
        "ONBUILD",
        "USER",
        "VOLUME",
        "WORKDIR",
        "STOPSIGNAL",
    }
