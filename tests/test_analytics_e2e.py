"""New analytics end to end on real parts: the highway clip over GStreamer RTSP, the edge
worker running ``line_count`` and ``congestion`` through the plugin protocol (one shared
inference for both), mosquitto, the hub storing their readings, and the dashboard's chart
in headless Chromium."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import Hub, Mosquitto, Process, RtspServer, ensure_user, wait_for
from tests.test_dashboard import login

ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
# the near carriageway (vehicles drive away from the camera, up and to the right)
LANE = [[0.25, 1.0], [1.0, 1.0], [1.0, 0.15], [0.72, 0.15]]


def _counted(readings: list[dict[str, Any]], line: str) -> float:
    return sum(
        (r["values"].get(f"{line}.total.forward") or 0)
        + (r["values"].get(f"{line}.total.backward") or 0)
        for r in readings
    )


def test_line_counts_and_congestion_reach_the_hub_and_the_dashboard_chart(
    tmp_path: Path, broker: Mosquitto, h264_video: Path, model_dir: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    rtsp = RtspServer(tmp_path, {"road": h264_video})
    rtsp.start()
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    hub = Hub(tmp_path, db, broker, f"hub-{uid}")
    ensure_user(db, "olivia", "operator", "operator-password-1")
    hub.start()
    count = {
        "type": "line_count",
        "name": "counts",
        "fps": 8,
        "interval_s": 5,
        "lines": [{"name": "y70", "a": [0.0, 0.7], "b": [1.0, 0.7], "direction": [0, -1]}],
    }
    lane = {
        "type": "congestion", "name": "near_lane", "zone": LANE, "interval_s": 5,
        "window_s": 10,
    }  # fmt: skip
    cfg = {
        "edge_id": f"edge-{uid}",
        "site": "hue",
        "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
        "spool_dir": str(tmp_path / "spool"),
        "models": {"dir": str(model_dir), "threads": 2},
        "status_interval_s": 1,
        "cameras": [{"id": "hwy-1", "url": rtsp.url("road"), "analytics": [count, lane]}],
    }
    edge = Process(tmp_path, "edge", ["edge", "run"], cfg)
    try:
        edge.start()

        def counts() -> list[dict]:
            items = hub.get("/api/v1/readings?camera_id=hwy-1&analytic=counts&limit=100")
            items = items["items"] if isinstance(items, dict) else items
            return items if _counted(items, "y70") >= 5 else []

        got = wait_for(counts, 120, interval=2.0, what="line counts at the hub")
        r = got[0]
        assert r["analytic_type"] == "line_count" and r["period_s"] == 5
        assert r["units"].get("y70.total.forward") == "count"
        # at y = 0.7 only the near carriageway passes, driving away (up: the line's
        # forward); the far carriageway's oncoming traffic never reaches that low
        forward = sum(x["values"].get("y70.total.forward") or 0 for x in got)
        backward = sum(x["values"].get("y70.total.backward") or 0 for x in got)
        assert forward >= 5 and backward == 0, (forward, backward)
        def decided() -> list[dict]:  # once its smoothing window has filled
            items = hub.get("/api/v1/readings?camera_id=hwy-1&analytic=near_lane&limit=20")
            items = items["items"] if isinstance(items, dict) else items
            return [x for x in items if x["state"] in ("free", "slow", "jammed")]

        lane_item = wait_for(decided, 60, what="a decided congestion reading")[0]
        occ = lane_item["values"]["occupancy"]
        assert occ is not None and 0 <= occ <= 1
        assert lane_item["units"]["occupancy"] == "ratio"
        series = hub.get(
            "/api/v1/readings/series?camera_id=hwy-1&analytic=counts&name=y70.total.forward"
        )
        points = series["points"] if isinstance(series, dict) else series
        assert len(points) >= 1
        _chart(hub, "olivia", "operator-password-1", f"hue/edge-{uid}/hwy-1/counts")
    finally:
        code = edge.stop()
        hub.stop()
        rtsp.stop()
    assert code == 0, edge.log_text()[-2000:]
    assert "analytic failed" not in edge.log_text(), edge.log_text()[-3000:]


def _chart(hub: Hub, user: str, password: str, key: str) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    base = f"http://127.0.0.1:{hub.port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 860})
            login(page, base, user, password)
            page.goto(f"{base}/ui#/readings")
            page.wait_for_selector("#readings-table", timeout=15000)
            page.click(f"#readings-table tr[data-key='{key}']")
            page.wait_for_function(
                "() => document.querySelector('#reading-name option[value=\"y70.total.forward\"]')"
            )
            page.select_option("#reading-name", "y70.total.forward")
            page.wait_for_function(
                "() => Number(document.querySelector('#reading-svg')?.dataset.points) >= 2",
                timeout=30000,
            )
            assert "hwy-1" in page.inner_text("#reading-chart h2")
            page.screenshot(path=str(ARTIFACTS / "readings_line_count.png"), full_page=True)
        finally:
            browser.close()
