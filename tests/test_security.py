"""Attacks from the broker's network, each one a test: a real mosquitto (TLS, accounts,
ACLs from edgewatch.brokerauth) and a real hub process, plus the ingest rules in process
on SQLite and PostgreSQL.

Whenever a test asserts that something did *not* arrive, it first sends a later genuine
message and waits for it: the hub handles messages one at a time and in order, so by
then the forged one was handled (or never came).
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from central.api.events import snapshot_of
from central.config import HubConfig
from central.ingest import Ingestor
from central.metrics import HubMetrics
from central.storage.db import as_utc, make_engine, migrate, session_factory
from central.storage.models import CameraRow, EdgeRow, EventRow, EvidenceFileRow
from edgewatch import contract
from edgewatch.brokerauth import CONFIGS
from edgewatch.mqtt import MqttSettings, make_client
from tests.helpers import Hub, Mosquitto, connect_code, wait_for

pytestmark = pytest.mark.e2e

U = uuid.uuid4().hex[:6]  # one per module run: accounts and hub ids never collide
SITE = "hue"
HUB_ID = f"hub-sec-{U}"
EDGE_A, EDGE_B = f"edge-a-{U}", f"edge-b-{U}"
SPOT, SPOT_MARK, SPOT_B = f"spot-{U}", f"spot-mark-{U}", f"spot-b-{U}"
RIVER, RIVER_MARK, RIVER_B = "river", "river-mark", "river-b"
LEVELS = [{"name": "I", "level_cm": 60}, {"name": "II", "level_cm": 80}]
MAX_CAMERAS = 20
REJECTED = "edgewatch_hub_messages_rejected"
RECEIVED = "edgewatch_hub_messages_received"
DISCONNECTS = "edgewatch_hub_mqtt_disconnects"
INT32_MAX = 2**31 - 1


# -- payloads ----------------------------------------------------------------------------


def jpeg(tag: str) -> bytes:
    return b"\xff\xd8\xff\xe0" + tag.encode() * 32


def snap_ref(edge: str, eid: uuid.UUID, data: bytes) -> dict[str, Any]:
    return {
        "topic": contract.snapshot_topic(SITE, edge, eid),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }


def event(
    eid: uuid.UUID,
    seq: int,
    edge: str,
    *,
    type_: str | None = None,
    camera: str = "cam-sec",
    score: float = 0.6,
    **extra: Any,
) -> bytes:
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    doc: dict[str, Any] = {
        "schema_version": 1,
        "id": str(eid),
        "type": type_ or ("new" if seq == 0 else "update"),
        "seq": seq,
        "kind": "object",
        "analytic": "vehicles",
        "label": "car",
        "site": SITE,
        "edge_id": edge,
        "camera_id": camera,
        "start_time": t0.isoformat(),
        "frame_time": (t0 + timedelta(seconds=1)).isoformat(),
        "score": score,
        "box": [0.1, 0.2, 0.3, 0.4],
        **extra,
    }
    if doc["type"] == "end":
        doc["end_time"] = doc["frame_time"]
    contract.EventMessage.model_validate(doc)  # a mistake here must not pass as "rejected"
    return json.dumps(doc).encode()


def camera_status(camera: str, state: str = "online", at: datetime | None = None) -> bytes:
    return (
        contract.CameraStatus(
            camera_id=camera, state=state, fps=5.0, reconnects=0, updated_at=at or datetime.now(UTC)
        )
        .model_dump_json(exclude_none=True)
        .encode()
    )


def reading(
    spot: str, camera: str, t: datetime, state: str = "II", level: float = 85.0, **kw: Any
) -> dict[str, Any]:
    doc = contract.HotspotReading(
        hotspot_id=spot,
        camera_id=camera,
        analytic="flood",
        setup="gauge",
        time=t,
        state=state,
        level_state=kw.pop("level_state", state),
        level_cm=level,
        period_s=60,
        **kw,
    )
    return doc.model_dump(mode="json", exclude_none=True)


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()  # json.dumps writes NaN as the bare token NaN


def hotspots_file(path: Path) -> Path:
    def feature(hid: str, edge: str, camera: str, lon: float) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, 16.46]},
            "properties": {
                "id": hid,
                "name": f"Test gauge {hid}",
                "period_s": 60,
                "levels": LEVELS,
                "camera": {"site": SITE, "edge_id": edge, "camera_id": camera},
            },
        }

    doc = {
        "type": "FeatureCollection",
        "features": [
            feature(SPOT, EDGE_A, RIVER, 107.58),
            feature(SPOT_MARK, EDGE_A, RIVER_MARK, 107.59),
            feature(SPOT_B, EDGE_B, RIVER_B, 107.60),
        ],
    }
    path.write_text(json.dumps(doc))
    return path


# -- MQTT and hub helpers ----------------------------------------------------------------


class Peer:
    """A logged-in paho client: QoS 1 publishes that wait for PUBACK; what it is sent."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.got: list[tuple[str, bytes]] = []
        self._subacks: dict[int, list] = {}
        client.on_message = lambda c, u, m: self.got.append((m.topic, m.payload))
        client.on_subscribe = lambda c, u, mid, codes, p: self._subacks.__setitem__(mid, codes)

    def pub(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"no PUBACK for {topic}"

    def sub(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        wait_for(lambda: self._subacks.get(mid), 10, what=f"SUBACK for {topic}")

    def topics(self) -> list[str]:
        return [t for t, _ in self.got]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def http_code(hub: Hub, path: str) -> int:
    try:
        hub.get(path)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def event_of(hub: Hub, eid: uuid.UUID) -> dict | None:
    """The event as the API shows it; None while the hub has not stored it."""
    try:
        return hub.get(f"/api/v1/events/{eid}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def cameras_of(hub: Hub, edge: str) -> dict[str, dict]:
    body = hub.get(f"/api/v1/cameras?edge={edge}&limit=1000")
    items = body["items"] if isinstance(body, dict) else body  # paged or not
    return {c["camera_id"]: c for c in items if c["edge_id"] == edge}


def public_feed(hub: Hub) -> dict[str, dict]:
    body = hub.get("/api/v1/hotspots", auth=False)
    text = body.decode() if isinstance(body, bytes) else json.dumps(body)

    def refuse(name: str) -> None:
        raise AssertionError(f"public feed holds {name}: not valid JSON")

    doc = json.loads(text, parse_constant=refuse)
    assert doc["type"] == "FeatureCollection"
    return {f["id"]: f["properties"] for f in doc["features"]}


def rejected(hub: Hub, reason: str) -> float:
    return hub.metric(REJECTED, f'reason="{reason}"')


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Hub]:
    """One hub process (SQLite) for the module, logged in with its own hub account."""
    if mosquitto.proc is None:
        mosquitto.start()
    d = tmp_path_factory.mktemp("security-hub")
    h = Hub(
        d,
        f"sqlite:///{d / 'hub.sqlite3'}",
        mosquitto,
        HUB_ID,
        extra={
            "limits": {"max_cameras_per_edge": MAX_CAMERAS},
            "hotspots_file": str(hotspots_file(d / "hotspots.geojson")),
        },
    )
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def edges(mosquitto: Mosquitto, hub: Hub) -> Iterator[dict[str, Peer]]:
    """Edges A and B, each logged in with its own edge account (one connection each)."""
    peers = {e: Peer(mosquitto.client(e, "edge", site=SITE)) for e in (EDGE_A, EDGE_B)}
    yield peers
    for p in peers.values():
        p.close()


# -- 1. who may connect --------------------------------------------------------------------


def test_anonymous_wrong_password_and_revoked_accounts_are_refused(broker: Mosquitto) -> None:
    name = f"edge-r-{U}"
    good = broker.settings(name, "edge", site=SITE)
    assert connect_code(good, name) == 0  # the control: a valid account gets in
    doc = good.model_dump(mode="json")
    doc["password"] = good.password.get_secret_value()  # type: ignore[union-attr]
    anonymous = MqttSettings.model_validate({**doc, "username": None, "password": None})
    wrong = MqttSettings.model_validate({**doc, "password": "not-the-password"})
    plain = MqttSettings.model_validate(
        {**doc, "url": doc["url"].replace("mqtts", "mqtt"), "tls": None}
    )
    # > 0: the broker answered and refused (-1 would be no answer at all)
    assert connect_code(anonymous, "anon") > 0
    assert connect_code(wrong, name) > 0
    assert connect_code(plain, name, timeout=3) != 0  # no plain-text MQTT on the TLS port
    assert broker.auth.revoke(name)
    broker.reload()
    wait_for(lambda: connect_code(good, name) > 0, 10, what="revoked account refused")


# -- 2. an edge may write only its own topics -------------------------------------------------


def test_edge_cannot_publish_on_another_edges_topics(hub: Hub, edges: dict[str, Peer]) -> None:
    a = edges[EDGE_A]
    forged_id, own_id = uuid.uuid4(), uuid.uuid4()
    received = hub.metric(RECEIVED)
    now = datetime.now(UTC)
    # A writes on B's topics, with payloads that name B (the old hub stored all of them)
    a.pub(contract.events_topic(SITE, EDGE_B), event(forged_id, 0, EDGE_B, camera="cam-2"))
    a.pub(contract.camera_status_topic(SITE, EDGE_B, "cam-2"), camera_status("cam-2"))
    a.pub(
        contract.hotspot_topic(SITE, EDGE_B, SPOT_B),
        raw(reading(SPOT_B, RIVER_B, now, "normal", 5.0)),
    )
    # ... then its own messages
    a.pub(contract.events_topic(SITE, EDGE_A), event(own_id, 0, EDGE_A, camera="cam-2"))
    a.pub(contract.camera_status_topic(SITE, EDGE_A, "cam-2"), camera_status("cam-2"))
    wait_for(lambda: "cam-2" in cameras_of(hub, EDGE_A), 15, what="A's camera stored")
    assert http_code(hub, f"/api/v1/events/{own_id}") == 200
    assert hub.metric(RECEIVED) - received == 2, "only A's own two messages reached the hub"
    assert http_code(hub, f"/api/v1/events/{forged_id}") == 404
    assert cameras_of(hub, EDGE_B) == {}
    assert public_feed(hub)[SPOT_B]["reason"] == "no_reading"


# -- 3. team topics ------------------------------------------------------------------------


def test_team_topics_are_written_by_the_hub_and_read_by_their_team_only(
    broker: Mosquitto, edges: dict[str, Peer]
) -> None:
    x, y = f"x{U}", f"y{U}"
    topic_x, topic_y = f"edgewatch/v1/teams/{x}/incidents", f"edgewatch/v1/teams/{y}/incidents"
    config_a = f"{CONFIGS}/{SITE}/{EDGE_A}/probe"  # the hub writes it, only A reads it
    team_x = Peer(broker.client(f"team-{x}", "team"))
    team_y = Peer(broker.client(f"team-{y}", "team"))
    hub_pub = Peer(broker.client(f"hub-pub-{U}", "hub"))  # not the module hub's account
    edge = edges[EDGE_A]
    # A client without credentials: refused, so it never subscribes nor gets anything.
    anon_codes: list[int] = []
    anon_got: list[str] = []
    anon_cfg = MqttSettings.model_validate(
        {"url": broker.url, "tls": {"ca_file": str(broker.auth.ca_file)}}
    )
    anon = make_client(anon_cfg, f"anon-{U}", clean_session=True)

    def anon_connected(c, u, flags, rc, props) -> None:  # type: ignore[no-untyped-def]
        anon_codes.append(int(rc.value))
        if not rc.is_failure:
            c.subscribe("#", qos=1)

    anon.on_connect = anon_connected
    anon.on_message = lambda c, u, m: anon_got.append(m.topic)
    anon.connect(anon_cfg.host, anon_cfg.port, keepalive=10)
    anon.loop_start()
    try:
        team_x.sub(f"edgewatch/v1/teams/{x}/#")
        team_x.sub(f"edgewatch/v1/teams/{y}/#")  # X tries to read Y's topic
        team_x.sub("#")
        team_y.sub(f"edgewatch/v1/teams/{y}/#")
        edge.sub("edgewatch/v1/teams/#")  # an edge tries to read team topics
        edge.sub(f"{CONFIGS}/{SITE}/{EDGE_A}/#")
        edge.pub(topic_y, b'{"forged": true}')  # ... and to write one
        hub_pub.pub(topic_y, b'{"genuine": "y"}')
        hub_pub.pub(topic_x, b'{"genuine": "x"}')
        hub_pub.pub(config_a, b"{}")
        wait_for(lambda: team_y.got, 10, what="Y's incident at team Y")
        wait_for(lambda: team_x.got, 10, what="X's incident at team X")
        wait_for(lambda: config_a in edge.topics(), 10, what="the edge's own config")
        wait_for(lambda: anon_codes, 10, what="a CONNACK for the anonymous client")
        assert team_y.got == [(topic_y, b'{"genuine": "y"}')], "Y got the hub's message only"
        assert team_x.topics() == [topic_x], "X never sees Y's topic"
        assert [t for t in edge.topics() if "/teams/" in t] == [], "an edge reads no team topic"
        assert anon_codes and all(c != 0 for c in anon_codes) and anon_got == []
    finally:
        anon.loop_stop()
        anon.disconnect()
        for p in (team_x, team_y, hub_pub):
            p.close()
        edge.client.unsubscribe("edgewatch/v1/teams/#")


# -- 4. the public flood feed ------------------------------------------------------------------


def test_public_flood_feed_believes_only_the_configured_camera(
    hub: Hub, edges: dict[str, Peer]
) -> None:
    a, b = edges[EDGE_A], edges[EDGE_B]
    now = datetime.now(UTC)
    genuine_t = now - timedelta(seconds=20)
    a.pub(contract.hotspot_topic(SITE, EDGE_A, SPOT), raw(reading(SPOT, RIVER, genuine_t)))
    p = wait_for(lambda: (f := public_feed(hub)[SPOT])["updated_at"] and f, 15, what="reading")
    assert p["state"] == "II" and p["level_cm"] == 85.0 and not p["stale"]

    before = {r: rejected(hub, r) for r in ("wrong_camera", "clock_skew", "malformed", "schema")}
    received = hub.metric(RECEIVED, 'kind="hotspot"')
    later = now - timedelta(seconds=5)  # newer than the genuine one: accepted, it would show
    topic_a = contract.hotspot_topic(SITE, EDGE_A, SPOT)
    a.pub(topic_a, raw(reading(SPOT, "other-cam", later, "normal", 5.0)))  # wrong camera
    b.pub(  # B's account, B's own topic, the right camera id
        contract.hotspot_topic(SITE, EDGE_B, SPOT), raw(reading(SPOT, RIVER, later, "normal", 5.0))
    )
    b.pub(topic_a, raw(reading(SPOT, RIVER, later, "normal", 5.0)))  # B on A's topic: dropped
    a.pub(topic_a, raw(reading(SPOT, RIVER, now + timedelta(days=365), "normal", 5.0)))
    nan = raw({**reading(SPOT, RIVER, later), "level_cm": float("nan")})
    assert b'"level_cm": NaN' in nan
    a.pub(topic_a, nan)
    a.pub(topic_a, raw(reading(SPOT, RIVER, later, "III", 130.0)))  # H has no level III
    a.pub(topic_a, raw(reading(SPOT, RIVER, later, "normal", 5.0, level_state="gone")))
    # the later genuine message: a reading of another hotspot of A's
    a.pub(
        contract.hotspot_topic(SITE, EDGE_A, SPOT_MARK),
        raw(reading(SPOT_MARK, RIVER_MARK, now, "I", 65.0)),
    )
    wait_for(lambda: public_feed(hub)[SPOT_MARK]["state"] == "I", 15, what="the marker reading")

    got = {r: rejected(hub, r) - n for r, n in before.items()}
    assert got == {"wrong_camera": 2, "clock_skew": 1, "malformed": 1, "schema": 2}, got
    assert hub.metric(RECEIVED, 'kind="hotspot"') - received == 7, "B's write on A's topic arrived"
    p = public_feed(hub)[SPOT]
    assert p["state"] == "II" and p["last_known_state"] == "II" and p["level_cm"] == 85.0
    assert abs(datetime.fromisoformat(p["updated_at"]) - genuine_t) < timedelta(milliseconds=1)
    history = hub.get(f"/api/v1/hotspots/{SPOT}/history", auth=False)
    assert [pt["level_cm"] for pt in history["points"]] == [85.0]


# -- 5. another edge's event ----------------------------------------------------------------


def test_another_edge_cannot_take_over_an_event_its_snapshot_or_evidence(
    hub: Hub, edges: dict[str, Peer]
) -> None:
    a, b = edges[EDGE_A], edges[EDGE_B]
    eid, late_id = uuid.uuid4(), uuid.uuid4()
    real, unannounced, forged = jpeg("A-real"), jpeg("A-unannounced"), jpeg("B-forged")
    real_at, junk_at = jpeg("A-at"), jpeg("B-junk-at")
    attrs = {"speed_kmh": 42}
    ref = snap_ref(EDGE_A, eid, real)
    a.pub(contract.snapshot_topic(SITE, EDGE_A, eid), real)
    a.pub(
        contract.events_topic(SITE, EDGE_A), event(eid, 0, EDGE_A, snapshot=ref, attributes=attrs)
    )
    wait_for(lambda: http_code(hub, f"/api/v1/events/{eid}") == 200, 15, what="A's event")
    ev = hub.get(f"/api/v1/events/{eid}")
    assert ev["snapshot_url"] and hub.get(ev["snapshot_url"]) == real

    foreign = rejected(hub, "foreign_edge")
    duplicates = hub.metric("edgewatch_hub_duplicate_messages")
    b_events = contract.events_topic(SITE, EDGE_B)
    huge = dict(type_="end", score=1.0, attributes={"speed_kmh": 999, "note": "pwned"})
    b.pub(b_events, event(eid, INT32_MAX, EDGE_B, **huge))
    b.pub(b_events, event(eid, 1, EDGE_B, **huge))
    b.pub(contract.snapshot_topic(SITE, EDGE_B, eid), forged)
    b.pub(contract.evidence_topic(SITE, EDGE_B, eid, "at.jpg"), junk_at)
    # B's junk evidence for an event the hub has not seen yet, then A's event and file
    b.pub(contract.evidence_topic(SITE, EDGE_B, late_id, "at.jpg"), junk_at)
    a.pub(contract.events_topic(SITE, EDGE_A), event(late_id, 0, EDGE_A))
    a.pub(contract.evidence_topic(SITE, EDGE_A, late_id, "at.jpg"), real_at)
    a.pub(contract.evidence_topic(SITE, EDGE_A, eid, "at.jpg"), real_at)
    # a JPEG of A's that the event never announced
    a.pub(contract.snapshot_topic(SITE, EDGE_A, eid), unannounced)
    # A's next message, after all of the above
    a.pub(
        contract.events_topic(SITE, EDGE_A), event(eid, 1, EDGE_A, snapshot=ref, attributes=attrs)
    )
    ev = wait_for(
        lambda: (e := hub.get(f"/api/v1/events/{eid}"))["messages"] == 2 and e,
        15,
        what="A's update stored",
    )
    assert hub.metric("edgewatch_hub_duplicate_messages") == duplicates, "A's seq 1 was no dup"
    assert [u["seq"] for u in ev["timeline"]] == [0, 1]
    assert (ev["edge_id"], ev["state"], ev["score"]) == (EDGE_A, "active", 0.6)
    assert ev["attributes"] == attrs
    assert rejected(hub, "foreign_edge") - foreign == 4
    assert hub.get(ev["snapshot_url"]) == real, "the announced JPEG, not B's nor the unannounced"
    assert hub.get(f"/api/v1/events/{eid}/evidence/at.jpg") == real_at
    assert hub.get(f"/api/v1/events/{late_id}/evidence/at.jpg") == real_at
    files = hub.get(f"/api/v1/events/{late_id}/evidence")["files"]
    assert [(f["name"], f["sha256"]) for f in files] == [
        ("at.jpg", hashlib.sha256(real_at).hexdigest())
    ]
    # an event that announced no snapshot gets none, whatever JPEG its edge sends
    bare = uuid.uuid4()
    a.pub(contract.events_topic(SITE, EDGE_A), event(bare, 0, EDGE_A))
    a.pub(contract.snapshot_topic(SITE, EDGE_A, bare), unannounced)
    a.pub(contract.events_topic(SITE, EDGE_A), event(bare, 1, EDGE_A))
    wait_for(lambda: (event_of(hub, bare) or {}).get("messages") == 2, 15, what="bare event")
    assert hub.get(f"/api/v1/events/{bare}")["snapshot_url"] is None
    assert http_code(hub, f"/api/v1/events/{bare}/snapshot.jpg") == 404


# -- 6. the hub's client id and account ---------------------------------------------------------


def test_edge_account_using_the_hubs_client_id_does_not_unseat_the_hub(
    broker: Mosquitto, hub: Hub, edges: dict[str, Peer]
) -> None:
    disconnects = hub.metric(DISCONNECTS)
    lost = hub.metric("edgewatch_hub_mqtt_sessions_lost")
    cfg = broker.settings(f"edge-t-{U}", "edge", site=SITE)
    attacker = make_client(cfg, HUB_ID, clean_session=True)  # the hub's client id
    connected, dropped = threading.Event(), []
    attacker.on_connect = lambda *a: connected.set() if not a[3].is_failure else None
    attacker.on_disconnect = lambda *a: dropped.append(a[3])
    attacker.connect(cfg.host, cfg.port, keepalive=10)
    attacker.loop_start()  # it reconnects by itself: it would fight the hub for the id
    try:
        assert connected.wait(10)
        ids = [uuid.uuid4() for _ in range(20)]
        for eid in ids:
            edges[EDGE_A].pub(
                contract.events_topic(SITE, EDGE_A), event(eid, 0, EDGE_A, camera="cam-6")
            )
        wait_for(lambda: len(hub.all_events(camera="cam-6")) == 20, 20, what="20 events")
        assert {e["id"] for e in hub.all_events(camera="cam-6")} == {str(i) for i in ids}
        assert hub.metric(DISCONNECTS) == disconnects
        assert hub.metric("edgewatch_hub_mqtt_sessions_lost") == lost
        assert dropped == [], "the broker kept both: the attacker's id became its username"
        health = hub.get("/healthz")
        assert health["status"] == "ok" and health["mqtt_flapping"] is False, health
    finally:
        attacker.loop_stop()
        attacker.disconnect()


def test_stolen_hub_password_makes_the_hub_report_flapping(
    tmp_path: Path, broker: Mosquitto
) -> None:
    hub_id = f"hub-flap-{U}"
    hub = Hub(tmp_path, f"sqlite:///{tmp_path / 'hub.sqlite3'}", broker, hub_id)
    hub.start()
    try:
        assert hub.get("/healthz")["status"] == "ok"
        stolen = broker.settings(hub_id, "hub")  # the hub's own account and password
        for i in range(1, 4):
            wait_for(lambda: hub.get("/healthz")["mqtt"], 20, what="hub back on the broker")
            assert connect_code(stolen, "thief") == 0
            wait_for(lambda i=i: hub.metric(DISCONNECTS) >= i, 10, what=f"disconnect {i}")
        health = hub.get("/healthz")
        assert health["status"] == "degraded" and health["mqtt_flapping"] is True, health
        assert hub.metric(DISCONNECTS) >= 3
        assert hub.metric("edgewatch_hub_mqtt_flapping") == 1
        assert "hub broker connection is flapping" in hub.log_text()
    finally:
        hub.stop()


# -- 7. fleet cap ------------------------------------------------------------------------------


def test_one_edge_cannot_flood_the_fleet_with_cameras(broker: Mosquitto, hub: Hub) -> None:
    name = f"edge-c-{U}"
    c = Peer(broker.client(name, "edge", site=SITE))
    too_many = rejected(hub, "too_many_cameras")
    try:
        cams = [f"cam-{i:03d}" for i in range(100)]
        for cam in cams:
            c.pub(contract.camera_status_topic(SITE, name, cam), camera_status(cam))
        # a known camera still updates
        c.pub(contract.camera_status_topic(SITE, name, cams[0]), camera_status(cams[0], "degraded"))
        wait_for(
            lambda: cameras_of(hub, name).get(cams[0], {}).get("reported_state") == "degraded",
            20,
            what="the known camera's update",
        )
    finally:
        c.close()
    assert sorted(cameras_of(hub, name)) == cams[:MAX_CAMERAS]
    assert rejected(hub, "too_many_cameras") - too_many == 100 - MAX_CAMERAS


# -- 8. clock skew -----------------------------------------------------------------------------


def test_a_status_from_a_fast_clock_does_not_freeze_the_camera(broker: Mosquitto, hub: Hub) -> None:
    name = f"edge-d-{U}"
    d = Peer(broker.client(name, "edge", site=SITE))
    topic = contract.camera_status_topic(SITE, name, "cam-skew")
    try:
        d.pub(topic, camera_status("cam-skew", "degraded", datetime.now(UTC) + timedelta(hours=1)))
        cam = wait_for(lambda: cameras_of(hub, name).get("cam-skew"), 15, what="first status")
        assert datetime.fromisoformat(cam["updated_at"]) <= datetime.now(UTC), "clamped"
        skew = hub.metric("edgewatch_hub_edge_clock_skew_seconds", f'edge="{name}"')
        assert 3500 < skew < 3700, skew
        d.pub(topic, camera_status("cam-skew", "online"))
        cam = wait_for(
            lambda: (c := cameras_of(hub, name)["cam-skew"])["reported_state"] == "online" and c,
            15,
            what="the normal status applied",
        )
        assert cam["state"] == "online"
        skew = hub.metric("edgewatch_hub_edge_clock_skew_seconds", f'edge="{name}"')
        assert abs(skew) < 30, skew
    finally:
        d.close()


# -- the same rules in process, on SQLite and PostgreSQL ------------------------------------------


def test_ingest_rules_hold_on_each_database(db_url: str) -> None:
    cfg = HubConfig.model_validate(
        {
            "database_url": db_url,
            "limits": {"max_cameras_per_edge": 3, "max_seq_step": 100},
        }
    )
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    metrics = HubMetrics()
    ing = Ingestor(sessions, cfg, metrics)

    def reasons() -> dict[str, float]:
        out = {}
        for m in metrics.registry.collect():
            for s in m.samples:
                if s.name == REJECTED + "_total":
                    out[s.labels["reason"]] = s.value
        return out

    a, b = "edge-a", "edge-b"
    eid, late = uuid.uuid4(), uuid.uuid4()
    real, forged, real_at, junk_at = jpeg("real"), jpeg("forged"), jpeg("at"), jpeg("junk")
    ref = snap_ref(a, eid, real)
    ev_a, ev_b = contract.events_topic(SITE, a), contract.events_topic(SITE, b)
    try:
        assert ing.handle(contract.snapshot_topic(SITE, a, eid), real) == "stored"
        assert ing.handle(ev_a, event(eid, 0, a, snapshot=ref, attributes={"k": 1})) == "stored"
        assert ing.handle(ev_b, event(eid, INT32_MAX, b, type_="end", score=1.0)) == "rejected"
        assert ing.handle(ev_b, event(eid, 1, b, type_="end", score=1.0)) == "rejected"
        assert ing.handle(ev_a, event(eid, INT32_MAX, a, type_="end")) == "rejected"  # seq_jump
        assert ing.handle(contract.snapshot_topic(SITE, b, eid), forged) == "rejected"
        assert ing.handle(contract.evidence_topic(SITE, b, eid, "at.jpg"), junk_at) == "rejected"
        assert ing.handle(contract.evidence_topic(SITE, b, late, "at.jpg"), junk_at) == "stored"
        assert ing.handle(ev_a, event(late, 0, a)) == "stored"
        assert ing.handle(contract.evidence_topic(SITE, a, late, "at.jpg"), real_at) == "stored"
        assert ing.handle(contract.snapshot_topic(SITE, a, eid), jpeg("unannounced")) == "stored"
        assert ing.handle(ev_a, event(eid, 1, a, snapshot=ref, attributes={"k": 1})) == "stored"
        for i in range(5):
            cam = f"c{i}"
            ing.handle(contract.camera_status_topic(SITE, a, cam), camera_status(cam))
        skew_topic = contract.camera_status_topic(SITE, b, "skew")
        ahead = datetime.now(UTC) + timedelta(hours=1)
        assert ing.handle(skew_topic, camera_status("skew", "degraded", ahead)) == "stored"
        assert ing.handle(skew_topic, camera_status("skew", "online")) == "stored"

        got = reasons()
        assert (got.get("foreign_edge"), got.get("seq_jump")) == (4, 1), got
        assert got.get("too_many_cameras") == 2, got
        with sessions() as s:
            row = s.get(EventRow, str(eid))
            assert row is not None
            assert (row.edge_id, row.state, row.score, row.last_seq) == (a, "active", 0.6, 1)
            assert row.attributes == {"k": 1} and row.messages == 2
            snap = snapshot_of(s, row)
            assert snap is not None and snap.jpeg == real
            mine = s.get(EvidenceFileRow, (str(late), SITE, a, "at.jpg"))
            assert mine is not None and mine.data == real_at
            n = s.query(CameraRow).filter(CameraRow.edge_id == a).count()
            assert n == 3
            cam = s.get(CameraRow, (SITE, b, "skew"))
            assert cam is not None and cam.state == "online"
            assert as_utc(cam.updated_at) <= datetime.now(UTC)  # type: ignore[operator]
            edge = s.get(EdgeRow, (SITE, b))
            assert edge is not None and abs(edge.clock_skew_s or 0) < 30
    finally:
        engine.dispose()


def test_an_edge_subscribing_outside_its_grants_is_told_why(
    tmp_path: Path, broker: Mosquitto, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A signal feed on a topic the edge may not read gets nothing from the broker (mosquitto
    grants the subscription and delivers nothing): the edge says so in its log instead of
    waiting silently for a signal that never comes; a feed under signals/ arrives."""
    from edge.transport.publisher import Publisher
    from edge.transport.spool import Spool

    edge = f"sub-{uid}"
    pub = Publisher(
        broker.settings(edge, "edge", site="hue"),
        edge,
        Spool(tmp_path / "spool.sqlite3", max_bytes=1 << 20),
        contract.edge_status_topic("hue", edge),
    )
    got: list[str] = []
    pub.subscribe("city/signals/junction-7", lambda t, p: got.append(t))
    pub.subscribe("edgewatch/v1/signals/ctl/junction-7", lambda t, p: got.append(t))
    caplog.set_level("INFO", logger="edge.transport.publisher")
    pub.start()
    try:
        wait_for(
            lambda: any("outside this edge's grants" in r.getMessage() for r in caplog.records),
            10,
            what="the refused subscription logged",
        )
        refused = [r for r in caplog.records if "outside this edge" in r.getMessage()]
        assert [r.topic for r in refused] == ["city/signals/junction-7"]  # type: ignore[attr-defined]
        ctl = broker.client("ctl", "signal")
        ctl.publish("edgewatch/v1/signals/ctl/junction-7", b'{"state": "red"}', qos=1)
        wait_for(lambda: got, 10, what="the permitted signal feed")
        assert got == ["edgewatch/v1/signals/ctl/junction-7"]
        ctl.disconnect()
        ctl.loop_stop()
    finally:
        pub.stop(drain_timeout_s=0)
