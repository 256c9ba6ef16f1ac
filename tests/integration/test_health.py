"""Health checks against a real berthd: probes run as execs inside real containers,
State.Health, the ps status and filter, health_status events, and
--health-on-failure acting through the restart policy — observed through the
persistent event stream (``/events?since=``), never by sleeping."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import Client, Daemon, UnixHTTPConnection, env_with_host

pytestmark = pytest.mark.root

BERTH = str(Path(sys.executable).with_name("berth"))
MS = 1_000_000
FAST = {"Interval": 100 * MS, "Timeout": 2_000 * MS}  # probes every 100 ms


def follow_events(
    api: Client,
    since: float,
    cid: str,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """The container's events since ``since``, replayed and then followed live until
    ``done(events so far)`` (``timeout`` only bounds a hung daemon)."""
    query = urllib.parse.urlencode(
        {"since": f"{since:.9f}", "filters": json.dumps({"container": [cid]})}
    )
    conn = UnixHTTPConnection(api.socket_path, timeout=timeout)
    conn.request("GET", f"/events?{query}")
    resp = conn.getresponse()
    assert resp.status == 200
    events: list[dict[str, Any]] = []
    try:
        while not done(events):
            line = resp.readline()
            if not line:
                raise AssertionError(f"event stream ended; so far: {actions(events)}")
            if line.strip():
                events.append(json.loads(line))
    except (TimeoutError, http.client.HTTPException) as exc:
        raise AssertionError(f"no more events; so far: {actions(events)}") from exc
    finally:
        conn.close()
    return events


def actions(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["Action"]) for e in events]


def seen(*wanted: str) -> Callable[[list[dict[str, Any]]], bool]:
    """``done`` for :func:`follow_events`: every action in ``wanted`` has happened, in order."""

    def done(events: list[dict[str, Any]]) -> bool:
        it = iter(actions(events))
        return all(any(a == w for a in it) for w in wanted)

    return done


def listed(api: Client, health: str) -> list[dict[str, Any]]:
    result = api.call(
        "GET", "/containers/json", params={"all": 1, "filters": json.dumps({"health": [health]})}
    )
    assert isinstance(result, list)
    return result


def test_healthy_container(api: Client) -> None:
    since = time.time()
    cid = api.run(
        ["sleep", "300"],
        Healthcheck={"Test": ["CMD-SHELL", "echo fine; exit 0"], **FAST},
    )
    events = follow_events(api, since, cid, seen("start", "health_status: healthy"))
    assert "health_status: unhealthy" not in actions(events)
    info = api.inspect(cid)
    health = info["State"]["Health"]
    assert health["Status"] == "healthy" and health["FailingStreak"] == 0
    assert health["Log"][-1]["ExitCode"] == 0 and health["Log"][-1]["Output"] == "fine\n"
    assert health["Log"][-1]["Start"] <= health["Log"][-1]["End"]
    assert info["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "echo fine; exit 0"]
    (row,) = [c for c in listed(api, "healthy") if c["Id"] == cid]
    assert row["Status"].startswith("Up ") and row["Status"].endswith(" (healthy)")
    assert cid not in [c["Id"] for c in listed(api, "none")]
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_unhealthy_container_emits_health_status_unhealthy(api: Client) -> None:
    since = time.time()
    cid = api.run(
        ["sleep", "300"],
        Healthcheck={"Test": ["CMD", "sh", "-c", "echo sick >&2; exit 1"], "Retries": 2, **FAST},
    )
    events = follow_events(api, since, cid, seen("health_status: unhealthy"))
    assert "health_status: healthy" not in actions(events)
    unhealthy = events[-1]
    assert unhealthy["Type"] == "container" and unhealthy["status"] == "health_status: unhealthy"
    health = api.inspect(cid)["State"]["Health"]
    assert health["Status"] == "unhealthy" and health["FailingStreak"] >= 2
    assert {e["ExitCode"] for e in health["Log"]} == {1}
    assert health["Log"][-1]["Output"] == "sick\n"
    assert 1 <= len(health["Log"]) <= 5
    assert cid in [c["Id"] for c in listed(api, "unhealthy")]
    assert api.inspect(cid)["State"]["Status"] == "running"  # no action by default
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_probe_that_hangs_is_killed_at_its_timeout(api: Client) -> None:
    since = time.time()
    cid = api.run(
        ["sleep", "300"],
        Healthcheck={
            "Test": ["CMD-SHELL", "sleep 60"],
            "Interval": 100 * MS,
            "Timeout": 300 * MS,
            "Retries": 1,
        },
    )
    follow_events(api, since, cid, seen("health_status: unhealthy"))
    log = api.inspect(cid)["State"]["Health"]["Log"]
    assert log[-1]["ExitCode"] == -1
    assert log[-1]["Output"] == "Health check exceeded timeout (300ms)"
    status, payload = api.request("GET", f"/containers/{cid}/top", params={"ps_args": "-ef"})
    assert status == 200, payload
    hung = [p for p in json.loads(payload)["Processes"] if "sleep 60" in " ".join(p)]
    assert len(hung) <= 1  # timed-out probes are killed, not piled up
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_no_healthcheck_and_stopped_container(api: Client) -> None:
    plain = api.run(["sleep", "300"])
    assert "Health" not in api.inspect(plain)["State"]
    disabled = api.run(["sleep", "300"], Healthcheck={"Test": ["NONE"]})
    assert "Health" not in api.inspect(disabled)["State"]
    none = [c["Id"] for c in listed(api, "none")]
    assert plain in none and disabled in none
    since = time.time()
    checked = api.run(["sleep", "300"], Healthcheck={"Test": ["CMD", "true"], **FAST})
    follow_events(api, since, checked, seen("health_status: healthy"))
    api.call("POST", f"/containers/{checked}/stop", params={"t": 0})
    # Docker: the stopped monitor leaves "unhealthy", without an event
    assert api.inspect(checked)["State"]["Health"]["Status"] == "unhealthy"
    for cid in (plain, disabled, checked):
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_bad_health_settings_are_refused(api: Client) -> None:
    for body, message in [
        ({"Healthcheck": {"Interval": 10}}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"Retries": -1}}, "Retries in Healthcheck cannot be negative"),
        ({"HostConfig": {"HealthOnFailure": "explode"}}, "invalid health-on-failure action"),
    ]:
        status, payload = api.request(
            "POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], **body}
        )
        assert status == 400 and message in json.loads(payload)["message"]


# A container that is unhealthy in its first run only: the probe looks for a file that
# the command creates when it finds the marker a previous run left in its upper dir.
FLIP = ["sh", "-c", "[ -e /ran-before ] && touch /healthy; touch /ran-before; exec sleep 300"]
FLIP_CHECK = {"Test": ["CMD", "test", "-e", "/healthy"], "Retries": 1, **FAST}


def test_health_on_failure_restart_goes_through_the_restart_policy(api: Client) -> None:
    since = time.time()
    cid = api.run(
        FLIP,
        Healthcheck=FLIP_CHECK,
        StopTimeout=1,  # sleep as PID 1 ignores SIGTERM
        HostConfig={
            "HealthOnFailure": "restart",
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
        },
    )
    events = follow_events(
        api,
        since,
        cid,
        seen("start", "health_status: unhealthy", "die", "start", "health_status: healthy"),
    )
    sequence = actions(events)
    first_die = sequence.index("die")
    assert "restart" in sequence[first_die:]  # a restart by the policy, not a new create
    assert events[first_die]["Actor"]["Attributes"]["exitCode"] != "0"
    info = api.inspect(cid)
    assert info["RestartCount"] == 1
    assert info["State"]["Status"] == "running"
    assert info["State"]["Health"]["Status"] == "healthy"
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_health_on_failure_restart_without_policy_still_restarts(api: Client) -> None:
    since = time.time()
    cid = api.run(
        FLIP,
        Healthcheck=FLIP_CHECK,
        StopTimeout=1,
        Labels={"berth.health-on-failure": "restart"},  # what the docker CLI can send
    )
    follow_events(
        api, since, cid, seen("health_status: unhealthy", "die", "start", "health_status: healthy")
    )
    assert api.inspect(cid)["RestartCount"] == 1
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


@pytest.mark.parametrize("action", ["stop", "kill"])
def test_health_on_failure_stop_and_kill_keep_it_down(api: Client, action: str) -> None:
    since = time.time()
    cid = api.run(
        ["sleep", "300"],
        Healthcheck={"Test": ["CMD", "false"], "Retries": 1, **FAST},
        StopTimeout=1,
        HostConfig={"HealthOnFailure": action, "RestartPolicy": {"Name": "always"}},
    )
    events = follow_events(api, since, cid, seen("health_status: unhealthy", "die"))
    assert api.wait(cid) != 0
    info = api.inspect(cid)
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == 0
    kills = [e["Actor"]["Attributes"]["signal"] for e in events if e["Action"] == "kill"]
    assert kills[0] == ("9" if action == "kill" else "15")  # stop: SIGTERM, then SIGKILL
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_berth_cli_health_flags(api: Client, daemon: Daemon) -> None:
    env = env_with_host(daemon)

    def berth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BERTH, *args], env=env, capture_output=True, text=True, timeout=30, check=False
        )

    since = time.time()
    run = berth(
        "run", "-d", "--health-cmd", "echo ok", "--health-interval", "100ms",
        "--health-retries", "2", "--health-on-failure", "stop", "busybox", "sleep", "300",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    follow_events(api, since, cid, seen("health_status: healthy"))
    ps = berth("ps", "--filter", "health=healthy", "--format", "{{.ID}} {{.Status}}")
    assert ps.returncode == 0, ps.stderr
    (line,) = [row for row in ps.stdout.splitlines() if row.startswith(cid[:12])]
    assert line.endswith("(healthy)")
    info = api.inspect(cid)
    assert info["HostConfig"]["HealthOnFailure"] == "stop"
    assert info["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "echo ok"],
        "Interval": 100 * MS,
        "Retries": 2,
    }
    bad = berth("run", "-d", "--health-on-failure", "stop", "busybox", "true")
    assert bad.returncode == 125 and "without a health check" in bad.stderr
    conflict = berth("run", "--no-healthcheck", "--health-retries", "1", "busybox", "true")
    assert conflict.returncode != 0
    assert "--no-healthcheck conflicts with --health-* options" in conflict.stderr
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_daemon_restart_starts_health_over(fresh_daemon: Daemon) -> None:
    """Health lives in memory: after a crash a re-adopted container is probed again
    from "starting" (Docker's restore does the same), so a second "healthy" event comes;
    a stopped one shows the "unhealthy" its stopped probes left."""
    api = fresh_daemon.client
    check = {"Test": ["CMD", "true"], "Interval": 3_600_000 * MS, "StartInterval": 100 * MS}
    since = time.time()
    running = api.run(["sleep", "300"], Healthcheck={**check, "StartPeriod": 600_000 * MS})
    stopped = api.run(["sleep", "300"], Healthcheck={"Test": ["CMD", "true"], **FAST})
    follow_events(api, since, running, seen("health_status: healthy"))
    follow_events(api, since, stopped, seen("health_status: healthy"))
    api.call("POST", f"/containers/{stopped}/stop", params={"t": 0})
    fresh_daemon.kill9()
    fresh_daemon.start()
    events = follow_events(
        api, since, running, seen("health_status: healthy", "health_status: healthy")
    )
    assert "health_status: unhealthy" not in actions(events)
    assert api.inspect(running)["State"]["Health"]["Status"] == "healthy"
    assert api.inspect(stopped)["State"]["Health"] == {
        "Status": "unhealthy",
        "FailingStreak": 0,
        "Log": [],
    }
    for cid in (running, stopped):
        api.call("DELETE", f"/containers/{cid}", params={"force": 1})
