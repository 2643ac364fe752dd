"""``edgewatch demo``: the whole pipeline on one machine, nothing installed by hand.

Starts a secured broker (mosquitto, or the embedded amqtt where none can run) on
127.0.0.1:8883 (or a free port) with TLS, per-box accounts and ACLs, as a deployment
runs it (docs/security.md), the hub on 127.0.0.1:8000 (SQLite, the example hotspots),
an RTSP server serving a demo video (or, where GStreamer's RTSP server cannot run, the
file read at real-time pace) and an edge worker on it. Runs until Ctrl-C or SIGTERM,
then stops everything in reverse order.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import yaml

from edgewatch import procs
from edgewatch.broker import free_port, port_free

DEMO_VIDEO = "video/highway_cctv_320x240.avi"
HOTSPOTS = Path(__file__).resolve().parents[1] / "configs" / "hotspots.geojson"


def _write_private(path: Path, text: str) -> None:
    """A config holding a broker password: readable by this user only."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _demo_admin(database_url: str) -> tuple[str, bool]:
    """The demo's ``admin`` account: EDGEWATCH_DEMO_PASSWORD, or a random password."""
    import os
    import secrets

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


def _seed_camera(database_url: str, camera: dict[str, object]) -> None:
    """The demo camera's configuration at the hub. A later start keeps the edits made in
    the set-up page, only pointing the camera at this start's stream."""
    from central.services.camera_config import CameraConfigService
    from central.storage.db import make_engine, migrate, session_factory

    engine = make_engine(database_url)
    try:
        migrate(engine)
        service = CameraConfigService(session_factory(engine), None)
        with service.sessions() as session:
            row = service.get(session, str(camera["id"]))
            have = service.sent_config(row) if row is not None else None
        if have is None:
            service.put(str(camera["id"]), "hue", "demo-edge", camera, "demo", "the demo's camera")
        elif {k: have.get(k) for k in ("url", "realtime", "loop")} != {
            k: camera.get(k) for k in ("url", "realtime", "loop")
        }:
            moved = {k: v for k, v in have.items() if k not in ("url", "realtime", "loop")}
            moved.update({k: v for k, v in camera.items() if k in ("url", "realtime", "loop")})
            service.put(str(camera["id"]), "hue", "demo-edge", moved, "demo", "this start's stream")
    finally:
        engine.dispose()


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

    from edge.inference.registry import ModelError, Registry
    from edge.ingest.media import make_test_video

    registry = Registry(work / "models")
    try:
        registry.pull("yolox_nano", mirror=assets / "models")
    except ModelError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    _say("preparing the demo video (H.264, once)")
    video = make_test_video(video_src, work / "highway_h264.mp4", loops=8)

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
        "demo-edge",
        bd.add("demo-edge", "edge", site="hue", replace=True),
        "127.0.0.1",
        mqtt_port,
    )
    if not port_free(args.http_port):
        print(f"demo: port {args.http_port} is taken; pass --http-port", file=sys.stderr)
        return 2

    children: list[tuple[str, object]] = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def shutdown(code: int) -> int:
        _say("stopping")
        for name, proc in reversed(children):
            procs.stop(proc)  # type: ignore[arg-type]
            _say(f"{name} stopped")
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

        hub_cfg = {
            "database_url": f"sqlite:///{work / 'hub.sqlite3'}",
            "mqtt": hub_mqtt,
            "mqtt_client_id": "demo-hub",
            **({"hotspots_file": str(HOTSPOTS)} if HOTSPOTS.is_file() else {}),
            "http": {"host": "127.0.0.1", "port": args.http_port},
        }
        _write_private(work / "hub.yaml", yaml.safe_dump(hub_cfg))
        password, generated = _demo_admin(str(hub_cfg["database_url"]))
        hub = procs.spawn(
            procs.edgewatch_cmd("hub", "run", "-c", str(work / "hub.yaml")), logs / "hub.log"
        )
        children.append(("hub", hub))

        missing = None if args.no_rtsp else procs.rtsp_server_available()
        camera: dict[str, object]
        if args.no_rtsp or missing:
            if missing:
                _say(f"no RTSP server here ({missing}); reading the file at real-time pace")
            camera = {"url": str(video), "realtime": True, "loop": True}
        else:
            rtsp_port = 8554 if port_free(8554) else free_port()
            rtsp = procs.start_rtsp_server(rtsp_port, {"highway": video}, logs / "rtsp.log")
            children.append(("rtsp server", rtsp))
            if not procs.wait_port(rtsp_port):
                _say(f"RTSP server did not start; see {logs / 'rtsp.log'}")
                return shutdown(1)
            camera = {"url": f"rtsp://127.0.0.1:{rtsp_port}/highway"}
            _say(f"camera:  rtsp://127.0.0.1:{rtsp_port}/highway")

        demo_camera = {
            "id": "highway-1",
            **camera,
            "location": {"lat": 16.4637, "lon": 107.5560},
            "analytics": [
                {
                    "type": "objects",
                    "name": "vehicles",
                    "model": "yolox_nano",
                    "classes": ["car", "bus", "truck"],
                    "min_score": 0.5,
                    "zone_name": "road",
                    "fps": 2,
                    "min_consecutive": 2,
                    "max_missing": 3,
                }
            ],
        }
        # The hub is the source of truth for cameras: the demo's camera is set up there
        # (a version in its history) and the edge applies what the hub publishes.
        _seed_camera(str(hub_cfg["database_url"]), demo_camera)
        edge_cfg = {
            "edge_id": "demo-edge",
            "site": "hue",
            "mqtt": edge_mqtt,
            "spool_dir": str(work / "spool"),
            "models": {"dir": str(work / "models")},
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

        base = f"http://127.0.0.1:{args.http_port}"
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
        _say(f"set up:  {base}/ui#/setup/highway-1  (draw zones and lines on the camera)")
        _say(f"API doc: {base}/docs")
        _say(f"logs:    {logs}/")
        _say("running; Ctrl-C to stop")
        while not stop.wait(1.0):
            for name, proc in children:
                if proc.poll() is not None:  # type: ignore[attr-defined]
                    _say(f"{name} exited ({proc.returncode}); see {logs}/")  # type: ignore[attr-defined]
                    return shutdown(1)
        return shutdown(0)
    except BaseException:
        shutdown(1)
        raise
