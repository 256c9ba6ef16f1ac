"""Restart policies with Docker's back-off, and stop cancelling a pending restart."""

from __future__ import annotations

import time

import pytest

from tests.daemon import Client

pytestmark = pytest.mark.root


def test_on_failure_with_max_retries(api: Client) -> None:
    cid = api.run(
        ["sh", "-c", "exit 2"],
        HostConfig={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
    )
    info = api.wait_for(cid, lambda i: i["RestartCount"] == 2 and i["State"]["Status"] == "exited")
    assert info["State"]["ExitCode"] == 2
    time.sleep(0.5)
    assert api.inspect(cid)["RestartCount"] == 2
    starts = list(
        api.events(
            since=0,
            until=int(time.time()) + 1,
            filters=f'{{"container": ["{cid}"], "event": ["start"]}}',
        )
    )
    assert len(starts) == 3
    api.call("DELETE", f"/containers/{cid}")


def test_on_failure_does_not_restart_success(api: Client) -> None:
    cid = api.run(["true"], HostConfig={"RestartPolicy": {"Name": "on-failure"}})
    api.wait(cid)
    time.sleep(0.4)
    info = api.inspect(cid)
    assert info["RestartCount"] == 0 and info["State"]["Status"] == "exited"
    api.call("DELETE", f"/containers/{cid}")


def test_always_restarts_with_backoff_and_stop_cancels(api: Client) -> None:
    cid = api.run(
        ["sh", "-c", "echo run; exit 0"], HostConfig={"RestartPolicy": {"Name": "always"}}
    )
    api.wait_for(cid, lambda i: i["RestartCount"] >= 3)
    api.call("POST", f"/containers/{cid}/stop", params={"t": 1})
    info = api.inspect(cid)
    assert info["State"]["Status"] == "exited"
    count = info["RestartCount"]
    time.sleep(1.0)
    assert api.inspect(cid)["RestartCount"] == count  # no restart after a manual stop
    api.call("DELETE", f"/containers/{cid}")


def test_user_bounded_backoff(api: Client) -> None:
    # --restart-delay 300ms --restart-max-delay 300ms: constant 300 ms between runs.
    cid = api.run(
        ["true"],
        HostConfig={
            "RestartPolicy": {"Name": "always", "Delay": 300_000_000, "MaxDelay": 300_000_000}
        },
    )
    started = time.monotonic()
    api.wait_for(cid, lambda i: i["RestartCount"] >= 3)
    elapsed = time.monotonic() - started
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    assert elapsed >= 0.85  # three back-offs of 300 ms
    hc = {"Name": "always", "MaximumRetryCount": 0, "Delay": 300_000_000, "MaxDelay": 300_000_000}
    assert hc  # shape documented in inspect (checked in the unit tests)
