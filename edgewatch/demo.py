"""``edgewatch demo``: a small Hue on one machine, on the same parts a deployment runs.

Why it is built this way: a new user should see, within a few minutes and without
installing anything by hand, what the product is *for* (floods, forest fires, traffic,
cameras failing) and that it runs on the real parts, not on mocks:

- a secured broker (mosquitto, or the embedded amqtt where none can run) with TLS,
  per-box accounts and ACLs (docs/security.md): the hub, the edge and the junction's
  signal controller each have their own account;
- the hub (SQLite, the 50 example hotspots of configs/hotspots.geojson, a demo ranger
  team whose webhook is a receiver inside this process, escalation after 60 s, a short
  camera-offline grace);
- GStreamer's RTSP server serving the demo's cameras (or, where it cannot run, the files
  read at real-time pace: ``--no-rtsp``), and a second RTSP server for the camera that
  drops out (stopped after about 60 s, started again about 90 s later);
- one edge worker with five cameras, configured from the hub (the source of truth).

The flood cameras' video is a *compressed day*: 1 s of video is 1 min of river
(:mod:`edgewatch.demo_media`). Readings carry real timestamps; the walkthrough, the camera
ids and the hotspots' names say that the river is fast. Runs until Ctrl-C or SIGTERM, then
stops everything in reverse order.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from edgewatch import procs
from edgewatch.broker import free_port, port_free

DEMO_VIDEO = "video/highway_cctv_320x240.avi"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
SITE, EDGE = "hue", "demo-edge"
SIGNAL_ACCOUNT = "demo-signal"
SIGNAL_TOPIC = f"edgewatch/v1/signals/{SIGNAL_ACCOUNT}/demo-junction"
TEAM, OPS_TEAM = "rangers-demo", "ops-demo"
ESCALATE_S = 60.0
OFFLINE_GRACE_S = 20.0
DROP_AFTER_S, DROP_FOR_S = 60.0, 90.0
# the hotspots of configs/hotspots.geojson the demo's flood cameras feed
RIVER = {"camera": "demo-river-fast", "hotspot": "hue-037", "setup": "gauge"}
BRIDGE = {"camera": "demo-bridge-fast", "hotspot": "hue-038", "setup": "virtual_gauge"}
STREET = {"camera": "demo-street-fast", "hotspot": "hue-007", "setup": "road_cover"}
# The junction (the highway clip): the near carriageway, traffic away from the camera.
LANE = [[0.25, 1.0], [1.0, 1.0], [1.0, 0.15], [0.72, 0.15]]
AWAY = [0.48, -0.88]


def _write_private(path: Path, text: str) -> None:
    """A config holding a broker password: readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def hotspots_file() -> Path | None:
    """The example hotspots. Why a search, and why the demo refuses to start without them:
    the demo used to take ``configs/hotspots.geojson`` next to the *source* tree and drop
    ``hotspots_file`` silently when it was not there, so an installed (non-editable)
    package, whose ``__file__`` is in site-packages, ran a hub with no hotspots and the
    public page said "No hotspots are configured"."""
    candidates = [
        os.environ.get("EDGEWATCH_HOTSPOTS"),
        Path.cwd() / "configs" / "hotspots.geojson",
        SOURCE_ROOT / "configs" / "hotspots.geojson",
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c).resolve()
    return None


def _demo_admin(database_url: str) -> tuple[str, bool]:
    """The demo's ``admin`` account: EDGEWATCH_DEMO_PASSWORD, or a random password."""
    from sqlalchemy import select

    from central import auth
    from central.storage.db import make_engine, migrate, session_factory
    from central.storage.models import UserRow

    password = os.environ.get("EDGEWATCH_DEMO_PASSWORD") or ""
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with session_factory(engine).begin() as session:
            if session.scalar(select(UserRow).where(UserRow.username == "admin")) is None:
                auth.add_user(session, "admin", "admin", password)
            else:
                auth.set_password(session, "admin", password)
    finally:
        engine.dispose()
    return password, generated


STREAM_KEYS = ("url", "realtime", "loop")
OLD_DEMO_CAMERA = "highway-1"


def _seed_cameras(database_url: str, cameras: list[dict[str, Any]]) -> None:
    """The demo cameras' configuration at the hub. A later start keeps the edits made in
    the set-up page, only pointing each camera at this start's stream."""
    from central.services.camera_config import CameraConfigService
    from central.storage.db import make_engine, migrate, session_factory

    engine = make_engine(database_url)
    try:
        migrate(engine)
        service = CameraConfigService(session_factory(engine), None)
        with service.sessions() as session:
            legacy = service.get(session, OLD_DEMO_CAMERA)
            legacy_here = legacy is not None and legacy.edge_id == EDGE
        if legacy_here:  # a workdir of the one-camera demo: its camera is not this demo's
            service.delete(OLD_DEMO_CAMERA, "demo", "the demo runs a small Hue now")
        for camera in cameras:
            cid = str(camera["id"])
            with service.sessions() as session:
                row = service.get(session, cid)
                have = service.sent_config(row) if row is not None else None
            if have is None:
                service.put(cid, SITE, EDGE, camera, "demo", "the demo's camera")
            elif {k: have.get(k) for k in STREAM_KEYS} != {k: camera.get(k) for k in STREAM_KEYS}:
                moved = {k: v for k, v in have.items() if k not in STREAM_KEYS}
                moved.update({k: v for k, v in camera.items() if k in STREAM_KEYS})
                service.put(cid, SITE, EDGE, moved, "demo", "this start's stream")
    finally:
        engine.dispose()


def _flood_analytic(spot: dict[str, Any], levels: list[dict[str, Any]]) -> dict[str, Any]:
    """The flood analytic for a rendered view, at the compressed day's pace: a reading
    every second (= every minute of river), and the physics check, hold and trend set in
    *video* time (60x the real river's), which the walkthrough says."""
    from edgewatch.demo_flood import analytic_config
    from edgewatch.demo_media import RIVER_SECONDS_PER_VIDEO_SECOND as K

    cfg = analytic_config(
        spot["setup"],
        hotspot=spot["hotspot"],
        name="river",
        levels=levels,
        period_s=1,
        hold_s=600 / K,  # 10 min of river
        max_rate_cm_per_min=2.0 * K * 3,  # the real river's 2 cm/min, fast, with room
        jump_tolerance_cm=8.0,
        trend_window_s=60,  # the shortest allowed: an hour of river
    )
    return json.loads(json.dumps(cfg))  # tuples to lists: as the set-up page saves it


def _cameras(streams: dict[str, dict[str, Any]], hotspots: dict[str, dict]) -> list[dict]:
    def levels(spot: dict[str, Any]) -> list[dict[str, Any]]:
        return hotspots[spot["hotspot"]]["properties"]["levels"]

    def where(spot: dict[str, Any]) -> dict[str, float]:
        lon, lat = hotspots[spot["hotspot"]]["geometry"]["coordinates"]
        return {"lat": lat, "lon": lon}

    forest = {"name": "hillside", "use": "forest", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
    return [
        {
            "id": RIVER["camera"],
            **streams["river"],
            "location": where(RIVER),
            "analytics": [_flood_analytic(RIVER, levels(RIVER))],
        },
        {
            "id": BRIDGE["camera"],
            **streams["bridge"],
            "location": where(BRIDGE),
            "analytics": [_flood_analytic(BRIDGE, levels(BRIDGE))],
        },
        {
            "id": STREET["camera"],
            **streams["street"],
            "location": where(STREET),
            "analytics": [_flood_analytic(STREET, levels(STREET))],
        },
        {
            "id": "demo-forest",
            **streams["forest"],
            # the hills west of Hue, looking south-west
            "location": {"lat": 16.42, "lon": 107.50},
            "bearing_deg": 220,
            "hfov_deg": 60,
            "analytics": [
                {
                    "type": "fire",
                    "period_s": 2.0,  # one sample every 2 s: CPU for the other cameras
                    "min_score": 0.35,
                    "zones": [forest],
                    "hold_s": 120,
                }
            ],
        },
        {
            "id": "demo-junction",
            **streams["junction"],
            "location": {"lat": 16.4637, "lon": 107.5560},
            "analytics": [
                {
                    "type": "traffic",
                    "fps": 5,
                    "signal": {"source": "mqtt", "topic": SIGNAL_TOPIC},
                    "evidence": {"pre_s": 2, "post_s": 2, "plates": False},
                    "rules": [
                        {
                            "type": "red_light",
                            "stop_line": [[0.3, 0.6], [1.0, 0.6]],
                            "direction": AWAY,
                            "grace_s": 0.5,
                        },
                        # declared one-way towards the camera for heavy vehicles: the
                        # clip's buses and trucks driving away on the near carriageway are
                        # wrong-way (only those: every car would bury the review queue)
                        {
                            "type": "wrong_way",
                            "lane": LANE,
                            "classes": ["bus", "truck"],
                            "direction": [-AWAY[0], -AWAY[1]],
                            "min_distance": 0.12,
                        },
                    ],
                }
            ],
        },
    ]


def _walkthrough(base: str, webhook_log: Path, enrol: str, streams_note: str) -> list[str]:
    return [
        "",
        "What to open (log in as admin):",
        f"  dashboard (live alerts)   {base}/ui",
        f"  flood hotspots (public)   {base}/hotspots   - no login: what citizens see",
        f"  hotspots with cameras     {base}/ui#/hotspots",
        f"  traffic review queue      {base}/ui#/review",
        f"  cameras, set-up           {base}/ui#/cameras , {base}/ui#/setup/demo-forest",
        f"  rangers' phone page       {base}/rangers?team={TEAM}&token={enrol}",
        f"  ranger webhook log        {webhook_log} (and printed here as it arrives)",
        "",
        "What happens when (minutes after 'running'; the flood video is a compressed day:",
        "1 s of video = 1 min of river, the *-fast camera ids and the hotspots' names say so):",
        "  0:00  50 hotspots on /hotspots: hue-037 (river gauge), hue-038 (bridge pier) and",
        "        hue-007 (a street) get readings within seconds; the other 47 stay 'unknown'",
        "        (no camera here).",
        "  0:05  the junction's simulated signal controller cycles red 20 s, green 16 s,",
        "        amber 4 s on MQTT (its own broker account): vehicles crossing the stop line",
        "        on red give red_light violations, buses and trucks driving away on the near",
        "        carriageway (declared one-way towards the camera for them) wrong_way ones,",
        "        each with an evidence clip and stills: the review queue fills.",
        "  0:15  the forest camera cuts from a real wetland view without fire to a real fire",
        "        from the data set's test split (a cut, not a fire starting in one view);",
        "  0:25  a forest_fire alert, an incident, a webhook to team",
        f"        {TEAM} (printed here).",
        "  0:30  the water reaches level I; 1:00 level II (flood_level events; the cards turn",
        "        amber, then red); the street is ankle deep, then knee deep, at those times.",
        "        Trend (cm/h) and ETA are in the demo's fast time.",
        "  1:00  the bridge camera's stream stops: hue-038 'unknown' (no frames); after",
        f"        {OFFLINE_GRACE_S:.0f} s of grace a camera_offline alert on the dashboard.",
        f"  1:25  nobody acknowledged the fire: escalated to {OPS_TEAM} (a second webhook).",
        "        Acknowledge it with the curl line printed with the webhook (its ack_url), or",
        "        POST /api/v1/incidents/ID/ack logged in (the alert page acks the alert only).",
        "  1:25  night with the lights out at the peak: readings 'unknown' (too dark), never a",
        "        guess, the level kept; 2:05 rain drops on the lens: 'unknown' again.",
        "  2:30  the bridge stream is back: the offline alert ends, readings resume.",
        "  2:30  the water falls below II, then I (2:40): the level events end.",
        "  3:00  the river's day starts again (the bridge's restarted with its stream).",
        streams_note,
        "",
    ]


def _load_hotspots(path: Path) -> dict[str, dict]:
    doc = json.loads(path.read_text())
    return {f["properties"]["id"]: f for f in doc["features"]}


def run_demo(args: argparse.Namespace) -> int:
    assets = Path(args.assets).resolve()
    work = Path(args.workdir).resolve()
    logs = work / "logs"
    video_src = assets / DEMO_VIDEO
    if not video_src.is_file():
        print(
            f"demo: {video_src} not found; pass --assets DIR or set EDGEWATCH_ASSETS "
            "(the folder holding video/ and models/)",
            file=sys.stderr,
        )
        return 2
    spots_path = hotspots_file()
    if spots_path is None:
        print(
            "demo: the example hotspots (configs/hotspots.geojson) were not found: run it from "
            "the project folder or set EDGEWATCH_HOTSPOTS=FILE",
            file=sys.stderr,
        )
        return 2
    hotspots = _load_hotspots(spots_path)

    from edge.inference.registry import ModelError, Registry
    from edge.ingest.media import make_test_video
    from edgewatch import demo_media

    registry = Registry(work / "models")
    try:
        registry.pull("yolox_nano", mirror=assets / "models")
        registry.pull("fire_smoke_nano", mirror=assets / "models")
    except ModelError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    _say("preparing the demo videos (H.264, once per workdir)")
    media = work / "media"
    media.mkdir(parents=True, exist_ok=True)
    try:
        videos = {
            "junction": make_test_video(video_src, media / "junction.mp4", loops=8),
            "forest": demo_media.fire_video(media / "forest.mp4", assets),
            "river": demo_media.flood_video(
                media / "river.mp4", RIVER["setup"], 60.0, 250.0, seed=1
            ),
            "bridge": demo_media.flood_video(
                media / "bridge.mp4", BRIDGE["setup"], 70.0, 260.0, seed=2
            ),
            # depth on the street: dry, through ankle (10 cm) to knee (40 cm), draining
            "street": demo_media.flood_video(
                media / "street.mp4", STREET["setup"], 0.0, 52.0, seed=3
            ),
        }
    except FileNotFoundError as exc:
        print(f"demo: {exc} not found; pass --assets DIR", file=sys.stderr)
        return 2

    mqtt_port = args.mqtt_port if port_free(args.mqtt_port) else free_port()
    if mqtt_port != args.mqtt_port:
        _say(f"port {args.mqtt_port} is taken (a system broker?); demo broker on {mqtt_port}")
    # The demo's broker is secured as a deployment is: TLS, one account per box, ACLs.
    from edgewatch.brokerauth import BrokerDir

    bd = BrokerDir(work / "broker")
    if not bd.exists():
        _say("making the demo broker's CA, certificate and accounts (once)")
        bd.init(["127.0.0.1", "localhost"])
    # new passwords on every start: they live only in this run's config files (mode 0600)
    hub_mqtt = bd.client_settings(
        "demo-hub", bd.add("demo-hub", "hub", replace=True), "127.0.0.1", mqtt_port
    )
    edge_mqtt = bd.client_settings(
        EDGE, bd.add(EDGE, "edge", site=SITE, replace=True), "127.0.0.1", mqtt_port
    )
    signal_mqtt = bd.client_settings(
        SIGNAL_ACCOUNT, bd.add(SIGNAL_ACCOUNT, "signal", replace=True), "127.0.0.1", mqtt_port
    )
    if not port_free(args.http_port):
        print(f"demo: port {args.http_port} is taken; pass --http-port", file=sys.stderr)
        return 2
    base = f"http://127.0.0.1:{args.http_port}"

    from edgewatch.demo_services import RangerWebhook, SignalController
    from edgewatch.mqtt import MqttSettings

    children: list[tuple[str, subprocess.Popen]] = []
    dropout: dict[str, Any] = {"proc": None}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    hook_secret = secrets.token_urlsafe(16)
    webhook = RangerWebhook(hook_secret, work / "webhooks.jsonl", _say)
    webhook.start()
    controller = SignalController(MqttSettings(**signal_mqtt), SIGNAL_ACCOUNT, SIGNAL_TOPIC)

    def shutdown(code: int) -> int:
        _say("stopping")
        if controller.is_alive():
            controller.stop()
            _say("signal controller stopped")
        if dropout["proc"] is not None:
            procs.stop(dropout["proc"])
            _say("rtsp server (bridge) stopped")
        for name, proc in reversed(children):
            procs.stop(proc)
            _say(f"{name} stopped")
        webhook.stop()
        _say("webhook receiver stopped")
        return code

    try:
        broker = procs.spawn(
            procs.edgewatch_cmd("broker", "run", "--dir", str(bd.path), "--port", str(mqtt_port)),
            logs / "broker.log",
        )
        children.append(("broker", broker))
        if not procs.wait_port(mqtt_port):
            _say(f"broker did not start; see {logs / 'broker.log'}")
            return shutdown(1)

        enrol = secrets.token_urlsafe(12)
        hook = {"type": "webhook", "secret": hook_secret}
        hub_cfg = {
            "database_url": f"sqlite:///{work / 'hub.sqlite3'}",
            "mqtt": hub_mqtt,
            "mqtt_client_id": "demo-hub",
            "hotspots_file": str(spots_path),
            "http": {"host": "127.0.0.1", "port": args.http_port},
            "teams": [
                {
                    "id": TEAM,
                    "name": "Demo rangers (a webhook inside the demo)",
                    "kinds": ["forest_fire", "smoke", "straw_burning"],
                    "channels": [{**hook, "url": f"{webhook.url}/{TEAM}"}],
                    "ack_timeout_s": ESCALATE_S,
                    "escalate_to": OPS_TEAM,
                    "enrol_token": enrol,
                },
                {
                    "id": OPS_TEAM,
                    "name": "Demo operations centre (escalations)",
                    "kinds": ["forest_fire", "smoke", "straw_burning"],
                    "channels": [{**hook, "url": f"{webhook.url}/{OPS_TEAM}"}],
                    "ack_timeout_s": 600,
                },
            ],
            "incidents": {"public_url": base, "ops_team": OPS_TEAM},
            "alerts": {"camera_offline_grace_s": OFFLINE_GRACE_S},
            "push": {"vapid_key_file": str(work / "vapid_private.pem")},
        }
        _write_private(work / "hub.yaml", yaml.safe_dump(hub_cfg, sort_keys=False))
        password, generated = _demo_admin(str(hub_cfg["database_url"]))
        hub = procs.spawn(
            procs.edgewatch_cmd("hub", "run", "-c", str(work / "hub.yaml")), logs / "hub.log"
        )
        children.append(("hub", hub))

        missing = None if args.no_rtsp else procs.rtsp_server_available()
        streams: dict[str, dict[str, Any]] = {}
        drop_mount: dict[str, Any] | None = None
        if args.no_rtsp or missing:
            if missing:
                _say(f"no RTSP server here ({missing}); reading the files at real-time pace")
            streams = {
                k: {"url": str(v), "realtime": True, "loop": True} for k, v in videos.items()
            }
            note = "  (files read at real-time pace, no RTSP: the bridge camera does not drop out)"
        else:
            rtsp_port = 8554 if port_free(8554) else free_port()
            mounts = {k: v for k, v in videos.items() if k != "bridge"}
            rtsp = procs.start_rtsp_server(rtsp_port, mounts, logs / "rtsp.log")
            children.append(("rtsp server", rtsp))
            drop_port = free_port()
            drop_mount = {"port": drop_port, "mounts": {"bridge": videos["bridge"]}}
            dropout["proc"] = procs.start_rtsp_server(
                drop_port, drop_mount["mounts"], logs / "rtsp-bridge.log"
            )
            if not procs.wait_port(rtsp_port) or not procs.wait_port(drop_port):
                _say(f"RTSP server did not start; see {logs / 'rtsp.log'}")
                return shutdown(1)
            streams = {k: {"url": f"rtsp://127.0.0.1:{rtsp_port}/{k}"} for k in mounts}
            streams["bridge"] = {"url": f"rtsp://127.0.0.1:{drop_port}/bridge"}
            for k in ("river", "bridge", "street", "forest", "junction"):
                _say(f"camera:  {streams[k]['url']}")
            note = ""

        # The hub is the source of truth for cameras: the demo's cameras are set up there
        # (a version in its history) and the edge applies what the hub publishes.
        _seed_cameras(str(hub_cfg["database_url"]), _cameras(streams, hotspots))
        edge_cfg = {
            "edge_id": EDGE,
            "site": SITE,
            "mqtt": edge_mqtt,
            "spool_dir": str(work / "spool"),
            "models": {"dir": str(work / "models"), "threads": 1},
            "config": {"source": "hub"},
            "frame_interval_s": 10,
        }
        _write_private(work / "edge.yaml", yaml.safe_dump(edge_cfg, sort_keys=False))
        if not procs.wait_port(args.http_port, timeout=60):
            _say(f"hub did not start; see {logs / 'hub.log'}")
            return shutdown(1)
        edge = procs.spawn(
            procs.edgewatch_cmd("edge", "run", "-c", str(work / "edge.yaml")), logs / "edge.log"
        )
        children.append(("edge worker", edge))
        controller.start()

        _say(
            f"broker:  mqtts://127.0.0.1:{mqtt_port} (TLS, CA {bd.ca_file}; accounts only, "
            f"no anonymous clients; add one: edgewatch broker account NAME --role client "
            f"--dir {bd.path})"
        )
        _say(f"dashboard: {base}/ui  (user admin)")
        if generated:
            _say(f"admin password (random; set EDGEWATCH_DEMO_PASSWORD to choose): {password}")
        else:
            _say("admin password: the one in EDGEWATCH_DEMO_PASSWORD")
        _say(f"events:  {base}/api/v1/events (log in, or a bearer token from /api/v1/auth/token)")
        _say(f"cameras: {base}/api/v1/cameras")
        _say(f"hotspots: {base}/api/v1/hotspots ({len(hotspots)} from {spots_path})")
        _say(f"set up:  {base}/ui#/setup/demo-forest  (draw zones and lines on the camera)")
        _say(f"API doc: {base}/docs")
        _say(f"logs:    {logs}/")
        for line in _walkthrough(base, work / "webhooks.jsonl", enrol, note):
            print(line, flush=True)
        _say("running; Ctrl-C to stop")
        started = time.monotonic()
        dropped_at: float | None = None
        while not stop.wait(1.0):
            for name, proc in children:
                if proc.poll() is not None:
                    _say(f"{name} exited ({proc.returncode}); see {logs}/")
                    return shutdown(1)
            if drop_mount is None:
                continue
            now = time.monotonic()
            if dropped_at is None and dropout["proc"] and now - started >= DROP_AFTER_S:
                procs.stop(dropout["proc"])
                dropout["proc"], dropped_at = None, now
                _say(f"camera {BRIDGE['camera']}: stream stopped (back in {DROP_FOR_S:.0f} s)")
            elif dropped_at is not None and now - dropped_at >= DROP_FOR_S:
                dropout["proc"] = procs.start_rtsp_server(
                    drop_mount["port"], drop_mount["mounts"], logs / "rtsp-bridge.log"
                )
                drop_mount = None  # once per run
                _say(f"camera {BRIDGE['camera']}: its stream is back")
        return shutdown(0)
    except BaseException:
        shutdown(1)
        raise
