"""The operations-centre dashboard in headless Chromium, on real parts: mosquitto, the hub
process, alerts published to the broker as an edge publishes them.

Measures alert-to-screen latency: from just before the MQTT publish to the moment the
page put the row on screen (the row's ``data-shown-at``, the browser's clock; same
machine, same clock). Screenshots of every page go to test-artifacts/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.events.evidence import PacketRing, TrackHistory, assemble
from edgewatch import contract
from tests.helpers import Hub, Mosquitto, bearer_token, ensure_user, wait_for
from tests.test_evidence import T0, fill
from tests.test_flood import reading

ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
SITE, EDGE = "hue", "edge-ioc"
USERS = {"olivia": ("operator", "operator-password-1"), "victor": ("viewer", "viewer-password-1")}



@pytest.fixture(scope="module")
def mosquitto(own_broker: Mosquitto) -> Mosquitto:
    """This module's hubs count every message and alert they get: a broker of its own."""
    return own_broker

@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, assets: Path, h264_video: Path
):
    tmp = tmp_path_factory.mktemp("dashboard")
    uid = uuid.uuid4().hex[:8]
    db = f"sqlite:///{tmp / 'hub.sqlite3'}"
    hub = Hub(
        tmp,
        db,
        mosquitto,
        f"hub-{uid}",
        extra={
            "hotspots_file": str(Path("configs/hotspots.geojson").resolve()),
            "alerts": {"camera_offline_grace_s": 3},
        },
    )
    for name, (role, pw) in USERS.items():
        ensure_user(db, name, role, pw)
    hub.start()
    pub = mosquitto.client(EDGE, "edge", site=SITE)
    cap = cv2.VideoCapture(str(assets / "video/highway_cctv_320x240.avi"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    ring = PacketRing(seconds=30)
    fill(ring, h264_video, limit_s=12)
    hist = TrackHistory()
    for k in range(100):
        hist.add(T0 + k * 0.1, np.array([5]), np.array([[150, 120, 200, 170]], np.float32))
    package = assemble(
        tmp / "evidence", ring, hist, track_id=5, t=T0 + 6.0, frame_wh=(320, 240),
        metadata={"rule": "red_light"}, lines=[((0.3, 0.6), (1.0, 0.6))], pre_s=2, post_s=2,
    )  # fmt: skip
    # the box configs/hotspots.geojson links hue-001 to (hue/edge-01, camera flood-001)
    flood_pub = mosquitto.client("edge-01", "edge", site="hue")
    yield {
        "hub": hub,
        "pub": pub,
        "flood_pub": flood_pub,
        "jpeg": jpeg,
        "base": f"http://127.0.0.1:{hub.port}",
        "package": package,
    }
    pub.loop_stop()
    pub.disconnect()
    flood_pub.loop_stop()
    flood_pub.disconnect()
    hub.stop()


def publish_alert(w: dict, kind: str, label: str, camera: str = "cam-1", **attrs: Any) -> str:
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    snap_topic = contract.snapshot_topic(SITE, EDGE, str(event_id))
    msg = contract.EventMessage(
        id=event_id,
        type="new",
        seq=0,
        kind=kind,
        analytic="test",
        label=label,
        site=SITE,
        edge_id=EDGE,
        camera_id=camera,
        start_time=now,
        frame_time=now,
        score=0.87,
        box=(0.2, 0.3, 0.5, 0.7),
        zone="junction-north",
        location=contract.Location(lat=16.4637, lon=107.5909),
        snapshot=contract.SnapshotRef(
            topic=snap_topic,
            sha256=hashlib.sha256(w["jpeg"]).hexdigest(),
            bytes=len(w["jpeg"]),
        ),
        attributes=attrs,
    )
    w["pub"].publish(snap_topic, w["jpeg"], qos=1).wait_for_publish(5)
    topic = contract.events_topic(SITE, EDGE)
    w["pub"].publish(topic, msg.model_dump_json().encode(), qos=1).wait_for_publish(5)
    return str(event_id)


def publish_update(w: dict, event_id: str, attrs: dict[str, Any]) -> None:
    """The violation's ``update`` (seq 1), as the edge sends it when the evidence is done."""
    now = datetime.now(UTC)
    msg = contract.EventMessage(
        id=uuid.UUID(event_id), type="update", seq=1, kind="red_light", analytic="test",
        label="motorcycle", site=SITE, edge_id=EDGE, camera_id="cam-junction", start_time=now,
        frame_time=now, score=0.87, attributes=attrs,
    )  # fmt: skip
    topic = contract.events_topic(SITE, EDGE)
    w["pub"].publish(topic, msg.model_dump_json().encode(), qos=1).wait_for_publish(5)


def camera_status(w: dict, camera: str, state: str, **kw: Any) -> None:
    now = datetime.now(UTC)
    msg = contract.CameraStatus(
        camera_id=camera,
        state=state,  # type: ignore[arg-type]
        fps=kw.pop("fps", 10.0 if state != "offline" else 0.0),
        last_frame_time=now if state != "offline" else now - timedelta(seconds=40),
        reconnects=kw.pop("reconnects", 0),
        updated_at=now,
        **kw,
    )
    topic = contract.camera_status_topic(SITE, EDGE, camera)
    w["pub"].publish(topic, msg.model_dump_json().encode(), qos=1, retain=True).wait_for_publish(5)


def shot(page: Any, name: str) -> None:
    """A screenshot, after checking the page rendered no raw objects or nulls."""
    text = page.inner_text("#view") if page.locator("#view").count() else page.inner_text("body")
    assert "[object" not in text and "undefined" not in text and "\nnull" not in text, text
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/ui")
    page.wait_for_url(f"{base}/login*")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#submit")
    page.wait_for_url(f"{base}/ui*")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#live.on")


def test_operator_sees_alerts_live_acts_on_them_and_a_viewer_cannot(world: dict) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base, hub = world["base"], world["hub"]
    latencies: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 860})
            # logged out: the dashboard sends the browser to the login page
            page.goto(f"{base}/ui")
            page.wait_for_url(f"{base}/login*")
            page.fill("#username", "olivia")
            page.fill("#password", "not-her-password")
            page.click("#submit")
            page.wait_for_selector("#error:not([hidden])")
            assert "wrong user name or password" in page.inner_text("#error")
            shot(page, "dashboard_login")
            login(page, base, "olivia", USERS["olivia"][1])
            page.wait_for_selector("#alerts-empty")
            shot(page, "dashboard_live_empty")

            # alerts published to the broker appear within 2 s, newest first
            plan = [
                ("object", "car", {}),
                ("flood_level", "II", {"hotspot": "hue-001", "level_cm": 212.0}),
                ("object", "truck", {}),
                ("forest_fire", "fire", {"land_use": "forest", "target_bearing_deg": 41.5}),
                ("flood_level", "III", {"hotspot": "hue-002", "level_cm": 361.0}),
                ("object", "bus", {}),
            ]
            ids = []
            for kind, label, attrs in plan:
                t0 = time.time() * 1000
                eid = publish_alert(world, kind, label, **attrs)
                row = page.wait_for_selector(f"tr[data-id='{eid}']", timeout=2000)
                latencies.append(float(row.get_attribute("data-shown-at")) - t0)
                ids.append(eid)
                time.sleep(0.3)
            order = page.eval_on_selector_all(
                "#alert-table tbody tr", "rs => rs.map(r => r.dataset.id)"
            )
            assert order == ids[::-1]
            assert page.evaluate("window.__alarms") == 2  # forest fire and flood level III
            assert "sev-urgent" in page.get_attribute(f"tr[data-id='{ids[3]}']", "class")
            shot(page, "dashboard_live")
            # filters
            page.select_option("#filter-kind", "flood_level")
            assert page.locator("#alert-table tbody tr").count() == 2
            page.select_option("#filter-kind", "")

            # the detail page: evidence, timeline, acknowledge with a note, the audit entry
            fire = ids[3]
            page.click(f"tr[data-id='{fire}']")
            page.wait_for_selector("#snapshot")
            page.wait_for_function("() => document.querySelector('#snapshot').naturalWidth > 0")
            assert page.inner_text("#status") == "new"
            img = page.locator("#snapshot").bounding_box()
            box = page.locator("#box").bounding_box()  # the detection box over the snapshot
            assert abs(box["x"] - (img["x"] + 0.2 * img["width"])) < 3
            assert abs(box["width"] - 0.3 * img["width"]) < 3
            assert "No clip recorded" in page.inner_text("#no-clip")
            assert page.locator("#timeline li").count() == 1
            facts = page.inner_text("dl.facts")
            assert "junction-north" in facts and "cam-1 (hue / edge-ioc)" in facts
            page.fill("#note", "Patrol 3 dispatched from Bach Ma gate")
            page.click("#act-ack")
            page.wait_for_selector("#audit li")
            assert page.inner_text("#status") == "acknowledged"
            entry = page.inner_text("#audit li")
            assert "acknowledged" in entry and "olivia" in entry and "Patrol 3" in entry
            shot(page, "dashboard_alert_detail")
            detail = hub.get(f"/api/v1/events/{fire}")
            assert [(a["actor"], a["action"]) for a in detail["audit"]] == [
                ("olivia", "acknowledged")
            ]

            # cameras: the health grid, and an offline camera alert after its grace period
            camera_status(world, "cam-1", "online", reconnects=2)
            camera_status(world, "cam-2", "degraded", degraded_reason="analysis 4.1/s of 10/s")
            camera_status(world, "cam-3", "offline", error="connection refused", reconnects=7)
            page.click("[data-nav=cameras]")
            page.wait_for_selector("article.cam[data-camera='cam-3']")
            wait_for(lambda: page.locator("article.cam").count() == 3, 10, what="three cameras")
            assert "offline" in page.get_attribute("article.cam[data-camera='cam-3']", "class")
            assert "connection refused" in page.inner_text("article.cam[data-camera='cam-3']")
            shot(page, "dashboard_cameras")
            page.click("[data-nav=alerts]")
            offline = wait_for(
                lambda: hub.get("/api/v1/events?kind=camera_offline")["items"],
                15,
                what="camera_offline alert",
            )
            assert offline[0]["camera_id"] == "cam-3"
            page.wait_for_selector(f"tr[data-id='{offline[0]['id']}']", timeout=5000)

            # flood hotspots with internal fields
            topic = contract.hotspot_topic(SITE, "edge-01", "hue-001")
            world["flood_pub"].publish(
                topic, reading("hue-001", datetime.now(UTC)), qos=1
            ).wait_for_publish(5)
            page.click("[data-nav=hotspots]")
            page.wait_for_selector("#hotspot-table")
            wait_for(
                lambda: "flood-001" in page.inner_text("#hotspot-table"),
                15,
                what="the reading on the hotspots page",
            )
            shot(page, "dashboard_hotspots")

            # traffic review queue
            page.click("[data-nav=review]")
            page.wait_for_selector("#review-empty")
            red = publish_alert(
                world, "red_light", "motorcycle", camera="cam-junction", plate="75A1-234.56"
            )
            wait_for(lambda: hub.get("/api/v1/reviews")["total"] == 1, 10, what="queued violation")
            # its evidence package, as the edge sends it after the clip's after-part
            pkg = world["package"]
            for name in pkg.files:
                topic = contract.evidence_topic(SITE, EDGE, red, name)
                data = (pkg.folder / name).read_bytes()
                world["pub"].publish(topic, data, qos=1).wait_for_publish(5)
            done = {"evidence": "complete", "manifest_sha256": pkg.manifest_sha256}
            publish_update(world, red, {**done, "plate": "75A1-234.56"})
            wait_for(
                lambda: hub.get(f"/api/v1/events/{red}/evidence")["verified"],
                10,
                what="verified evidence",
            )
            page.goto(f"{base}/ui#/alert/{red}")
            page.wait_for_selector("#integrity.ok")
            assert "Evidence verified" in page.inner_text("#integrity")
            assert page.locator("#frames img").count() == 3
            page.wait_for_function(
                "() => (v => v.readyState >= 1 || v.error)(document.querySelector('#clip'))",
                timeout=10000,
            )
            assert page.evaluate("document.querySelector('#clip').error") is None
            assert page.evaluate("document.querySelector('#clip').duration") > 3.0
            shot(page, "dashboard_violation")
            page.click("[data-nav=alerts]")
            page.click("[data-nav=review]")
            card = page.wait_for_selector(f"article.review[data-id='{red}']")
            assert "75A1-234.56" in card.inner_text()
            shot(page, "dashboard_review")
            card.query_selector("button.secondary").click()  # reject without a reason
            page.wait_for_selector(f"article.review[data-id='{red}'] .error:not([hidden])")
            card.query_selector("input").fill("signal was amber, not red")
            card.query_selector("button.secondary").click()
            page.wait_for_selector(f"article.review.done[data-id='{red}']")
            assert hub.get(f"/api/v1/events/{red}")["review"] == "rejected"

            # the viewer: sees the alert, no evidence, no actions; the API refuses too
            viewer = browser.new_page(viewport={"width": 1360, "height": 860})
            login(viewer, base, "victor", USERS["victor"][1])
            viewer.goto(f"{base}/ui#/alert/{ids[0]}")
            viewer.wait_for_selector("#no-actions")
            assert viewer.locator("#no-evidence").count() == 1
            assert viewer.locator("#snapshot").count() == 0
            status = viewer.evaluate(
                """async (id) => {
                    const me = await (await fetch('/api/v1/auth/me')).json();
                    const r = await fetch(`/api/v1/events/${id}/ack`, {method: 'POST',
                        headers: {'X-CSRF-Token': me.csrf_token}});
                    return r.status;
                }""",
                ids[0],
            )
            assert status == 403
            assert viewer.locator("[data-nav=review]").is_hidden()
            shot(viewer, "dashboard_viewer")
            assert hub.get(f"/api/v1/events/{ids[0]}")["status"] == "new"

            # signing out ends the session
            page.click("#logout")
            page.wait_for_url(f"{base}/login*")
            page.goto(f"{base}/ui")
            page.wait_for_url(f"{base}/login*")
        finally:
            browser.close()

    report = {
        "alerts": len(latencies),
        "latency_ms": [round(x, 1) for x in latencies],
        "p50_ms": round(statistics.median(latencies), 1),
        "max_ms": round(max(latencies), 1),
    }
    (ARTIFACTS / "dashboard_latency.json").write_text(json.dumps(report, indent=2))
    print(f"\nalert-to-screen latency: {report}")
    assert max(latencies) < 2000


def test_sse_stream_filters_evidence_by_role(world: dict) -> None:
    """The live stream on the wire: an operator gets the plate, a viewer does not."""
    base = world["base"]
    streams = {}
    for user in ("olivia", "victor"):
        tok = bearer_token(base, user, USERS[user][1])
        req = urllib.request.Request(
            f"{base}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {tok}"}
        )
        streams[user] = urllib.request.urlopen(req, timeout=10)
        assert streams[user].headers.get_content_type() == "text/event-stream"
        assert (
            b"event: hello"
            in streams[user].readline() + streams[user].readline() + streams[user].readline()
        )
    eid = publish_alert(world, "red_light", "car", plate="43A-999.99")

    def next_alert(resp: Any) -> dict:
        event = None
        while True:
            line = resp.readline().decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "alert":
                doc = json.loads(line[5:])
                if doc["id"] == eid:
                    return doc

    op, viewer = next_alert(streams["olivia"]), next_alert(streams["victor"])
    # Many open dashboards hold no database connection: with more streams than the pool
    # has connections (5 + 10 overflow), the API still answers at once.
    tok = bearer_token(base, "olivia", USERS["olivia"][1])
    extra = []
    for _ in range(20):
        req = urllib.request.Request(
            f"{base}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {tok}"}
        )
        extra.append(urllib.request.urlopen(req, timeout=10))
        assert extra[-1].status == 200
    t0 = time.monotonic()
    assert world["hub"].get("/api/v1/events?limit=1")["total"] >= 1
    assert time.monotonic() - t0 < 5
    for r in [*streams.values(), *extra]:
        r.close()
    assert op["attributes"]["plate"] == "43A-999.99" and op["review"] == "pending"
    assert "plate" not in viewer["attributes"] and viewer["snapshot_url"] is None
