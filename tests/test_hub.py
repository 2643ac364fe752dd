"""The hub's ingest rules and API, on SQLite and PostgreSQL (no broker needed here)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from edgewatch import contract

SITE, EDGE = "hue", "edge-01"
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def event(eid: uuid.UUID, type_: str, seq: int, **kw: object) -> bytes:
    doc = {
        "schema_version": 1,
        "id": str(eid),
        "type": type_,
        "seq": seq,
        "kind": "object",
        "analytic": "vehicles",
        "label": "car",
        "site": SITE,
        "edge_id": EDGE,
        "camera_id": kw.pop("camera_id", "cam-1"),
        "start_time": kw.pop("start", T0).isoformat(),
        "frame_time": (T0 + timedelta(seconds=seq)).isoformat(),
        "score": 0.5 + seq / 10,
        "box": [0.1, 0.2, 0.3, 0.4],
    }
    if type_ == "end":
        doc["end_time"] = (T0 + timedelta(seconds=seq)).isoformat()
    doc.update(kw)
    return json.dumps(doc).encode()


def snap_ref(eid: uuid.UUID, jpeg: bytes = JPEG) -> dict:
    """The ``snapshot`` field an event uses to announce its JPEG."""
    return {
        "topic": contract.snapshot_topic(SITE, EDGE, eid),
        "sha256": hashlib.sha256(jpeg).hexdigest(),
        "bytes": len(jpeg),
    }


def handle(client: TestClient, topic: str, payload: bytes) -> str:
    return client.app.state.ingestor.handle(topic, payload)  # type: ignore[attr-defined]


EV_TOPIC = contract.events_topic(SITE, EDGE)


def test_event_lifecycle_is_idempotent_and_ordered_by_seq(hub: TestClient) -> None:
    eid = uuid.uuid4()
    assert handle(hub, EV_TOPIC, event(eid, "new", 0)) == "stored"
    assert handle(hub, EV_TOPIC, event(eid, "new", 0)) == "duplicate"
    assert handle(hub, EV_TOPIC, event(eid, "end", 2, snapshot=snap_ref(eid))) == "stored"
    assert handle(hub, EV_TOPIC, event(eid, "update", 1)) == "duplicate"  # late: ignored
    assert handle(hub, contract.snapshot_topic(SITE, EDGE, eid), JPEG) == "stored"
    assert handle(hub, contract.snapshot_topic(SITE, EDGE, eid), JPEG) == "duplicate"
    page = hub.get("/api/v1/events").json()
    assert page["total"] == 1
    e = page["items"][0]
    assert e["state"] == "ended" and e["messages"] == 2 and e["score"] == pytest.approx(0.7)
    assert e["snapshot_url"] == f"/api/v1/events/{eid}/snapshot.jpg"
    r = hub.get(e["snapshot_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content == JPEG
    assert hub.get(f"/api/v1/events/{uuid.uuid4()}").status_code == 404
    assert hub.get(f"/api/v1/events/{uuid.uuid4()}/snapshot.jpg").status_code == 404
    m = hub.get("/metrics").text
    assert "edgewatch_hub_duplicate_messages_total 3.0" in m


def test_filters_and_pagination(hub: TestClient) -> None:
    ids = []
    for i in range(7):
        eid = uuid.uuid4()
        ids.append(str(eid))
        handle(
            hub,
            EV_TOPIC,
            event(
                eid,
                "new",
                0,
                start=T0 + timedelta(minutes=i),
                camera_id="cam-a" if i % 2 else "cam-b",
            ),
        )
    handle(hub, EV_TOPIC, event(uuid.UUID(ids[0]), "end", 1))
    everything = hub.get("/api/v1/events?order=asc").json()
    assert [e["id"] for e in everything["items"]] == ids
    page = hub.get("/api/v1/events?limit=3&offset=3").json()
    assert page["total"] == 7 and [e["id"] for e in page["items"]] == ids[::-1][3:6]
    assert hub.get("/api/v1/events?camera=cam-a").json()["total"] == 3
    assert hub.get("/api/v1/events?state=ended").json()["total"] == 1
    assert hub.get("/api/v1/events?state=active&camera=cam-b").json()["total"] == 3
    since = (T0 + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert hub.get(f"/api/v1/events?since={since}").json()["total"] == 2
    assert hub.get("/api/v1/events?kind=fire").json()["total"] == 0
    assert hub.get("/api/v1/events?limit=0").status_code == 422


def test_bad_payloads_are_rejected_counted_and_harmless(hub: TestClient) -> None:
    cases = {
        "malformed": [
            (EV_TOPIC, b"{oops"),
            (EV_TOPIC, b"\xff\xfe"),
            (contract.snapshot_topic(SITE, EDGE, uuid.uuid4()), b"GIF89a"),
        ],
        "schema": [
            (EV_TOPIC, b"{}"),
            (EV_TOPIC, event(uuid.uuid4(), "explode", 0)),
            (EV_TOPIC, event(uuid.uuid4(), "new", 0, score=7)),
            (EV_TOPIC, event(uuid.uuid4(), "new", 0, extra_field=1)),
            (EV_TOPIC, event(uuid.uuid4(), "new", 0, site="elsewhere")),
            (EV_TOPIC, event(uuid.uuid4(), "new", 0, start_time="2026-11-21T08:00:00")),
            (contract.camera_status_topic(SITE, EDGE, "c"), b'{"camera_id": "c"}'),
            (contract.edge_status_topic(SITE, EDGE), b"sleepy"),
        ],
        "too_large": [
            (EV_TOPIC, b" " * 70_000),
            (
                contract.snapshot_topic(SITE, EDGE, uuid.uuid4()),
                b"\xff\xd8\xff" + b"\x00" * 5_000_000,
            ),
        ],
        "unknown_topic": [
            ("edgewatch/v1/hue", b"{}"),
            ("other/app", b"{}"),
            (f"edgewatch/v1/{SITE}/{EDGE}/events/xyz/snapshot", JPEG),
        ],
    }
    for reason, msgs in cases.items():
        for topic, payload in msgs:
            assert handle(hub, topic, payload) == "rejected", (reason, topic, payload[:40])
    metrics = hub.get("/metrics").text
    for reason, msgs in cases.items():
        line = f'edgewatch_hub_messages_rejected_total{{reason="{reason}"}} {len(msgs)}.0'
        assert line in metrics
    assert hub.get("/api/v1/events").json()["total"] == 0
    assert handle(hub, EV_TOPIC, event(uuid.uuid4(), "new", 0)) == "stored"


def test_cameras_edges_and_stale_status(hub: TestClient) -> None:
    def status(state: str, at: datetime) -> bytes:
        return (
            contract.CameraStatus(
                camera_id="cam-1",
                state=state,
                fps=25.0,  # type: ignore[arg-type]
                last_frame_time=at,
                reconnects=2,
                updated_at=at,
            )
            .model_dump_json()
            .encode()
        )

    topic = contract.camera_status_topic(SITE, EDGE, "cam-1")
    assert handle(hub, topic, status("online", T0 + timedelta(seconds=10))) == "stored"
    assert handle(hub, topic, status("offline", T0)) == "duplicate"  # older: ignored
    handle(hub, contract.edge_status_topic(SITE, EDGE), b"online")
    cams = hub.get("/api/v1/cameras").json()["items"]
    assert [(c["camera_id"], c["state"], c["reconnects"]) for c in cams] == [("cam-1", "online", 2)]
    assert hub.get("/api/v1/edges").json()[0] | {"updated_at": None} == {
        "site": SITE,
        "edge_id": EDGE,
        "state": "online",
        "cameras": 1,
        "updated_at": None,
    }
    handle(hub, contract.edge_status_topic(SITE, EDGE), b"offline")  # the LWT
    cam = hub.get("/api/v1/cameras").json()["items"][0]
    assert cam["state"] == "offline" and cam["reported_state"] == "online"


def test_openapi_contract_and_health(hub: TestClient) -> None:
    paths = hub.get("/openapi.json").json()["paths"]
    for p in (
        "/api/v1/events",
        "/api/v1/events/{event_id}",
        "/api/v1/events/{event_id}/snapshot.jpg",
        "/api/v1/cameras",
        "/api/v1/edges",
        "/healthz",
        "/metrics",
    ):
        assert p in paths
    assert hub.get("/docs").status_code == 200
    health = hub.get("/healthz").json()
    assert health == {  # no consumer
        "status": "degraded",
        "database": True,
        "mqtt": False,
        "mqtt_flapping": False,
    }
