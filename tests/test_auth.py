"""Accounts, roles, sessions, CSRF, rate limits, the review queue and camera-offline alerts,
against the hub's real app and database (SQLite and PostgreSQL); no broker needed here.

The 401 test walks the OpenAPI document, so a route added later without authentication
fails it without anyone updating a list.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.app import create_app
from central.config import HubConfig
from central.storage.models import AuthSessionRow, UserRow
from edgewatch import contract, procs
from tests.helpers import ensure_user
from tests.test_hub import EDGE, EV_TOPIC, JPEG, SITE, event, handle, snap_ref

PASSWORDS = {
    "admin": "admin-password-1",
    "olivia": "operator-password-1",
    "ranger": "ranger-password-1",
    "victor": "viewer-password-1",
}
ROLES = {"admin": "admin", "olivia": "operator", "ranger": "ranger", "victor": "viewer"}
# Routes that answer without an account: hotspot data, the public map's settings,
# liveness, logging in, and the public VAPID key ranger browsers subscribe with. Nothing else.
PUBLIC = {
    ("GET", "/api/v1/hotspots"),
    ("GET", "/api/v1/map"),
    ("GET", "/api/v1/hotspots/{hotspot_id}/history"),
    ("GET", "/healthz"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/push/vapid_public_key"),
}


@pytest.fixture
def app_cfg(db_url: str) -> HubConfig:
    return HubConfig(
        database_url=db_url,
        hotspots_file=Path("configs/hotspots.geojson"),
        auth={"login_max_failures": 3, "login_window_s": 2.0},
        alerts={"camera_offline_grace_s": 30},
    )


@pytest.fixture
def client(app_cfg: HubConfig) -> Iterator[TestClient]:
    for name, password in PASSWORDS.items():
        ensure_user(app_cfg.database_url, name, ROLES[name], password)
    with TestClient(create_app(app_cfg, consume=False)) as c:
        yield c


def token(client: TestClient, user: str, password: str | None = None) -> dict[str, str]:
    r = client.post(
        "/api/v1/auth/token", data={"username": user, "password": password or PASSWORDS[user]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "bearer"
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x" + uuid.uuid4().hex[:6], path)


def test_every_private_route_answers_401_to_a_logged_out_client(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    private, public, capability = [], set(), []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            mode = op.get("x-edgewatch-auth")
            if mode == "public":
                public.add((method.upper(), path))
            elif mode is not None:
                capability.append((method.upper(), path))
            else:
                private.append((method.upper(), path))
    assert public == PUBLIC  # public endpoints stay limited to hotspot data (and logging in)
    assert len(private) >= 20, private
    assert ("GET", "/metrics") in private and ("GET", "/api/v1/alerts/stream") in private
    for method, path in private:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Cookie": "ew_session=x"}):
            r = client.request(method, fill(path), headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
    # Capability routes (a team's enrolment token) refuse without it.
    assert capability == [("POST", "/api/v1/teams/{team_id}/subscriptions")]
    r = client.post(
        "/api/v1/teams/t/subscriptions",
        json={"endpoint": "https://push.example/x", "keys": {"p256dh": "a", "auth": "b"}},
    )
    assert r.status_code in (403, 404, 422)
    # ...and every private route answers something other than 401 with a token.
    admin = token(client, "admin")
    for method, path in sorted(private, key=lambda mp: mp[1].endswith("/logout")):
        if path.endswith("/stream"):
            continue  # an endless stream; tested on a real hub in test_dashboard
        r = client.request(method, fill(path), headers=admin, json={})
        assert r.status_code != 401, (method, path)


def test_roles_decide_evidence_actions_and_kinds(client: TestClient) -> None:
    car, fire = uuid.uuid4(), uuid.uuid4()
    handle(
        client,
        EV_TOPIC,
        event(car, "new", 0, attributes={"plate": "75A-123.45"}, snapshot=snap_ref(car)),
    )
    handle(client, contract.snapshot_topic(SITE, EDGE, str(car)), JPEG)
    handle(client, EV_TOPIC, event(fire, "new", 0, kind="forest_fire", label="fire"))
    viewer, ranger, operator = (
        token(client, "victor"),
        token(client, "ranger"),
        token(client, "olivia"),
    )

    # viewer: reads alerts, sees no evidence, cannot act
    e = client.get(f"/api/v1/events/{car}", headers=viewer).json()
    assert e["snapshot_url"] is None and e["evidence"] is False and "plate" not in e["attributes"]
    assert client.get(f"/api/v1/events/{car}/snapshot.jpg", headers=viewer).status_code == 403
    assert client.post(f"/api/v1/events/{car}/ack", headers=viewer).status_code == 403
    assert client.get("/api/v1/reviews", headers=viewer).status_code == 403
    assert client.get("/api/v1/users", headers=viewer).status_code == 403

    # operator: everything but users
    e = client.get(f"/api/v1/events/{car}", headers=operator).json()
    assert e["attributes"]["plate"] == "75A-123.45" and e["snapshot_url"]
    snap = client.get(f"/api/v1/events/{car}/snapshot.jpg", headers=operator)
    assert snap.status_code == 200 and snap.content == JPEG
    assert client.get("/api/v1/users", headers=operator).status_code == 403

    # ranger: fire only; another kind does not exist for them
    listed = client.get("/api/v1/events", headers=ranger).json()["items"]
    assert [x["id"] for x in listed] == [str(fire)]
    assert client.get(f"/api/v1/events/{car}", headers=ranger).status_code == 404
    r = client.post(f"/api/v1/events/{fire}/ack", headers=ranger, json={"note": "on our way"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert r.json()["audit"][0]["actor"] == "ranger"

    # urgent kinds are flagged for the live page's alarm
    assert client.get(f"/api/v1/events/{fire}", headers=operator).json()["urgent"] is True
    assert client.get(f"/api/v1/events/{car}", headers=operator).json()["urgent"] is False


def test_alert_actions_timeline_and_audit(client: TestClient) -> None:
    eid = uuid.uuid4()
    for seq, type_ in enumerate(("new", "update", "end")):
        handle(client, EV_TOPIC, event(eid, type_, seq))
    handle(client, EV_TOPIC, event(eid, "update", 1))  # a replay: not in the timeline twice
    op = token(client, "olivia")
    d = client.get(f"/api/v1/events/{eid}", headers=op).json()
    assert [(u["seq"], u["type"]) for u in d["timeline"]] == [(0, "new"), (1, "update"), (2, "end")]
    assert d["status"] == "new" and d["audit"] == []
    r = client.post(f"/api/v1/events/{eid}/ack", headers=op, json={"note": "patrol 3 sent"})
    assert r.status_code == 200
    assert client.post(f"/api/v1/events/{eid}/ack", headers=op).status_code == 409
    r = client.post(f"/api/v1/events/{eid}/resolve", headers=op, json={"note": "cleared"})
    assert r.json()["status"] == "resolved" and r.json()["status_by"] == "olivia"
    assert client.post(f"/api/v1/events/{eid}/false_alarm", headers=op).status_code == 409
    audit = client.get(f"/api/v1/events/{eid}", headers=op).json()["audit"]
    assert [(a["action"], a["actor"], a["note"]) for a in audit] == [
        ("acknowledged", "olivia", "patrol 3 sent"),
        ("resolved", "olivia", "cleared"),
    ]
    assert client.get("/api/v1/events?status=resolved", headers=op).json()["total"] == 1
    assert client.post(f"/api/v1/events/{uuid.uuid4()}/ack", headers=op).status_code == 404


def test_browser_session_cookie_csrf_and_logout(client: TestClient, app_cfg: HubConfig) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "olivia", "password": "wrong-one!!"})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    r = client.post(
        "/api/v1/auth/login", json={"username": "olivia", "password": PASSWORDS["olivia"]}
    )
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback; behind TLS see below
    csrf = r.json()["csrf_token"]
    assert r.json()["role"] == "operator" and csrf
    assert client.get("/api/v1/auth/me").json()["username"] == "olivia"
    eid = uuid.uuid4()
    handle(client, EV_TOPIC, event(eid, "new", 0))
    # a cross-site form post carries the cookie but cannot know the CSRF token
    assert client.post(f"/api/v1/events/{eid}/ack").status_code == 403
    bad = {"X-CSRF-Token": "guess"}
    assert client.post(f"/api/v1/events/{eid}/ack", headers=bad).status_code == 403
    ok = client.post(f"/api/v1/events/{eid}/ack", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401
    # behind a TLS proxy the cookie is Secure
    r = client.post(
        "/api/v1/auth/login",
        json={"username": "olivia", "password": PASSWORDS["olivia"]},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "Secure" in r.headers["set-cookie"]


def test_login_is_rate_limited_then_allowed_again(client: TestClient) -> None:
    for _ in range(3):
        assert (
            client.post(
                "/api/v1/auth/token", data={"username": "victor", "password": "nope-nope-nope"}
            ).status_code
            == 401
        )
    r = client.post(
        "/api/v1/auth/token", data={"username": "victor", "password": PASSWORDS["victor"]}
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # right password, too
    time.sleep(2.2)  # the window (2 s in this config) passes
    token(client, "victor")


def test_passwords_are_argon2id_and_a_new_password_ends_sessions(
    client: TestClient, app_cfg: HubConfig
) -> None:
    viewer = token(client, "victor")
    with client.app.state.sessions() as s:  # type: ignore[attr-defined]
        row = s.scalar(select(UserRow).where(UserRow.username == "victor"))
        assert row.password_hash.startswith("$argon2id$")
        assert PASSWORDS["victor"] not in row.password_hash
        secret = viewer["Authorization"].split()[1]
        assert s.get(AuthSessionRow, secret) is None  # only a digest is stored
    admin = token(client, "admin")
    r = client.patch("/api/v1/users/victor", headers=admin, json={"password": "a-new-password-2"})
    assert r.status_code == 200
    assert client.get("/api/v1/events", headers=viewer).status_code == 401
    token(client, "victor", "a-new-password-2")
    r = client.patch("/api/v1/users/victor", headers=admin, json={"disabled": True})
    assert r.json()["disabled"] is True
    r = client.post(
        "/api/v1/auth/token", data={"username": "victor", "password": "a-new-password-2"}
    )
    assert r.status_code == 401
    short = {"username": "zed", "role": "viewer", "password": "short"}
    assert client.post("/api/v1/users", headers=admin, json=short).status_code == 422
    good = {"username": "zed", "role": "viewer", "password": "long-enough-pw"}
    assert client.post("/api/v1/users", headers=admin, json=good).status_code == 201
    assert client.post("/api/v1/users", headers=admin, json=good).status_code == 409


def test_review_queue(client: TestClient) -> None:
    red, other = uuid.uuid4(), uuid.uuid4()
    handle(client, EV_TOPIC, event(red, "new", 0, kind="red_light", label="car"))
    handle(client, EV_TOPIC, event(other, "new", 0))
    op = token(client, "olivia")
    q = client.get("/api/v1/reviews", headers=op).json()
    assert [x["id"] for x in q["items"]] == [str(red)] and q["items"][0]["review"] == "pending"
    assert (
        client.post(
            f"/api/v1/reviews/{other}", headers=op, json={"decision": "confirmed"}
        ).status_code
        == 404
    )
    r = client.post(f"/api/v1/reviews/{red}", headers=op, json={"decision": "rejected"})
    assert r.status_code == 422  # a rejection needs a reason
    r = client.post(
        f"/api/v1/reviews/{red}",
        headers=op,
        json={"decision": "rejected", "reason": "ambulance with lights on"},
    )
    assert r.status_code == 200
    assert (r.json()["review"], r.json()["reviewer"]) == ("rejected", "olivia")
    assert r.json()["audit"][-1]["note"] == "ambulance with lights on"
    again = client.post(f"/api/v1/reviews/{red}", headers=op, json={"decision": "confirmed"})
    assert again.status_code == 409
    assert client.get("/api/v1/reviews", headers=op).json()["total"] == 0
    assert client.get("/api/v1/reviews?state=rejected", headers=op).json()["total"] == 1


def test_camera_offline_alert_waits_out_the_grace_period(client: TestClient) -> None:
    app = client.app
    dog = app.state.watchdog  # type: ignore[attr-defined]
    dog.stop()  # driven by hand here, with explicit times
    topic = contract.camera_status_topic(SITE, EDGE, "cam-9")
    # This edge's clock is an hour behind: the outage is timed by the hub, not by the edge
    # (an edge time would make the camera look an hour offline the moment it reports).
    t0 = datetime.now(UTC) - timedelta(hours=1)

    def status(state: str, at: datetime) -> datetime:
        """Send a status; the grace counts from when the hub received it."""
        msg = contract.CameraStatus(
            camera_id="cam-9",
            state=state,
            fps=0.0,
            reconnects=1,
            updated_at=at,  # type: ignore[arg-type]
            error="connection refused" if state == "offline" else None,
        )
        handle(client, topic, msg.model_dump_json().encode())
        return datetime.now(UTC)

    def alerts() -> list[dict]:
        return client.get(
            "/api/v1/events?kind=camera_offline", headers=token(client, "olivia")
        ).json()["items"]

    r1 = status("offline", t0)
    assert dog.tick(r1 + timedelta(seconds=20)) == []  # inside the 30 s grace
    status("online", t0 + timedelta(seconds=1))  # a flap: nobody is paged
    assert dog.tick(r1 + timedelta(seconds=40)) == [] and alerts() == []
    r2 = status("offline", t0 + timedelta(seconds=2))
    assert dog.tick(r2 + timedelta(seconds=10)) == []
    opened = dog.tick(r2 + timedelta(seconds=31))
    assert len(opened) == 1
    [a] = alerts()
    assert (a["camera_id"], a["state"], a["attributes"]["reason"]) == (
        "cam-9",
        "active",
        "connection refused",
    )
    assert dog.tick(r2 + timedelta(seconds=40)) == []  # one alert, not one per tick
    status("online", t0 + timedelta(seconds=3))
    assert dog.tick(r2 + timedelta(seconds=45)) == opened
    assert alerts()[0]["state"] == "ended"
    # the edge's LWT takes its cameras offline too
    handle(client, contract.edge_status_topic(SITE, EDGE), b"offline")
    lwt_at = datetime.now(UTC)
    assert dog.tick(lwt_at + timedelta(seconds=10)) == []
    assert len(dog.tick(lwt_at + timedelta(seconds=31))) == 1
    [active] = [a for a in alerts() if a["state"] == "active"]
    assert active["attributes"]["reason"] == "edge offline"


def test_internal_hotspots_add_what_the_public_page_leaves_out(client: TestClient) -> None:
    public = client.get("/api/v1/hotspots").json()["features"]
    internal = client.get("/api/v1/hotspots/internal", headers=token(client, "olivia")).json()
    assert {f["id"] for f in public} == {p["id"] for p in internal}
    assert "camera_id" not in public[0]["properties"] and "camera_id" in internal[0]
    # the `internal` permission: operators and admins, not viewers or rangers
    for user in ("victor", "ranger"):
        r = client.get("/api/v1/hotspots/internal", headers=token(client, user))
        assert r.status_code == 403 and "camera_id" not in r.text


def test_user_cli(tmp_path: Path, db_url: str) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": db_url}))

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            procs.edgewatch_cmd("user", *args, "-c", str(cfg)),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = cli("add", "lan", "--role", "operator", "--password-stdin", stdin="first-password\n")
    assert r.returncode == 0, r.stderr
    r = cli("add", "lan", "--role", "viewer", "--password-stdin", stdin="other-password\n")
    assert r.returncode == 1 and "exists" in r.stderr
    r = cli("add", "short", "--role", "viewer", "--password-stdin", stdin="abc\n")
    assert r.returncode == 1 and "at least 10" in r.stderr
    r = cli("add", "nopw", "--role", "viewer")  # no terminal, no --password-stdin
    assert r.returncode == 1 and "--password-stdin" in r.stderr
    assert cli("add", "x", "--role", "boss", "--password-stdin").returncode == 2
    r = cli("passwd", "lan", "--password-stdin", stdin="second-password\n")
    assert r.returncode == 0, r.stderr
    listing = cli("list").stdout
    assert re.search(r"^lan\s+operator\s+active\s+never$", listing, re.M), listing
    secret = cli("token", "lan", "--days", "1").stdout.strip()
    app = create_app(HubConfig(database_url=db_url), consume=False)
    with TestClient(app) as c:
        assert (
            c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}).json()[
                "username"
            ]
            == "lan"
        )
        r = c.post("/api/v1/auth/token", data={"username": "lan", "password": "first-password"})
        assert r.status_code == 401
        r = c.post("/api/v1/auth/token", data={"username": "lan", "password": "second-password"})
        assert r.status_code == 200
