"""End to end on real parts: GStreamer RTSP server, edge worker, mosquitto, hub, database."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analytics.objects import Transition
from edge.events.messages import EventEncoder
from edge.events.snapshot import render_snapshot
from edge.transport.publisher import Publisher
from edge.transport.spool import Spool
from edgewatch import contract
from tests.helpers import Hub, Mosquitto, Process, RtspServer, wait_for

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))


def record(name: str, data: dict) -> None:
    """Keep the figures a test measured (for the closing note and CI logs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"\n{name}: {json.dumps(data, default=str)}")


def edge_config(uid: str, broker: Mosquitto, model_dir: Path, url: str, tmp: Path) -> dict:
    return {
        "edge_id": f"edge-{uid}",
        "site": "hue",
        "mqtt": broker.mqtt(f"edge-{uid}", "edge", site="hue"),
        "spool_dir": str(tmp / "spool"),
        "models": {"dir": str(model_dir)},
        "status_interval_s": 2,
        "cameras": [
            {
                "id": "highway",
                "url": url,
                "location": {"lat": 16.4637, "lon": 107.556},
                "reconnect": {"initial_s": 0.5, "max_s": 2.0, "stall_timeout_s": 5.0},
                "analytics": [
                    {
                        "type": "objects",
                        "name": "vehicles",
                        "classes": ["car", "bus", "truck"],
                        "min_score": 0.5,
                        "fps": 4,
                        "min_consecutive": 2,
                        "max_missing": 2,
                        "zone_name": "road",
                    }
                ],
            }
        ],
    }


def test_rtsp_to_hub_api_with_snapshot_then_camera_outage(
    tmp_path: Path, broker: Mosquitto, rtsp: RtspServer, model_dir: Path, db_url: str, uid: str
) -> None:
    hub = Hub(tmp_path, db_url, broker, f"hub-{uid}")
    hub.start()
    secret = f"s3cret{uid}"
    edge = Process(
        tmp_path,
        "edge",
        ["edge", "run"],
        edge_config(uid, broker, model_dir, rtsp.url("highway", f"admin:{secret}"), tmp_path),
    )
    edge.start()
    try:
        # An event with a snapshot reaches the API.
        events = wait_for(
            lambda: [e for e in hub.all_events(camera="highway") if e["snapshot_url"]],
            60,
            what="an event with a snapshot",
        )
        ev = events[0]
        assert ev["kind"] == "object" and ev["label"] in ("car", "bus", "truck")
        assert ev["edge_id"] == f"edge-{uid}" and ev["zone"] == "road"
        assert 0.5 <= ev["score"] <= 1 and len(ev["box"]) == 4
        jpeg = hub.get(ev["snapshot_url"])
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (240, 320, 3)
        assert hub.get(f"/api/v1/events/{ev['id']}")["id"] == ev["id"]

        # Camera and edge status are visible.
        cams = wait_for(
            lambda: [
                c
                for c in hub.get("/api/v1/cameras?limit=1000")["items"]
                if c["edge_id"] == f"edge-{uid}" and c["state"] == "online"
            ],
            20,
            what="camera online",
        )
        assert cams[0]["fps"] > 5
        edges = hub.get("/api/v1/edges")
        assert any(e["edge_id"] == f"edge-{uid}" and e["state"] == "online" for e in edges)

        # Camera outage: offline within 10 s of the server going away.
        rtsp.stop()
        t_stop = time.monotonic()
        wait_for(
            lambda: any(
                c["state"] == "offline"
                for c in hub.get("/api/v1/cameras?limit=1000")["items"]
                if c["edge_id"] == f"edge-{uid}"
            ),
            10,
            what="camera offline",
        )
        offline_after = time.monotonic() - t_stop
        cams = [
            c
            for c in hub.get("/api/v1/cameras?limit=1000")["items"]
            if c["edge_id"] == f"edge-{uid}"
        ]
        assert cams[0]["error"] and secret not in json.dumps(cams)
        time.sleep(3)  # a few failed reconnects while the server is down
        rtsp.start()
        t_back = time.monotonic()
        back_wall = datetime.now(UTC)

        def resumed() -> bool:
            for c in hub.get("/api/v1/cameras?limit=1000")["items"]:
                if c["edge_id"] == f"edge-{uid}" and c["state"] == "online":
                    last = datetime.fromisoformat(c["last_frame_time"])
                    return last > back_wall
            return False

        # Frames resume within 5 s; the status message that shows it may take one more
        # status tick (1 s) and the trip through the broker and hub.
        wait_for(resumed, 8, what="frames after restart")
        cams = [
            c
            for c in hub.get("/api/v1/cameras?limit=1000")["items"]
            if c["edge_id"] == f"edge-{uid}"
        ]
        resumed_s = datetime.fromisoformat(cams[0]["last_frame_time"]) - back_wall
        assert resumed_s < timedelta(seconds=5), resumed_s
        assert cams[0]["reconnects"] >= 1
        db = db_url.split(":")[0].split("+")[0]
        record(
            f"camera_outage_{db}",
            {
                "offline_seen_after_s": round(offline_after, 2),
                "first_frame_after_restart_s": resumed_s.total_seconds(),
                "status_seen_after_restart_s": round(time.monotonic() - t_back, 2),
                "reconnects": cams[0]["reconnects"],
                "db": db_url.split(":")[0],
            },
        )
    finally:
        assert edge.stop() == 0, edge.log_text()[-3000:]
        hub.stop()
    # Credentials never reach a log line or a status message.
    log = edge.log_text()
    assert "camera disconnected" in log and "***@127.0.0.1" in log
    assert secret not in log


# -- transport outages -----------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, broker: Mosquitto, uid: str) -> Iterator[Hub]:
    """A hub process on SQLite with its own persistent MQTT session."""
    h = Hub(tmp_path, f"sqlite:///{tmp_path / 'hub.sqlite3'}", broker, f"hub-{uid}")
    h.start()
    yield h
    h.stop()


class Emitter:
    """Real edge transport (spool + publisher) emitting real event messages."""

    def __init__(self, tmp: Path, broker: Mosquitto, uid: str) -> None:
        self.site, self.edge_id = "hue", f"edge-{uid}"
        self.spool = Spool(tmp / "spool.sqlite3", max_bytes=64 * 1024 * 1024)
        self.publisher = Publisher(
            broker.settings(f"edge-{uid}", "edge", site="hue"),
            f"edge-{uid}",
            self.spool,
            contract.edge_status_topic(self.site, self.edge_id),
        )
        self.encoder = EventEncoder(self.site, self.edge_id)
        frame = np.full((120, 160, 3), 90, np.uint8)
        self.jpeg = render_snapshot(frame, (10, 10, 60, 60), "car 0.90")
        self.sent: list[str] = []

    def emit(self, n: int) -> None:
        t0 = datetime.now(UTC)
        for _ in range(n):
            i = len(self.sent)
            eid = uuid.uuid4()
            start = t0 + timedelta(milliseconds=i)
            common = dict(
                event_id=eid,
                label="car",
                start_time=start,
                score=0.9,
                box=(0.1, 0.1, 0.4, 0.4),
                box_px=(10, 10, 60, 60),
            )
            new = Transition(type="new", seq=0, frame_time=start, snapshot=True, **common)
            end = Transition(type="end", seq=1, frame_time=start, end_time=start, **common)
            kw = dict(kind="object", analytic="test", camera_id="cam", zone=None, location=None)
            self.publisher.send(*self.encoder.encode(new, jpeg=self.jpeg, **kw))
            self.publisher.send(*self.encoder.encode(end, **kw))
            self.sent.append(str(eid))


def check_exactly_once_in_order(hub: Hub, sent: list[str], em: Emitter | None = None) -> dict:
    state: dict = {}

    def complete() -> list[dict] | None:
        ev = hub.all_events(camera="cam", order="asc", sort="received_at")
        ids = {e["id"] for e in ev}
        state.update(
            at_hub=len(ev),
            missing=len([i for i in sent if i not in ids]),
            not_ended=len([e for e in ev if e["state"] != "ended"]),
            no_snapshot=len([e for e in ev if not e["snapshot_url"]]),
        )
        if em is not None:
            state.update(
                spooled=len(em.spool),
                edge_connected=em.publisher.connected,
                edge_inflight=em.publisher._inflight_count(),
                edge_acked=em.publisher.published,
            )
        ok = len(ev) >= len(sent) and not state["not_ended"] and not state["no_snapshot"]
        return ev if ok else None

    try:
        got = wait_for(complete, 90, interval=1.0, what=f"{len(sent)} ended events at the hub")
    except AssertionError as exc:
        tail = hub.log_text()[-3000:]
        raise AssertionError(f"{exc}; state={state}; hub log tail: {tail}") from None
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)) == len(sent), "every event exactly once"
    assert ids == sent, "in the order they were sent"
    odd = [(i, e["id"], e["messages"]) for i, e in enumerate(got) if e["messages"] != 2]
    assert not odd, f"new + end applied once each: {odd}"
    assert all(e["snapshot_url"] for e in got)
    return {
        "sent": len(sent),
        "received": len(ids),
        "duplicate_messages_absorbed": hub.metric("edgewatch_hub_duplicate_messages"),
    }


def test_broker_outage_loses_nothing(tmp_path: Path, broker: Mosquitto, uid: str, hub: Hub) -> None:
    em = Emitter(tmp_path, broker, uid)
    em.publisher.start()
    try:
        em.emit(20)
        wait_for(lambda: len(em.spool) == 0, 20, what="first events delivered")
        broker.stop()
        t_down = time.monotonic()
        during = 0
        while time.monotonic() - t_down < 20:  # emit for 20 s with the broker down
            em.emit(10)
            during += 10
            time.sleep(0.45)
        spooled = len(em.spool)
        assert during >= 200 and spooled >= 2 * during
        broker.start()
        em.emit(20)
        stats = check_exactly_once_in_order(hub, em.sent, em)
        stats.update(emitted_during_outage=during, spooled_at_restart=spooled, outage_s=20)
        assert hub.metric("edgewatch_hub_mqtt_sessions_lost") == 0
        record("broker_outage", stats)
        wait_for(lambda: len(em.spool) == 0, 30, what="spool drained")
    finally:
        em.publisher.stop()


def test_hub_reports_a_broker_that_forgot_its_session(tmp_path: Path, uid: str) -> None:
    """A broker restarted without persistence loses queued messages: the hub must say so."""
    volatile = Mosquitto(tmp_path / "volatile", persistence=False)
    volatile.start()
    h = Hub(tmp_path, f"sqlite:///{tmp_path / 'hub.sqlite3'}", volatile, f"hub-{uid}")
    h.start()
    try:
        wait_for(lambda: h.metric("edgewatch_hub_mqtt_connected") == 1, 15, what="hub online")
        volatile.stop()
        volatile.start()
        wait_for(lambda: h.metric("edgewatch_hub_mqtt_sessions_lost") == 1, 30, what="session lost")
        assert "broker lost the hub's session" in h.log_text()
    finally:
        h.stop()
        volatile.stop()


def test_hub_outage_loses_nothing(tmp_path: Path, broker: Mosquitto, uid: str, hub: Hub) -> None:
    em = Emitter(tmp_path, broker, uid)
    em.publisher.start()
    try:
        em.emit(10)
        wait_for(lambda: len(hub.all_events(camera="cam")) == 10, 20, what="10 events")
        hub.stop()
        em.emit(150)  # the broker holds them in the hub's persistent session
        wait_for(lambda: len(em.spool) == 0, 30, what="broker took everything")
        hub.start()
        em.emit(10)
        stats = check_exactly_once_in_order(hub, em.sent, em)
        record("hub_outage", {**stats, "emitted_while_hub_down": 150})
    finally:
        em.publisher.stop()


def test_edge_restart_during_broker_outage_replays_spool(
    tmp_path: Path, broker: Mosquitto, uid: str, hub: Hub
) -> None:
    broker.stop()
    em = Emitter(tmp_path, broker, uid)
    em.publisher.start()
    em.emit(40)
    em.publisher.stop(drain_timeout_s=0)  # the worker dies with the broker down
    em.spool.close()
    assert len(Spool(tmp_path / "spool.sqlite3", 1 << 26)) == 120  # 40 x (snapshot, new, end)
    em2 = Emitter(tmp_path, broker, uid)  # a new process on the same spool
    em2.sent = em.sent
    em2.publisher.start()
    try:
        broker.start()
        stats = check_exactly_once_in_order(hub, em.sent, em2)
        record("edge_restart", stats)
    finally:
        em2.publisher.stop()


def test_hub_rejects_bad_input_and_keeps_going(
    tmp_path: Path, broker: Mosquitto, uid: str, hub: Hub
) -> None:
    # A stolen edge box: logged in as the edge, it may write only its own topics.
    client = broker.client(f"edge-{uid}", "edge", site="hue")
    events = contract.events_topic("hue", f"edge-{uid}")
    bad = [
        (events, b"{not json"),
        (events, b"\xff\xfe\x00binary"),
        (events, json.dumps({"schema_version": 1, "id": "nope"}).encode()),
        (events, json.dumps({"hello": "world"}).encode()),
        (events, b"[" + b"1," * 100_000 + b"1]"),  # 200 kB: too large
        (contract.snapshot_topic("hue", f"edge-{uid}", uuid.uuid4()), b"not a jpeg"),
        (contract.snapshot_topic("hue", f"edge-{uid}", uuid.uuid4()), b"\xff\xd8\xff" * 2_000_000),
        (contract.camera_status_topic("hue", f"edge-{uid}", "cam"), b'{"state": "on fire"}'),
        (contract.edge_status_topic("hue", f"edge-{uid}"), b"maybe"),
        (f"edgewatch/v1/hue/edge-{uid}/whatever", b"{}"),
        (f"edgewatch/v1/hue/edge-{uid}/events/not-a-uuid/snapshot", b"\xff\xd8\xff"),
    ]
    try:
        before = hub.metric("edgewatch_hub_messages_rejected")
        for topic, payload in bad:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        wait_for(
            lambda: hub.metric("edgewatch_hub_messages_rejected") - before >= len(bad),
            20,
            what="all bad messages rejected",
        )
        for reason in ("malformed", "schema", "too_large", "unknown_topic"):
            assert hub.metric("edgewatch_hub_messages_rejected", f'reason="{reason}"') >= 1
        client.disconnect()  # the edge's own publisher uses the same account (client id)
        # The consumer still works: a good event goes through.
        em = Emitter(tmp_path, broker, uid)
        em.publisher.start()
        em.emit(1)
        wait_for(lambda: len(hub.all_events(camera="cam")) == 1, 15, what="good event stored")
        em.publisher.stop()
        assert hub.proc is not None and hub.proc.poll() is None
        assert hub.get("/healthz")["status"] == "ok"
        assert '"message rejected"' in hub.log_text()
    finally:
        client.loop_stop()
        client.disconnect()


def test_broken_edge_config_and_missing_model_exit_2(tmp_path: Path, broker: Mosquitto) -> None:
    bad = Process(
        tmp_path,
        "bad",
        ["edge", "run"],
        {"edge_id": "e1", "site": "hue", "cameras": [{"id": "c", "url": "ftp://x"}]},
    )
    bad.start()
    assert bad.proc is not None and bad.proc.wait(30) == 2
    assert f"{bad.config_path}: cameras.0.url: scheme must be one of" in bad.log_text()

    missing = Process(
        tmp_path,
        "nomodel",
        ["edge", "run"],
        {
            "edge_id": "e1",
            "site": "hue",
            "mqtt": broker.mqtt("e1", "edge", site="hue"),
            "models": {"dir": str(tmp_path / "empty")},
            "cameras": [
                {"id": "c", "url": "rtsp://127.0.0.1:1/x", "analytics": [{"type": "objects"}]}
            ],
        },
    )
    missing.start()
    assert missing.proc is not None and missing.proc.wait(30) == 2
    text = missing.log_text()
    assert "model 'yolox_nano' not found" in text and "edgewatch models pull yolox_nano" in text
