"""Incidents end to end on real parts: mosquitto, the hub process, a webhook receiver and a
Web Push service on loopback (VAPID verified, payload decrypted), an MQTT team subscriber.

Alerts are published to the broker as an edge publishes them (the contract's event JSON).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.incidents import bearings_cross, distance_m
from edgewatch import contract
from tests.helpers import Hub, Mosquitto, wait_for
from tests.receivers import PushService, WebhookReceiver

NORTH_AREA = [(107.40, 16.30), (107.70, 16.30), (107.70, 16.60), (107.40, 16.60)]
CAM_A = (16.40, 107.50)  # lat, lon: a forest camera in the hills
CAM_B = (16.40, 107.52)  # 2.1 km east of A
CAM_FAR = (16.10, 107.90)  # outside the rangers' area, 50 km away


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto):
    tmp = tmp_path_factory.mktemp("incidents")
    uid = uuid.uuid4().hex[:8]
    rangers = WebhookReceiver("ranger-secret")
    ioc = WebhookReceiver("ioc-secret")
    env = WebhookReceiver("env-secret")
    push = PushService()
    teams = [
        {
            "id": "rangers-north",
            "kinds": ["forest_fire", "smoke"],
            "area": NORTH_AREA,
            "ack_timeout_s": 4,
            "escalate_to": "ioc",
            "cooldown_s": 300,
            "enrol_token": "enrol-123",
            "channels": [
                {"type": "webhook", "url": rangers.url, "secret": "ranger-secret"},
                {"type": "mqtt"},  # edgewatch/v1/teams/rangers-north/incidents
                {"type": "webpush"},
            ],
        },
        {
            "id": "environment",
            "kinds": ["straw_burning"],
            "digest_s": 3,
            "channels": [{"type": "webhook", "url": env.url, "secret": "env-secret"}],
        },
        {
            "id": "ioc",
            "kinds": ["forest_fire", "smoke", "straw_burning"],
            "ack_timeout_s": 600,
            "channels": [{"type": "webhook", "url": ioc.url, "secret": "ioc-secret"}],
        },
    ]
    hub = Hub(
        tmp,
        f"sqlite:///{tmp / 'hub.sqlite3'}",
        mosquitto,
        f"hub-{uid}",
        extra={
            "teams": teams,
            "incidents": {
                "ops_team": "ioc",
                "merge_distance_m": 5000,
                "retry_initial_s": 0.3,
                "retry_max_s": 1.0,
            },
            "push": {"vapid_key_file": str(tmp / "vapid.pem"), "subject": "mailto:ioc@hue.example"},
        },
    )
    hub.start()
    push.vapid_public = hub.get("/api/v1/push/vapid_public_key")["key"]
    # the team's MQTT topic, as a gateway would subscribe to it
    team_msgs: list[dict] = []
    # (the team's own broker account: it reads its team topic and nothing else)
    sub = mosquitto.client("team-rangers-north", "team")
    sub.on_message = lambda c, u, m: team_msgs.append(json.loads(m.payload))
    sub.subscribe("edgewatch/v1/teams/rangers-north/incidents", qos=1)
    pub = mosquitto.client(f"edge-{uid}", "edge", site="hue")
    w = {
        "hub": hub,
        "rangers": rangers,
        "ioc": ioc,
        "env": env,
        "push": push,
        "team_msgs": team_msgs,
        "pub": pub,
        "uid": uid,
    }
    yield w
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()
    hub.stop()
    for r in (rangers, ioc, env, push):
        r.stop()


def alert(
    w: dict,
    camera: str,
    kind: str,
    where: tuple[float, float],
    bearing: float | None,
    label: str = "fire",
) -> str:
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    attrs: dict[str, Any] = {"land_use": "forest", "urgent": kind == "forest_fire"}
    if bearing is not None:
        attrs["target_bearing_deg"] = bearing
    msg = contract.EventMessage(
        id=event_id,
        type="new",
        seq=0,
        kind=kind,
        analytic="fire",
        label=label,
        site="hue",
        edge_id=f"edge-{w['uid']}",
        camera_id=camera,
        start_time=now,
        frame_time=now,
        score=0.8,
        box=(0.4, 0.4, 0.6, 0.7),
        zone="hills",
        location=contract.Location(lat=where[0], lon=where[1]),
        attributes=attrs,
    )
    topic = contract.events_topic("hue", f"edge-{w['uid']}")
    w["pub"].publish(topic, msg.model_dump_json().encode(), qos=1).wait_for_publish(5)
    return str(event_id)


def incident_of(hub: Hub, event_id: str) -> dict:
    def find() -> dict | None:
        for inc in hub.get("/api/v1/incidents?limit=1000"):
            d = hub.get(f"/api/v1/incidents/{inc['id']}")
            if any(a["event_id"] == event_id for a in d["alert_list"]):
                return d
        return None

    return wait_for(find, 10, what=f"incident with event {event_id}")


def test_geometry_of_bearings() -> None:
    assert distance_m(CAM_A, CAM_B) == pytest.approx(2134, rel=0.01)
    # A looks north-east, B north-west: they cross north, between them
    cross = bearings_cross(CAM_A, 45.0, CAM_B, 315.0, 20000)
    assert cross is not None and cross[0] > CAM_A[0] and CAM_A[1] < cross[1] < CAM_B[1]
    assert bearings_cross(CAM_A, 45.0, CAM_B, 135.0, 20000) is None  # B looks away
    assert bearings_cross(CAM_A, 90.0, CAM_B, 90.0, 20000) is None  # parallel


def test_forest_fire_reaches_rangers_on_every_channel_and_merges_a_second_camera(
    world: dict,
) -> None:
    w = world
    hub: Hub = w["hub"]
    code, _ = hub.post(
        "/api/v1/teams/rangers-north/subscriptions",
        {**w["push"].subscribe("ranger-phone"), "token": "enrol-123"},
    )
    assert code == 201
    code, _ = hub.post(
        "/api/v1/teams/rangers-north/subscriptions",
        {**w["push"].subscribe("intruder"), "token": "wrong"},
    )
    assert code == 403
    t0 = time.time()
    first = alert(w, "cam-a", "forest_fire", CAM_A, 45.0)
    hook = wait_for(lambda: w["rangers"].valid(), 5, what="ranger webhook")[0]
    webhook_s = hook.time - t0
    assert hook.body["kind"] == "forest_fire" and hook.body["urgent"] is True
    assert hook.body["reason"] == "new" and hook.body["team"] == "rangers-north"
    assert hook.body["alerts"][0]["camera_id"] == "cam-a"
    assert hook.body["location"] == {"lat": CAM_A[0], "lon": CAM_A[1]}
    pushed = wait_for(lambda: w["push"].valid(), 5, what="web push")[0]
    assert pushed.body["incident_id"] == hook.body["incident_id"]  # decrypted and verified
    assert {k.lower(): v for k, v in pushed.headers.items()}.get("ttl") == "3600"
    assert (
        wait_for(lambda: w["team_msgs"], 5, what="team MQTT")[0]["incident_id"]
        == (hook.body["incident_id"])
    )
    assert webhook_s < 2.0, webhook_s
    # camera B, 2 km away, sees the same plume: its bearing crosses A's
    second = alert(w, "cam-b", "forest_fire", CAM_B, 315.0)
    inc = incident_of(hub, second)
    assert inc["id"] == hook.body["incident_id"] and inc["alerts"] == 2
    assert inc["est_lat"] > CAM_A[0] and CAM_A[1] < inc["est_lon"] < CAM_B[1]
    assert [a["action"] for a in inc["audit"]][:3] == ["opened", "notified", "merged"]
    time.sleep(1.0)  # within the cooldown: no second round of notifications
    assert len(w["rangers"].valid()) == 1
    # a far-away camera is a different incident, routed to the ops centre (outside the area)
    far = alert(w, "cam-far", "smoke", CAM_FAR, 270.0)
    other = incident_of(hub, far)
    assert other["id"] != inc["id"] and other["team_id"] == "ioc"
    assert first


def test_unacknowledged_fire_escalates_and_ack_stops_it(world: dict) -> None:
    w = world
    hub: Hub = w["hub"]
    before_ioc = len(w["ioc"].valid())
    # incident 1: nobody acks -> after 4 s it goes to the IOC
    e1 = alert(w, "cam-c", "forest_fire", (16.45, 107.45), None)
    inc1 = incident_of(hub, e1)
    # incident 2: a ranger acks from the notification's link
    e2 = alert(w, "cam-d", "forest_fire", (16.55, 107.65), None)
    inc2 = incident_of(hub, e2)
    hook2 = wait_for(
        lambda: [r for r in w["rangers"].valid() if r.body.get("incident_id") == inc2["id"]],
        5,
        what="ranger webhook for incident 2",
    )[0]
    ack_path = hook2.body["ack_url"].split(f":{hub.port}", 1)[1]
    code, _ = hub.post(ack_path.replace("token=", "token=rangers-north.forged"), {})
    assert code == 403
    code, body = hub.post(ack_path, {"actor": "ranger Lan", "note": "on our way"})
    assert code == 200 and body["state"] == "acknowledged"
    code, again = hub.post(ack_path, {})
    assert code == 409 and "already used" in again["detail"]  # a link works once
    escalated = wait_for(
        lambda: [
            r
            for r in w["ioc"].valid()[before_ioc:]
            if r.body.get("incident_id") == inc1["id"] and r.body["reason"] == "escalation"
        ],
        15,
        what="escalation of incident 1 to the IOC",
    )
    assert escalated[0].body["escalation_level"] == 1
    time.sleep(5)  # past incident 2's ack timeout
    assert not [r for r in w["ioc"].valid() if r.body.get("incident_id") == inc2["id"]]
    d2 = hub.get(f"/api/v1/incidents/{inc2['id']}")
    # the link's team acted, whatever name the body claimed
    assert d2["state"] == "acknowledged" and d2["acked_by"] == "team:rangers-north"
    assert any(
        a["action"] == "acknowledged"
        and a["actor"] == "team:rangers-north"
        and a["note"] == "on our way"
        for a in d2["audit"]
    )
    d1 = hub.get(f"/api/v1/incidents/{inc1['id']}")
    assert any(a["action"] == "escalated" for a in d1["audit"])


def test_failed_webhooks_are_retried_with_backoff_and_logged(world: dict) -> None:
    w = world
    hub: Hub = w["hub"]
    w["rangers"].fail_next = 2
    attempts_before = w["rangers"].attempts
    e = alert(w, "cam-e", "forest_fire", (16.35, 107.42), None)
    inc = incident_of(hub, e)
    got = wait_for(
        lambda: [r for r in w["rangers"].valid() if r.body.get("incident_id") == inc["id"]],
        10,
        what="webhook delivered after retries",
    )
    assert len(got) == 1 and w["rangers"].attempts - attempts_before >= 3
    d = hub.get(f"/api/v1/incidents/{inc['id']}")
    hook = next(x for x in d["deliveries"] if x["channel"] == "webhook")
    assert hook["state"] == "sent" and hook["attempts"] == 3


def test_straw_burning_goes_to_the_environment_team_as_a_digest(world: dict) -> None:
    w = world
    hub: Hub = w["hub"]
    far_apart = [(16.20, 107.20), (16.25, 107.80)]
    ids = [
        alert(w, f"field-{i}", "straw_burning", p, None, "smoke") for i, p in enumerate(far_apart)
    ]
    incs = [incident_of(hub, e)["id"] for e in ids]
    digests = wait_for(
        lambda: [
            r
            for r in w["env"].valid()
            if {i["incident_id"] for i in r.body.get("incidents", [])} & set(incs)
        ],
        10,
        what="an environment digest",
    )
    got = {i["incident_id"] for r in digests for i in r.body["incidents"]}
    assert set(incs) <= got and all(r.body["type"] == "digest" for r in digests)
    # never as an urgent push to the rangers
    assert not [r for r in w["rangers"].valid() if r.body.get("incident_id") in incs]


def test_gone_push_subscriptions_are_dropped(world: dict) -> None:
    w = world
    hub: Hub = w["hub"]
    code, _ = hub.post(
        "/api/v1/teams/rangers-north/subscriptions",
        {**w["push"].subscribe("old-phone"), "token": "enrol-123"},
    )
    assert code == 201
    w["push"].gone.add("old-phone")
    e = alert(w, "cam-f", "forest_fire", (16.58, 107.41), None)
    inc = incident_of(hub, e)

    def push_rows() -> list[dict] | None:
        d = hub.get(f"/api/v1/incidents/{inc['id']}")
        rows = [x for x in d["deliveries"] if x["channel"] == "webpush"]
        return rows if rows and all(x["state"] != "pending" for x in rows) else None

    rows = wait_for(push_rows, 10, what="push deliveries settled")
    states = sorted(x["state"] for x in rows)
    assert states == ["failed", "sent"]  # the live phone got it, the dead one is gone
    assert any("gone" in (x["last_error"] or "") for x in rows)


def test_concurrent_alerts_do_not_crash_the_hub(world: dict) -> None:
    w = world
    hub: Hub = w["hub"]
    threads = [
        threading.Thread(
            target=alert, args=(w, f"burst-{i}", "smoke", (16.0 + i * 0.1, 106.0), None)
        )
        for i in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(
        lambda: len(hub.get("/api/v1/incidents?kind=smoke&limit=1000")) >= 6, 10, what="6 smoke"
    )
    assert hub.get("/healthz")["mqtt"]


def test_ranger_page_registers_its_service_worker_and_states_the_outcome(world: dict) -> None:
    """Headless Chromium: the page explains a bad link, and on a good one registers the
    service worker and says what became of the subscription (this machine has no browser
    push service to reach, so it must say it could not subscribe, not hang)."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    hub: Hub = world["hub"]
    base = f"http://127.0.0.1:{hub.port}"
    artifacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(permissions=["notifications"])
            page = ctx.new_page()
            page.goto(f"{base}/rangers")
            assert "no team or token" in page.locator("#status").inner_text()
            page.goto(f"{base}/rangers?team=rangers-north&token=enrol-123")
            assert page.evaluate("document.querySelector('link[rel=manifest]').href").endswith(
                "/rangers/manifest.webmanifest"
            )
            page.click("#enable")
            page.wait_for_function(
                "!/Asking|Not subscribed/.test(document.querySelector('#status').textContent)",
                timeout=20000,
            )
            text = page.locator("#status").inner_text()
            assert text.startswith(("Subscribed", "Could not subscribe")), text
            scope = page.evaluate(
                "navigator.serviceWorker.getRegistration('/rangers').then(r => r && r.scope)"
            )
            assert scope == f"{base}/rangers"
            page.screenshot(path=str(artifacts / "rangers_page.png"))
        finally:
            browser.close()


# --------------------------------------------------------------------------- ack links
# In process (the hub's app and database, SQLite and PostgreSQL; no broker): each attack on
# the ack links of notifications, refused.

ACK_SECRET = "ack-link-test-secret-0123456789"
DOTTED = "rangers.bach-ma.north"  # a team id with dots


@pytest.fixture
def acks(db_url: str) -> Iterator[TestClient]:
    from central.app import create_app
    from central.config import HubConfig
    from tests.helpers import ensure_user

    cfg = HubConfig(
        database_url=db_url,
        teams=[{"id": "rangers-north"}, {"id": DOTTED}, {"id": "ioc"}],
        incidents={"secret": ACK_SECRET, "ops_team": "ioc", "ack_link_ttl_s": 600},
    )
    ensure_user(db_url, "olivia", "operator", "operator-password-1")
    ensure_user(db_url, "victor", "viewer", "viewer-password-1")
    with TestClient(create_app(cfg, consume=False)) as c:
        yield c


def _login(c: TestClient, user: str) -> dict[str, str]:
    pw = {"olivia": "operator-password-1", "victor": "viewer-password-1"}[user]
    r = c.post("/api/v1/auth/token", data={"username": user, "password": pw})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _open_incident(c: TestClient, team_id: str) -> str:
    from datetime import timedelta

    from central.storage.models import IncidentRow

    now = datetime.now(UTC)
    row = IncidentRow(
        id=str(uuid.uuid4()),
        kind="forest_fire",
        state="open",
        urgent=True,
        opened_at=now,
        updated_at=now,
        last_alert_at=now,
        lat=16.2,
        lon=107.86,
        team_id=team_id,
        notified_team=team_id,
        escalation_level=0,
        escalate_at=now + timedelta(seconds=300),
        alerts=1,
    )
    with c.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        session.add(row)
    return row.id


def _ack_path(c: TestClient, incident_id: str, team_id: str) -> str:
    """The ack link exactly as a notification to the team carries it, less the host."""
    from central.storage.models import IncidentRow

    app = c.app
    with app.state.sessions() as session:  # type: ignore[attr-defined]
        inc = session.get(IncidentRow, incident_id)
        doc = app.state.incidents.payload(session, inc, app.state.cfg.team(team_id), "new")  # type: ignore[attr-defined]
    return doc["ack_url"].removeprefix(app.state.cfg.incidents.public_url)  # type: ignore[attr-defined]


def _incident(c: TestClient, incident_id: str) -> dict:
    r = c.get(f"/api/v1/incidents/{incident_id}", headers=_login(c, "olivia"))
    assert r.status_code == 200, r.text
    return r.json()


def test_an_ack_link_works_once(acks: TestClient) -> None:
    inc = _open_incident(acks, "rangers-north")
    path = _ack_path(acks, inc, "rangers-north")
    first = acks.post(path, json={"note": "on our way"})
    assert first.status_code == 200 and first.json()["state"] == "acknowledged"
    assert first.json()["escalate_at"] is None  # the escalation stopped
    again = acks.post(path, json={})
    assert again.status_code == 409 and "already used" in again.json()["detail"]
    # a fresh link (the next notification) still answers, and changes nothing
    assert acks.post(_ack_path(acks, inc, "rangers-north")).status_code == 200
    acks_in_audit = [a for a in _incident(acks, inc)["audit"] if a["action"] == "acknowledged"]
    assert len(acks_in_audit) == 1


def test_the_audit_actor_is_the_links_team_not_a_name_in_the_body(acks: TestClient) -> None:
    inc = _open_incident(acks, "rangers-north")
    r = acks.post(
        _ack_path(acks, inc, "rangers-north"),
        json={"actor": "Director of the IOC", "note": "ranger Lan on the way"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["acked_by"] == "team:rangers-north"
    d = _incident(acks, inc)
    entry = next(a for a in d["audit"] if a["action"] == "acknowledged")
    assert entry["actor"] == "team:rangers-north" and entry["note"] == "ranger Lan on the way"
    assert not any("Director" in a["actor"] for a in d["audit"])


def test_a_team_id_with_dots_acks_through_its_link(acks: TestClient) -> None:
    inc = _open_incident(acks, DOTTED)
    path = _ack_path(acks, inc, DOTTED)
    r = acks.post(path)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acked_by"] == f"team:{DOTTED}"
    assert acks.post(path).status_code == 409


def test_an_expired_ack_link_is_refused(acks: TestClient) -> None:
    inc = _open_incident(acks, "rangers-north")
    signer = acks.app.state.incidents.signer  # type: ignore[attr-defined]
    old = signer.token(inc, "rangers-north", now=time.time() - 601)  # ttl 600 s
    r = acks.post(f"/api/v1/incidents/{inc}/ack?token={old}")
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    assert _incident(acks, inc)["state"] == "open"


def test_forged_ack_links_are_refused(acks: TestClient) -> None:
    from central.incidents import AckSigner

    inc = _open_incident(acks, "rangers-north")
    other = _open_incident(acks, "rangers-north")
    good = _ack_path(acks, inc, "rangers-north").split("token=", 1)[1]
    team, expires, nonce, mac = good.split("~")
    flipped = mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")
    later = str(int(expires) + 86400)
    forged = {
        "wrong HMAC": f"{team}~{expires}~{nonce}~{flipped}",
        "another team": f"ioc~{expires}~{nonce}~{mac}",
        "a later expiry": f"{team}~{later}~{nonce}~{mac}",
        "another key": AckSigner("not-the-hub-secret-0123456789").token(inc, "rangers-north"),
        "the old format": f"rangers-north.{mac[:24]}",
        "garbage": "~~~",
    }
    for what, token in forged.items():
        r = acks.post(f"/api/v1/incidents/{inc}/ack", params={"token": token})
        assert r.status_code == 403, (what, r.status_code, r.text)
        assert "not valid" in r.json()["detail"], what
    # a genuine link of one incident does not acknowledge another
    r = acks.post(f"/api/v1/incidents/{other}/ack", params={"token": good})
    assert r.status_code == 403
    # a link for another team, signed by the hub, names that team: not a forgery of ours
    assert _incident(acks, inc)["state"] == "open" and _incident(acks, other)["state"] == "open"
    assert acks.post(f"/api/v1/incidents/{inc}/ack", params={"token": good}).status_code == 200


def test_an_ack_link_cannot_resolve_or_mark_a_false_alarm(acks: TestClient) -> None:
    inc = _open_incident(acks, "rangers-north")
    path = _ack_path(acks, inc, "rangers-north")
    token = path.split("token=", 1)[1]
    for action in ("false_alarm", "resolve"):
        r = acks.post(f"/api/v1/incidents/{inc}/{action}", params={"token": token})
        assert r.status_code == 401, (action, r.text)
        assert "only acknowledges" in r.json()["detail"]
    assert _incident(acks, inc)["state"] == "open"
    # a viewer account may not either; an operator may, and is the actor
    r = acks.post(f"/api/v1/incidents/{inc}/false_alarm", headers=_login(acks, "victor"))
    assert r.status_code == 403
    r = acks.post(
        f"/api/v1/incidents/{inc}/resolve",
        json={"actor": "someone else", "note": "put out"},
        headers=_login(acks, "olivia"),
    )
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    entry = next(a for a in _incident(acks, inc)["audit"] if a["action"] == "resolved")
    assert entry["actor"] == "olivia"
    # the unused link cannot reopen a resolved incident either
    r = acks.post(path)
    assert r.status_code == 409 and _incident(acks, inc)["state"] == "resolved"


def test_config_check_warns_about_a_missing_secret_and_weak_enrol_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from central.config import HubConfig, security_warnings
    from edgewatch.cli import main

    teams = [
        {"id": "rangers.bach-ma", "enrol_token": "change-me"},
        {"id": "environment", "enrol_token": "short-1"},
        {"id": "ioc", "enrol_token": "a-long-random-enrolment-token"},
    ]
    found = security_warnings(HubConfig(teams=teams))
    assert len(found) == 3
    assert found[0].startswith("incidents.secret: not set")
    assert "EDGEWATCH_INCIDENTS__SECRET" in found[0]
    assert "change-me" in found[1] and "rangers.bach-ma" in found[1]
    assert "teams.1.enrol_token" in found[2] and "16 characters" in found[2]
    safe = HubConfig(teams=teams[2:], incidents={"secret": ACK_SECRET})
    assert security_warnings(safe) == [] and security_warnings(HubConfig()) == []
    f = tmp_path / "hub.yaml"
    f.write_text(yaml.safe_dump({"database_url": "sqlite:///x.db", "teams": teams[:1]}))
    assert main(["config", "check", str(f)]) == 0  # warnings, not errors
    out, err = capsys.readouterr()
    assert ": ok (hub config)" in out and err.count("warning: ") == 2
    assert main(["config", "check", "--strict", str(f)]) == 2
    assert "incidents.secret" in capsys.readouterr().err
