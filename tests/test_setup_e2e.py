"""Issue 19 end to end: a zone drawn on the set-up page runs on the real edge.

All real: mosquitto (TLS, accounts), the hub process (configurations, frames), GStreamer
RTSP serving the highway clip to two cameras, a real edge worker with ``config.source:
hub`` (YOLOX-Nano), headless Chromium. The operator opens the set-up page of one camera
(its frame comes from the edge), redraws its zone over the road by clicking, saves; the
edge applies it within 10 s without restarting the other camera, and an event in the new
zone reaches the dashboard's live alerts.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from tests.helpers import Hub, Mosquitto, Process, RtspServer, ensure_user, wait_for
from tests.test_setup_page import ARTIFACTS, browser_page, clean, click, open_setup, points

OPERATOR = ("oscar", "operator-password-2")
CORNER = [[0.0, 0.0], [0.04, 0.0], [0.0, 0.04]]  # the sky over the overlay: no cars there
ROAD = [(0.25, 0.35), (0.98, 0.35), (0.98, 0.98), (0.25, 0.98)]


def test_a_zone_drawn_on_the_setup_page_runs_on_the_edge_and_raises_an_event(
    tmp_path: Path, broker: Mosquitto, h264_video: Path, model_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    uid = uuid.uuid4().hex[:8]
    site, edge_id = "hue", f"edge-{uid}"
    rtsp = RtspServer(tmp_path, {"road": h264_video})
    rtsp.start()
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    hub = Hub(tmp_path, db, broker, f"hub-{uid}")
    ensure_user(db, OPERATOR[0], "operator", OPERATOR[1])
    hub.start()

    def put(cam: str, zone: list) -> dict:
        doc = {
            "id": cam,
            "url": rtsp.url("road"),
            "analytics": [
                {"type": "objects", "name": "cars", "classes": ["car"], "zone": zone,
                 "zone_name": "watched", "fps": 2, "min_score": 0.4}
            ],
        }  # fmt: skip
        return hub.put(  # type: ignore[no-any-return]
            f"/api/v1/cameras/{cam}/config",
            {"site": site, "edge_id": edge_id, "config": doc, "comment": "initial"},
        )

    a0, b0 = put("cam-a", CORNER), put("cam-b", CORNER)
    cfg = {
        "edge_id": edge_id,
        "site": site,
        "mqtt": broker.mqtt(edge_id, "edge", site=site),
        "spool_dir": str(tmp_path / "spool"),
        "models": {"dir": str(model_dir), "threads": 1},
        "status_interval_s": 1,
        "frame_interval_s": 2,
        "config": {"source": "hub"},
    }
    edge = Process(tmp_path, "edge", ["edge", "run"], cfg)

    def camera(cid: str) -> dict:
        # this edge's: the session's broker holds other tests' retained cam-a statuses
        items = hub.get(f"/api/v1/cameras?edge={edge_id}&limit=100")["items"]
        return next((c for c in items if c["camera_id"] == cid), {})

    def running(cid: str, version: str) -> dict | None:
        c = camera(cid)
        ok = c.get("config_version") == version == c.get("config_version_wanted")
        return c if ok and c.get("state") == "online" else None

    try:
        edge.start()
        wait_for(lambda: running("cam-a", a0["config_version"]), 90, what="cam-a running")
        b_before = wait_for(lambda: running("cam-b", b0["config_version"]), 30, what="cam-b")
        wait_for(lambda: hub.get("/api/v1/cameras/cam-a/preview"), 30, what="cam-a's frame")
        assert not [e for e in hub.all_events() if e["camera_id"] == "cam-a"]
        with sync_playwright() as pw:
            browser, page = browser_page(pw, hub.base, OPERATOR)
            try:
                open_setup(page, hub.base, "cam-a")
                assert page.input_value("#setup-field") == "zone"
                page.click("#setup-redraw")
                for fx, fy in ROAD:
                    click(page, fx, fy)
                click(page, *ROAD[0])  # closed on its first point
                assert points(page, "zone") == 4
                page.fill("#setup-comment", "the road, not the sky")
                t0 = time.monotonic()
                page.click("#setup-save")
                page.wait_for_function(
                    "() => /Saved: version 2/.test("
                    "document.querySelector('#setup-status').textContent)"
                )
                # the page follows the edge until it runs the new version
                page.wait_for_function(
                    "() => /Running on the edge/.test("
                    "document.querySelector('#setup-status').textContent)",
                    timeout=10_000,
                )
                applied_s = time.monotonic() - t0
                page.screenshot(path=str(ARTIFACTS / "setup_e2e_saved.png"), full_page=True)
                clean(page)
                saved = hub.get("/api/v1/cameras/cam-a/config")
                assert saved["version"] == 2 and saved["applied"] is True
                wait_for(lambda: running("cam-a", saved["config_version"]), 15, what="cam-a on")
                # the other camera kept running, untouched
                b_after = camera("cam-b")
                assert b_after["config_version"] == b0["config_version"]
                assert b_after["state"] == "online"
                assert b_after["reconnects"] == b_before["reconnects"]
                log = edge.log_text()
                applied = [
                    json.loads(ln) for ln in log.splitlines() if "hub configuration applied" in ln
                ]
                assert applied[-1]["restarted"] == ["cam-a"], applied[-1]
                # a car in the new zone: an event on the live alerts page
                ev = wait_for(
                    lambda: [e for e in hub.all_events() if e["camera_id"] == "cam-a"],
                    60, what="an event in the new zone",
                )[0]  # fmt: skip
                assert ev["zone"] == "watched" and ev["label"] == "car"
                page.goto(f"{hub.base}/ui#/alerts")
                page.wait_for_selector(f"[data-id='{ev['id']}']", timeout=20_000)
                page.screenshot(path=str(ARTIFACTS / "setup_e2e_alert.png"), full_page=True)
            finally:
                browser.close()
        print(f"zone drawn in the browser ran on the edge {applied_s:.1f} s after Save")
    finally:
        code = edge.stop()
        hub.stop()
        rtsp.stop()
    assert code == 0, edge.log_text()[-2000:]
    assert "analytic failed" not in edge.log_text()
