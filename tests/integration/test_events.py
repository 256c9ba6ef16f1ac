"""The durable event stream: replay with since/until, filters, live follow."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.daemon import Client

pytestmark = pytest.mark.root


def test_lifecycle_events_in_order(api: Client) -> None:
    since = time.time()
    cid = api.run(["sh", "-c", "exit 5"], name="ev-order", Labels={"team": "a"})
    api.wait(cid)
    api.call("DELETE", f"/containers/{cid}")
    events = api.events(
        since=f"{since:.9f}",
        until=f"{time.time() + 1:.9f}",
        filters=json.dumps({"container": [cid]}),
    )
    assert [e["Action"] for e in events] == ["create", "start", "die", "destroy"]
    die = events[2]
    assert die["Actor"]["Attributes"]["exitCode"] == "5"
    assert die["Actor"]["Attributes"]["name"] == "ev-order"
    assert die["Actor"]["Attributes"]["team"] == "a"
    assert die["Type"] == "container" and die["status"] == "die" and die["id"] == cid
    assert die["from"] == "busybox"


def test_filters_by_type_event_and_label(api: Client) -> None:
    since = time.time()
    cid = api.run(["true"], Labels={"pick": "me"})
    api.wait(cid)
    api.call("DELETE", f"/containers/{cid}")
    until = f"{time.time() + 1:.9f}"
    starts = api.events(
        since=f"{since:.9f}",
        until=until,
        filters=json.dumps({"event": ["start"], "label": ["pick=me"]}),
    )
    assert [e["id"] for e in starts] == [cid]
    images = api.events(since=f"{since:.9f}", until=until, filters=json.dumps({"type": ["image"]}))
    assert images == []
    status, _ = api.request("GET", "/events", params={"filters": json.dumps({"nonsense": ["x"]})})
    assert status == 400


def test_follow_receives_live_events(api: Client) -> None:
    received: list[dict[str, object]] = []
    done = threading.Event()

    def follow() -> None:
        s = socket.socket(socket.AF_UNIX)
        s.connect(api.socket_path)
        s.settimeout(20)
        s.sendall(
            b"GET /events?filters=%7B%22event%22%3A%5B%22die%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        buf = b""
        while not done.is_set():
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buf += chunk
            for line in buf.split(b"\n"):
                line = line.strip()
                if line.startswith(b"{"):
                    try:
                        received.append(json.loads(line))
                        done.set()
                    except ValueError:
                        pass
        s.close()

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.3)
    cid = api.run(["true"])
    api.wait(cid)
    t.join(timeout=20)
    assert received and received[0]["id"] == cid and received[0]["Action"] == "die"
    api.call("DELETE", f"/containers/{cid}")


def test_image_events(api: Client) -> None:
    since = time.time()
    api.call("POST", "/images/busybox/tag", params={"repo": "evtest", "tag": "v1"})
    api.call("DELETE", "/images/evtest:v1")
    events = api.events(
        since=f"{since:.9f}",
        until=f"{time.time() + 1:.9f}",
        filters=json.dumps({"type": ["image"]}),
    )
    assert [e["Action"] for e in events] == ["tag", "untag"]
    assert events[0]["Actor"]["Attributes"]["name"] == "evtest:v1"
