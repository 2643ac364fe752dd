"""The hub's web surface under attack (issue #16): spoofed X-Forwarded-For against the
login throttle, what a viewer may not read, live streams that must end with their
session, one set of security headers everywhere, and malformed inputs that must give
4xx, never 500.

Where the behaviour depends on uvicorn (proxy headers, a stream on a socket) the hub
runs as its real process (``tests.helpers.Hub``, with the session's mosquitto); the rest
runs against the real app and database in process (SQLite and PostgreSQL). Pages are
loaded in the Debian Chromium to check that the CSP blocks nothing they need and that
nothing is fetched from anywhere but the hub.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from central.api.security import SECURITY_HEADERS
from central.app import create_app
from central.config import HubConfig
from central.storage.models import DeliveryRow, IncidentRow
from edgewatch import contract
from tests.helpers import Hub, Mosquitto, ensure_user
from tests.test_auth import PASSWORDS, ROLES, fill, token
from tests.test_hub import EDGE, EV_TOPIC, SITE, event, handle

WEB = Path(__file__).resolve().parents[1] / "central" / "web"
HOOK_SECRET = "s3cr3t-hook-token"
HOOK_URL = f"https://hooks.example.org/services/T0/B1/{HOOK_SECRET}?token={HOOK_SECRET}"
PUSH_URL = "https://push.example.net/wpush/v2/gAAAAABk-a-capability-url-0123456789abcdef"


# --------------------------------------------------------------------------- in process


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    for name, password in PASSWORDS.items():
        ensure_user(db_url, name, ROLES[name], password)
    cfg = HubConfig(database_url=db_url, hotspots_file=Path("configs/hotspots.geojson"))
    # A 500 must show as a 500 here, not as an exception inside the test.
    with TestClient(create_app(cfg, consume=False), raise_server_exceptions=False) as c:
        yield c


def _incident_with_deliveries(c: TestClient) -> str:
    now = datetime.now(UTC)
    inc = str(uuid.uuid4())
    with c.app.state.sessions.begin() as s:  # type: ignore[attr-defined]
        s.add(
            IncidentRow(
                id=inc, kind="forest_fire", state="open", urgent=True, opened_at=now,
                updated_at=now, last_alert_at=now, lat=16.2, lon=107.8, team_id="rangers",
                notified_team="rangers", escalation_level=0, alerts=1,
            )
        )  # fmt: skip
        for channel, target, error in (
            ("webhook", HOOK_URL, f"URLError: <urlopen error for {HOOK_URL}>"),
            ("webpush", PUSH_URL, None),
            ("mqtt", "edgewatch/v1/teams/rangers/incidents", None),
        ):
            s.add(
                DeliveryRow(
                    incident_id=inc, team_id="rangers", channel=channel, target=target,
                    reason="new", payload={}, state="failed", attempts=30,
                    next_attempt_at=now, last_error=error, created_at=now,
                )
            )  # fmt: skip
    return inc


def test_viewer_is_refused_incidents_metrics_and_internal_hotspots(client: TestClient) -> None:
    inc = _incident_with_deliveries(client)
    guarded = ("/api/v1/incidents", f"/api/v1/incidents/{inc}", "/metrics")
    internal = "/api/v1/hotspots/internal"
    viewer = token(client, "victor")
    for path in (*guarded, internal):
        r = client.get(path, headers=viewer)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert HOOK_SECRET not in r.text
    ranger = token(client, "ranger")  # incidents yes (redacted), internals no
    assert client.get(internal, headers=ranger).status_code == 403
    assert client.get("/metrics", headers=ranger).status_code == 403
    operator = token(client, "olivia")
    assert client.get(internal, headers=operator).status_code == 200
    assert client.get("/metrics", headers=operator).status_code == 200

    for who in (ranger, operator):
        assert client.get("/api/v1/incidents", headers=who).status_code == 200
        r = client.get(f"/api/v1/incidents/{inc}", headers=who)
        assert r.status_code == 200
        assert HOOK_SECRET not in r.text and "gAAAAAB" not in r.text, r.text
        by = {d["channel"]: d for d in r.json()["deliveries"]}
        assert by["webhook"]["target"] == "https://hooks.example.org/..."
        assert by["webpush"]["target"] == "https://push.example.net/..."
        assert by["mqtt"]["target"] == "edgewatch/v1/teams/rangers/incidents"
        assert "https://hooks.example.org/..." in by["webhook"]["last_error"]
    # admins see the full targets (they configured them)
    by = {
        d["channel"]: d
        for d in client.get(f"/api/v1/incidents/{inc}", headers=token(client, "admin")).json()[
            "deliveries"
        ]
    }
    assert by["webhook"]["target"] == HOOK_URL and HOOK_SECRET in by["webhook"]["last_error"]


def _check_headers(r: Any, what: object) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (what, name, r.headers.get(name))
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp


PAGES = (
    "/",
    "/login",
    "/ui",
    "/ui/app.js",
    "/ui/app.css",
    "/ui/login.js",
    "/hotspots",
    "/static/hotspots.js",
    "/static/hotspots.css",
    "/rangers",
    "/rangers/rangers.js",
    "/rangers/rangers.css",
    "/rangers/sw.js",
    "/rangers/manifest.webmanifest",
    "/docs",
    "/docs/docs.js",
    "/docs/swagger-ui-bundle.js",
    "/docs/swagger-ui.css",
    "/openapi.json",
    "/no-such-page",
    "/ui/no-such-asset.js",
)


def test_security_headers_on_every_route_and_page(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    admin = token(client, "admin")
    routes = [(m, p) for p, ops in doc["paths"].items() for m in ops]
    seen = 0
    for method, path in sorted(routes, key=lambda mp: mp[1].endswith("/logout")):
        if path.endswith("/stream"):
            continue  # endless: checked on the real hub (test_live_stream_ends_at_logout)
        url = fill(path)
        for headers in ({}, admin):  # the 401 answers and the real ones
            r = client.request(method.upper(), url, headers=headers, json={})
            _check_headers(r, (method, path, r.status_code))
            seen += 1
    assert seen >= 50, seen
    for page in PAGES:
        r = client.get(page, follow_redirects=False)
        assert r.status_code in (200, 307, 404), (page, r.status_code)
        _check_headers(r, page)
    # the packaged Swagger UI, not a CDN (and no ReDoc, which would load from one)
    html = client.get("/docs").text
    assert "/docs/swagger-ui-bundle.js" in html and "//cdn" not in html and "http" not in html
    assert client.get("/docs/swagger-ui-bundle.js").content.startswith(b"/*!")
    assert client.get("/redoc").status_code == 404


def test_docs_can_be_turned_off(db_url: str) -> None:
    cfg = HubConfig(database_url=db_url, http={"docs": False})
    with TestClient(create_app(cfg, consume=False)) as c:
        for path in ("/docs", "/docs/swagger-ui-bundle.js", "/openapi.json", "/redoc"):
            r = c.get(path)
            assert r.status_code == 404, path
            _check_headers(r, path)


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and not a.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("inline <style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}> from another origin")


@pytest.mark.parametrize("page", sorted(p.name for p in WEB.glob("*.html")))
def test_pages_carry_no_inline_code_and_nothing_from_elsewhere(page: str) -> None:
    parser = _Inline()
    parser.feed((WEB / page).read_text())
    assert parser.problems == [], (page, parser.problems)


def test_malformed_inputs_give_4xx_never_500(client: TestClient) -> None:
    # a non-ASCII CSRF token on a cookie session (compare_digest raised TypeError)
    r = client.post(
        "/api/v1/auth/login", json={"username": "olivia", "password": PASSWORDS["olivia"]}
    )
    assert r.status_code == 200
    eid = uuid.uuid4()
    handle(client, EV_TOPIC, event(eid, "new", 0))
    for sent in ("é".encode(), "\u00ff\u00fe".encode("latin-1"), b"\xe2\x82\xac" * 20):
        r = client.post(f"/api/v1/events/{eid}/ack", headers={"X-CSRF-Token": sent})
        assert r.status_code == 403, (sent, r.status_code, r.text)
    client.cookies.clear()
    # a non-ASCII ack token; "²" passes str.isdigit() but not int()
    inc = _incident_with_deliveries(client)
    for bad in ("rangers~²~nonce~mac", "é", "rangers~1~n~\u2603", "\u0663\u0661~x~y~z"):
        r = client.post(f"/api/v1/incidents/{inc}/ack", params={"token": bad})
        assert r.status_code == 403, (bad, r.status_code, r.text)
    # an offset past what SQLite's (or PostgreSQL's) integers hold
    op = token(client, "olivia")
    for path in ("/api/v1/events", "/api/v1/reviews", "/api/v1/cameras"):
        for offset in (2**63, 10**30):
            r = client.get(path, params={"offset": offset}, headers=op)
            assert r.status_code == 422, (path, offset, r.status_code, r.text)
        assert client.get(path, params={"offset": 10**9}, headers=op).status_code == 200
    # manifests whose "files" is not an object of objects
    for files in ([{"name": "at.jpg", "sha256": "0" * 64}], {"at.jpg": "0" * 64}, "x", None):
        eid = uuid.uuid4()
        handle(client, EV_TOPIC, event(eid, "new", 0, kind="red_light"))
        manifest = json.dumps({"files": files}).encode()
        topic = contract.evidence_topic(SITE, EDGE, eid, "manifest.json")
        assert handle(client, topic, manifest) == "stored"
        r = client.get(f"/api/v1/events/{eid}/evidence", headers=op)
        assert r.status_code == 200, (files, r.status_code, r.text)
        assert r.json()["verified"] is False
        assert "manifest.json is not a manifest" in r.json()["problems"]


# --------------------------------------------------------------------------- real hub


def _post(
    base: str, path: str, body: dict | bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    if isinstance(body, dict):
        data, ctype = json.dumps(body).encode(), "application/json"
    else:
        data, ctype = body, "application/x-www-form-urlencoded"
    req = urllib.request.Request(
        base + path, data=data, method="POST", headers={"Content-Type": ctype, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, dict(r.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def _login_form(
    base: str, user: str, password: str, xff: str | None = None
) -> tuple[int, dict[str, str]]:
    form = urllib.parse.urlencode({"username": user, "password": password}).encode()
    headers = {"X-Forwarded-For": xff} if xff else {}
    status, hdrs, _ = _post(base, "/api/v1/auth/token", form, headers)
    return status, hdrs


def _log_records(hub: Hub, msg: str) -> list[dict]:
    out = []
    for line in hub.log_text().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("msg") == msg:
            out.append(doc)
    return out


def _hub(tmp: Path, broker: Mosquitto, **extra: Any) -> Hub:
    db = f"sqlite:///{tmp / 'hub.sqlite3'}"
    http = extra.pop("http", {})
    hub = Hub(tmp, db, broker, f"hub-{uuid.uuid4().hex[:8]}", extra=extra)
    if http:  # Hub writes http: {host, port}; add to it rather than replace it
        cfg = yaml.safe_load(hub.config_path.read_text())
        cfg["http"].update(http)
        hub.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    for name, password in PASSWORDS.items():
        ensure_user(db, name, ROLES[name], password)
    hub.start()
    return hub


def test_spoofed_x_forwarded_for_neither_escapes_nor_aims_the_throttle(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """No trusted proxy (the default): the address is the peer's, whatever the header."""
    hub = _hub(tmp_path, broker, auth={"login_max_failures": 3, "login_window_s": 60})
    try:
        # three wrong passwords, for three names, each "from" another address
        for i in range(3):
            status, _ = _login_form(hub.base, f"ghost{i}", "wrong-password", f"203.0.113.{i}")
            assert status == 401
        # the loopback address is locked out: a fresh spoofed address does not help,
        # not even with admin's right password
        status, hdrs = _login_form(hub.base, "admin", PASSWORDS["admin"], "198.51.100.77")
        assert status == 429, status
        assert int(hdrs["retry-after"]) >= 1
        failed = _log_records(hub, "login failed")
        assert [r["client"] for r in failed] == ["127.0.0.1"] * 3  # not 203.0.113.x
    finally:
        hub.stop()


def test_trusted_proxy_keys_the_throttle_by_forwarded_address_and_a_global_budget(
    tmp_path: Path, broker: Mosquitto
) -> None:
    hub = _hub(
        tmp_path,
        broker,
        http={"trusted_proxies": ["127.0.0.1"]},
        auth={"login_max_failures": 3, "login_window_s": 60, "login_global_max_failures": 6},
    )
    try:
        for i in range(3):
            assert _login_form(hub.base, f"ghost{i}", "wrong-password", "198.51.100.1")[0] == 401
        # that client is locked out; another behind the same proxy is not
        assert _login_form(hub.base, "admin", PASSWORDS["admin"], "198.51.100.1")[0] == 429
        assert _login_form(hub.base, "admin", PASSWORDS["admin"], "198.51.100.2")[0] == 200
        # a spray over many addresses and names, each under its own limits, still stops
        for i in range(3):
            status, _ = _login_form(hub.base, f"spray{i}", "Summer2026!", f"192.0.2.{i}")
            assert status == 401
        status, hdrs = _login_form(hub.base, "olivia", PASSWORDS["olivia"], "192.0.2.200")
        assert status == 429 and int(hdrs["retry-after"]) >= 1
        throttled = _log_records(hub, "login throttled")
        assert throttled[-1]["global_budget_spent"] is True
        assert throttled[-1]["client"] == "192.0.2.200"
        assert not any(PASSWORDS["olivia"] in line for line in hub.log_text().splitlines())
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Hub]:
    """Default auth settings: the live stream's 30 s promise is checked as shipped."""
    hub = _hub(
        tmp_path_factory.mktemp("live"),
        mosquitto,
        hotspots_file=str(Path("configs/hotspots.geojson").resolve()),
    )
    ensure_user(hub.db_url, "vera", "viewer", "vera-password-1")
    yield hub
    hub.stop()


def _cookie_login(base: str, user: str) -> tuple[str, str]:
    status, headers, body = _post(
        base, "/api/v1/auth/login", {"username": user, "password": PASSWORDS[user]}
    )
    assert status == 200, body
    cookie = headers["set-cookie"].split(";", 1)[0]
    return cookie, body["csrf_token"]


def _open_stream(base: str, headers: dict[str, str]) -> HTTPResponse:
    req = urllib.request.Request(f"{base}/api/v1/alerts/stream", headers=headers)
    resp = urllib.request.urlopen(req, timeout=40)
    assert resp.headers.get_content_type() == "text/event-stream"
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value, name
    lines = [resp.readline() for _ in range(3)]
    assert b"event: hello\n" in lines, lines
    return resp


def _until_closed(resp: HTTPResponse, limit_s: float) -> tuple[float, list[str]]:
    """Seconds until the hub closed the stream, and the events it sent before."""
    t0 = time.monotonic()
    events: list[str] = []
    while time.monotonic() - t0 < limit_s:
        line = resp.readline()
        if not line:
            return time.monotonic() - t0, events
        if line.startswith(b"event:") or line.startswith(b"data:"):
            events.append(line.decode().strip())
    raise AssertionError(f"stream still open after {limit_s} s: {events}")


def _still_open(resp: HTTPResponse, for_s: float) -> None:
    sock = resp.fp.raw._sock  # type: ignore[union-attr]
    sock.settimeout(for_s)
    try:
        line = resp.readline()
        assert line and not line.startswith(b"event: ended"), line  # only keepalives
    except TimeoutError:
        pass
    finally:
        sock.settimeout(40)


def test_live_stream_ends_at_logout(live_hub: Hub) -> None:
    base = live_hub.base
    cookie, csrf = _cookie_login(base, "olivia")
    mine = _open_stream(base, {"Cookie": cookie})
    other = _open_stream(base, {"Authorization": f"Bearer {_bearer(base, 'ranger')}"})
    status, _, _ = _post(base, "/api/v1/auth/logout", {}, {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 204
    took, events = _until_closed(mine, 30)
    assert took < 30 and events[-2:] == ["event: ended", 'data: {"reason": "signed_out"}']
    _still_open(other, 2.0)  # another session's stream goes on
    other.close()
    # and the cookie cannot open a new one
    with pytest.raises(urllib.error.HTTPError) as err:
        _open_stream(base, {"Cookie": cookie})
    assert err.value.code == 401


def _bearer(base: str, user: str, password: str | None = None) -> str:
    form = urllib.parse.urlencode({"username": user, "password": password or PASSWORDS[user]})
    status, _, body = _post(base, "/api/v1/auth/token", form.encode())
    assert status == 200, body
    return str(body["access_token"])


def test_live_stream_ends_when_the_account_is_disabled_or_changes_role(live_hub: Hub) -> None:
    base = live_hub.base
    admin = {"Authorization": f"Bearer {_bearer(base, 'admin')}"}
    body = {"username": "dana", "role": "operator", "password": "dana-password-1"}
    assert _post(base, "/api/v1/users", body, admin)[0] in (201, 409)
    dana_token = _bearer(base, "dana", body["password"])
    dana = _open_stream(base, {"Authorization": f"Bearer {dana_token}"})
    req = urllib.request.Request(
        f"{base}/api/v1/users/dana",
        data=json.dumps({"disabled": True}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", **admin},
    )
    assert urllib.request.urlopen(req, timeout=10).status == 200
    took, events = _until_closed(dana, 30)
    assert took < 30 and events[-1] == 'data: {"reason": "signed_out"}'

    # a role change: the stream of the old role's view ends (the client reopens it)
    vera = _bearer(base, "vera", "vera-password-1")
    viewer = _open_stream(base, {"Authorization": f"Bearer {vera}"})
    req = urllib.request.Request(
        f"{base}/api/v1/users/vera",
        data=json.dumps({"role": "ranger"}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", **admin},
    )
    assert urllib.request.urlopen(req, timeout=10).status == 200
    took, events = _until_closed(viewer, 30)
    assert took < 30 and events[-1] == 'data: {"reason": "role_changed"}'


def test_live_stream_ends_after_a_password_change_made_outside_the_hub(live_hub: Hub) -> None:
    """``edgewatch user passwd`` writes the database from another process: no notice
    reaches the hub, so the stream's periodic re-check (auth.stream_recheck_s, 10 s by
    default) must end it, within 30 s."""
    base = live_hub.base
    ensure_user(live_hub.db_url, "pavel", "operator", "pavel-password-1")
    resp = _open_stream(
        base, {"Authorization": f"Bearer {_bearer(base, 'pavel', 'pavel-password-1')}"}
    )
    ensure_user(live_hub.db_url, "pavel", "operator", "pavel-password-2")  # ends his sessions
    took, events = _until_closed(resp, 30)
    assert took < 30 and events[-1] == 'data: {"reason": "signed_out"}', (took, events)


def test_pages_render_under_the_csp_with_nothing_from_elsewhere(live_hub: Hub) -> None:
    """Swagger UI, the rangers' page (its script moved out of the HTML), the public
    hotspot page, the login page and the dashboard: no CSP violation, no request to
    another origin."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    base = live_hub.base
    elsewhere: list[str] = []
    collect = """
        window.__csp = [];
        document.addEventListener('securitypolicyviolation',
            (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    """
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            ctx = browser.new_context()
            ctx.add_init_script(collect)

            def gate(route: Any) -> None:
                url = route.request.url
                if url.startswith(base) or url.startswith(("data:", "blob:")):
                    route.continue_()
                else:
                    elsewhere.append(url)
                    route.abort()

            ctx.route("**/*", gate)
            page = ctx.new_page()
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock", timeout=20000)
            assert page.locator(".opblock").count() >= 20
            assert "/api/v1/alerts/stream" in page.inner_text("#swagger-ui")
            assert page.evaluate("window.__csp") == []

            page.goto(f"{base}/rangers")
            # predicates as functions: Playwright evals a string one, which the CSP forbids
            page.wait_for_function(
                "() => document.querySelector('#status').textContent.includes('no team or token')"
            )
            assert page.evaluate("window.__csp") == []

            page.goto(f"{base}/hotspots")
            page.wait_for_function(
                "() => !document.querySelector('#summary').textContent.startsWith('Loading')"
            )
            assert page.locator("#list li").count() >= 1
            assert page.evaluate("window.__csp") == []

            page.goto(f"{base}/ui")
            page.wait_for_url(f"{base}/login*")
            page.fill("#username", "victor")
            page.fill("#password", PASSWORDS["victor"])
            page.click("#submit")
            page.wait_for_selector("body[data-ready='1']")
            assert page.evaluate("window.__csp") == []
            # a viewer has no internal hotspot data, so no link to it
            assert page.locator("[data-nav=hotspots]").is_hidden()
            page.goto(f"{base}/ui#/hotspots")
            page.wait_for_selector("#no-hotspots")
            # the viewer signs out in another tab: this page's live stream ends, and the
            # page goes to the login page by itself
            other = ctx.new_page()
            other.goto(f"{base}/ui")
            other.wait_for_selector("body[data-ready='1']")
            other.click("#logout")
            page.wait_for_url(f"{base}/login*", timeout=30000)
        finally:
            browser.close()
    assert elsewhere == []


def test_trusted_proxies_are_addresses_or_networks() -> None:
    from pydantic import ValidationError

    assert HubConfig().http.trusted_proxies == []  # nobody, unless configured
    cfg = HubConfig(http={"trusted_proxies": ["10.0.0.5", "10.1.0.0/16", "::1"]})
    assert cfg.http.trusted_proxies == ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]
    for bad in ("nginx", "10.0.0.300", "*"):
        with pytest.raises(ValidationError, match="not an IP address or network"):
            HubConfig(http={"trusted_proxies": [bad]})
