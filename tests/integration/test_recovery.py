"""Daemon restarts: graceful stop leaves nothing behind, kill -9 is survived, events persist."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.daemon import Daemon

pytestmark = pytest.mark.root


def test_sigterm_stops_containers_and_leaves_no_state(fresh_daemon: Daemon) -> None:
    api = fresh_daemon.client
    cid = api.run(["sleep", "300"], HostConfig={"Init": True})
    pid = api.inspect(cid)["State"]["Pid"]
    assert fresh_daemon.stop() == 0
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert fresh_daemon.leftovers() == []
    assert not fresh_daemon.socket.exists()
    for runtime in ("crun", "runc"):
        runtime_state = fresh_daemon.exec_root / "runtime" / runtime
        assert not runtime_state.exists() or list(runtime_state.iterdir()) == []
    fresh_daemon.start()
    info = api.inspect(cid)
    assert info["State"]["Status"] == "exited"


def test_restart_policies_apply_after_daemon_restart(fresh_daemon: Daemon) -> None:
    api = fresh_daemon.client
    always = api.run(
        ["sleep", "300"],
        name="always",
        HostConfig={"RestartPolicy": {"Name": "always"}, "Init": True},
    )
    unless = api.run(
        ["sleep", "300"],
        name="unless",
        HostConfig={"RestartPolicy": {"Name": "unless-stopped"}, "Init": True},
    )
    plain = api.run(["sleep", "300"], name="plain", HostConfig={"Init": True})
    api.call("POST", "/containers/unless/stop")
    fresh_daemon.stop()
    fresh_daemon.start()
    assert api.inspect(always)["State"]["Status"] == "running"
    assert api.inspect(unless)["State"]["Status"] == "exited"
    assert api.inspect(plain)["State"]["Status"] == "exited"
    api.call("DELETE", "/containers/always", params={"force": 1})


def test_kill9_readopts_running_containers_and_keeps_events(fresh_daemon: Daemon) -> None:
    api = fresh_daemon.client
    cid = api.run(["sleep", "300"], name="survivor", HostConfig={"Init": True})
    pid = api.inspect(cid)["State"]["Pid"]
    before = api.events(since=0, until=int(time.time()) + 1)
    fresh_daemon.kill9()
    assert os.path.exists(f"/proc/{pid}")
    fresh_daemon.start()
    info = api.inspect(cid)
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pid
    # The events from before the crash are all still there, in order.
    after = api.events(since=0, until=int(time.time()) + 1)
    assert [e["timeNano"] for e in after[: len(before)]] == [e["timeNano"] for e in before]
    # The adopted container can still be stopped through its pidfd.
    api.call("POST", f"/containers/{cid}/stop", params={"t": 5})
    state = api.inspect(cid)["State"]
    assert state["Status"] == "exited"
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    api.call("DELETE", f"/containers/{cid}")


def test_container_dead_while_daemon_down_is_recorded_255(fresh_daemon: Daemon) -> None:
    api = fresh_daemon.client
    cid = api.run(["sleep", "300"], name="victim", HostConfig={"Init": True})
    pid = api.inspect(cid)["State"]["Pid"]
    fresh_daemon.kill9()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh_daemon.start()
    state = api.inspect(cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 255
    dies = api.events(
        since=0, until=int(time.time()) + 1, filters='{"event": ["die"], "container": ["victim"]}'
    )
    assert dies[-1]["Actor"]["Attributes"]["exitCode"] == "255"
    api.call("DELETE", f"/containers/{cid}")
