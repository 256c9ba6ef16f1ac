"""Container lifecycle against a real berthd, runtime, overlay and cgroups."""

from __future__ import annotations

import time

import pytest

from tests.daemon import ApiError, Client

pytestmark = pytest.mark.root


def test_run_echo_exit_code_and_logs(api: Client) -> None:
    cid = api.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert api.wait(cid) == 3
    frames = api.logs(cid)
    assert (1, b"out\n") in frames
    assert (2, b"err\n") in frames
    info = api.inspect(cid)
    assert info["State"]["Status"] == "exited"
    assert info["State"]["ExitCode"] == 3
    assert info["State"]["Running"] is False
    api.call("DELETE", f"/containers/{cid}")


def test_logs_tail_and_timestamps(api: Client) -> None:
    cid = api.run(["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"])
    api.wait(cid)
    assert [p for _, p in api.logs(cid, tail=2)] == [b"line4\n", b"line5\n"]
    stamped = api.logs(cid, tail=1, timestamps=1)[0][1]
    assert stamped.endswith(b" line5\n") and stamped[:4].isdigit()
    api.call("DELETE", f"/containers/{cid}")


def test_start_twice_is_not_modified(api: Client) -> None:
    cid = api.run(["sleep", "30"])
    status, body = api.request("POST", f"/containers/{cid}/start")
    assert status == 304 and body == b""
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})


def test_stop_sends_sigterm_then_kill(api: Client) -> None:
    # sh as PID 1 ignores SIGTERM: stop must fall back to SIGKILL after the timeout.
    cid = api.run(["sh", "-c", "while true; do sleep 0.1; done"])
    started = time.monotonic()
    api.call("POST", f"/containers/{cid}/stop", params={"t": 1})
    assert time.monotonic() - started < 8
    info = api.inspect(cid)
    assert info["State"]["ExitCode"] == 137
    status, _ = api.request("POST", f"/containers/{cid}/stop")
    assert status == 304
    api.call("DELETE", f"/containers/{cid}")


def test_init_lets_pid1_handle_sigterm(api: Client) -> None:
    cid = api.run(["sleep", "30"], HostConfig={"Init": True})
    started = time.monotonic()
    api.call("POST", f"/containers/{cid}/stop", params={"t": 10})
    assert time.monotonic() - started < 5
    assert api.inspect(cid)["State"]["ExitCode"] == 143
    api.call("DELETE", f"/containers/{cid}")


def test_kill_with_signal(api: Client) -> None:
    cid = api.run(["sleep", "30"])
    api.call("POST", f"/containers/{cid}/kill", params={"signal": "SIGKILL"})
    assert api.wait(cid) == 137
    with pytest.raises(ApiError) as err:
        api.call("POST", f"/containers/{cid}/kill")
    assert err.value.status == 409
    api.call("DELETE", f"/containers/{cid}")


def test_remove_running_needs_force(api: Client) -> None:
    cid = api.run(["sleep", "30"], name="rm-running")
    with pytest.raises(ApiError) as err:
        api.call("DELETE", "/containers/rm-running")
    assert err.value.status == 409
    api.call("DELETE", "/containers/rm-running", params={"force": 1})
    with pytest.raises(ApiError) as err:
        api.inspect(cid)
    assert err.value.status == 404


def test_duplicate_name_conflicts(api: Client) -> None:
    api.create(cmd=["true"], name="dup")
    with pytest.raises(ApiError) as err:
        api.create(cmd=["true"], name="dup")
    assert err.value.status == 409
    assert "already in use" in err.value.message
    api.call("DELETE", "/containers/dup")


def test_unknown_image_and_container(api: Client) -> None:
    with pytest.raises(ApiError) as err:
        api.create(image="nosuchimage:1", cmd=["true"])
    assert err.value.status == 404
    assert err.value.message == "No such image: nosuchimage:1"
    for method, path in [
        ("GET", "/containers/nope/json"),
        ("POST", "/containers/nope/start"),
        ("DELETE", "/containers/nope"),
    ]:
        status, body = api.request(method, path)
        assert status == 404, (method, path)
        assert b"No such container: nope" in body


def test_bad_bodies_are_400_and_store_nothing(api: Client) -> None:
    before = len(api.call("GET", "/containers/json", params={"all": 1}))
    for raw in [
        b"{not json",
        b"[]",
        b'{"Image": "busybox", "Cmd": 5}',
        b'{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": "lots"}}',
    ]:
        status, body = api.request("POST", "/containers/create", raw=raw)
        assert status == 400, (raw, body)
        assert b'"message"' in body
    status, body = api.request(
        "POST",
        "/containers/create",
        {
            "Image": "busybox",
            "Cmd": ["true"],
            "HostConfig": {"RestartPolicy": {"Name": "sometimes"}},
        },
    )
    assert status == 400 and b"invalid restart policy" in body
    status, body = api.request(
        "POST",
        "/containers/create",
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 1024}},
    )
    assert status == 400 and b"Minimum memory limit" in body
    assert len(api.call("GET", "/containers/json", params={"all": 1})) == before


def test_exec_not_found_is_127(api: Client) -> None:
    cid = api.create(cmd=["/no/such/binary"])
    status, body = api.request("POST", f"/containers/{cid}/start")
    assert status == 400
    assert b"no such file or directory" in body or b"not found" in body
    info = api.inspect(cid)
    assert info["State"]["ExitCode"] == 127
    assert info["State"]["Status"] == "created"
    api.call("DELETE", f"/containers/{cid}")


def test_user_workdir_env_hostname(api: Client) -> None:
    cid = api.run(
        ["sh", "-c", 'echo "$(id -u):$(id -g) $(pwd) $FOO $(hostname)"'],
        User="nobody",
        WorkingDir="/tmp",
        Env=["FOO=bar"],
        Hostname="box",
    )
    assert api.wait(cid) == 0
    assert api.logs(cid) == [(1, b"65534:65534 /tmp bar box\n")]
    api.call("DELETE", f"/containers/{cid}")


def test_network_none_has_only_loopback(api: Client) -> None:
    cid = api.run(["sh", "-c", "ls /sys/class/net"], HostConfig={"NetworkMode": "none"})
    api.wait(cid)
    assert api.logs(cid) == [(1, b"lo\n")]
    api.call("DELETE", f"/containers/{cid}")


def test_auto_remove_removes_after_exit(api: Client) -> None:
    import threading

    cid = api.create(cmd=["sh", "-c", "exit 4"], HostConfig={"AutoRemove": True})
    result: list[int] = []
    waiter = threading.Thread(target=lambda: result.append(api.wait(cid, condition="removed")))
    waiter.start()
    time.sleep(0.2)  # let the wait register, as the docker CLI does before it starts
    api.call("POST", f"/containers/{cid}/start")
    waiter.join(timeout=20)
    assert result == [4]
    assert api.request("GET", f"/containers/{cid}/json")[0] == 404


def test_list_filters_and_prefix_lookup(api: Client) -> None:
    cid = api.run(["sleep", "30"], name="listed", Labels={"tier": "web"})
    running = api.call("GET", "/containers/json", params={"filters": '{"label": ["tier=web"]}'})
    assert [c["Id"] for c in running] == [cid]
    assert running[0]["Names"] == ["/listed"]
    assert running[0]["State"] == "running"
    assert running[0]["Status"].startswith("Up")
    assert api.inspect(cid[:10])["Id"] == cid
    api.call("DELETE", f"/containers/{cid}", params={"force": 1})
    status, _ = api.request("GET", "/containers/json", params={"filters": '{"bogus": ["x"]}'})
    assert status == 400


def test_pause_unpause_and_stop_paused(api: Client) -> None:
    cid = api.run(
        ["sh", "-c", "while true; do date +%s%N > /tmp/t; sleep 0.05; done"],
        HostConfig={"Init": True},
    )
    api.call("POST", f"/containers/{cid}/pause")
    assert api.inspect(cid)["State"]["Status"] == "paused"
    assert api.inspect(cid)["State"]["Paused"] is True
    status, _ = api.request("POST", f"/containers/{cid}/pause")
    assert status == 409
    api.call("POST", f"/containers/{cid}/unpause")
    assert api.inspect(cid)["State"]["Status"] == "running"
    api.call("POST", f"/containers/{cid}/pause")
    api.call("POST", f"/containers/{cid}/stop", params={"t": 2})
    assert api.inspect(cid)["State"]["Status"] == "exited"
    api.call("DELETE", f"/containers/{cid}")
