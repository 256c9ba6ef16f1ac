"""Tests for supervisor.containers.runio (a run's stdio) and the run-independent parts
of supervisor.containers.wiring. The runtime side (create_process) runs in the
integration tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from supervisor.containers import runio, wiring
from supervisor.containers.handle import Handle, Output
from supervisor.containers.logs import OutputHub, read_entries
from supervisor.containers.state import Status
from supervisor.model import Container, ContainerId, ContainerState, ImageId
from supervisor.network.ports import PortBinding, Proto


def container(
    *,
    config: dict[str, Any] | None = None,
    host_config: dict[str, Any] | None = None,
    state: ContainerState | None = None,
) -> Container:
    return Container(
        id=ContainerId("c" * 64),
        name="web",
        created_ns=0,
        image_ref="busybox",
        image_id=ImageId("sha256:" + "0" * 64),
        config=config or {},
        host_config=host_config or {},
        path="httpd",
        args=(),
        state=state or ContainerState(),
    )


async def test_copy_output_copies_a_pipe_into_the_log_until_eof(tmp_path: Path) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    output = Output(stdout=read_end, stderr=-1, oomfd=None)
    writer = runio.log_writer(container(), tmp_path / "c-json.log", OutputHub())
    os.write(write_end, b"one\ntwo\n")
    os.close(write_end)
    try:
        await runio.copy_output(output, "stdout", writer)
    finally:
        writer.close()
        output.close()
    assert output.drained.is_set()
    assert [(e.stream, e.data) for e in read_entries(tmp_path / "c-json.log")] == [
        ("stdout", b"one\n"),
        ("stdout", b"two\n"),
    ]


@pytest.mark.parametrize(
    ("log_config", "max_size", "max_file"),
    [
        ({}, 0, 1),
        ({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "3"}}, 1000, 3),
        ({"Type": "none"}, 0, 1),
    ],
    ids=["default", "rotated", "none-driver"],
)
def test_log_writer_follows_log_config(
    tmp_path: Path, log_config: dict[str, Any], max_size: int, max_file: int
) -> None:
    c = container(host_config={"LogConfig": log_config})
    writer = runio.log_writer(c, tmp_path / "c-json.log", OutputHub())
    writer.close()
    assert (writer.max_size, writer.max_file) == (max_size, max_file)


def test_stdin_moves_to_the_handle_and_closes_once() -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    h = Handle(record=container())
    output = Output(stdout=read_end, stderr=-1, oomfd=None, stdin=write_end)
    runio.hand_over_stdin(h, output)
    assert (h.stdin_fd, output.stdin, h.console_fd) == (write_end, -1, -1)
    assert h.stdin_ready.is_set()
    assert not h.stdin_closed.is_set()
    runio.close_stdin(h)
    runio.close_stdin(h)
    assert h.stdin_fd == -1
    assert h.stdin_closed.is_set()
    assert os.read(read_end, 1) == b""  # the process would see end-of-file
    output.close()


def test_summary_ports_only_while_running() -> None:
    bound = (PortBinding(host_ip="0.0.0.0", host_port=8080, container_port=80, proto=Proto.TCP),)
    running = ContainerState(status=Status.RUNNING, ports=bound)
    exited = ContainerState(status=Status.EXITED, ports=bound)
    config: dict[str, Any] = {"ExposedPorts": {"80/tcp": {}}}
    assert wiring.summary_ports(container(config=config, state=running)) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}
    ]
    assert wiring.summary_ports(container(config=config, state=exited)) == [
        {"PrivatePort": 80, "Type": "tcp"}
    ]


def test_dns_names_are_the_name_and_short_id() -> None:
    assert wiring.dns_names(container()) == ["web", "c" * 12]
