"""``edgewatch demo``: the main job, as a user runs it, until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgewatch import procs
from edgewatch.broker import free_port
from tests.helpers import bearer_token, wait_for


@pytest.mark.e2e
@pytest.mark.parametrize("rtsp", [True, False], ids=["rtsp", "file-fallback"])
def test_demo_shows_an_event_with_snapshot_then_stops_cleanly(
    tmp_path: Path, assets: Path, rtsp: bool
) -> None:
    http = free_port()
    args = [
        "demo",
        "--assets",
        str(assets),
        "--workdir",
        str(tmp_path / "demo"),
        "--http-port",
        str(http),
        "--mqtt-port",
        str(free_port()),
    ]
    # One variant chooses the admin password, the other reads the random one it prints.
    env = {k: v for k, v in os.environ.items() if k != "EDGEWATCH_DEMO_PASSWORD"}
    if rtsp:
        env["EDGEWATCH_DEMO_PASSWORD"] = "chosen-demo-password"
    proc = subprocess.Popen(
        procs.edgewatch_cmd(*args, *([] if rtsp else ["--no-rtsp"])),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    t0 = time.monotonic()
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    base = f"http://127.0.0.1:{http}"

    def password() -> str | None:
        if rtsp:
            return (
                "chosen-demo-password"
                if any("EDGEWATCH_DEMO_PASSWORD" in x for x in lines)
                else None
            )
        for line in list(lines):
            if "admin password (random" in line:
                return line.rsplit(": ", 1)[1].strip()
        return None

    def events(headers: dict[str, str]) -> list[dict]:
        try:
            req = urllib.request.Request(f"{base}/api/v1/events", headers=headers)
            with urllib.request.urlopen(req, timeout=5) as r:
                return [e for e in json.load(r)["items"] if e["snapshot_url"]]
        except OSError:
            return []

    try:
        pw = wait_for(password, 60, what="the admin password line")
        wait_for(lambda: procs.wait_port(http, timeout=1), 60, what="the hub")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/api/v1/events", timeout=5)
        assert denied.value.code == 401
        auth = {"Authorization": f"Bearer {bearer_token(base, 'admin', pw)}"}
        found = wait_for(
            lambda: events(auth), 60, interval=1.0, what="a demo event with a snapshot"
        )
        took = time.monotonic() - t0
        req = urllib.request.Request(f"{base}{found[0]['snapshot_url']}", headers=auth)
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.read(3) == b"\xff\xd8\xff"
        if rtsp:
            _no_credentials_no_reading(lines, base)
            applied = _zone_change_runs_on_the_edge(base, auth)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert f"dashboard: {base}/ui" in out
    assert f"events:  http://127.0.0.1:{http}/api/v1/events" in out
    assert ("camera:  rtsp://" in out) == rtsp
    for name in ("edge worker", "hub", "broker"):
        assert f"{name} stopped" in out
    print(f"\ndemo ({'rtsp' if rtsp else 'file'}): first event with snapshot after {took:.1f} s")
    if rtsp:
        print(f"demo: a zone changed at the hub ran on the edge {applied:.1f} s after the PUT")


def _zone_change_runs_on_the_edge(base: str, auth: dict[str, str]) -> float:
    """Issue 19: the demo's camera is set up at the hub; a PUT changing its zone is what
    its edge runs (the version the edge reports equals the hub's) within 20 s."""

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {**auth, **({"Content-Type": "application/json"} if data else {})}
        method = "PUT" if data else "GET"
        req = urllib.request.Request(f"{base}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def camera() -> dict | None:
        items = call("/api/v1/cameras")["items"]
        return next((c for c in items if c["camera_id"] == "highway-1"), None)

    def running(version: str) -> dict | None:
        c = camera()
        return c if c and c["config_version"] == version == c["config_version_wanted"] else None

    cur = call("/api/v1/cameras/highway-1/config")
    wait_for(lambda: running(cur["config_version"]), 60, what="the demo camera on its config")
    cfg = cur["config"]
    cfg["analytics"][0]["zone"] = [[0.0, 0.3], [1.0, 0.3], [1.0, 1.0], [0.0, 1.0]]
    t0 = time.monotonic()
    saved = call(
        "/api/v1/cameras/highway-1/config",
        {"site": cur["site"], "edge_id": cur["edge_id"], "config": cfg, "comment": "lower road"},
    )
    assert saved["config_version"] != cur["config_version"]
    wait_for(lambda: running(saved["config_version"]), 20, interval=0.5, what="the new zone")
    return time.monotonic() - t0


def _no_credentials_no_reading(lines: list[str], base: str) -> None:
    """The broker the demo prints refuses a client without credentials, over TLS or not,
    and the reading it tried to publish never reaches the public flood feed."""
    import re

    from edgewatch import contract
    from edgewatch.mqtt import MqttSettings
    from tests.helpers import connect_code

    line = next(x for x in lines if x.startswith("[demo] broker:"))
    url, ca = re.search(r"(mqtts://\S+) \(TLS, CA (\S+?);", line).groups()  # type: ignore[union-attr]
    port = int(url.rsplit(":", 1)[1])
    assert connect_code(MqttSettings(url=url, tls={"ca_file": ca}), "intruder") not in (0, -1)
    assert connect_code(MqttSettings(url=f"mqtt://127.0.0.1:{port}"), "intruder") != 0
    # publishing without a CONNACK is all such a client can try; the feed must not move
    reading = {
        "schema_version": 1, "hotspot_id": "hue-001", "camera_id": "flood-001",
        "analytic": "river", "setup": "gauge", "time": "2027-12-01T00:00:00+00:00",
        "state": "normal", "level_state": "normal", "level_cm": 10.0, "period_s": 60,
    }  # fmt: skip
    settings = MqttSettings(url=url, tls={"ca_file": ca})
    from edgewatch.mqtt import make_client

    c = make_client(settings, "intruder", clean_session=True)
    try:
        c.connect(settings.host, settings.port, keepalive=10)
        c.loop_start()
        c.publish(contract.hotspot_topic("hue", "edge-01", "hue-001"), json.dumps(reading), qos=1)
        time.sleep(2)
    except OSError:
        pass
    finally:
        c.loop_stop()
    with urllib.request.urlopen(f"{base}/api/v1/hotspots", timeout=5) as r:
        feed = json.load(r)
    props = next(f["properties"] for f in feed["features"] if f["id"] == "hue-001")
    assert props["state"] == "unknown" and props["reason"] == "no_reading", props
