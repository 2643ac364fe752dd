"""Traffic end to end on real parts: the highway clip over GStreamer RTSP, the edge worker
(YOLOX-Nano, ByteTrack, rules, packet ring, evidence), mosquitto (including a signal
controller's feed), the hub (review queue, evidence stored and verified)."""

from __future__ import annotations

import io
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import yaml

from edgewatch import procs
from tests.helpers import Hub, Mosquitto, Process, RtspServer, wait_for

# The near carriageway: vehicles drive away from the camera, up and to the right.
LANE = [[0.25, 1.0], [1.0, 1.0], [1.0, 0.15], [0.72, 0.15]]
AWAY = [0.48, -0.88]
GAP = timedelta(seconds=5)


def test_violations_reach_the_review_queue_with_verified_evidence(
    tmp_path: Path, broker: Mosquitto, h264_video: Path, model_dir: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    rtsp = RtspServer(tmp_path, {"road": h264_video})
    rtsp.start()
    hub = Hub(tmp_path, f"sqlite:///{tmp_path / 'hub.sqlite3'}", broker, f"hub-{uid}")
    hub.start()
    # the controller's own account writes only its own signal topics
    signal_topic = f"edgewatch/v1/signals/ctl-{uid}/junction-7"
    traffic = {
        "type": "traffic",
        "fps": 8,
        "signal": {"source": "mqtt", "topic": signal_topic},
        "evidence": {"dir": str(tmp_path / "evidence"), "pre_s": 2, "post_s": 2},
        "rules": [
            # the lane's legal direction set towards the camera: all traffic is "wrong way"
            {"type": "wrong_way", "lane": LANE, "direction": [-AWAY[0], -AWAY[1]],
             "min_distance": 0.12},
            {"type": "speeding", "line_a": [[0.3, 0.85], [1.0, 0.85]],
             "line_b": [[0.3, 0.45], [1.0, 0.45]], "distance_m": 30, "limit_kmh": 20},
            {"type": "red_light", "stop_line": [[0.3, 0.6], [1.0, 0.6]], "direction": AWAY,
             "grace_s": 0.5},
        ],
    }  # fmt: skip
    cfg = {
        "edge_id": f"edge-{uid}",
        "site": "hue",
        "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
        "spool_dir": str(tmp_path / "spool"),
        "models": {"dir": str(model_dir), "threads": 2},
        "status_interval_s": 1,
        "cameras": [
            {
                "id": "junction-7",
                "url": rtsp.url("road"),
                "location": {"lat": 16.46, "lon": 107.59},
                "analytics": [traffic],
            }
        ],
    }
    # the city's signal controller says red (retained, as controllers publish state)
    ctl = broker.client(f"ctl-{uid}", "signal")
    red_since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    ctl.publish(signal_topic, json.dumps({"state": "red", "time": red_since}), qos=1, retain=True)
    edge = Process(tmp_path, "edge", ["edge", "run"], cfg)
    try:
        edge.start()

        def complete(kind: str) -> list[dict]:
            items = hub.get(f"/api/v1/events?kind={kind}&limit=50")["items"]
            return [e for e in items if e["attributes"].get("evidence") == "complete"]

        def settled() -> list[dict]:
            # one at least 5 s after the first: the packet ring holds its 2 s before by then
            c = complete("wrong_way")
            first = min((datetime.fromisoformat(e["start_time"]) for e in c), default=None)
            late = [e for e in c if first and datetime.fromisoformat(e["start_time"]) > first]
            return [e for e in late if datetime.fromisoformat(e["start_time"]) - first > GAP]

        ev = wait_for(settled, 120, interval=1.0, what="a later wrong_way with evidence")[0]
        assert ev["review"] == "pending" and ev["label"] in ("car", "truck", "bus")
        assert ev["attributes"]["config_version"] and ev["attributes"]["manifest_sha256"]
        assert ev["attributes"]["plate"] is None and ev["attributes"]["plate_reason"]
        assert [e["id"] for e in hub.get("/api/v1/reviews?limit=500")["items"]].count(ev["id"]) == 1
        # the evidence package arrived whole and matches the manifest sent with the event
        evidence = wait_for(
            lambda: (d := hub.get(f"/api/v1/events/{ev['id']}/evidence"))["verified"] and d,
            30, what="verified evidence",
        )  # fmt: skip
        names = {f["name"] for f in evidence["files"]}
        assert {"clip.mp4", "before.jpg", "at.jpg", "after.jpg", "metadata.json"} <= names
        clip = hub.get(f"/api/v1/events/{ev['id']}/evidence/clip.mp4")
        with av.open(io.BytesIO(clip)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 4 * 25 * 0.9  # 2 s before to 2 s after, 25 fps, from a keyframe
        meta = hub.get(f"/api/v1/events/{ev['id']}/evidence/metadata.json")
        assert meta["camera_id"] == "junction-7" and meta["rule"] == "wrong_way"
        assert meta["time"].endswith("+00:00") and "." in meta["time"]  # milliseconds

        speeding = wait_for(lambda: complete("speeding"), 60, interval=1.0, what="speeding")[0]
        assert speeding["attributes"]["monitoring_only"] is True  # camera not calibrated
        assert speeding["attributes"]["speed_kmh"] > 20
        red = wait_for(lambda: complete("red_light"), 60, interval=1.0, what="red_light")[0]
        assert red["attributes"]["signal"] == "red" and red["attributes"]["red_for_s"] > 0.5
    finally:
        code = edge.stop()
        ctl.publish(signal_topic, b"", retain=True)
        ctl.loop_stop()
        ctl.disconnect()
        hub.stop()
        rtsp.stop()
    assert code == 0, edge.log_text()[-3000:]


def test_no_helmet_without_a_classifier_is_refused_with_a_clear_message(
    tmp_path: Path, model_dir: Path
) -> None:
    cfg = {
        "edge_id": "e",
        "site": "hue",
        "models": {"dir": str(model_dir)},
        "cameras": [
            {
                "id": "c",
                "url": "rtsp://127.0.0.1:1/x",
                "analytics": [{"type": "traffic", "rules": [{"type": "no_helmet"}]}],
            }
        ],
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run(
        procs.edgewatch_cmd("config", "check", str(path)), capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "needs a rider/helmet classifier" in r.stderr and "rules" in r.stderr
    t0 = time.monotonic()
    r = subprocess.run(
        procs.edgewatch_cmd("edge", "run", "-c", str(path)), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode != 0 and "needs a rider/helmet classifier" in r.stderr + r.stdout
    assert time.monotonic() - t0 < 60
