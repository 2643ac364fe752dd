"""Load on the public hotspot API: 200 (full document) against 304 (If-None-Match).

    python scripts/bench_hotspots.py [--seconds 10] [--clients 8] [--json FILE]

Starts the hub (`edgewatch hub run`, SQLite) with the 50 example hotspots, on a secured
broker of its own (`edgewatch broker run` on a fresh broker folder: TLS, the hub's own
account), stores one reading per hotspot (from the camera each is configured with), then
runs keep-alive HTTP clients on loopback for each mode and prints requests per second and
bytes per response. Both modes are measured in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from central.app import create_app  # noqa: E402
from central.config import HubConfig  # noqa: E402
from edgewatch import contract, procs  # noqa: E402
from edgewatch.broker import free_port  # noqa: E402
from edgewatch.brokerauth import BrokerDir  # noqa: E402

HUB = "bench-hub"  # the hub's broker account (and its MQTT client id)


def seed(db_url: str, hotspots: Path) -> None:
    app = create_app(HubConfig(database_url=db_url, hotspots_file=hotspots), consume=False)
    now = datetime.now(UTC)
    for h in app.state.hotspots:
        # the hub takes a hotspot's reading only from the camera it is configured with
        cam = h.camera
        if cam is None:
            sys.exit(f"bench: hotspot {h.id} has no camera in {hotspots}")
        doc = contract.HotspotReading(
            hotspot_id=h.id, camera_id=cam.camera_id, analytic="flood", setup="gauge",
            time=now, state="normal", level_state="normal", level_cm=42.0, period_s=3600,
        )  # fmt: skip
        topic = contract.hotspot_topic(cam.site, cam.edge_id, h.id)
        if app.state.ingestor.handle(topic, doc.model_dump_json().encode()) == "rejected":
            sys.exit(f"bench: the hub refused the reading of hotspot {h.id}")
    app.state.engine.dispose()


def start_broker(tmp: Path) -> tuple[subprocess.Popen, dict]:
    """A secured broker (mosquitto, or the embedded one) with the hub's account; its config."""
    bd = BrokerDir(tmp / "broker")
    bd.init(["127.0.0.1", "localhost"])
    port = free_port()
    password = bd.add(HUB, "hub", replace=True)
    proc = procs.spawn(
        procs.edgewatch_cmd("broker", "run", "--dir", str(bd.path), "--port", str(port)),
        tmp / "broker.log",
    )
    if not procs.wait_port(port, timeout=15):
        procs.stop(proc)
        raise SystemExit("broker did not start: " + (tmp / "broker.log").read_text()[-2000:])
    return proc, {**bd.client_settings(HUB, password, "127.0.0.1", port), "client_id": HUB}


def load(port: int, seconds: float, clients: int, etag: str | None) -> dict:
    counts, sizes, statuses = [0] * clients, [0] * clients, set()
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"If-None-Match": etag} if etag else {}
        while time.monotonic() < stop:
            conn.request("GET", "/api/v1/hotspots", headers=headers)
            r = conn.getresponse()
            body = r.read()
            statuses.add(r.status)
            counts[i] += 1
            sizes[i] += len(body)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    n = sum(counts)
    return {
        "requests": n,
        "rps": round(n / took, 1),
        "bytes_per_response": round(sum(sizes) / max(n, 1)),
        "statuses": sorted(statuses),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/hub.sqlite3"
        hotspots = ROOT / "configs" / "hotspots.geojson"
        seed(db, hotspots)
        broker, hub_mqtt = start_broker(Path(tmp))
        port = free_port()
        cfg = Path(tmp) / "hub.yaml"
        cfg.write_text(yaml.safe_dump({
            "database_url": db, "hotspots_file": str(hotspots),
            "mqtt": hub_mqtt, "mqtt_client_id": HUB,
            "http": {"host": "127.0.0.1", "port": port}, "log_level": "WARNING",
        }))  # fmt: skip
        proc = procs.spawn(procs.edgewatch_cmd("hub", "run", "-c", str(cfg)), Path(tmp) / "hub.log")
        try:
            if not procs.wait_port(port, timeout=30):
                print((Path(tmp) / "hub.log").read_text()[-2000:])
                return 1
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request("GET", "/api/v1/hotspots")
            r = conn.getresponse()
            r.read()
            etag = r.getheader("ETag")
            full = load(port, args.seconds, args.clients, None)
            cached = load(port, args.seconds, args.clients, etag)
        finally:
            procs.stop(proc, timeout=10)
            procs.stop(broker)
    res = {
        "clients": args.clients,
        "seconds": args.seconds,
        "hotspots": 50,
        "200": full,
        "304": cached,
        "rps_ratio_304_over_200": round(cached["rps"] / full["rps"], 2),
        "bytes_ratio_200_over_304": round(
            full["bytes_per_response"] / max(cached["bytes_per_response"], 1), 1
        ),
    }
    print(f"{'mode':6s} {'req/s':>8s} {'bytes/resp':>11s} statuses")
    for mode in ("200", "304"):
        r = res[mode]
        print(f"{mode:6s} {r['rps']:8.1f} {r['bytes_per_response']:11d} {r['statuses']}")
    print(f"304/200 request rate: {res['rps_ratio_304_over_200']}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
