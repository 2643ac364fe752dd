"""Incidents end to end on real parts: mosquitto, the hub process, a webhook receiver and a
Web Push service on loopback (VAPID verified, payload decrypted), an MQTT team subscriber.

Alerts are published to the broker as an edge publishes them (the contract's event JSON).
"""

from __future__ import annotations

import json
import os
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
    push = PushService(tmp / "push-tls")
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
            "push": {
                "vapid_key_file": str(tmp / "vapid.pem"),
                "subject": "mailto:ioc@hue.example",
                # the loopback push service: https as localhost, its own CA
                "allowed_hosts": [push.host],
                "ca_file": str(push.ca_file),
            },
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


def settled_push_rows(hub: Hub, incident_id: str) -> list[dict]:
    """The incident's Web Push delivery rows, once none is pending any more."""

    def rows() -> list[dict] | None:
        d = hub.get(f"/api/v1/incidents/{incident_id}")
        got = [x for x in d["deliveries"] if x["channel"] == "webpush"]
        return got if got and all(x["state"] != "pending" for x in got) else None

    return wait_for(rows, 10, what="push deliveries settled")


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
    rows = settled_push_rows(hub, incident_of(hub, e)["id"])
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
    import re
    import shutil

    from playwright.sync_api import expect, sync_playwright

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
            # (expect polls without eval: the page's CSP has no 'unsafe-eval')
            expect(page.locator("#status")).not_to_have_text(
                re.compile("Asking|Not subscribed"), timeout=20000
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


# --------------------------------------------------------------------------- bad gateways
# Subscriptions stored before the endpoint policy (the SSRF ones of issue #16) on the world's
# hub; then a hub of its own, with no incidents.secret: a team behind a gateway that never
# answers, one behind a gateway that answers 302, healthy rangers, and a team of phones on the
# default push services.


def test_subscriptions_stored_before_the_endpoint_policy_are_never_sent_to(world: dict) -> None:
    from sqlalchemy import insert as sql_insert

    from central.storage.db import make_engine, session_factory
    from central.storage.models import PushSubscriptionRow

    w = world
    hub: Hub = w["hub"]
    canary = WebhookReceiver("unused")  # an "internal admin" service on loopback
    legacy = f"http://127.0.0.1:{canary.port}/internal/admin/reset"
    engine = make_engine(hub.db_url)
    try:
        with session_factory(engine).begin() as session:
            session.execute(
                sql_insert(PushSubscriptionRow).values(
                    team_id="rangers-north",
                    endpoint=legacy,
                    p256dh="BAAA",
                    auth="AAAA",
                    created_at=datetime.now(UTC),
                )
            )
        code, _ = hub.post(
            "/api/v1/teams/rangers-north/subscriptions",
            {**w["push"].subscribe("ranger-tablet"), "token": "enrol-123"},
        )
        assert code == 201
        live = _subscriptions(hub, "rangers-north") - 1  # all but the legacy one
        e = alert(w, "cam-g", "forest_fire", (16.50, 107.55), None)
        rows = settled_push_rows(hub, incident_of(hub, e)["id"])
        # the live phones only: the stored SSRF endpoint got no delivery row, and no request
        assert [x["state"] for x in rows] == ["sent"] * live, rows
        assert canary.attempts == 0 and canary.received == []
    finally:
        engine.dispose()
        canary.stop()


STUCK_SECRET = "stuck-gateway-secret"
BOUNCE_AREA = [(104.9, 20.9), (105.1, 20.9), (105.1, 21.1), (104.9, 21.1)]
PHONES_AREA = [(102.0, 22.0), (102.1, 22.0), (102.1, 22.1), (102.0, 22.1)]  # never alerted
PHONES_TOKEN = "phones-enrolment-token-0123456789"
BENCH = (
    Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "bench_delivery_isolation.json"
)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto):
    from tests.receivers import HungServer, RedirectingReceiver

    tmp = tmp_path_factory.mktemp("gateways")
    uid = uuid.uuid4().hex[:8]
    rangers = WebhookReceiver("south-secret")
    hung = HungServer()
    bounce = RedirectingReceiver()
    teams = [
        {
            "id": "rangers-south",
            "kinds": ["forest_fire"],
            "ack_timeout_s": 600,
            "channels": [{"type": "webhook", "url": rangers.url, "secret": "south-secret"}],
        },
        {
            "id": "stuck",
            "kinds": ["straw_burning"],
            "channels": [{"type": "webhook", "url": hung.url, "secret": STUCK_SECRET}],
        },
        {
            "id": "bounce",
            "kinds": ["smoke"],
            "area": BOUNCE_AREA,
            "channels": [
                {
                    "type": "webhook",
                    "url": bounce.url_with("token=hook-query-secret-4711"),
                    "secret": "bounce-secret",
                }
            ],
        },
        {
            "id": "phones",
            "kinds": ["smoke"],
            "area": PHONES_AREA,
            "enrol_token": PHONES_TOKEN,
            "channels": [{"type": "webpush"}],
        },
    ]
    hub = Hub(
        tmp,
        f"sqlite:///{tmp / 'hub.sqlite3'}",
        mosquitto,
        f"hub-{uid}",
        extra={
            "teams": teams,
            # no secret: the ack-link key must come from the database
            # (delivery_timeout_s and the breaker keep their defaults: 5 s, 3 failures, 30 s)
            "incidents": {"retry_initial_s": 0.2, "retry_max_s": 0.5, "max_attempts": 3},
            "push": {
                "vapid_key_file": str(tmp / "vapid.pem"),
                "max_subscriptions_per_team": 3,
            },
        },
    )
    hub.start()
    pub = mosquitto.client(f"edge-{uid}", "edge", site="hue")
    g = {"hub": hub, "rangers": rangers, "hung": hung, "bounce": bounce, "pub": pub, "uid": uid}
    yield g
    pub.loop_stop()
    pub.disconnect()
    hub.stop()
    for r in (rangers, hung, bounce):
        r.stop()


def _webhook_rows(hub: Hub, event_ids: list[str]) -> list[dict]:
    return [
        d for e in event_ids for d in incident_of(hub, e)["deliveries"] if d["channel"] == "webhook"
    ]


def test_a_hung_webhook_delays_no_other_team_and_its_circuit_opens(gateways: dict) -> None:
    g = gateways
    hub: Hub = g["hub"]
    hung = g["hung"]
    # six notifications to a gateway that never answers (issue #16: they held another
    # team's forest fire back 29 s), the first of them in flight
    stuck = [
        alert(g, f"field-{i}", "straw_burning", (15.0 + i * 0.1, 106.0), None, "smoke")
        for i in range(6)
    ]
    wait_for(lambda: hung.connections >= 1, 10, what="the hub waiting on the hung gateway")
    t0 = time.time()
    fire = alert(g, "cam-s", "forest_fire", (14.0, 108.0), None)
    hook = wait_for(lambda: g["rangers"].valid(), 10, what="the rangers' webhook")[0]
    inc = incident_of(hub, fire)
    assert hook.body["incident_id"] == inc["id"] and hook.body["urgent"] is True
    row = next(d for d in inc["deliveries"] if d["channel"] == "webhook")
    queued = datetime.fromisoformat(row["created_at"]).timestamp()
    delay = hook.time - queued
    # the hub was hanging on the stuck gateway all the while, none of its six sent
    assert hung.held_throughout(queued, hook.time)
    stuck_rows = _webhook_rows(hub, stuck)
    assert len(stuck_rows) == 6 and not [d for d in stuck_rows if d["state"] == "sent"]
    BENCH.parent.mkdir(parents=True, exist_ok=True)
    BENCH.write_text(
        json.dumps(
            {
                "what": "an urgent webhook to a healthy team while 6 deliveries to a hung "
                "gateway (accepts, never answers; 5 s delivery timeout) are pending",
                "bound_s": 1.0,
                "queued_to_received_s": round(delay, 4),
                "published_to_received_s": round(hook.time - t0, 4),
                "stuck_pending": 6,
                "delivery_timeout_s": 5.0,
                "cpus": os.cpu_count(),
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            indent=2,
        )
        + "\n"
    )
    assert delay < 1.0, f"the healthy team waited {delay:.3f} s behind a hung gateway"

    # its circuit opens after 3 consecutive failures: its other rows are deferred, and the
    # hub stops knocking (no connection beyond the three failed attempts)
    def deferred() -> list[dict] | None:
        rows = _webhook_rows(hub, stuck)
        return rows if any("circuit open" in (d["last_error"] or "") for d in rows) else None

    wait_for(deferred, 40, interval=0.5, what="the stuck gateway's circuit open")
    # read again: the first read spans six requests; deferral comes after the third attempt
    # is written, and nothing changes now until the probe, 30 s on
    rows = _webhook_rows(hub, stuck)
    assert sum(d["attempts"] for d in rows) == 3 == hung.connections
    assert not [d for d in rows if d["state"] == "sent"]


def test_a_redirecting_webhook_fails_is_retried_and_is_never_followed(gateways: dict) -> None:
    g = gateways
    hub: Hub = g["hub"]
    bounce = g["bounce"]
    e = alert(g, "cam-r", "smoke", (21.0, 105.0), None, "smoke")
    inc = incident_of(hub, e)
    assert inc["team_id"] == "bounce"

    def settled() -> dict | None:
        rows = _webhook_rows(hub, [e])
        return rows[0] if rows and rows[0]["state"] != "pending" else None

    row = wait_for(settled, 20, what="the redirected webhook settled")
    # max_attempts 3: each 302 a failure, retried, then failed; never "sent"
    assert row["state"] == "failed" and row["attempts"] == 3, row
    assert "302" in row["last_error"] and "redirect" in row["last_error"]
    posts = bounce.at("/hook")
    assert len(posts) == 3 and all(r.method == "POST" and r.body for r in posts)
    assert bounce.at("/landed") == []  # not re-sent as a GET (nor any other way)
    # the hook URL's secret query is in no log line
    assert "hook-query-secret-4711" not in hub.log_text()


def _subscriptions(hub: Hub, team: str) -> int:
    from sqlalchemy import func as sql_func
    from sqlalchemy import select as sql_select

    from central.storage.db import make_engine, session_factory
    from central.storage.models import PushSubscriptionRow

    engine = make_engine(hub.db_url)
    try:
        with session_factory(engine)() as session:
            return session.execute(
                sql_select(sql_func.count())
                .select_from(PushSubscriptionRow)
                .where(PushSubscriptionRow.team_id == team)
            ).scalar_one()
    finally:
        engine.dispose()


def test_push_endpoints_must_be_https_on_a_push_service_at_most_n_per_team(
    gateways: dict,
) -> None:
    hub: Hub = gateways["hub"]
    keys = {"p256dh": "BAAA", "auth": "AAAA"}

    def subscribe(endpoint: str, token: str = PHONES_TOKEN) -> tuple[int, Any]:
        return hub.post(
            "/api/v1/teams/phones/subscriptions",
            {"endpoint": endpoint, "keys": keys, "token": token},
            auth=False,
        )

    refused = {
        "http": "http://fcm.googleapis.com/fcm/send/x",
        "the hub itself": f"http://127.0.0.1:{hub.port}/internal/admin/reset",
        "loopback over https": "https://127.0.0.1/internal/admin/x",
        "IPv6 loopback": "https://[::1]/x",
        "a public IP literal": "https://142.250.74.106/fcm/send/x",
        "a decimal IP": "https://2130706433/x",
        "localhost": "https://localhost/x",
        "a host not on the list": "https://push.example.org/x",
        "a look-alike": "https://fcm.googleapis.com.evil.example/x",
        "a longer name": "https://evilfcm.googleapis.com/x",
        "user info": "https://fcm.googleapis.com@127.0.0.1/x",
        "another port": "https://fcm.googleapis.com:8443/x",
        "the wildcard's own domain": "https://notify.windows.com/x",
        "too long for a delivery row": "https://fcm.googleapis.com/" + "x" * 600,
    }
    # the enrolment token is checked first: without it, nothing about the policy
    assert subscribe(refused["http"], token="wrong")[0] == 403
    for what, endpoint in refused.items():
        code, body = subscribe(endpoint)
        assert code == 422, (what, code, body)
        assert "push endpoint refused" in body["detail"], (what, body)
    assert _subscriptions(hub, "phones") == 0
    accepted = [
        "https://fcm.googleapis.com/fcm/send/phone-1",
        "https://wns2-par02p.notify.windows.com/w/?token=phone-2",
        "https://web.push.apple.com/QPhone3",
    ]
    for endpoint in accepted:
        code, body = subscribe(endpoint)
        assert code == 201, (endpoint, body)
    # the cap (3 here): the fourth is refused, nobody is evicted
    code, body = subscribe("https://updates.push.services.mozilla.com/wpush/v2/phone-4")
    assert code == 409 and "maximum of 3" in body["detail"], body
    # a subscribed phone may still renew its keys
    assert subscribe(accepted[0])[0] == 201
    assert _subscriptions(hub, "phones") == 3


def test_ack_links_still_work_after_a_restart_without_a_configured_secret(
    gateways: dict,
) -> None:
    g = gateways
    hub: Hub = g["hub"]
    e = alert(g, "cam-t", "forest_fire", (13.0, 109.0), None)
    inc = incident_of(hub, e)
    hook = wait_for(
        lambda: [r for r in g["rangers"].valid() if r.body["incident_id"] == inc["id"]],
        10,
        what="the rangers' webhook",
    )[0]
    hub.stop()
    hub.start()
    path = hook.body["ack_url"].split(f":{hub.port}", 1)[1]
    code, body = hub.post(path, {"note": "after the restart"}, auth=False)
    assert code == 200, body
    assert body["state"] == "acknowledged" and body["acked_by"] == "team:rangers-south"


# --------------------------------------------------------------------------- in process


def test_the_generated_ack_key_is_kept_in_the_database(db_url: str) -> None:
    """Two hubs on one database (or one, started twice) sign with one key; a configured
    secret still wins."""
    from central.config import HubConfig
    from central.incidents import IncidentManager
    from central.storage.db import make_engine, migrate, session_factory

    engine = make_engine(db_url)
    try:
        migrate(engine)
        sessions = session_factory(engine)
        bare = HubConfig(database_url=db_url, teams=[{"id": "rangers"}])
        first, second = IncidentManager(bare, sessions), IncidentManager(bare, sessions)
        token = first.signer.token("inc-1", "rangers")
        assert second.signer.check("inc-1", token).team_id == "rangers"
        configured = HubConfig(
            database_url=db_url, teams=[{"id": "rangers"}], incidents={"secret": ACK_SECRET}
        )
        own = IncidentManager(configured, sessions)
        assert own.signer.key != first.signer.key
    finally:
        engine.dispose()


def test_the_circuit_breaker_opens_defers_probes_and_closes() -> None:
    from central.incidents import CircuitBreaker

    now = [1000.0]
    b = CircuitBreaker(failures=3, open_s=10.0, max_open_s=25.0, clock=lambda: now[0])
    assert b.record("a", False) is None and b.record("a", False) is None
    assert b.blocked_for("a") == 0.0  # two failures: still closed
    assert b.record("a", False) == "opened" and b.blocked_for("a") == 10.0
    assert b.blocked_for("b") == 0.0  # one target's circuit is its own
    now[0] += 10.0
    assert b.blocked_for("a") == 0.0  # the probe may go
    assert b.record("a", False) == "opened" and b.blocked_for("a") == 20.0  # doubled
    now[0] += 20.0
    assert b.record("a", False) == "opened" and b.blocked_for("a") == 25.0  # capped
    now[0] += 25.0
    assert b.record("a", True) == "closed" and b.blocked_for("a") == 0.0
    assert b.record("a", False) is None  # counting starts again


def test_push_host_allow_list_entries() -> None:
    from pydantic import ValidationError

    from central.config import PushSettings
    from central.incidents import push_endpoint_problem

    push = PushSettings(allowed_hosts=["Push.Example.ORG.", "*.svc.example", "lab.example:8443"])
    assert push.allowed_hosts == ["push.example.org", "*.svc.example", "lab.example:8443"]
    ok = [
        "https://push.example.org/a",
        "https://PUSH.example.org./a",
        "https://eu.svc.example/a",
        "https://a.b.svc.example/a",
        "https://lab.example:8443/a",
    ]
    bad = ["https://svc.example/a", "https://lab.example/a", "https://push.example.org:444/a"]
    assert [e for e in ok if push_endpoint_problem(e, push)] == []
    assert [e for e in bad if not push_endpoint_problem(e, push)] == []
    for entry in ("*", "10.0.0.1", "[::1]", "*.10.0.0.1", "http://push.example", "a b"):
        with pytest.raises(ValidationError):
            PushSettings(allowed_hosts=[entry])
