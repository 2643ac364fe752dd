"""Hostile payloads: refused by the contract alike on SQLite and PostgreSQL, never ``internal``.

Each bad payload goes through the hub's real consumer path (``MqttConsumer.process``
into ``Ingestor.handle``), so an exception that escapes the Ingestor shows up as the
``internal`` rejection it would be in production. Valid messages sent between the bad
ones must all be stored, and times with an offset must read back as the same instant.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from central.app import create_app
from central.config import HubConfig
from central.ingest import Ingestor, MqttConsumer
from central.metrics import HubMetrics
from central.storage.models import CameraRow, EventRow, HotspotReadingRow
from edgewatch import contract

SITE, EDGE, CAM = "hue", "edge-01", "cam-1"
HOTSPOT, HOTSPOT_CAM = "hue-001", "flood-001"  # as bound in configs/hotspots.geojson
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
EV_TOPIC = contract.events_topic(SITE, EDGE)
HS_TOPIC = contract.hotspot_topic(SITE, EDGE, HOTSPOT)
CAM_TOPIC = contract.camera_status_topic(SITE, EDGE, CAM)
ROOT = Path(__file__).resolve().parents[1]


def event_doc(**kw: object) -> dict:
    doc: dict = {
        "schema_version": 1,
        "id": str(uuid.uuid4()),
        "type": "new",
        "seq": 0,
        "kind": "object",
        "analytic": "vehicles",
        "label": "car",
        "site": SITE,
        "edge_id": EDGE,
        "camera_id": CAM,
        "start_time": T0.isoformat(),
        "frame_time": T0.isoformat(),
        "score": 0.5,
        "box": [0.1, 0.2, 0.3, 0.4],
        "attributes": {"plate": "43A-123.45", "count": 3, "speed": 41.5, "ok": True},
    }
    doc.update(kw)
    return doc


def hotspot_doc(t: datetime, **kw: object) -> dict:
    doc: dict = {
        "schema_version": 1,
        "hotspot_id": HOTSPOT,
        "camera_id": HOTSPOT_CAM,
        "analytic": "flood",
        "setup": "gauge",
        "time": t.isoformat(),
        "state": "II",
        "level_state": "II",
        "level_cm": 230.0,
        "raw_cm": 231.0,
        "trend_cm_per_h": 12.0,
        "next_level": "III",
        "eta_s": 3600,
        "period_s": 60,
        "levels": [{"name": "III", "level_cm": 300.0}],
    }
    doc.update(kw)
    return doc


def camera_doc(**kw: object) -> dict:
    doc: dict = {
        "schema_version": 1,
        "camera_id": CAM,
        "state": "online",
        "fps": 25.0,
        "reconnects": 0,
        "updated_at": T0.isoformat(),
        "pipeline": {
            "policy": "all",
            "decoder": "h264 (software)",
            "decode_fps": 25.0,
            "requested_fps": 5.0,
            "analysed_fps": 5.0,
            "dropped": 0,
            "skipped": 0,
            "width": 320,
            "height": 240,
            "faults": {"decode_errors": 0},
        },
    }
    doc.update(kw)
    return doc


def dumps(doc: object) -> bytes:
    return json.dumps(doc).encode()  # allow_nan: NaN/Infinity written as JS literals


def raw_event(field: str, literal: str) -> bytes:
    """An event whose ``field`` holds ``literal`` verbatim (json.dumps cannot write it)."""
    doc = event_doc(**{field: "@@"})
    return dumps(doc).replace(b'"@@"', literal.encode())


DEEP = 10_000
BAD: list[tuple[str, str, bytes, str]] = [
    # (name, topic, payload, reason)
    ("deep nesting", EV_TOPIC, b"[" * DEEP + b"]" * DEEP, "malformed"),
    ("deep nesting in a field", EV_TOPIC, raw_event("label", "[" * DEEP + "]" * DEEP), "malformed"),
    ("6000-digit int", EV_TOPIC, raw_event("seq", "9" * 6000), "malformed"),
    ("NaN", EV_TOPIC, dumps(event_doc(score=math.nan)), "malformed"),
    ("Infinity", EV_TOPIC, dumps(event_doc(score=math.inf)), "malformed"),
    ("-Infinity attribute", EV_TOPIC, dumps(event_doc(attributes={"x": -math.inf})), "malformed"),
    ("score 1e309", EV_TOPIC, raw_event("score", "1e309"), "malformed"),
    ("NUL in a string", EV_TOPIC, dumps(event_doc(label="car\x00")), "malformed"),
    ("NUL in a key", EV_TOPIC, dumps(event_doc(attributes={"pl\x00te": "x"})), "malformed"),
    ("NUL in camera error", CAM_TOPIC, dumps(camera_doc(error="boom\x00")), "malformed"),
    ("lone surrogate", EV_TOPIC, dumps(event_doc(label="\ud800")), "malformed"),
    (
        "invalid UTF-8",
        EV_TOPIC,
        dumps(event_doc(label="car")).replace(b"car", b"c\xffr"),
        "malformed",
    ),
    ("UTF-16", EV_TOPIC, json.dumps(event_doc()).encode("utf-16"), "malformed"),
    ("seq 2**31", EV_TOPIC, dumps(event_doc(seq=2**31)), "schema"),
    ("attribute int beyond int64", EV_TOPIC, dumps(event_doc(attributes={"n": 2**63})), "schema"),
    (
        "attribute string too long",
        EV_TOPIC,
        dumps(event_doc(attributes={"s": "x" * 501})),
        "schema",
    ),
    ("year 9999", EV_TOPIC, dumps(event_doc(start_time="9999-12-31T23:59:59+00:00")), "schema"),
    ("year 0001", EV_TOPIC, dumps(event_doc(frame_time="0001-01-01T00:00:00+01:00")), "schema"),
    ("reconnects 2**31", CAM_TOPIC, dumps(camera_doc(reconnects=2**31)), "schema"),
    ("period_s 1e15", HS_TOPIC, dumps(hotspot_doc(T0, period_s=1e15)), "schema"),
    ("level_cm NaN", HS_TOPIC, dumps(hotspot_doc(T0, level_cm=math.nan)), "malformed"),
    ("level_cm 1e12", HS_TOPIC, dumps(hotspot_doc(T0, level_cm=1e12)), "schema"),
    ("eta_s 1e300", HS_TOPIC, dumps(hotspot_doc(T0, eta_s=1e300)), "schema"),
    ("hotspot year 9999", HS_TOPIC, dumps(hotspot_doc(T0.replace(year=9999))), "schema"),
]


@dataclass
class Hub:
    app: FastAPI
    ingestor: Ingestor
    consumer: MqttConsumer
    metrics: HubMetrics
    sessions: sessionmaker[Session]
    outcomes: list[str]

    def deliver(self, topic: str, payload: bytes) -> str:
        """As the broker would: through the consumer; "internal" when handle raised."""
        before = len(self.outcomes)
        self.consumer.process([(None, _Message(topic, payload))])  # type: ignore[list-item]
        return self.outcomes[before] if len(self.outcomes) > before else "internal"

    def rejected(self, reason: str) -> float:
        return (
            self.metrics.registry.get_sample_value(
                "edgewatch_hub_messages_rejected_total", {"reason": reason}
            )
            or 0.0
        )


@dataclass
class _Message:
    topic: str
    payload: bytes
    qos: int = 0
    mid: int = 0


@pytest.fixture
def hub(db_url: str) -> Iterator[Hub]:
    """The hub's own wiring (migrated database, Ingestor, metrics), with no broker."""
    cfg = HubConfig(database_url=db_url, hotspots_file=ROOT / "configs" / "hotspots.geojson")
    app = create_app(cfg, consume=False)
    ingestor: Ingestor = app.state.ingestor
    metrics: HubMetrics = app.state.metrics
    consumer = MqttConsumer(cfg, ingestor, metrics)
    outcomes: list[str] = []
    handle = ingestor.handle

    def recording(topic: str, payload: bytes) -> str:
        outcome = handle(topic, payload)
        outcomes.append(outcome)
        return outcome

    ingestor.handle = recording  # type: ignore[method-assign]
    yield Hub(app, ingestor, consumer, metrics, app.state.sessions, outcomes)
    app.state.engine.dispose()


def test_strict_loads_refuses_each_class_with_a_short_reason() -> None:
    cases = {
        b"[" * DEEP + b"]" * DEEP: "nested deeper",
        b"[" + b"1" * 6000 + b"]": "digits",
        b"[NaN]": "NaN",
        b"[-Infinity]": "Infinity",
        b"[1e309]": "out of range",
        b'{"a\\u0000": 1}': "key",
        b'["a\\u0000"]': "string",
        b"\xff": "UTF-8",
        b"{oops": "not JSON",
    }
    for payload, reason in cases.items():
        with pytest.raises(contract.PayloadError, match=reason):
            contract.loads(payload, 1 << 20)
    with pytest.raises(contract.PayloadTooLarge):
        contract.loads(b"[]" * 10, 8)
    # Brackets and escapes inside strings are not nesting; an escaped backslash is no NUL.
    assert contract.loads(b'["[[[[\\"{{{{" , "\\\\u0000"]', 100) == ['[[[["{{{{', "\\u0000"]
    assert contract.loads(b"[" * 32 + b"]" * 32, 100) is not None
    assert contract.loads(b"[-" + b"9" * 20 + b"]", 100) == [-int("9" * 20)]


def test_hostile_payloads_are_refused_alike_and_valid_ones_around_them_stored(hub: Hub) -> None:
    stored: list[str] = []

    def valid(i: int) -> None:
        eid = str(uuid.uuid4())
        assert hub.deliver(EV_TOPIC, dumps(event_doc(id=eid))) == "stored"
        stored.append(eid)
        t = T0 + timedelta(minutes=i)
        assert hub.deliver(HS_TOPIC, dumps(hotspot_doc(t))) == "stored"

    got = []
    for i, (name, topic, payload, _reason) in enumerate(BAD):
        valid(i)
        before = {r: hub.rejected(r) for r in ("malformed", "schema", "too_large", "internal")}
        outcome = hub.deliver(topic, payload)
        moved = [r for r, v in before.items() if hub.rejected(r) != v]
        got.append((name, outcome, moved))
    valid(len(BAD))
    expected = [(name, "rejected", [reason]) for name, _t, _p, reason in BAD]
    assert got == expected
    assert hub.rejected("internal") == 0
    with hub.sessions() as s:
        ids = set(s.scalars(select(EventRow.id)))
        assert ids == set(stored)
        assert s.scalar(select(func.count()).select_from(HotspotReadingRow)) == len(BAD) + 1
        assert s.scalar(select(func.count()).select_from(CameraRow)) == 0


def test_times_with_an_offset_read_back_as_the_same_instant_in_utc(hub: Hub) -> None:
    plus7 = "2026-11-21T15:00:00+07:00"  # == T0
    eid = str(uuid.uuid4())
    doc = event_doc(id=eid, start_time=plus7, frame_time=plus7)
    assert hub.deliver(EV_TOPIC, dumps(doc)) == "stored"
    assert hub.deliver(CAM_TOPIC, dumps(camera_doc(updated_at=plus7))) == "stored"
    # The same instant, written in UTC: a replay, and an older status is stale.
    assert hub.deliver(HS_TOPIC, dumps(hotspot_doc(T0, time=plus7))) == "stored"
    assert hub.deliver(HS_TOPIC, dumps(hotspot_doc(T0))) == "duplicate"
    older = (T0 - timedelta(minutes=1)).isoformat()
    assert hub.deliver(CAM_TOPIC, dumps(camera_doc(updated_at=older))) == "duplicate"
    with hub.sessions() as s:
        ev = s.get(EventRow, eid)
        assert ev is not None
        for value in (ev.start_time, ev.frame_time):
            assert value == T0 and value.utcoffset() == timedelta(0), value
        assert s.scalar(select(EventRow.id).where(EventRow.start_time == T0)) == eid
        since = datetime.fromisoformat("2026-11-21T14:59:00+07:00")
        assert s.scalar(select(EventRow.id).where(EventRow.start_time > since)) == eid
        cam = s.get(CameraRow, (SITE, EDGE, CAM))
        assert cam is not None and cam.updated_at == T0
        assert cam.updated_at.utcoffset() == timedelta(0)
        hs = s.scalars(select(HotspotReadingRow)).one()
        assert hs.time == T0 and hs.time.utcoffset() == timedelta(0)
    assert hub.rejected("internal") == 0


def test_hotspot_endpoints_stay_valid_json_after_hostile_readings(hub: Hub) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    assert hub.deliver(HS_TOPIC, dumps(hotspot_doc(now))) == "stored"
    later = now + timedelta(seconds=1)  # stored, each would be the newest reading
    for bad in (
        hotspot_doc(later, period_s=1e15),
        hotspot_doc(later, level_cm=math.nan),
        hotspot_doc(later, raw_cm=math.inf),
        hotspot_doc(later, trend_cm_per_h=-math.inf),
        hotspot_doc(later, eta_s=1e300),
        hotspot_doc(later, reason="glare\x00"),
    ):
        assert hub.deliver(HS_TOPIC, dumps(bad)) == "rejected"
    assert hub.rejected("internal") == 0
    client = TestClient(hub.app)
    for url in ("/api/v1/hotspots", f"/api/v1/hotspots/{HOTSPOT}/history"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        contract.loads(r.content)  # strict: no NaN, no Infinity
    f = {x["id"]: x for x in client.get("/api/v1/hotspots").json()["features"]}
    assert f[HOTSPOT]["properties"]["level_cm"] == 230.0
    assert not f[HOTSPOT]["properties"]["stale"]


def _sample(metrics: HubMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_a_batch_stores_and_refuses_each_message_as_one_at_a_time_would(hub: Hub) -> None:
    """The consumer commits what it has received in one transaction (Ingestor.handle_batch).
    Hostile messages inside the batch are refused alone, each counted once; the valid ones
    around them, an event's later update and replay, and repeated statuses in the same
    batch come out as they would one message at a time."""
    items: list[tuple[str, bytes]] = []
    expected: list[str] = []
    stored: list[str] = []
    for i, (_name, topic, payload, _reason) in enumerate(BAD):
        eid = str(uuid.uuid4())
        stored.append(eid)
        t = T0 + timedelta(minutes=i)
        items += [
            (EV_TOPIC, dumps(event_doc(id=eid))),
            (topic, payload),
            (EV_TOPIC, dumps(event_doc(id=eid, seq=1, type="update", score=0.9))),
            (EV_TOPIC, dumps(event_doc(id=eid, seq=1, type="update", score=0.9))),  # replay
            (HS_TOPIC, dumps(hotspot_doc(t))),
            (CAM_TOPIC, dumps(camera_doc(updated_at=t.isoformat()))),
            (contract.ROOT + "/config/hue/edge-01/cameras", b"{}"),  # the hub's own topic
        ]
        expected += ["stored", "rejected", "stored", "duplicate", "stored", "stored", "duplicate"]
    before = _sample(hub.metrics, "edgewatch_hub_messages_stored_total", {"kind": "event"})
    got = hub.ingestor.handle_batch(items)
    assert got == expected
    for reason in {r for _n, _t, _p, r in BAD}:
        assert hub.rejected(reason) == sum(1 for *_x, r in BAD if r == reason), reason
    assert hub.rejected("internal") == 0
    after = _sample(hub.metrics, "edgewatch_hub_messages_stored_total", {"kind": "event"})
    assert after - before == 2 * len(BAD)  # each new event and its update, once
    with hub.sessions() as s:
        assert set(s.scalars(select(EventRow.id))) == set(stored)
        assert set(s.scalars(select(EventRow.messages))) == {2}
        assert set(s.scalars(select(EventRow.score))) == {0.9}
        assert s.scalar(select(func.count()).select_from(HotspotReadingRow)) == len(BAD)
        cam = s.get(CameraRow, (SITE, EDGE, CAM))
        assert cam is not None and cam.updated_at == T0 + timedelta(minutes=len(BAD) - 1)


def test_a_batch_that_fails_in_storage_is_retried_whole_and_acknowledged_after(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage error in the middle of a batch rolls all of it back; the consumer retries,
    and acknowledges each message (in order) only after the batch is committed."""
    from sqlalchemy.exc import OperationalError

    ids = [str(uuid.uuid4()) for _ in range(5)]
    batch = [
        (_Acks(), _Message(EV_TOPIC, dumps(event_doc(id=e)), qos=1, mid=k))
        for k, e in enumerate(ids)
    ]
    real = hub.ingestor._handlers["event"]
    calls = {"n": 0}

    def flaky(session, topic, payload):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # the third message of the first try
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(session, topic, payload)

    monkeypatch.setitem(hub.ingestor._handlers, "event", flaky)
    monkeypatch.setattr("central.ingest.time.sleep", lambda s: None)
    hub.consumer.process(batch)  # type: ignore[arg-type]
    assert calls["n"] == 3 + 5  # up to the failure, then the whole batch again
    assert [c.acked for c, _m in batch] == [[(k, 1)] for k in range(5)]
    assert _sample(hub.metrics, "edgewatch_hub_storage_errors_total") == 1
    with hub.sessions() as s:
        assert set(s.scalars(select(EventRow.id))) == set(ids)
        assert set(s.scalars(select(EventRow.messages))) == {1}


class _Acks:
    """Stands in for the paho client: records what the consumer acknowledges."""

    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append((mid, qos))
