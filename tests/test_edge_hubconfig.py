"""Cameras configured at the hub, applied live by a real edge worker (issue 19).

The plan (``edge.hubconfig``) on its own, then end to end: the highway clip over RTSP on
two cameras, a real edge worker with ``config.source: hub``, and the hub's retained
configuration published on the real broker by a hub account (the hub's own service is
tested in test_camera_config_hub.py). A changed camera is restarted within 10 s, the
other keeps running; an invalid configuration is refused with its key path and the
camera keeps its last good one; an edge started with no configuration from the hub runs
its last good one from disk.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge import hubconfig
from edgewatch import contract
from tests.helpers import Mosquitto, Process, RtspServer, wait_for

LEFT = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
RIGHT = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]


def camera(cid: str, url: str, zone: list, **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "url": url,
        "analytics": [{"type": "objects", "classes": ["car"], "zone": zone, "fps": 2, **extra}],
    }


def message(
    version: int,
    cams: list[dict[str, Any]],
    versions: dict[str, str] | None = None,
    ids: list[str] | None = None,
) -> bytes:
    """The hub's message; ``ids`` names the entries when they differ from the configs'."""
    entries = [
        {
            "camera_id": cid,
            "config_version": (versions or {}).get(cid, contract.config_hash(c)),
            "config": c,
        }
        for cid, c in zip(ids or [c["id"] for c in cams], cams, strict=True)
    ]
    doc = {"version": version, "updated_at": datetime.now(UTC).isoformat(), "cameras": entries}
    return json.dumps(doc).encode()


# -- the plan -------------------------------------------------------------------------------


def test_parse_checks_hash_id_and_schema_with_key_paths() -> None:
    good = camera("a", "rtsp://h/a", LEFT)
    bad_zone = camera("b", "rtsp://h/b", [[0, 0], [1, 1]])
    wrong_id = {**camera("c", "rtsp://h/c", LEFT), "id": "other"}
    forged = camera("d", "rtsp://h/d", LEFT)
    payload = message(
        5, [good, bad_zone, wrong_id, forged], {"d": "0" * 16}, ids=["a", "b", "c", "d"]
    )
    version, wanted = hubconfig.parse(payload, newer_than=4)
    assert version == 5
    by = {w.camera_id: w for w in wanted}
    assert by["a"].error is None and by["a"].cfg is not None
    assert by["b"].error is not None and "analytics.0.zone" in by["b"].error
    assert by["c"].error is not None and "id" in by["c"].error
    assert by["d"].error == "config_version does not match its configuration"
    with pytest.raises(hubconfig.ConfigRefused):
        hubconfig.parse(payload, newer_than=5)  # a replay or an older hub
    with pytest.raises(hubconfig.ConfigRefused):
        hubconfig.parse(b'{"version": 9, "cameras": "no"}', newer_than=0)


def test_plan_restarts_only_what_changed_and_keeps_refused_cameras() -> None:
    a, b, c = (camera(x, f"rtsp://h/{x}", LEFT) for x in "abc")
    a2 = camera("a", "rtsp://h/a", RIGHT)
    bad_b = camera("b", "rtsp://h/b", [[0, 0]])
    _, wanted = hubconfig.parse(message(2, [a2, bad_b, c]), 1)
    running = {"a": contract.config_hash(a), "b": contract.config_hash(b), "x": "1" * 16}
    p = hubconfig.plan(running, wanted)
    assert [w.camera_id for w in p.restart] == ["a"]
    assert [w.camera_id for w in p.start] == ["c"]
    assert [w.camera_id for w in p.refuse] == ["b"]
    assert p.stop == ["x"] and p.keep == []
    _, same = hubconfig.parse(message(3, [a]), 2)
    assert hubconfig.plan({"a": contract.config_hash(a)}, same).keep == ["a"]


def test_last_good_is_written_atomically_owner_only_and_read_back(tmp_path: Path) -> None:
    a = camera("a", "rtsp://user:secret@h/a", LEFT)
    hubconfig.save(tmp_path, 7, [("a", contract.config_hash(a), a)])
    path = tmp_path / hubconfig.STATE_FILE
    assert path.stat().st_mode & 0o077 == 0  # camera URLs carry credentials
    version, wanted = hubconfig.load(tmp_path)
    assert version == 7 and [w.camera_id for w in wanted] == ["a"]
    assert wanted[0].version == contract.config_hash(a)
    path.write_text("{not json")
    assert hubconfig.load(tmp_path) == (0, [])


# -- end to end -------------------------------------------------------------------------------


class Statuses:
    """The edge's camera statuses, as the hub would see them (a hub account subscribes)."""

    def __init__(self, broker: Mosquitto, site: str, edge: str, uid: str) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.client = broker.client(f"hub-cfg-{uid}", "hub")
        self.client.on_message = self._on
        self.client.subscribe(f"edgewatch/v1/{site}/{edge}/cameras/+/status", qos=1)

    def _on(self, _c: Any, _u: Any, msg: Any) -> None:
        doc = json.loads(msg.payload)
        with self.lock:
            self.latest[doc["camera_id"]] = doc

    def get(self, cid: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.latest.get(cid, {}))

    def publish_config(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_edge_applies_hub_configuration_live(
    tmp_path: Path, broker: Mosquitto, h264_video: Path, model_dir: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    site, edge_id = "hue", f"edge-{uid}"
    rtsp = RtspServer(tmp_path, {"road": h264_video})
    rtsp.start()
    topic = contract.edge_config_topic(site, edge_id)
    hub = Statuses(broker, site, edge_id, uid)
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
    a1 = camera("cam-a", rtsp.url("road"), LEFT)
    b1 = camera("cam-b", rtsp.url("road"), RIGHT)
    hub.publish_config(topic, message(1, [a1, b1]))
    edge = Process(tmp_path, "edge", ["edge", "run"], cfg)
    edge2: Process | None = None
    try:
        edge.start()

        def running(cid: str, version: str) -> dict | None:
            s = hub.get(cid)
            return s if s.get("config_version") == version and s.get("state") == "online" else None

        wait_for(lambda: running("cam-a", contract.config_hash(a1)), 60, what="cam-a on v1")
        b_before = wait_for(lambda: running("cam-b", contract.config_hash(b1)), 30, what="cam-b")
        # change cam-a's zone: running on the edge within 10 s, cam-b untouched
        a2 = camera("cam-a", rtsp.url("road"), RIGHT)
        t0 = time.monotonic()
        hub.publish_config(topic, message(2, [a2, b1]))
        wait_for(lambda: running("cam-a", contract.config_hash(a2)), 10, what="cam-a on v2")
        applied_s = time.monotonic() - t0
        time.sleep(2.5)
        b_after = hub.get("cam-b")
        assert b_after["config_version"] == contract.config_hash(b1)
        assert b_after["state"] == "online" and b_after["reconnects"] == b_before["reconnects"]
        log = edge.log_text()
        applied = [json.loads(ln) for ln in log.splitlines() if "hub configuration applied" in ln]
        assert applied[-1]["restarted"] == ["cam-a"] and applied[-1]["started"] == []
        # an invalid zone is refused with its key path; cam-a keeps running v2
        bad = camera("cam-a", rtsp.url("road"), [[0.1, 0.1], [0.2, 0.2]])
        hub.publish_config(topic, message(3, [bad, b1]))

        def refused() -> dict | None:
            s = hub.get("cam-a")
            return s if s.get("config_error") else None

        s = wait_for(refused, 15, what="cam-a's refusal")
        assert "analytics.0.zone" in s["config_error"]
        assert s["config_version"] == contract.config_hash(a2) and s["state"] == "online"
        # its frames and what its analytics see reach the broker for the set-up page
        # (the hub stores them: test_camera_config_hub.py)
        assert edge.stop() == 0, edge.log_text()[-2000:]
        # the hub is down (no retained configuration): the edge runs its last good one
        hub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        hub.latest.clear()
        edge2 = Process(tmp_path, "edge2", ["edge", "run"], cfg)
        edge2.start()
        wait_for(lambda: running("cam-a", contract.config_hash(a2)), 60, what="last good a")
        wait_for(lambda: running("cam-b", contract.config_hash(b1)), 30, what="last good b")
        assert "analytic failed" not in edge.log_text() + edge2.log_text()
        print(f"configuration change applied in {applied_s:.1f} s")
    finally:
        edge.stop()
        if edge2 is not None:
            edge2.stop()
        hub.close()
        rtsp.stop()
