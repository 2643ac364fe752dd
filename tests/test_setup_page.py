"""The camera set-up page (#/setup/{camera_id}) in headless Chromium, on real parts.

Mosquitto with TLS and accounts, the hub as a process, and an edge account publishing
what an edge publishes: the camera's latest JPEG (retained, on its frame topic), the
preview of what its analytics see (detections of the real YOLOX-Nano on that frame,
readings) and its status, with the configuration version it runs or why it refused one.
Nothing of the hub is stubbed: the page loads the configuration, the analytics' manifests
(their drawable geometry) and the frame from the hub's API, and saves through it.

What a person does is what the test does: clicks on the frame to draw a zone and close
it, undoes a point, adds a counting line with two clicks, drags a point until it snaps,
deletes one with a right-click, saves, and then reads back through the API that what was
drawn is what was stored (fractions of the frame, within the 1 % a click can miss by). An
invalid zone is refused by the hub with its key path, shown in the error list and in red
on the frame; the edge's answer (running, refused) is followed on the page.

Screenshots (test-artifacts/setup_*.png) of a traffic camera with rules, a flood gauge
camera (the real GRIME2 marsh gauge with its calibrated config) and a fire camera with
land-use zones (a real smoke scene of the fire/smoke dataset; its fire and smoke boxes are
the dataset's labels, as no fire model ships in the assets).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import yaml

from edge.inference.detector import Detector
from edge.inference.registry import Registry
from edgewatch import contract
from tests.helpers import Hub, Mosquitto, ensure_user, wait_for

ARTIFACTS = Path(os.environ.get("EDGEWATCH_TEST_ARTIFACTS", "test-artifacts"))
ROOT = Path(__file__).resolve().parents[1]
SITE, EDGE = "hue", "edge-setup"
OPERATOR = ("olivia", "operator-password-1")
VIEWER = ("victor", "viewer-password-1")
URL = "rtsp://admin:gate-secret-1@10.0.0.5:554/stream1"
ERRORS: dict[int, list[str]] = {}  # uncaught errors of each page


# -- the world: broker, hub, an edge account; real frames and real detections -------------


def _jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _video_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="bgr24")
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


def _detections(detector: Detector, img: np.ndarray, min_score: float = 0.35) -> list[dict]:
    """What the edge's detector sees on the frame, as the preview carries it (fractions)."""
    det = detector.detect_batch([img], min_score=min_score)[0]
    h, w = img.shape[:2]
    out = []
    for (x1, y1, x2, y2), score, cls in zip(det.xyxy, det.confidence, det.class_id, strict=True):
        box = (max(0.0, x1 / w), max(0.0, y1 / h), min(1.0, x2 / w), min(1.0, y2 / h))
        out.append(
            {
                "box": [round(float(v), 4) for v in box],
                "label": detector.class_names[int(cls)],
                "score": round(float(score), 3),
            }
        )
    return out


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, assets: Path, model_dir: Path
):
    tmp = tmp_path_factory.mktemp("setup-page")
    uid = uuid.uuid4().hex[:8]
    db = f"sqlite:///{tmp / 'hub.sqlite3'}"
    hub = Hub(tmp, db, mosquitto, f"hub-setup-{uid}")
    ensure_user(db, OPERATOR[0], "operator", OPERATOR[1])
    ensure_user(db, VIEWER[0], "viewer", VIEWER[1])
    hub.start()
    edge = mosquitto.client(EDGE, "edge", site=SITE)
    reg = Registry(model_dir)
    detector = Detector(reg.spec("yolox_nano"), reg.resolve("yolox_nano"))
    yield {"hub": hub, "edge": edge, "detector": detector, "assets": assets}
    edge.loop_stop()
    edge.disconnect()
    hub.stop()


def put_config(hub: Hub, camera: str, config: dict, comment: str = "test") -> dict:
    body = {"site": SITE, "edge_id": EDGE, "config": config, "comment": comment}
    req = urllib.request.Request(
        f"{hub.base}/api/v1/cameras/{camera}/config",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", **hub._auth()},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"PUT {camera}: {exc.code} {exc.read()[:2000]!r}") from None


def status(w: dict, camera: str, **kw: Any) -> None:
    """The camera's status as its edge reports it (retained)."""
    now = datetime.now(UTC)
    msg = contract.CameraStatus(
        camera_id=camera, state="online", fps=10.0, last_frame_time=now, reconnects=0,
        updated_at=now, **kw,
    )  # fmt: skip
    topic = contract.camera_status_topic(SITE, EDGE, camera)
    w["edge"].publish(topic, msg.model_dump_json().encode(), qos=1, retain=True).wait_for_publish(5)


def publish_frame(
    w: dict, camera: str, img: np.ndarray, detections: list[dict], readings: dict | None = None
) -> None:
    """The latest frame and the preview beside it, retained, as the edge sends them."""
    jpeg = _jpeg(img)
    h, wd = img.shape[:2]
    preview = contract.CameraPreview(
        camera_id=camera,
        time=datetime.now(UTC),
        width=wd,
        height=h,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        detections=[contract.DetectionRef(**d) for d in detections],
        readings=readings or {},
    )
    pub = w["edge"]
    pub.publish(
        contract.camera_frame_topic(SITE, EDGE, camera), jpeg, qos=1, retain=True
    ).wait_for_publish(5)
    topic = contract.camera_preview_topic(SITE, EDGE, camera)
    pub.publish(topic, preview.model_dump_json().encode(), qos=1, retain=True).wait_for_publish(5)
    hub: Hub = w["hub"]

    def arrived() -> bool:
        try:
            got = hub.get(f"/api/v1/cameras/{camera}/frame.jpg")
            return got == jpeg and bool(hub.get(f"/api/v1/cameras/{camera}/preview"))
        except urllib.error.HTTPError:
            return False

    wait_for(arrived, 15, what=f"the hub stored {camera}'s frame and preview")


def get_config(hub: Hub, camera: str) -> dict:
    return hub.get(f"/api/v1/cameras/{camera}/config")  # type: ignore[no-any-return]


# -- the browser ---------------------------------------------------------------------------


def browser_page(pw: Any, base: str, user: tuple[str, str]) -> tuple[Any, Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required (scripts/setup.sh installs it)"
    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    ctx = browser.new_context(viewport={"width": 1440, "height": 960}, has_touch=True)
    ctx.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        " window.__errors = [];"
        " window.addEventListener('error', (e) => window.__errors.push(String(e.message)));"
    )
    page = ctx.new_page()
    ERRORS[id(page)] = []
    page.on("pageerror", lambda exc: ERRORS[id(page)].append(str(exc)))
    page.goto(f"{base}/ui")
    page.wait_for_url(f"{base}/login*")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("#submit")
    page.wait_for_url(f"{base}/ui*")
    page.wait_for_selector("body[data-ready='1']")
    return browser, page


def open_setup(page: Any, base: str, camera: str, frame: bool = True) -> None:
    page.goto(f"{base}/ui#/setup/{camera}")
    page.wait_for_selector("#setup-canvas")
    if frame:
        page.wait_for_selector("#setup-canvas image")
    page.wait_for_function(
        "() => document.querySelector('#setup-frame-info')?.textContent.length > 0"
    )


def at(page: Any, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#setup-canvas").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def click(page: Any, fx: float, fy: float, **kw: Any) -> None:
    page.mouse.click(*at(page, fx, fy), **kw)


def points(page: Any, key: str) -> int:
    return page.locator(f'#setup-canvas g.inst[data-key="{key}"] circle.pt').count()


def clean(page: Any) -> None:
    text = page.inner_text("#view")
    assert "undefined" not in text and "[object" not in text and "NaN" not in text, text
    assert page.evaluate("window.__csp") == []
    assert page.evaluate("window.__errors") == [] and ERRORS[id(page)] == []


def edited(page: Any) -> dict:
    """The configuration the page is editing (its read-only JSON view)."""
    return json.loads(page.eval_on_selector("#setup-json", "e => e.textContent"))  # type: ignore[no-any-return]


def near(got: list[list[float]], want: list[tuple[float, float]], tol: float = 0.01) -> bool:
    return len(got) == len(want) and all(
        abs(g[0] - x) <= tol and abs(g[1] - y) <= tol for g, (x, y) in zip(got, want, strict=True)
    )


# -- drawing, saving, reading back ---------------------------------------------------------


def test_operator_draws_a_zone_and_a_line_saves_them_and_follows_the_edge(world: dict) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    hub: Hub = world["hub"]
    cam = "bridge-1"
    initial = {
        "id": cam,
        "url": URL,
        "analytics": [
            {"type": "objects", "name": "objects", "classes": ["car", "truck", "person"]}
        ],
    }
    first = put_config(hub, cam, initial, "first")
    status(world, cam)
    img = _video_frame(world["assets"] / "video" / "highway_cctv_320x240.avi", 400)
    dets = _detections(world["detector"], img)
    assert len(dets) >= 2, dets  # vehicles on the road
    publish_frame(world, cam, img, dets)
    zone = [(0.12, 0.2), (0.78, 0.22), (0.85, 0.9), (0.08, 0.88)]
    line = [(0.1, 0.6), (0.9, 0.62)]

    with sync_playwright() as pw:
        browser, page = browser_page(pw, hub.base, OPERATOR)
        try:
            # the camera list links to the set-up page
            page.goto(f"{hub.base}/ui#/cameras")
            page.wait_for_selector(f'article[data-camera="{cam}"] a.setup-link')
            page.click(f'article[data-camera="{cam}"] a.setup-link')
            page.wait_for_url(f"**#/setup/{cam}")
            open_setup(page, hub.base, cam)
            assert page.input_value("#setup-analytic") == "0"
            assert page.input_value("#setup-field") == "zone"  # not drawn: drawing starts
            assert page.locator("#setup-canvas .det").count() == len(dets)
            assert "version 1" in page.inner_text("#setup-version")

            # a zone: four clicks, one undone and clicked again, closed on its first point
            for fx, fy in zone[:3]:
                click(page, fx, fy)
            assert points(page, "zone") == 3
            page.keyboard.press("Control+z")
            assert points(page, "zone") == 2
            page.click("#setup-undo")
            assert points(page, "zone") == 1
            for fx, fy in zone[1:]:
                click(page, fx, fy)
            assert points(page, "zone") == 4
            assert page.locator('#setup-canvas g.inst[data-key="zone"] polygon.geom').count() == 0
            click(page, *zone[0])  # the first point again: closed
            assert page.locator('#setup-canvas g.inst[data-key="zone"] polygon.geom').count() == 1
            assert points(page, "zone") == 4
            # what the zone sees now: the detections whose bottom centre is inside it
            inside = [
                d for d in dets
                if d["label"] in ("car", "truck", "person")
                and cv2.pointPolygonTest(
                    np.array(zone, np.float32),
                    ((d["box"][0] + d["box"][2]) / 2, d["box"][3]),
                    False,
                ) >= 0
            ]  # fmt: skip
            sees = page.inner_text("#setup-sees")
            assert f"objects · zone: {len(inside)}" in sees, sees
            assert page.locator("#setup-canvas .det.hit").count() == len(inside)

            # a counting line: a new line_count analytic, two clicks
            page.select_option("#setup-add-type", "line_count")
            page.click("#setup-add-analytic")
            assert page.input_value("#setup-analytic") == "1"
            assert page.input_value("#setup-field") == "lines.0"
            for fx, fy in line:
                click(page, fx, fy)
            assert page.locator('#setup-canvas g.inst[data-key="lines.0"] line.geom').count() == 1
            # its direction is set across it, drawn as an arrow
            assert (
                page.locator('#setup-canvas g.inst[data-key="lines.0.direction"] line.vec').count()
                == 1
            )
            json_text = page.eval_on_selector("#setup-json", "e => e.textContent")
            assert '"line_count"' in json_text and '"line_1"' in json_text
            # the arrow turned round, and back (Flip; Ctrl+Z)
            page.select_option("#setup-field", "lines.0.direction")
            before = edited(page)["analytics"][1]["lines"][0]["direction"]
            page.click("#setup-flip")
            flipped = edited(page)["analytics"][1]["lines"][0]["direction"]
            assert flipped == [-before[0] or 0, -before[1] or 0]
            page.click("#setup-undo")
            assert edited(page)["analytics"][1]["lines"][0]["direction"] == before

            # the settings that are not drawn, as JSON: a typo is shown, not applied
            page.click(".setup-advanced summary")
            page.select_option("#setup-advanced-scope", "0")
            text = page.input_value("#setup-advanced")
            assert '"zone"' not in text and '"classes"' in text  # geometry is drawn, not typed
            page.fill("#setup-advanced", '{"type": "objects", "min_score": 0.5,')
            page.wait_for_selector("#setup-json-error:not([hidden])")
            assert "Not valid JSON" in page.inner_text("#setup-json-error")
            page.click("#setup-save")  # refused while the text is not applied
            assert "not applied" in page.inner_text("#setup-json-error")
            doc = json.loads(text)
            doc["min_score"] = 0.5
            page.fill("#setup-advanced", json.dumps(doc))
            assert page.is_hidden("#setup-json-error")
            page.click("#setup-apply")
            cur = edited(page)["analytics"][0]
            assert cur["min_score"] == 0.5 and near(cur["zone"], zone)  # the zone kept

            page.fill("#setup-comment", "zone over the lot; a counting line")
            page.click("#setup-save")
            page.wait_for_function(
                "() => /Saved: version 2/.test(document.querySelector('#setup-status').textContent)"
            )
            shot = get_config(hub, cam)
            assert shot["version"] == 2
            cfg = shot["config"]
            assert near(cfg["analytics"][0]["zone"], zone), cfg["analytics"][0]["zone"]
            counting = cfg["analytics"][1]
            assert counting["type"] == "line_count" and counting["name"] == "line_count"
            assert cfg["analytics"][0]["min_score"] == 0.5
            (ln,) = counting["lines"]
            assert near([ln["a"], ln["b"]], line), ln
            dx, dy = line[1][0] - line[0][0], line[1][1] - line[0][1]
            assert abs(ln["direction"][0] * -dy + ln["direction"][1] * dx) > 0.5  # across it
            assert all(round(v, 4) == v for p in cfg["analytics"][0]["zone"] for v in p)
            assert cfg["url"] == "rtsp://admin:***@10.0.0.5:554/stream1"  # never shown back
            history = hub.get(f"/api/v1/cameras/{cam}/config/history")
            assert history[0]["comment"] == "zone over the lot; a counting line"
            assert page.get_attribute("#setup-status", "data-state") == "waiting"

            # the edge applies it and says so: the page sees it running
            status(world, cam, config_version=shot["config_version"])
            page.wait_for_selector("#setup-status[data-state='running']", timeout=15000)
            assert "Running on the edge" in page.inner_text("#setup-status")

            # drag the line's first end onto a zone corner: within 1 % it snaps exactly
            start = at(page, *line[0])
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move(*at(page, 0.3, 0.75), steps=4)
            page.mouse.move(*at(page, zone[3][0] + 0.005, zone[3][1] - 0.004), steps=4)
            page.mouse.up()
            # delete a zone corner with a right-click, and undo that
            page.select_option("#setup-analytic", "0")
            page.select_option("#setup-field", "zone")
            click(page, *zone[2], button="right")
            assert points(page, "zone") == 3
            page.keyboard.press("Control+z")
            assert points(page, "zone") == 4
            page.click("#setup-save")
            page.wait_for_function(
                "() => /Saved: version 3/.test(document.querySelector('#setup-status').textContent)"
            )
            cfg = get_config(hub, cam)["config"]
            assert cfg["analytics"][1]["lines"][0]["a"] == list(zone[3])  # snapped, exactly
            assert near(cfg["analytics"][0]["zone"], zone)

            # an invalid zone (two points) is refused by the hub where it is
            page.click("#setup-redraw")
            click(page, 0.3, 0.3)
            click(page, 0.6, 0.3)
            page.keyboard.press("Enter")
            assert page.locator('#setup-canvas g.inst[data-key="zone"] polygon.geom').count() == 0
            page.click("#setup-save")
            page.wait_for_selector("#setup-errors li")
            errors = page.inner_text("#setup-errors")
            assert "objects · zone" in errors and "at least 3 points" in errors, errors
            assert page.locator('#setup-canvas g.inst.bad[data-key="zone"]').count() == 1
            bad = page.text_content('#setup-canvas g.inst.bad[data-key="zone"] .errtxt')
            assert "at least 3 points" in bad, bad
            assert get_config(hub, cam)["version"] == 3  # nothing stored
            page.screenshot(path=str(ARTIFACTS / "setup_error.png"), full_page=True)

            # undone (two points and the redraw): saved again, and the edge refuses it
            for _ in range(3):
                page.click("#setup-undo")
            assert points(page, "zone") == 4
            page.fill("#setup-comment", "again")
            page.click("#setup-save")
            # the same configuration as version 3: nothing new is stored
            page.wait_for_function(
                "() => /Unchanged: version 3/"
                ".test(document.querySelector('#setup-status').textContent)"
            )
            assert page.locator("#setup-errors li").count() == 0
            status(
                world, cam, config_version=shot["config_version"],
                config_error="analytics.1.lines.0.direction: must point across the line",
            )  # fmt: skip
            page.wait_for_selector("#setup-status[data-state='refused']", timeout=15000)
            assert "Refused by the edge: analytics.1.lines.0.direction" in page.inner_text(
                "#setup-status"
            )
            clean(page)
            page.screenshot(path=str(ARTIFACTS / "setup_bridge.png"), full_page=True)
        finally:
            browser.close()

        # a viewer is offered no set-up
        browser, page = browser_page(pw, hub.base, VIEWER)
        try:
            page.goto(f"{hub.base}/ui#/cameras")
            page.wait_for_selector(f'article[data-camera="{cam}"]')
            assert page.locator("a.setup-link").count() == 0
            page.goto(f"{hub.base}/ui#/setup/{cam}")
            page.wait_for_selector("#no-setup")
        finally:
            browser.close()
    assert first["version"] == 1


# -- what a traffic, a flood and a fire camera look like -----------------------------------


# The rules of the highway view (the right carriageway, away from the camera), a counting
# line on the oncoming one: fractions of the frame.
TRAFFIC = """
- type: traffic
  name: junction
  signal: {source: model, region: [0.69, 0.1, 0.8, 0.16]}
  rules:
    - {type: red_light, stop_line: [[0.43, 0.55], [0.81, 0.55]], direction: [0, -1]}
    - type: wrong_way
      lane: [[0.1, 1.0], [0.4, 1.0], [0.83, 0.15], [0.77, 0.15]]
      direction: [0.45, -0.89]
    - type: speeding
      line_a: [[0.19, 0.85], [0.73, 0.85]]
      line_b: [[0.59, 0.35], [0.86, 0.35]]
      distance_m: 40
      limit_kmh: 60
    - type: no_stopping
      name: shoulder
      zone: [[0.78, 1.0], [0.9, 1.0], [0.95, 0.35], [0.9, 0.35]]
      max_dwell_s: 20
- type: line_count
  name: counts
  lines:
    - {name: southbound, a: [0.0, 0.56], b: [0.33, 0.38], direction: [0.5, 0.87]}
"""

# The smoke scene: the hills and the woods are forest, a paddy field, the sky, a kiln.
FIRE = """
- type: fire
  name: fire
  land_use: other
  sky: [[0.48, 0.0], [1.0, 0.0], [1.0, 0.16], [0.8, 0.11], [0.72, 0.1], [0.6, 0.2],
        [0.48, 0.17]]
  exclude:
    - [[0.43, 0.70], [0.52, 0.70], [0.52, 0.80], [0.43, 0.80]]
  zones:
    - name: hills
      use: forest
      polygon: [[0.53, 0.25], [0.7, 0.11], [0.8, 0.12], [1.0, 0.16], [1.0, 0.36], [0.64, 0.36]]
    - name: woods_east
      use: forest
      polygon: [[0.56, 0.75], [0.72, 0.62], [0.95, 0.6], [1.0, 0.7], [1.0, 0.82], [0.8, 0.86],
                [0.66, 0.9]]
    - name: paddy
      use: field
      polygon: [[0.02, 0.62], [0.16, 0.58], [0.17, 0.64], [0.03, 0.68]]
"""


def traffic_config(cam: str) -> dict:
    return {"id": cam, "url": "rtsp://10.0.1.7/live", "analytics": yaml.safe_load(TRAFFIC)}


def fire_config(cam: str) -> dict:
    return {"id": cam, "url": "rtsp://10.0.3.4/ptz", "analytics": yaml.safe_load(FIRE)}


def flood_config(cam: str) -> dict:
    doc = yaml.safe_load((ROOT / "configs" / "eval" / "grime2_2012.yaml").read_text())
    analytic = doc["cameras"][0]["analytics"][0]
    return {"id": cam, "url": "rtsp://10.0.2.9/gauge", "analytics": [analytic]}


def test_setup_pages_of_a_traffic_a_flood_and_a_fire_camera(world: dict) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    hub: Hub = world["hub"]
    assets: Path = world["assets"]
    # traffic: the real highway frame, the real detector's boxes on it
    road = _video_frame(assets / "video" / "highway_cctv_320x240.avi", 200)
    road_dets = _detections(world["detector"], road)
    put_config(hub, "junction-1", traffic_config("junction-1"))
    publish_frame(world, "junction-1", road, road_dets)
    # flood: the GRIME2 marsh gauge at 60 cm (its levels file), as the analytic reads it
    marsh = cv2.imread(str(assets / "water/grime2/2012_demo/06/NRmarshDN-12-06-30-05-15.jpg"))
    put_config(hub, "gauge-1", flood_config("gauge-1"))
    reading = {"flood": {"level_cm": 60.0, "confidence": 0.91}}  # by the analytic's name
    publish_frame(world, "gauge-1", marsh, [], reading)
    # fire: a real smoke scene, back to its 16:9 (the dataset stretched it square)
    split = assets / "datasets" / "fire_smoke_ccby4" / "train"
    name = "pexels-alan-w-8365993_mp4-0_jpg.rf.1ee1de4b74bf9dc7feb46781190aef3b"
    scene = cv2.resize(cv2.imread(str(split / "images" / f"{name}.jpg")), (960, 540))
    boxes = []
    for row in (split / "labels" / f"{name}.txt").read_text().split("\n"):
        if row.strip():
            k, cx, cy, bw, bh = (float(v) for v in row.split())
            if int(k) in (0, 2):
                box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
                label = "fire" if int(k) == 0 else "smoke"
                boxes.append(
                    {
                        "box": [round(min(1, max(0, v)), 4) for v in box],
                        "label": label,
                        "score": 0.8,
                    }
                )
    assert {b["label"] for b in boxes} == {"fire", "smoke"}
    put_config(hub, "ridge-1", fire_config("ridge-1"))
    publish_frame(world, "ridge-1", scene, boxes)

    with sync_playwright() as pw:
        browser, page = browser_page(pw, hub.base, OPERATOR)
        try:
            open_setup(page, hub.base, "junction-1")
            geo = "#setup-canvas g.inst"
            assert page.locator(f"{geo}[data-ai='0'] polygon.geom").count() == 2  # lane, zone
            assert page.locator(f"{geo}[data-ai='0'] line.geom").count() == 3  # stop, A, B
            assert page.locator(f"{geo}[data-ai='0'] rect.geom").count() == 1  # signal head
            assert page.locator(f"{geo}[data-ai='0'] line.vec").count() == 2  # directions
            assert page.locator(f"{geo}[data-ai='1'] line.geom").count() == 1  # counting line
            assert page.locator("#setup-canvas .det").count() == len(road_dets)
            page.select_option("#setup-field", "rules.0.stop_line")
            assert page.is_visible("#setup-props")
            clean(page)
            page.screenshot(path=str(ARTIFACTS / "setup_traffic.png"), full_page=True)
            # a second speeding rule: named apart from the first, its line A drawn at once
            page.select_option('select[data-list="rules"]', "speeding")
            page.click('button[data-list="rules"]')
            assert page.input_value("#setup-field") == "rules.4.line_a"
            click(page, 0.3, 0.7)
            click(page, 0.7, 0.7)
            rule = edited(page)["analytics"][0]["rules"][4]
            assert rule["type"] == "speeding" and rule["name"] == "speeding_2"
            assert near(rule["line_a"], [(0.3, 0.7), (0.7, 0.7)])
            page.fill("#setup-prop-rules-4-distance_m", "25")
            page.keyboard.press("Tab")
            assert edited(page)["analytics"][0]["rules"][4]["distance_m"] == 25

            open_setup(page, hub.base, "gauge-1")
            assert points(page, "line") == 2
            assert page.locator(f"{geo}[data-key^='points.'] circle.pt").count() == 8
            water = page.text_content("#setup-water")
            assert "water 60 cm" in water, water
            assert "level now: 60 cm" in page.inner_text("#setup-sees")
            # the waterline is drawn where the calibration puts 60 cm (row 373.5 of 600)
            y = float(page.get_attribute("#setup-water line.wl", "y1")) + float(
                page.get_attribute("#setup-water line.wl", "y2")
            )
            view_h = float(page.get_attribute("#setup-canvas", "viewBox").split()[3])
            assert abs(y / 2 / view_h - 373.5 / 600) < 0.005
            page.select_option("#setup-field", "points.3.at")
            assert page.input_value("#setup-prop-points-3-level_cm") == "60"
            clean(page)
            page.screenshot(path=str(ARTIFACTS / "setup_flood.png"), full_page=True)
            # a finger moves the mark: a tap where it goes
            page.touchscreen.tap(*at(page, 0.6, 0.5))
            assert near([edited(page)["analytics"][0]["points"][3]["at"]], [(0.6, 0.5)])

            open_setup(page, hub.base, "ridge-1")
            assert page.locator(f"{geo} polygon.geom").count() == 5  # sky, exclusion, 3 zones
            sees = page.inner_text("#setup-sees")
            assert "land-use zone · woods_east: 1 (1 fire)" in sees, sees
            assert page.locator("#setup-canvas .det.hit").count() == 1
            page.select_option("#setup-field", "zones.1.polygon")
            assert page.input_value("#setup-prop-zones-1-use") == "forest"
            clean(page)
            page.screenshot(path=str(ARTIFACTS / "setup_fire.png"), full_page=True)
            # on a phone: the frame first, the panel below it
            page.set_viewport_size({"width": 390, "height": 844})
            box = page.locator("#setup-canvas").bounding_box()
            assert box["width"] <= 390 and box["height"] > 150
            page.screenshot(path=str(ARTIFACTS / "setup_fire_phone.png"), full_page=True)
        finally:
            browser.close()
