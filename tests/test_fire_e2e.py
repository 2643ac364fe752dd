"""A fire on a real RTSP stream, end to end: the edge worker with the shipped fire/smoke model
confirms it, the hub opens a forest-fire incident and a ranger's webhook receives it.

Real parts: GStreamer RTSP server (a real fire scene from the dataset's test split, first
without the fire), mosquitto, the edge worker and the hub as processes, a loopback webhook receiver.
A second camera on the same stream has the fire's spot in an exclusion mask: it never alerts.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from edge.inference.detector import Detector
from edge.inference.registry import Registry
from tests.fire_scenes import jitter, real_scenes, write_video
from tests.helpers import Hub, Mosquitto, Process, RtspServer, wait_for
from tests.receivers import WebhookReceiver


@pytest.fixture(scope="module")
def fire_video(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> tuple[Path, list]:
    """A real fire from the dataset's test split (never trained on), as a camera would see
    it: 4 s of the view with the fire inpainted away, then 36 s with it; and where the fire
    stands (fractions of the frame)."""
    reg = Registry(tmp_path_factory.mktemp("m"))
    det = Detector(reg.spec("fire_smoke_nano"), reg.resolve("fire_smoke_nano"), threads=2)
    best, best_score = None, 0.0
    for scene in real_scenes(assets / "datasets" / "fire_smoke_ccby4" / "test"):
        if scene[1] != "fire":
            continue
        d = det.detect(scene[3], 0.1)
        score = float(d.confidence[d.class_id == 0].max(initial=0.0))
        if score > best_score:
            best, best_score = scene, score
    assert best is not None and best_score > 0.5, "the model finds no fire in the test split"
    _, _, before, after, boxes = best
    h, w = after.shape[:2]
    x1, y1, x2, y2 = boxes[0] / np.array([w, h, w, h])
    spot = [
        [x1 - 0.05, y2 - 0.15],
        [x2 + 0.05, y2 - 0.15],
        [x2 + 0.05, y2 + 0.05],
        [x1 - 0.05, y2 + 0.05],
    ]
    spot = [[float(np.clip(x, 0, 1)), float(np.clip(y, 0, 1))] for x, y in spot]
    rng = np.random.default_rng(0)
    frames = [jitter(before if i < 25 * 4 else after, rng) for i in range(25 * 40)]
    return write_video(frames, tmp_path_factory.mktemp("fire") / "fire.mp4"), spot


def test_fire_on_rtsp_reaches_the_rangers_webhook_and_masks_hold(
    tmp_path: Path, broker: Mosquitto, fire_video: tuple[Path, list], model_dir: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    video, spot = fire_video
    rtsp = RtspServer(tmp_path, {"fire": video})
    rtsp.start()
    recv = WebhookReceiver("s3cret")
    hub = Hub(
        tmp_path,
        f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        broker,
        f"hub-{uid}",
        extra={
            "teams": [
                {
                    "id": "rangers",
                    "kinds": ["forest_fire", "smoke"],
                    "channels": [{"type": "webhook", "url": recv.url, "secret": "s3cret"}],
                }
            ],
            "incidents": {},
        },
    )
    hub.start()
    forest = {"name": "hillside", "use": "forest", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
    fire = {"type": "fire", "period_s": 0.5, "zones": [forest], "hold_s": 30}
    masked = {**fire, "exclude": [spot]}
    cfg = {
        "edge_id": f"edge-{uid}",
        "site": "hue",
        "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
        "spool_dir": str(tmp_path / "spool"),
        "models": {"dir": str(model_dir), "threads": 1},
        "status_interval_s": 1,
        "cameras": [
            {
                "id": "ridge",
                "url": rtsp.url("fire"),
                "location": {"lat": 16.2, "lon": 107.86},
                "bearing_deg": 200,
                "hfov_deg": 60,
                "analytics": [fire],
            },
            {"id": "kiln-view", "url": rtsp.url("fire"), "analytics": [masked]},
            # issue 17: motion gating on a fire analytic used to validate, then fail on
            # every sample (its zone is the whole frame, not a polygon). Over fields: its
            # straw_burning is not the rangers' team's kind, so it cannot open their
            # incident before the ridge camera does
            {
                "id": "gated",
                "url": rtsp.url("fire"),
                "analytics": [
                    {**fire, "zones": [], "land_use": "field", "motion_gating": True}
                ],
            },
        ],
    }
    edge = Process(tmp_path, "edge", ["edge", "run"], cfg)
    try:
        edge.start()
        hook = wait_for(lambda: recv.valid(), 60, what="ranger webhook")[0].body
        assert hook["kind"] == "forest_fire" and hook["urgent"] is True
        a = hook["alerts"][0]
        assert a["camera_id"] == "ridge" and a["zone"] == "hillside" and a["label"] == "fire"
        assert 170 < a["bearing_deg"] < 230  # within the camera's 60-degree view around 200
        assert hook["location"] == {"lat": 16.2, "lon": 107.86}
        # the event itself, with its evidence snapshot
        events = hub.get("/api/v1/events?kind=forest_fire")["items"]
        ev = next(e for e in events if e["camera_id"] == "ridge")
        assert ev["attributes"]["land_use"] == "forest" and ev["zone"] == "hillside"
        wait_for(lambda: hub.get(f"/api/v1/events/{ev['id']}")["snapshot_url"], 10, what="snap")
        jpeg = hub.get(f"/api/v1/events/{ev['id']}/snapshot.jpg")
        assert jpeg[:3] == b"\xff\xd8\xff"
        # the masked camera saw the same fire for as long and raised nothing
        all_events = hub.all_events()
        assert not [e for e in all_events if e["camera_id"] == "kiln-view"]
        # the motion-gated camera runs its fire analytic and confirms the same fire
        gated = wait_for(
            lambda: [e for e in hub.all_events() if e["camera_id"] == "gated"],
            30,
            what="the gated camera's fire",
        )
        assert gated[0]["kind"] == "straw_burning"
    finally:
        code = edge.stop()
        hub.stop()
        rtsp.stop()
        recv.stop()
    assert code == 0, edge.log_text()[-2000:]
    assert "analytic failed" not in edge.log_text(), edge.log_text()[-3000:]
