"""The maps: Leaflet and the bundled outline served by the hub, the ``map`` config and
its CSP, the dashboard's Map view and the public flood page on a phone, in Chromium.

The browser tests run the real hub application under uvicorn (a real HTTP server on a
free port) and feed it what edges send through its ingest path (``Ingestor.handle``, as
the MQTT consumer does): camera statuses with positions, flood readings, and fire alerts
from two cameras whose bearings cross, which the incident manager merges into one
incident with an estimated position. Nothing of the pages is stubbed. The hub going away
is played by failing the page's API requests (``page.route``), and the page's timers
are moved on with Playwright's clock, so the test does not wait out 30 s polls.
Screenshots go to the test's tmp dir (and test-artifacts/).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from central.api.security import SECURITY_HEADERS
from central.app import create_app
from central.config import HubConfig
from edgewatch import contract
from tests.helpers import ensure_user, wait_for

ROOT = Path(__file__).resolve().parents[1]
HOTSPOTS = ROOT / "configs" / "hotspots.geojson"
FEATURES = json.loads(HOTSPOTS.read_text())["features"]
ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
OPERATOR = ("olivia", "operator-password-1")
SITE, EDGE = "hue", "edge-map"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = HubConfig(database_url=f"sqlite:///{tmp_path}/hub.sqlite3", hotspots_file=HOTSPOTS)
    with TestClient(create_app(cfg, consume=False)) as c:
        yield c


# -- the vendor files and /api/v1/map ----------------------------------------------------


def test_leaflet_and_the_outline_are_served_with_a_day_of_cache_and_an_etag(
    client: TestClient,
) -> None:
    for path, ctype in (
        ("/vendor/leaflet/leaflet.js", "text/javascript"),
        ("/vendor/leaflet/leaflet.css", "text/css"),
        ("/vendor/leaflet/LICENSE", "text/plain"),
        ("/vendor/leaflet/images/layers.png", "image/png"),
        ("/vendor/leaflet/images/marker-icon-2x.png", "image/png"),
        ("/vendor/hue-outline.geojson", "application/geo+json"),
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(ctype), (path, r.headers["content-type"])
        assert r.headers["cache-control"] == "public, max-age=86400", path
        etag = r.headers["etag"]
        assert etag.startswith('"') and len(etag) == 34, etag
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == etag
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
        # the security headers are on these answers as on every other
        assert r.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    js = client.get("/vendor/leaflet/leaflet.js").text
    assert js.startswith("/* @preserve\n * Leaflet 1.9.4"), js[:60]
    assert "BSD 2-Clause" in client.get("/vendor/leaflet/LICENSE").text
    for bad in (
        "/vendor/leaflet/leaflet-src.js",
        "/vendor/leaflet/..%2F..%2Fapp.py",
        "/vendor/leaflet/images/x.png",
        "/vendor/leaflet/images/..%2Fleaflet.js",
    ):
        assert client.get(bad).status_code == 404, bad
    for name in ("map.js", "map.css", "mapview.js"):
        assert client.get(f"/ui/{name}").status_code == 200, name


def test_the_outline_is_small_in_the_area_and_credited(client: TestClient) -> None:
    body = client.get("/vendor/hue-outline.geojson").content
    assert len(body) < 60_000, len(body)
    doc = json.loads(body)
    assert "OpenStreetMap" in doc["properties"]["credit"]
    assert doc["properties"]["licence"] == "ODbL-1.0"
    lons, lats = [], []

    def walk(c: Any) -> None:
        if isinstance(c[0], int | float):
            lons.append(c[0])
            lats.append(c[1])
        else:
            for x in c:
                walk(x)

    (land,) = doc["features"]
    assert land["geometry"]["type"] == "MultiPolygon"
    walk(land["geometry"]["coordinates"])
    assert 107.3 <= min(lons) and max(lons) <= 107.9 and 16.2 <= min(lats) and max(lats) <= 16.7
    # the city centre is on land, the lagoon's holes are water: the land has holes
    assert sum(len(poly) - 1 for poly in land["geometry"]["coordinates"]) >= 3


def test_map_settings_are_public_with_defaults_and_credits(client: TestClient) -> None:
    r = client.get("/api/v1/map")
    assert r.status_code == 200
    m = r.json()
    assert m["tile_url"] is None and m["center"] == [16.4637, 107.5909] and m["zoom"] == 12
    assert "OpenStreetMap" in m["outline_credit"] and "Leaflet" in m["library_credit"]
    assert m["outline_url"] == "/vendor/hue-outline.geojson"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://tiles.example.org/{z}/{x}/{y}.png",
        "https://tiles.example.org/{z}/{x}.png",
        "tiles.example.org/{z}/{x}/{y}.png",
        "https://tiles.example.org;script-src */{z}/{x}/{y}.png",
        "https://tiles.example.org 'unsafe-inline'/{z}/{x}/{y}.png",
        "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
    ],
)
def test_a_bad_tile_url_is_refused_naming_the_key(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        HubConfig(map={"tile_url": url})
    assert "map.tile_url" in str(err.value), str(err.value)


def test_map_center_and_zoom_are_checked() -> None:
    with pytest.raises(ValidationError) as err:
        HubConfig(map={"center": [107.59, 16.46]})  # lon, lat swapped
    assert "map.center" in str(err.value)
    with pytest.raises(ValidationError) as err:
        HubConfig(map={"zoom": 40})
    assert "map.zoom" in str(err.value)
    with pytest.raises(ValidationError) as err:
        HubConfig(map={"tiles": "https://x.org/{z}/{x}/{y}.png"})  # a typo of a key
    assert "map.tiles" in str(err.value)


def _directives(csp: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d for d in (x.strip() for x in csp.split(";"))}


def test_the_csp_allows_the_configured_tile_origin_and_nothing_else(tmp_path: Path) -> None:
    url = "https://tiles.example.org:8443/osm/{z}/{x}/{y}.png"
    cfg = HubConfig(
        database_url=f"sqlite:///{tmp_path}/hub.sqlite3",
        map={"tile_url": url, "attribution": "© OpenStreetMap contributors", "zoom": 13},
    )
    with TestClient(create_app(cfg, consume=False)) as c:
        for path in ("/hotspots", "/ui", "/api/v1/map", "/no-such-page"):
            csp = c.get(path).headers["content-security-policy"]
            mine, base = _directives(csp), _directives(SECURITY_HEADERS["Content-Security-Policy"])
            assert mine.keys() == base.keys()
            for name in base:
                if name != "img-src":
                    assert mine[name] == base[name], name
            assert mine["img-src"] == base["img-src"] + " https://tiles.example.org:8443"
        m = c.get("/api/v1/map").json()
        assert m["tile_url"] == url and m["zoom"] == 13
        assert m["attribution"] == "© OpenStreetMap contributors"


# -- the browser tests: a real hub under uvicorn -----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CAMERAS = {  # camera id -> (state, lat, lon)
    "fire-a": ("online", 16.42, 107.55),
    "fire-b": ("degraded", 16.42, 107.587),
    "gate-c": ("offline", 16.47, 107.60),
}


def _handle(app: Any, topic: str, payload: bytes) -> str:
    return str(app.state.ingestor.handle(topic, payload))


def _status(app: Any, camera: str) -> None:
    state, lat, lon = CAMERAS[camera]
    now = datetime.now(UTC)
    msg = contract.CameraStatus(
        camera_id=camera,
        state=state,  # type: ignore[arg-type]
        fps=10.0 if state != "offline" else 0.0,
        last_frame_time=now,
        reconnects=0,
        location=contract.Location(lat=lat, lon=lon),
        updated_at=now,
        degraded_reason="low fps" if state == "degraded" else None,
    )
    topic = contract.camera_status_topic(SITE, EDGE, camera)
    assert _handle(app, topic, msg.model_dump_json().encode()) in ("stored", "updated", "ok")


def _fire(app: Any, camera: str, bearing: float) -> None:
    _, lat, lon = CAMERAS[camera]
    now = datetime.now(UTC)
    msg = contract.EventMessage(
        id=uuid.uuid4(), type="new", seq=0, kind="forest_fire", analytic="fire", label="fire",
        site=SITE, edge_id=EDGE, camera_id=camera, start_time=now, frame_time=now, score=0.8,
        box=(0.4, 0.4, 0.6, 0.7), zone="hills", location=contract.Location(lat=lat, lon=lon),
        attributes={"land_use": "forest", "urgent": True, "target_bearing_deg": bearing},
    )  # fmt: skip
    topic = contract.events_topic(SITE, EDGE)
    assert _handle(app, topic, msg.model_dump_json().encode()) == "stored"


def _reading(app: Any, hid: str, state: str, level: float | None, t: datetime, **kw: Any) -> None:
    """A reading from the camera configs/hotspots.geojson links the hotspot to."""
    (cam,) = (f["properties"]["camera"] for f in FEATURES if f["properties"]["id"] == hid)
    doc = contract.HotspotReading(
        hotspot_id=hid, camera_id=cam["camera_id"], analytic="flood", setup="gauge", time=t,
        state=state, level_state=kw.pop("level_state", state), level_cm=level,
        period_s=600, **kw,  # stale after 30 min: never during the test
    )  # fmt: skip
    topic = contract.hotspot_topic(cam["site"], cam["edge_id"], hid)
    assert _handle(app, topic, doc.model_dump_json(exclude_none=True).encode()) == "stored"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("maps")
    db = f"sqlite:///{tmp / 'hub.sqlite3'}"
    cfg = HubConfig(database_url=db, hotspots_file=HOTSPOTS)
    app = create_app(cfg, consume=False)
    ensure_user(db, OPERATOR[0], "operator", OPERATOR[1])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, what="uvicorn started")
    for cam in CAMERAS:
        _status(app, cam)
    # Kim Long (hue-001, levels I/II/III at 100/200/350 cm) rising for the last hour
    now = datetime.now(UTC)
    for i in range(12, 0, -1):
        level = 230.0 - i * 2.5
        _reading(app, "hue-001", "II", level, now - timedelta(minutes=5 * i),
                 trend_cm_per_h=30.0, next_level="III", eta_s=14400)  # fmt: skip
    _reading(app, "hue-001", "II", 230.0, now - timedelta(seconds=20),
             trend_cm_per_h=30.0, next_level="III", eta_s=14400)  # fmt: skip
    # the last hotspot of the list (never seen on a phone without scrolling): normal
    for i in range(4, 0, -1):
        _reading(app, "hue-045", "normal", 40.0 + i, now - timedelta(minutes=10 * i))
    # two cameras 4 km apart see one plume: one incident, with an estimated position
    _fire(app, "fire-a", 45.0)
    _fire(app, "fire-b", 315.0)
    yield {"app": app, "base": f"http://127.0.0.1:{port}", "tmp": tmp}
    server.should_exit = True
    thread.join(10)


def _browser(pw: Any) -> Any:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    return pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])


def _shot(page: Any, world: dict, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = world["tmp"] / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


CSP_WATCH = """
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
        (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def test_dashboard_map_shows_cameras_hotspots_and_the_incident_with_bearings(world: dict) -> None:
    from playwright.sync_api import sync_playwright

    base = world["base"]
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            ctx = browser.new_context(viewport={"width": 1360, "height": 860}, locale="en-GB")
            ctx.add_init_script(CSP_WATCH)
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/ui")
            page.wait_for_url(f"{base}/login*")
            page.fill("#username", OPERATOR[0])
            page.fill("#password", OPERATOR[1])
            page.click("#submit")
            page.wait_for_selector("body[data-ready='1']")
            page.click("[data-nav=map]")
            page.wait_for_function(
                "() => Number(document.querySelector('#ops-map')?.dataset.refreshes) >= 1"
            )
            m = page.locator("#ops-map")
            assert m.locator("path.ew-outline").count() >= 1
            # three cameras, coloured by state
            assert m.locator(".ew-camera.leaflet-interactive").count() == 3
            for st in ("online", "degraded", "offline"):
                assert m.locator(f".ew-camera-{st}").count() == 1, st
            # every hotspot; Kim Long at level II (index 1), the unread ones unknown
            assert m.locator("path.ew-hotspot.leaflet-interactive").count() == len(FEATURES)
            assert m.locator("path.ew-state-level-1").count() == 1
            assert m.locator("path.ew-state-normal").count() == 1
            unknown = m.locator("path.ew-state-unknown")
            assert unknown.count() == len(FEATURES) - 2
            assert unknown.first.get_attribute("fill-opacity") == "0"  # hollow, never green
            # one incident, and the bearing line of each of its two cameras
            assert m.locator("path.ew-incident.leaflet-interactive").count() == 1
            assert m.locator("path.ew-bearing").count() == 2
            assert m.get_attribute("data-bearings") == "2"
            credits = page.inner_text(".ew-credits")
            assert "Leaflet" in credits and "OpenStreetMap" in credits
            m.locator("path.ew-incident").click()
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for()
            assert "forest_fire" in popup.inner_text()
            assert "bearings cross" in popup.inner_text()
            page.wait_for_timeout(400)  # Leaflet fades popups in
            _shot(page, world, "maps_dashboard")
            # the view refreshes by itself (every 10 s)
            page.wait_for_function(
                "() => Number(document.querySelector('#ops-map')?.dataset.refreshes) >= 2",
                timeout=15000,
            )
            assert page.evaluate("window.__csp") == []
            assert page.evaluate("window.__i18nMissing") == []
            assert errors == []
        finally:
            browser.close()


def _public(world: dict, lang: str) -> None:
    from playwright.sync_api import sync_playwright

    base = world["base"]
    texts = {
        "vi": {"level": "Báo động II", "rising": "Đang lên", "offline": "không kết nối được",
               "ago": "phút trước", "unknown": "Không xác định", "water": "Mực nước",
               "normal": "Bình thường", "m": "2,30 m", "place": "Phú Hội"},
        "en": {"level": "Level II", "rising": "Rising", "offline": "the hub cannot be reached",
               "ago": "min ago", "unknown": "Unknown", "water": "Water level",
               "normal": "Normal", "m": "2.30 m", "place": "Phu Hoi"},
    }[lang]  # fmt: skip
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            ctx = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale={"vi": "vi-VN", "en": "en-GB"}[lang],
            )
            ctx.add_init_script(CSP_WATCH)
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            history: list[str] = []
            page.on("request", lambda r: history.append(r.url) if "/history" in r.url else None)
            page.clock.install()
            page.goto(f"{base}/hotspots")
            card = page.locator('li.card[data-id="hue-001"]')
            card.wait_for()
            assert page.locator("li.card").count() == len(FEATURES)
            assert card.get_attribute("data-state") == "II"
            assert texts["level"] in card.locator(".state").inner_text()
            assert texts["water"] in card.inner_text() and texts["m"] in card.inner_text()
            assert texts["rising"] in card.inner_text()
            assert card.locator(".next").count() == 1  # time to level III
            assert texts["unknown"] in page.locator('li.card[data-id="hue-003"]').inner_text()
            # place names as each language writes them (the hotspots file's ``names``)
            assert page.locator('li.card[data-id="hue-002"] h2').inner_text() == texts["place"]
            assert page.evaluate("document.documentElement.lang") == lang
            # the map comes after the list, with its layers
            page.clock.run_for(2000)
            page.wait_for_selector("#map[data-ready='1']", timeout=15000)
            assert page.locator("#map path.ew-hotspot").count() == len(FEATURES)
            # charts are fetched for cards in view only: not one request per hotspot
            page.clock.run_for(500)
            deadline = time.monotonic() + 15  # a busy box: the observer's fetch comes late
            while not history and time.monotonic() < deadline:
                page.clock.run_for(200)
                page.wait_for_timeout(100)
            first = len(history)
            assert 1 <= first <= 8, history
            assert not any("hue-045" in u for u in history)
            page.wait_for_function(
                "() => Number(document.querySelector("
                "'li[data-id=\"hue-001\"] svg.chart')?.dataset.points) > 0"
            )
            assert card.locator("svg.chart polyline").count() == 1
            assert card.locator("svg.chart line.thr").count() == 3
            _shot(page, world, f"maps_public_{lang}_top")
            # open the last hotspot from the map: its card comes into view with its chart
            page.locator("#map").scroll_into_view_if_needed()
            _shot(page, world, f"maps_public_{lang}_map")
            last = page.locator('li.card[data-id="hue-045"]')
            page.locator("#map path.ew-state-normal").click()  # hue-045, the one normal
            page.wait_for_function(
                "() => Number(document.querySelector("
                "'li[data-id=\"hue-045\"] svg.chart')?.dataset.points) === 4"
            )
            assert "open" in (last.get_attribute("class") or "")
            assert texts["normal"] in last.locator(".state").inner_text()
            assert any("hue-045" in u for u in history)
            _shot(page, world, f"maps_public_{lang}_opened")
            # the hub goes away: the page keeps what it had and says how old it is
            page.route("**/api/v1/**", lambda route: route.abort())
            page.clock.run_for(5 * 60 * 1000)
            box = page.locator("#error")
            page.wait_for_function("() => !document.querySelector('#error').hidden")
            note = box.inner_text()
            assert texts["offline"] in note and texts["ago"] in note, note
            assert page.locator("li.card").count() == len(FEATURES)
            assert texts["level"] in card.locator(".state").inner_text()
            page.locator("body").evaluate("() => window.scrollTo(0, 0)")
            _shot(page, world, f"maps_public_{lang}_offline")
            # a reload while the hub is away: the last good answer from localStorage
            page.reload()
            page.wait_for_function("() => !document.querySelector('#error').hidden")
            assert texts["offline"] in page.inner_text("#error")
            assert page.locator('li.card[data-id="hue-001"]').get_attribute("data-state") == "II"
            # and the hub back: the note goes
            page.unroute("**/api/v1/**")
            page.clock.run_for(11000)
            page.wait_for_function("() => document.querySelector('#error').hidden")
            assert page.evaluate("window.__csp") == []
            assert page.evaluate("window.__i18nMissing") == []
            assert errors == []
        finally:
            browser.close()


def test_public_page_on_a_phone_in_vietnamese(world: dict) -> None:
    _public(world, "vi")


def test_public_page_on_a_phone_in_english(world: dict) -> None:
    _public(world, "en")


def test_public_page_first_load_is_small(world: dict) -> None:
    """The first load (without the map) stays under 80 KB as sent (the hub does not
    compress) and 20 KB gzipped; the figures for 50 read hotspots are in
    docs/benchmarks/public_page_size.json (scripts/bench_public_page.py)."""
    from scripts.bench_public_page import measure

    got = measure(world["base"])
    first = got["first_load"]
    assert first["raw_bytes"] < 80_000 and first["gzip_bytes"] < 20_000, got
    assert first["requests"] == 6, got  # page, CSS, JS, i18n module, its texts, the list
    assert not any(f["path"].startswith("/vendor/") for f in first["files"]), first
    assert got["map"]["raw_bytes"] > got["first_load"]["raw_bytes"]  # Leaflet is the bulk


def test_tiles_of_a_configured_server_load_under_the_csp(tmp_path: Path) -> None:
    """A tile server on another origin (another port): the page's CSP lets its tiles in,
    they are drawn over the outline, and its attribution is shown."""
    import http.server

    from playwright.sync_api import sync_playwright

    png = (ROOT / "central/web/vendor/leaflet/images/layers.png").read_bytes()
    asked: list[str] = []

    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name is http.server's
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: Any) -> None:
            pass

    tiles = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    tile_origin = f"http://127.0.0.1:{tiles.server_address[1]}"
    cfg = HubConfig(
        database_url=f"sqlite:///{tmp_path}/hub.sqlite3",
        hotspots_file=HOTSPOTS,
        map={"tile_url": tile_origin + "/t/{z}/{x}/{y}.png", "attribution": "Test tiles ©"},
    )
    app = create_app(cfg, consume=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, what="uvicorn started")
        with sync_playwright() as pw:
            browser = _browser(pw)
            try:
                ctx = browser.new_context(viewport={"width": 1000, "height": 800})
                ctx.add_init_script(CSP_WATCH)
                page = ctx.new_page()
                page.goto(f"http://127.0.0.1:{port}/hotspots")
                page.wait_for_selector("#map[data-ready='1']", timeout=15000)
                page.wait_for_function(
                    "() => document.querySelectorAll('#map img.leaflet-tile-loaded').length > 0"
                )
                assert page.locator("#map path.ew-outline").count() >= 1
                assert "Test tiles ©" in page.inner_text(".ew-credits")
                assert page.evaluate("window.__csp") == []
                # the configured zoom (12), then the one that frames the hotspots (at most 14)
                zooms = {int(p.split("/")[2]) for p in asked}
                assert asked and zooms <= {12, 12.5, 13, 13.5, 14}, asked[:5]
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
        tiles.shutdown()


def test_place_names_per_language_are_served_and_checked(client: TestClient) -> None:
    from pydantic import ValidationError

    from central.hotspots import Hotspot

    feats = {
        f["properties"]["id"]: f["properties"]
        for f in client.get("/api/v1/hotspots").json()["features"]
    }
    assert feats["hue-002"]["name"] == "Phu Hoi"
    assert feats["hue-002"]["names"] == {"vi": "Phú Hội"}
    base = {
        "id": "x-1",
        "name": "X",
        "lon": 107.6,
        "lat": 16.4,
        "levels": [{"name": "I", "level_cm": 1}],
    }
    assert Hotspot.model_validate({**base, "names": {"vi": "Xã X"}}).names == {"vi": "Xã X"}
    for bad in ({"vie": "X"}, {"vi": ""}, {"VI": "X"}):
        with pytest.raises(ValidationError):
            Hotspot.model_validate({**base, "names": bad})
