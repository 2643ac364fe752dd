"""Generic readings at the hub, and the hub's kind lists taken from the analytics registry.

Readings travel as an edge sends them: a real mosquitto (TLS, one account per edge, the
ACLs of ``edgewatch.brokerauth``) and the hub's own MQTT consumer, in process on SQLite
and PostgreSQL; they are read back through the API. Whenever a test asserts that
something did *not* arrive, it first waits for a later genuine message from the same
connection (the broker keeps one publisher's order, the hub handles one at a time). The
dashboard's readings page is loaded in the Debian Chromium against a hub process.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from central.app import create_app
from central.auth import RANGER_KINDS
from central.config import FIRE_KINDS, AlertSettings, HubConfig, Team
from central.incidents import URGENT_KINDS
from central.ingest import Ingestor
from central.metrics import HubMetrics
from central.storage.db import make_engine, migrate, session_factory
from central.storage.models import ReadingRow
from edge.analytics import registry
from edgewatch import contract
from tests.helpers import Hub, Mosquitto, ensure_user, wait_for

SITE = "hue"
WEB = Path(__file__).resolve().parents[1] / "central" / "web"
REJECTED = "edgewatch_hub_messages_rejected_total"


def reading(
    camera: str,
    analytic: str,
    t: datetime,
    values: dict[str, float | None],
    *,
    analytic_type: str = "line_count",
    **kw: Any,
) -> bytes:
    msg = contract.ReadingMessage(
        camera_id=camera,
        analytic=analytic,
        analytic_type=analytic_type,
        time=t,
        period_s=kw.pop("period_s", 60.0),
        values=values,
        units=kw.pop("units", {k: "vehicles" for k in values}),
        **kw,
    )
    return msg.model_dump_json().encode()


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(10)


def counter(app: Any, name: str, **labels: str) -> float:
    total = 0.0
    for m in app.state.metrics.registry.collect():
        for s in m.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def rows(app: Any) -> int:
    with app.state.sessions() as s:
        return s.scalar(select(func.count()).select_from(ReadingRow)) or 0



@pytest.fixture(scope="module")
def broker(own_broker: Mosquitto) -> Mosquitto:
    """This module's hubs count every message and alert they get: a broker of its own."""
    return own_broker

@pytest.fixture
def consuming(db_url: str, broker: Mosquitto, uid: str) -> Iterator[TestClient]:
    """The hub with its MQTT consumer, in process, logged in to the broker as a hub."""
    hub_id = f"hub-rd-{uid}"
    cfg = HubConfig(database_url=db_url, mqtt=broker.mqtt(hub_id, "hub"), mqtt_client_id=hub_id)
    ensure_user(db_url, "op", "operator", "operator-password")
    # a 500 must show as a 500 here, not as an exception inside the test
    with TestClient(create_app(cfg), raise_server_exceptions=False) as client:
        assert client.app.state.consumer.connected.wait(15), "hub did not reach the broker"  # type: ignore[attr-defined]
        r = client.post(
            "/api/v1/auth/token", data={"username": "op", "password": "operator-password"}
        )
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client


def _ready(hub: TestClient, edge: mqtt.Client, edge_id: str) -> None:
    """The hub's subscription is live: a retained edge status came through it."""
    publish(edge, contract.edge_status_topic(SITE, edge_id), b"online", retain=True)
    wait_for(
        lambda: any(e["edge_id"] == edge_id for e in hub.get("/api/v1/edges").json()),
        15,
        what=f"{edge_id} seen by the hub",
    )


def test_readings_from_an_edge_are_stored_once_bound_to_it_and_read_back(
    consuming: TestClient, broker: Mosquitto, uid: str
) -> None:
    hub, app = consuming, consuming.app
    edge_a, edge_b = f"edge-ra-{uid}", f"edge-rb-{uid}"
    a = broker.client(edge_a, "edge", site=SITE)
    b = broker.client(edge_b, "edge", site=SITE)
    try:
        _ready(hub, a, edge_a)
        _ready(hub, b, edge_b)
        now = datetime.now(UTC).replace(microsecond=0)
        times = [now - timedelta(minutes=10 - i) for i in range(10)]
        own = contract.reading_topic(SITE, edge_a, "cam-1", "counts")

        def values(i: int) -> dict[str, float | None]:
            return {"car.forward": i, "car.backward": None if i == 4 else 2 * i, "bus.forward": 1}

        for i, t in enumerate(times):
            publish(a, own, reading("cam-1", "counts", t, values(i), state="free"))
        for t in times[:3]:  # replayed (the spool after an outage): absorbed
            publish(a, own, reading("cam-1", "counts", t, {"car.forward": 99}))
        # B's camera of the same name: its own series, bound to B
        b_topic = contract.reading_topic(SITE, edge_b, "cam-1", "counts")
        publish(b, b_topic, reading("cam-1", "counts", now, {"car.forward": 7}))
        # A on B's topic: the broker drops it, the hub never sees it
        publish(a, b_topic, reading("cam-1", "counts", now - timedelta(seconds=5), {"forged": 1}))
        # refused by the hub, each counted with its reason
        publish(a, own, b"{not json")
        nan = json.loads(reading("cam-1", "counts", now, {"car.forward": 1}))
        publish(a, own, json.dumps({**nan, "values": {"car.forward": float("nan")}}).encode())
        publish(a, own, reading("cam-9", "counts", now, {"car.forward": 1}))  # not the topic's
        publish(a, own, reading("cam-1", "other", now, {"car.forward": 1}))  # not the topic's
        publish(a, own, reading("cam-1", "counts", now + timedelta(hours=1), {"car.forward": 1}))
        publish(a, own, json.dumps({**nan, "values": {"bad name!": 1}}).encode())
        # ... then a genuine one from A, after all of the above
        last = contract.reading_topic(SITE, edge_a, "cam-2", "occupancy")
        publish(a, last, reading("cam-2", "occupancy", now, {"occupancy": 0.42}, units={}))
        wait_for(
            lambda: any(
                r["camera_id"] == "cam-2" for r in hub.get("/api/v1/readings/latest").json()
            ),
            15,
            what="A's last reading",
        )
        wait_for(
            lambda: hub.get(f"/api/v1/readings?edge_id={edge_b}").json()["items"],
            15,
            what="B's reading",
        )

        assert rows(app) == 12  # A's ten and one, B's one
        assert counter(app, "edgewatch_hub_messages_received_total", kind="reading") == 21
        assert counter(app, "edgewatch_hub_duplicate_messages_total") == 3
        assert counter(app, REJECTED, reason="malformed") == 2  # junk, NaN
        assert counter(app, REJECTED, reason="schema") == 3  # camera, analytic, value name
        assert counter(app, REJECTED, reason="clock_skew") == 1

        # latest: one per (site, edge, camera, analytic)
        latest = {
            (r["edge_id"], r["camera_id"], r["analytic"]): r
            for r in hub.get("/api/v1/readings/latest").json()
        }
        assert set(latest) == {
            (edge_a, "cam-1", "counts"),
            (edge_b, "cam-1", "counts"),
            (edge_a, "cam-2", "occupancy"),
        }
        mine = latest[(edge_a, "cam-1", "counts")]
        assert datetime.fromisoformat(mine["time"]) == times[-1]
        assert mine["values"] == {"car.forward": 9.0, "car.backward": 18.0, "bus.forward": 1.0}
        assert mine["units"]["car.forward"] == "vehicles"
        assert (mine["state"], mine["period_s"], mine["analytic_type"]) == (
            "free",
            60.0,
            "line_count",
        )
        assert mine["stale"] is False
        assert latest[(edge_b, "cam-1", "counts")]["values"] == {"car.forward": 7.0}

        # the list: newest first, filtered, bounded
        page = hub.get(
            "/api/v1/readings", params={"edge_id": edge_a, "camera_id": "cam-1", "limit": 4}
        ).json()
        got = [datetime.fromisoformat(r["time"]) for r in page["items"]]
        assert got == times[::-1][:4]
        assert all(r["values"]["car.forward"] != 99 for r in page["items"])  # replays absorbed
        since = hub.get(
            "/api/v1/readings",
            params={"edge_id": edge_a, "analytic": "counts", "since": times[7].isoformat()},
        ).json()
        assert len(since["items"]) == 3

        # the series: one value, oldest first, a gap where it was not measured
        q = {"camera_id": "cam-1", "analytic": "counts", "name": "car.backward"}
        r = hub.get("/api/v1/readings/series", params=q)
        assert r.status_code == 409, r.text  # two edges report a cam-1
        series = hub.get("/api/v1/readings/series", params={**q, "edge_id": edge_a}).json()
        assert [p["value"] for p in series["points"]] == [
            None if i == 4 else 2.0 * i for i in range(10)
        ]
        assert [datetime.fromisoformat(p["time"]) for p in series["points"]] == times
        assert (series["edge_id"], series["unit"]) == (edge_a, "vehicles")
        other = hub.get(
            "/api/v1/readings/series", params={**q, "name": "truck.forward", "edge_id": edge_a}
        ).json()
        assert [p["value"] for p in other["points"]] == [None] * 10
        window = hub.get(
            "/api/v1/readings/series",
            params={**q, "edge_id": edge_a, "since": times[5].isoformat(), "limit": 3},
        ).json()
        assert [datetime.fromisoformat(p["time"]) for p in window["points"]] == times[7:]
        assert b"forged" not in hub.get("/api/v1/readings?limit=1000").content

        # malformed queries: 4xx, never 500; far dates are clamped
        for path, params in [
            ("/api/v1/readings", {"limit": 0}),
            ("/api/v1/readings", {"limit": 10**30}),
            ("/api/v1/readings", {"camera_id": "no spaces"}),
            ("/api/v1/readings", {"since": "yesterday"}),
            ("/api/v1/readings/latest", {"edge_id": "x" * 65}),
            ("/api/v1/readings/series", {"camera_id": "cam-1", "analytic": "counts"}),
            ("/api/v1/readings/series", {**q, "name": "a/b"}),
            ("/api/v1/readings/series", {**q, "until": "1e400"}),
        ]:
            r = hub.get(path, params=params)
            assert r.status_code == 422, (path, params, r.status_code, r.text)
        for far in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1970-01-01"):
            r = hub.get("/api/v1/readings", params={"since": far, "until": far})
            assert r.status_code == 200, (far, r.status_code, r.text)
            r = hub.get("/api/v1/readings/series", params={**q, "edge_id": edge_a, "since": far})
            assert r.status_code == 200, (far, r.status_code, r.text)
        assert (
            len(
                hub.get(
                    "/api/v1/readings/series",
                    params={**q, "edge_id": edge_a, "since": "0001-01-01T00:00:00+14:00"},
                ).json()["points"]
            )
            == 10
        )
        assert hub.get("/api/v1/readings", headers={"Authorization": ""}).status_code == 401
    finally:
        for c in (a, b):
            c.disconnect()
            c.loop_stop()


def test_one_edge_cannot_open_readings_series_without_bound(db_url: str) -> None:
    cfg = HubConfig.model_validate(
        {"database_url": db_url, "limits": {"max_reading_series_per_edge": 2}}
    )
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    def send(ing: Ingestor, edge: str, camera: str, analytic: str, at: datetime) -> str:
        topic = contract.reading_topic(SITE, edge, camera, analytic)
        return ing.handle(topic, reading(camera, analytic, at, {"n": 1}))

    try:
        ing = Ingestor(sessions, cfg, HubMetrics())
        assert send(ing, "e1", "c1", "counts", t) == "stored"
        assert send(ing, "e1", "c1", "queue", t) == "stored"
        assert send(ing, "e1", "c2", "counts", t) == "rejected"  # a third series
        assert send(ing, "e1", "c1", "counts", t + timedelta(seconds=60)) == "stored"
        assert send(ing, "e2", "c2", "counts", t) == "stored"  # the bound is per edge
        assert send(ing, "e1", "c1", "counts", t) == "duplicate"
        # a restarted hub reads the series from the table: still bounded
        again = Ingestor(sessions, cfg, metrics := HubMetrics())
        assert send(again, "e1", "c3", "counts", t) == "rejected"
        assert send(again, "e1", "c1", "queue", t + timedelta(seconds=60)) == "stored"
        reasons = {
            s.labels["reason"]: s.value
            for m in metrics.registry.collect()
            for s in m.samples
            if s.name == REJECTED
        }
        assert reasons == {"too_many_series": 1.0}
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(ReadingRow)) == 5
    finally:
        engine.dispose()


def test_readings_older_than_the_retention_are_deleted_in_pages(db_url: str) -> None:
    from sqlalchemy import update

    from central.retention import RetentionJob, expire_readings

    cfg = HubConfig.model_validate({"database_url": db_url})
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    edge = f"e-ret-{datetime.now(UTC).timestamp():.0f}"
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    try:
        ing = Ingestor(sessions, cfg, HubMetrics())
        for k in range(5):
            topic = contract.reading_topic(SITE, edge, "c1", "counts")
            at = t + timedelta(seconds=60 * k)
            assert ing.handle(topic, reading("c1", "counts", at, {"n": k})) == "stored"
        now = datetime.now(UTC)
        with sessions.begin() as s:  # three of them arrived 91 days ago
            ids = sorted(s.scalars(select(ReadingRow.id).where(ReadingRow.edge_id == edge)))
            s.execute(
                update(ReadingRow)
                .where(ReadingRow.id.in_(ids[:3]))
                .values(received_at=now - timedelta(days=91))
            )
        assert cfg.limits.readings_retention_days == 90
        # pages of two rows: every page is deleted, the young readings stay
        assert expire_readings(sessions, now, 90, page=2) == 3
        with sessions() as s:
            left = sorted(s.scalars(select(ReadingRow.id).where(ReadingRow.edge_id == edge)))
        assert left == ids[3:]
        job = RetentionJob(sessions, 600, readings_days=90)
        assert job.readings_once(now) == 0
        assert job.readings_once(now + timedelta(days=91)) == 2
    finally:
        engine.dispose()


# -- the kind lists ------------------------------------------------------------------------


def test_hub_kind_lists_are_the_analytics_registrys() -> None:
    assert RANGER_KINDS == frozenset(registry.kinds_where(roles="ranger"))
    assert RANGER_KINDS >= {"forest_fire", "smoke", "straw_burning", "camera_offline"}
    assert not RANGER_KINDS & {"object", "red_light", "flood_level"}
    assert FIRE_KINDS == registry.kinds_where(incident="fire")
    assert set(FIRE_KINDS) >= {"forest_fire", "straw_burning", "smoke"}
    assert URGENT_KINDS == tuple(k for k in registry.kinds_where(urgent=True) if k in FIRE_KINDS)
    assert "forest_fire" in URGENT_KINDS and "smoke" not in URGENT_KINDS
    alerts = AlertSettings()
    assert alerts.urgent == [*registry.kinds_where(urgent=True), "flood_level:III"]
    assert alerts.is_urgent("forest_fire", "fire") and alerts.is_urgent("flood_level", "III")
    assert not alerts.is_urgent("flood_level", "II") and not alerts.is_urgent("smoke", "smoke")
    assert alerts.review_kinds == list(registry.kinds_where(review=True))
    old_review = {"red_light", "wrong_way", "lane_restriction", "no_stopping", "speeding"}
    assert set(alerts.review_kinds) >= old_review | {"no_helmet"}
    # a team takes fire kinds only, named by the registry's list
    assert Team(id="rangers", kinds=list(FIRE_KINDS)).kinds == list(FIRE_KINDS)
    with pytest.raises(ValueError, match="unknown kinds"):
        Team(id="rangers", kinds=["object"])
    # the dashboard colours alerts from the kind specs, not from names of its own
    js = (WEB / "app.js").read_text()
    assert '"straw_burning"' not in js and '"camera_offline"' not in js


def test_kinds_endpoint_serves_the_specs_and_a_ranger_only_its_own(
    hub: TestClient, db_url: str
) -> None:
    kinds = {k["name"]: k for k in hub.get("/api/v1/kinds").json()}
    assert set(kinds) == set(registry.kinds())
    assert kinds["forest_fire"]["severity"] == "urgent" and kinds["forest_fire"]["urgent"]
    assert kinds["forest_fire"]["incident"] == "fire"
    assert kinds["red_light"]["review"] and kinds["camera_offline"]["severity"] == "system"
    assert kinds["camera_offline"]["roles"] == ["ranger"]
    ensure_user(db_url, "rita", "ranger", "ranger-password-1")
    r = hub.post("/api/v1/auth/token", data={"username": "rita", "password": "ranger-password-1"})
    ranger = {"Authorization": f"Bearer {r.json()['access_token']}"}
    seen = {k["name"] for k in hub.get("/api/v1/kinds", headers=ranger).json()}
    assert seen == set(RANGER_KINDS)
    assert hub.get("/api/v1/kinds", headers={"Authorization": ""}).status_code == 401


# -- the dashboard -------------------------------------------------------------------------


@pytest.mark.e2e
def test_readings_page_lists_the_latest_and_charts_a_value(
    tmp_path: Path, broker: Mosquitto, uid: str
) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    hub = Hub(tmp_path, db, broker, f"hub-rdui-{uid}")
    ensure_user(db, "olivia", "operator", "operator-password-1")
    hub.start()
    edge_id = f"edge-rdui-{uid}"
    edge = broker.client(edge_id, "edge", site=SITE)
    try:
        publish(edge, contract.edge_status_topic(SITE, edge_id), b"online", retain=True)
        wait_for(
            lambda: any(e["edge_id"] == edge_id for e in hub.get("/api/v1/edges")),
            15,
            what="the hub subscribed",
        )
        now = datetime.now(UTC).replace(microsecond=0)
        topic = contract.reading_topic(SITE, edge_id, "bridge", "counts")
        for i in range(12):  # every 5 minutes over the last hour; one gap
            t = now - timedelta(minutes=5 * (11 - i))
            values = {"car.forward": 10 + i, "car.backward": None if i == 6 else 20 - i}
            publish(edge, topic, reading("bridge", "counts", t, values))
        queue = contract.reading_topic(SITE, edge_id, "bridge", "lane")
        publish(edge, queue, reading("bridge", "lane", now, {"occupancy": 0.5}, state="slow"))
        wait_for(
            lambda: len(hub.get("/api/v1/readings?limit=100")["items"]) == 13, 15, what="readings"
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                ctx = browser.new_context(viewport={"width": 1360, "height": 900})
                ctx.add_init_script(
                    "window.__csp = []; document.addEventListener('securitypolicyviolation',"
                    " (e) => window.__csp.push(e.violatedDirective));"
                )
                page = ctx.new_page()
                page.goto(f"{hub.base}/ui#/readings")
                page.wait_for_url(f"{hub.base}/login*")
                page.fill("#username", "olivia")
                page.fill("#password", "operator-password-1")
                page.click("#submit")
                page.wait_for_selector("body[data-ready='1']")
                page.goto(f"{hub.base}/ui#/readings")
                page.wait_for_selector("#readings-table")
                assert page.locator("#readings-table tbody tr").count() == 2
                table = page.inner_text("#readings-table")
                assert "car.forward: 21 vehicles" in table and "slow" in table
                # the first series (bridge · counts), its first value (car.backward)
                svg = page.wait_for_selector("#reading-svg")
                assert svg.get_attribute("data-points") == "11"  # twelve, one not measured
                assert page.locator("#reading-svg path.line").get_attribute("d").count("M") == 2
                page.select_option("#reading-name", "car.forward")
                page.wait_for_function(
                    "() => document.querySelector('#reading-svg')?.dataset.points === '12'"
                )
                key = f"{SITE}/{edge_id}/bridge/lane"
                page.click(f"#readings-table tr[data-key='{key}']")
                page.wait_for_function(
                    "() => document.querySelector('#reading-svg')?.dataset.points === '1'"
                )
                assert "bridge · lane" in page.inner_text("#reading-chart h2")
                assert page.evaluate("window.__csp") == []
                text = page.inner_text("#view")
                assert "undefined" not in text and "[object" not in text and "NaN" not in text
                artifacts = Path("test-artifacts")
                artifacts.mkdir(exist_ok=True)
                page.screenshot(path=str(artifacts / "dashboard_readings.png"), full_page=True)
            finally:
                browser.close()
    finally:
        edge.disconnect()
        edge.loop_stop()
        hub.stop()
