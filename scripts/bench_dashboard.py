"""Live-alert fan-out and login cost on a real hub process and a real broker.

    python scripts/bench_dashboard.py [--clients 1,25,100] [--alerts 20] [--json FILE]

Starts a secured broker (``edgewatch broker run`` on a fresh broker folder: mosquitto, or
the embedded broker; TLS, one account each for the hub and the bench's edge) and
``edgewatch hub run`` (SQLite) on loopback. For each number of dashboards it opens that
many Server-Sent Event streams (``/api/v1/alerts/stream``, bearer tokens), publishes
alerts to the broker as an edge does (logged in as that edge's account), and measures
publish-to-received latency on every stream. The baseline is one stream,
measured in the same run. Login: ``POST /api/v1/auth/token`` (an Argon2id verify) against
an authenticated ``GET /api/v1/auth/me`` (a SHA-256 lookup).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from edgewatch import contract, procs  # noqa: E402
from edgewatch.broker import free_port  # noqa: E402
from edgewatch.brokerauth import BrokerDir, Role  # noqa: E402
from edgewatch.mqtt import MqttSettings, make_client  # noqa: E402

PASSWORD = "bench-password-1"
HUB = "bench-hub"  # the hub's broker account (and its MQTT client id)
SITE, EDGE = "hue", "edge-bench"  # the edge account the bench publishes alerts as


def start_broker(tmp: Path) -> tuple[subprocess.Popen, dict[str, dict]]:
    """A secured broker of its own: ``edgewatch broker run`` on a fresh broker folder.

    TLS, no anonymous clients, one account each (the hub's, and the edge account the bench
    publishes alerts as) with their ACLs; mosquitto, or the embedded broker where none runs.
    Returns the process and each account's ``mqtt:`` config (client id = account name).
    """
    bd = BrokerDir(tmp / "broker")
    bd.init(["127.0.0.1", "localhost"])
    port = free_port()
    accounts: dict[str, tuple[Role, str | None]] = {HUB: ("hub", None), EDGE: ("edge", SITE)}
    mqtt_cfg = {}
    for name, (role, site) in accounts.items():
        password = bd.add(name, role, site=site, replace=True)
        mqtt_cfg[name] = {
            **bd.client_settings(name, password, "127.0.0.1", port),
            "client_id": name,
        }
    proc = procs.spawn(
        procs.edgewatch_cmd("broker", "run", "--dir", str(bd.path), "--port", str(port)),
        tmp / "b.log",
    )
    if not procs.wait_port(port, timeout=15):
        raise SystemExit("broker did not start: " + (tmp / "b.log").read_text()[-2000:])
    return proc, mqtt_cfg


def add_user(db_url: str) -> None:
    from central import auth
    from central.storage.db import make_engine, migrate, session_factory

    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine).begin() as s:
        auth.add_user(s, "bench", "operator", PASSWORD)
    engine.dispose()


def token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD})
    conn.request(
        "POST",
        "/api/v1/auth/token",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    r = conn.getresponse()
    data = json.loads(r.read())
    conn.close()
    return data["access_token"]


class Stream(threading.Thread):
    """One dashboard: an SSE connection recording when each alert id arrived."""

    def __init__(self, port: int, tok: str) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request(
            "GET", "/api/v1/alerts/stream", headers={"Authorization": f"Bearer {tok}"}
        )
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        from tests.helpers import read_alert_stream

        try:
            read_alert_stream(
                self.resp, self.ready.set, lambda doc: self.seen.__setitem__(doc["id"], time.time())
            )
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        try:
            self.conn.sock.close()  # type: ignore[union-attr]
        except OSError:
            pass


def alert_payload() -> tuple[str, bytes]:
    eid = uuid.uuid4()
    now = datetime.now(UTC)
    msg = contract.EventMessage(
        id=eid, type="new", seq=0, kind="object", analytic="bench", label="car", site=SITE,
        edge_id=EDGE, camera_id="cam-1", start_time=now, frame_time=now, score=0.9,
    )  # fmt: skip
    return str(eid), msg.model_dump_json().encode()


def fan_out(port: int, edge_mqtt: dict, tok: str, clients: int, alerts: int) -> dict:
    streams = [Stream(port, tok) for _ in range(clients)]
    for s in streams:
        s.start()
    for s in streams:
        s.ready.wait(10)
    # One publisher at a time on the edge's account: its client id is the account name.
    settings = MqttSettings.model_validate(edge_mqtt)
    pub = make_client(settings, EDGE, clean_session=True)
    connected = threading.Event()
    pub.on_connect = lambda *a: connected.set() if not a[3].is_failure else None
    pub.connect(settings.host, settings.port)
    pub.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"the broker refused the bench publisher ({EDGE})")
    sent: dict[str, float] = {}
    topic = contract.events_topic(SITE, EDGE)
    for _ in range(alerts):
        eid, body = alert_payload()
        sent[eid] = time.time()
        pub.publish(topic, body, qos=1).wait_for_publish(5)
        time.sleep(0.1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(len(s.seen) < alerts for s in streams):
        time.sleep(0.05)
    pub.disconnect()
    pub.loop_stop()
    lat = [(s.seen[eid] - t0) * 1000 for s in streams for eid, t0 in sent.items() if eid in s.seen]
    missing = clients * alerts - len(lat)
    for s in streams:
        s.close()
    lat.sort()
    return {
        "clients": clients,
        "alerts": alerts,
        "deliveries": len(lat),
        "missing": missing,
        "p50_ms": round(statistics.median(lat), 1),
        "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
        "max_ms": round(lat[-1], 1),
    }


def login_cost(port: int, tok: str, n: int = 20) -> dict:
    t0 = time.perf_counter()
    for _ in range(n):
        token(port)
    login_ms = (time.perf_counter() - t0) * 1000 / n
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.perf_counter()
    for _ in range(n):
        conn.request("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"})
        conn.getresponse().read()
    me_ms = (time.perf_counter() - t0) * 1000 / n
    return {
        "token_request_ms": round(login_ms, 1),
        "authenticated_request_ms": round(me_ms, 2),
        "ratio": round(login_ms / me_ms, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", default="1,25,100")
    ap.add_argument("--alerts", type=int, default=20)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(tempfile.mkdtemp()) if args.keep else Path(d)
        print(f"work dir: {tmp}", file=sys.stderr)
        broker, mqtt_cfg = start_broker(tmp)
        db = f"sqlite:///{tmp / 'hub.sqlite3'}"
        add_user(db)
        port = free_port()
        cfg = {
            "database_url": db,
            "mqtt": mqtt_cfg[HUB],
            "mqtt_client_id": HUB,
            "http": {"host": "127.0.0.1", "port": port},
            "auth": {"login_max_failures": 1000},
            "log_level": "WARNING",
        }
        (tmp / "hub.yaml").write_text(yaml.safe_dump(cfg))
        hub = procs.spawn(
            procs.edgewatch_cmd("hub", "run", "-c", str(tmp / "hub.yaml")), tmp / "h.log"
        )
        try:
            if not procs.wait_port(port, timeout=30):
                raise SystemExit("hub did not start: " + (tmp / "h.log").read_text()[-2000:])
            time.sleep(1.0)  # the MQTT subscription
            tok = token(port)
            rows = [
                fan_out(port, mqtt_cfg[EDGE], tok, int(c), args.alerts)
                for c in args.clients.split(",")
            ]
            base = rows[0]["p50_ms"]
            for r in rows:
                r["p50_ratio_vs_1"] = round(r["p50_ms"] / base, 2)
            login = login_cost(port, tok)
        finally:
            procs.stop(hub)
            procs.stop(broker)
    head = ("streams", "alerts", "missing", "p50 ms", "p95 ms", "max ms", "p50 x")
    print(" ".join(f"{h:>8}" for h in head))
    for r in rows:
        print(
            f"{r['clients']:>8} {r['alerts']:>8} {r['missing']:>8} {r['p50_ms']:>8} "
            f"{r['p95_ms']:>8} {r['max_ms']:>8} {r['p50_ratio_vs_1']:>8}"
        )
    print(
        f"login (argon2id verify) {login['token_request_ms']} ms vs authenticated request "
        f"{login['authenticated_request_ms']} ms: {login['ratio']}x"
    )
    result = {"fan_out": rows, "login": login}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
