"""Load and chaos for the whole city (issue 20): 650 cameras on 30 boxes, two hubs on one
PostgreSQL with a leader, dashboards open, the public feed through nginx; then the faults.

    python scripts/bench_city.py --json docs/benchmarks/bench_city.json

Why one script on real parts rather than a model: the targets (nothing lost or doubled,
an escalation that fires once, a takeover within 5 s, p95 publish-to-API under 1 s) are
properties of the processes together (mosquitto's persistent session, the hubs'
advisory-lock leader, the edge's spool), which only show when those processes run and are
killed. Everything is reused: the hubs are ``edgewatch hub run`` processes started as
tests/test_cluster.py starts them (same account and client id, one database), the broker
is tests.helpers.Mosquitto, the webhook receivers come from tests/receivers.py, wrk and
nginx as scripts/bench_feed.py runs them.

What runs, in one process beside the hubs (kept light: this is a 2-core box):

* 30 paho clients, one per box (edge accounts, site "hue"), QoS 1: each of the 650
  cameras publishes its retained status every 5 s (130 msg/s) and events arrive as a
  Poisson stream (``--event-rate``) with a burst of ``--burst`` events every
  ``--burst-every-s``;
* three dashboards holding ``/api/v1/alerts/stream`` open (reopened after a hub dies);
* p95: the publisher's clock at publish to the first poll (``GET /api/v1/events`` sorted
  by arrival, newest first, every 0.2 s: one cheap query, not one per event) that lists
  the event; the poll interval is part of the figure (it can only make it worse);
* a 10k spool replay: a box's spool (the edge's real Spool and Publisher) holding 10,000
  events when it comes online; ``ingest.events_per_s`` is the rate at which they reach
  the API.

Chaos, each on its own camera id so that its events can be counted at the API exactly
(every event sent by the edge's real Publisher and spool, as an edge would):

* leader_kill: a 5,000-event burst; the leader killed with -9 when a quarter is stored;
  ``takeover_s`` is the time from the kill to the standby's first new row;
* hub_kill_escalation: fire events routed to a team with an ack timeout; the leader
  (holding the pending escalations) killed with -9 before they are due; ``fired`` counts
  every escalation webhook received for them (a double firing would make it exceed
  ``due``);
* db_outage: a private PostgreSQL (initdb into a temp dir, never the machine's server)
  stopped for 30 s while a box publishes;
* broker_restart: mosquitto stopped and started while a box publishes.

The feed: wrk on ``/api/v1/hotspots`` (50 hotspots) against one hub, then through nginx
(the deployment's config, micro-cache) in front of both, during the load.

Order: the steady window (p95) and the feed under the full load; then the replay and the
four cases, each started once the hubs have caught up (a probe event listed), with each
camera's status every ``--chaos-status-every-s`` (5 s by default: the full load). On a
box where the leader only just keeps up with the full load, a 5,000 burst or a 10k
replay queues behind it for minutes; a slower status period there keeps the cases about
loss, duplicates and takeover, and is written in the JSON's notes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import paho.mqtt.client as mqtt  # noqa: E402
from bench_feed import get as feed_get  # noqa: E402
from bench_feed import wrk  # noqa: E402
from bench_hotspots import seed  # noqa: E402

from edge.transport.publisher import Publisher  # noqa: E402
from edge.transport.spool import Message, Spool  # noqa: E402
from edgewatch import contract, deploy, procs  # noqa: E402
from edgewatch.broker import free_port  # noqa: E402
from tests.helpers import Mosquitto, bearer_token, ensure_user, wait_for  # noqa: E402
from tests.receivers import WebhookReceiver  # noqa: E402
from tests.test_cluster import ADMIN, ClusterHub  # noqa: E402
from tests.test_cluster import event as event_msg  # noqa: E402  (the same events)

SITE = "hue"
HOTSPOTS = ROOT / "configs" / "hotspots.geojson"
BOXES = 30
CAMERAS = 650
ACK_TIMEOUT_S = 15


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- a private PostgreSQL, so that stopping it harms nobody --------------------------------


class PrivatePostgres:
    """initdb into a temp dir, on a free port; ``stop``/``start`` are the outage."""

    def __init__(self, synchronous_commit: str = "on") -> None:
        self.synchronous_commit = synchronous_commit
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb")
        self.bin = bins[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="bench-city-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        # initdb refuses root: run the server as the postgres user, as the package does
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        out = subprocess.run(
            [*self.prefix, str(self.bin / tool), *args], capture_output=True, text=True
        )
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed: {out.stdout}\n{out.stderr}")

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
            f" -c synchronous_commit={self.synchronous_commit}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "pg.log"),
                  "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create(self, db: str) -> str:
        import psycopg

        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        return self.url(db)

    def destroy(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the simulated city ---------------------------------------------------------------------


class City:
    """30 boxes, 650 cameras: statuses every 5 s, Poisson events with bursts."""

    def __init__(self, broker: Mosquitto, args: argparse.Namespace) -> None:
        self.args = args
        self.boxes = [f"box-{i:02d}" for i in range(1, BOXES + 1)]
        self.cams: list[tuple[str, str]] = [
            (self.boxes[i % BOXES], f"{self.boxes[i % BOXES]}-cam-{i:03d}") for i in range(CAMERAS)
        ]
        self.clients: dict[str, mqtt.Client] = {
            b: broker.client(b, "edge", site=SITE) for b in self.boxes
        }
        self.stop_ev = threading.Event()
        self.sent_at: dict[str, float] = {}  # event id -> publisher's clock (time.time)
        self.status_every_s = 5.0  # each camera's status period (the 5 s)
        self.statuses = 0
        self.events = 0
        self.bursts = 0
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._statuses, daemon=True),
            threading.Thread(target=self._events, daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stop_ev.set()
        for t in self.threads:
            t.join(10)
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()

    def _statuses(self) -> None:
        """Every camera every 5 s, spread evenly: 13 statuses each 0.1 s."""
        i, owed = 0, 0.0
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            owed += CAMERAS * 0.1 / self.status_every_s
            now = datetime.now(UTC)
            while owed >= 1:
                box, cam = self.cams[i % CAMERAS]
                doc = contract.CameraStatus(
                    camera_id=cam, state="online", fps=10.0, last_frame_time=now,
                    reconnects=0, updated_at=now,
                )  # fmt: skip
                self.clients[box].publish(
                    contract.camera_status_topic(SITE, box, cam),
                    doc.model_dump_json().encode(), qos=1, retain=True,
                )  # fmt: skip
                self.statuses += 1
                i += 1
                owed -= 1
            nxt += 0.1
            self.stop_ev.wait(max(0.0, nxt - time.monotonic()))

    def _publish_event(self) -> None:
        box, cam = random.choice(self.cams)
        msg = event_msg(box, cam)
        with self.lock:
            self.sent_at[str(msg.id)] = time.time()
        self.clients[box].publish(
            contract.events_topic(SITE, box), msg.model_dump_json().encode(), qos=1
        )
        self.events += 1

    def _events(self) -> None:
        rate, burst, every = self.args.event_rate, self.args.burst, self.args.burst_every_s
        next_burst = time.monotonic() + every
        while not self.stop_ev.is_set():
            self.stop_ev.wait(random.expovariate(rate))
            self._publish_event()
            if time.monotonic() >= next_burst:  # a scene with many cameras at once, over 1 s
                for _ in range(burst):
                    self._publish_event()
                    time.sleep(1.0 / burst)
                self.bursts += 1
                next_burst += every


class Latency:
    """First time each of the city's events is listed by a hub, polled every 0.2 s."""

    def __init__(self, city: City, hub: Callable[[], ClusterHub]) -> None:
        self.city, self.hub = city, hub
        self.seen: dict[str, float] = {}
        self.polls = 0
        self.errors = 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_ev.is_set():
            try:
                page = self.hub().get("/api/v1/events?sort=received_at&order=desc&limit=200")
                t = time.time()
                self.polls += 1
                for item in page["items"]:
                    self.seen.setdefault(item["id"], t)
            except Exception:
                self.errors += 1
            self.stop_ev.wait(0.2)

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        """p50/p95 over the events published in [t0, t1] (wall clock)."""
        with self.city.lock:
            sent = {k: v for k, v in self.city.sent_at.items() if t0 <= v <= t1}
        lat = sorted(self.seen[k] - v for k, v in sent.items() if k in self.seen)
        missing = len(sent) - len(lat)

        def q(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None

        return {"sampled": len(sent), "seen": len(lat), "not_seen": missing,
                "p50_s": q(0.50), "p95_s": q(0.95),
                "max_s": round(lat[-1], 3) if lat else None}  # fmt: skip


class Dashboard:
    """An operator's page: the live stream held open, reopened when its hub goes away."""

    def __init__(self, hub: Callable[[], ClusterHub]) -> None:
        self.hub = hub
        self.opened = self.alerts = 0
        self.stop_ev = threading.Event()
        self.resp: Any = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop_ev.is_set():
            try:
                h = self.hub()
                tok = bearer_token(h.base, *ADMIN)
                req = urllib.request.Request(
                    f"{h.base}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {tok}"}
                )
                with urllib.request.urlopen(req, timeout=30) as r:
                    self.resp = r
                    self.opened += 1
                    for raw in r:
                        if self.stop_ev.is_set():
                            break
                        if raw.startswith(b"event: alert") or raw.startswith(b"event:alert"):
                            self.alerts += 1
            except Exception:
                pass
            self.stop_ev.wait(1.0)

    def close(self) -> None:
        self.stop_ev.set()


class Box:
    """One box for a chaos case: the edge's real spool and publisher, its own camera."""

    def __init__(self, tmp: Path, broker: Mosquitto, name: str, camera: str) -> None:
        self.name, self.camera = name, camera
        self.spool = Spool(tmp / f"{name}-spool.sqlite3", max_bytes=512 * 1024 * 1024)
        self.publisher = Publisher(
            broker.settings(name, "edge", site=SITE), name, self.spool,
            contract.edge_status_topic(SITE, name),
        )  # fmt: skip
        self.sent: list[str] = []

    def messages(self, n: int, **kw: Any) -> list[Message]:
        out = []
        for _ in range(n):
            m = event_msg(self.name, self.camera, **kw)
            self.sent.append(str(m.id))
            out.append(
                Message(
                    contract.events_topic(SITE, self.name), m.model_dump_json().encode(), "event"
                )
            )
        return out

    def send(self, n: int, **kw: Any) -> None:
        self.publisher.send(*self.messages(n, **kw))

    def paced(self, n: int, per_s: float, stop: threading.Event | None = None) -> threading.Thread:
        """Send ``n`` events at ``per_s`` on a thread, in chunks of a tenth of a second."""

        def run() -> None:
            chunk = max(1, int(per_s / 10))
            left = n
            t = time.monotonic()
            while left > 0 and not (stop and stop.is_set()):
                k = min(chunk, left)
                self.send(k)
                left -= k
                t += k / per_s
                time.sleep(max(0.0, t - time.monotonic()))

        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th

    def close(self) -> None:
        self.publisher.stop(drain_timeout_s=2)


def count(hub: ClusterHub, camera: str) -> int:
    return int(hub.get(f"/api/v1/events?camera={camera}&limit=1")["total"])


def tally(hub: ClusterHub, box: Box) -> dict[str, int]:
    items = hub.all_events(camera=box.camera)
    ids = [e["id"] for e in items]
    sent = set(box.sent)
    return {
        "sent": len(box.sent),
        "stored": len(set(ids) & sent),
        "duplicates": len(ids) - len(set(ids)),
        "redelivered_absorbed": sum(int(e.get("messages", 1)) > 1 for e in items),
        "unknown": len(set(ids) - sent),
    }


def safe_wait(pred: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """wait_for that tolerates a hub answering 5xx or not at all for a while."""

    def guarded() -> Any:
        try:
            return pred()
        except Exception:
            return False

    try:
        return wait_for(guarded, timeout, interval)
    except AssertionError:
        return False


def drain(read: Callable[[], int], n: int, stall_s: float = 60.0, max_s: float = 600.0) -> bool:
    """Wait until ``read()`` reaches ``n``; give up when it has not grown for ``stall_s``
    (the hub is behind, not stuck, as long as the count moves) or after ``max_s``."""
    t0 = last_move = time.monotonic()
    best = -1
    while time.monotonic() - t0 < max_s:
        try:
            got = read()
        except Exception:
            got = best
        if got >= n:
            return True
        if got > best:
            best, last_move = got, time.monotonic()
        elif time.monotonic() - last_move > stall_s:
            return False
        time.sleep(0.5)
    return False


# -- the run -------------------------------------------------------------------------------


class Bench:
    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp, self.args = tmp, args
        self.notes: list[str] = []
        self.hubs: dict[str, ClusterHub] = {}
        self.rangers = WebhookReceiver("ranger-secret")
        self.ioc = WebhookReceiver("ioc-secret")

    def leader(self) -> ClusterHub:
        for h in self.hubs.values():
            if h.proc is not None:
                try:
                    if h.cluster()["leader"]:
                        return h
                except Exception:
                    continue
        raise RuntimeError("no leader")

    def alive(self) -> ClusterHub:
        """A live hub for reading (the leader preferred)."""
        try:
            return self.leader()
        except RuntimeError:
            return next(h for h in self.hubs.values() if h.proc is not None)

    def standby(self) -> ClusterHub:
        lead = self.leader()
        return next(h for h in self.hubs.values() if h is not lead and h.proc is not None)

    def ensure_up(self) -> None:
        """Restart any hub that is dead (killed by a case, or exited on its own)."""
        for h in self.hubs.values():
            if h.proc is not None and h.proc.poll() is not None:
                self.notes.append(f"{h.hub_id} exited by itself with {h.proc.returncode}")
                h.proc = None
            if h.proc is None:
                h.start()
        safe_wait(lambda: self.leader(), 20)

    def setup(self) -> None:
        args = self.args
        self.pg = PrivatePostgres(args.synchronous_commit)
        self.pg.start()
        db = self.pg.create("edgewatch_city")
        log(f"private PostgreSQL on {self.pg.port}")
        self.broker = Mosquitto(self.tmp / "broker")
        self.broker.start()
        seed(db, HOTSPOTS)  # one reading for each of the 50 hotspots
        ensure_user(db, ADMIN[0], "admin", ADMIN[1])
        teams = [
            {"id": "rangers", "kinds": ["forest_fire"], "ack_timeout_s": ACK_TIMEOUT_S,
             "escalate_to": "ioc",
             "channels": [{"type": "webhook", "url": self.rangers.url, "secret": "ranger-secret"}]},
            {"id": "ioc", "kinds": ["forest_fire"], "ack_timeout_s": 600,
             "channels": [{"type": "webhook", "url": self.ioc.url, "secret": "ioc-secret"}]},
        ]  # fmt: skip
        extra = {
            "teams": teams,
            "incidents": {"retry_initial_s": 0.3, "retry_max_s": 1.0},
            "hotspots_file": str(HOTSPOTS),
            "log_level": "WARNING",
        }
        client_id = "hub-city"
        for hid in ("hub-a", "hub-b"):
            self.hubs[hid] = ClusterHub(self.tmp, hid, db, self.broker, client_id, extra)
        a, b = self.hubs["hub-a"], self.hubs["hub-b"]
        a.start()
        wait_for(lambda: a.get("/healthz")["mqtt"], 20, what="hub a on the broker")
        b.start()
        wait_for(lambda: b.cluster()["hubs"] == ["hub-a", "hub-b"], 20, what="both hubs")
        log("hubs up; connecting 30 boxes")
        self.city = City(self.broker, args)
        prefix = self.tmp / "nginx"
        self.nginx_port = free_port()
        site = deploy.render_site(
            [f"127.0.0.1:{h.port}" for h in self.hubs.values()],
            listen=f"127.0.0.1:{self.nginx_port}", cache_dir=str(prefix / "cache"),
            tls=None, redirect_http=False,
        )  # fmt: skip
        conf = deploy.write_standalone(prefix, site)
        self.nginx = deploy.start_nginx(prefix, conf, prefix / "nginx.out")
        if not procs.wait_port(self.nginx_port, timeout=10):
            raise RuntimeError("nginx did not start: " + (prefix / "error.log").read_text())

    def run(self) -> dict[str, Any]:
        args = self.args
        self.setup()
        self.city.start()
        lat = Latency(self.city, self.alive)
        lat.thread.start()
        dashboards = [Dashboard(self.alive), Dashboard(self.alive),
                      Dashboard(lambda: self.hubs["hub-b"])]  # fmt: skip
        out: dict[str, Any] = {}
        try:
            # 1. steady load: publish-to-API latency, and what the leader ingests
            log(f"steady load for {args.load_s} s")
            t0 = time.time()
            m0 = self.leader().metric("edgewatch_hub_messages_received")
            time.sleep(args.load_s)
            t1 = time.time()
            m1 = self.leader().metric("edgewatch_hub_messages_received")
            load1 = os.getloadavg()[0]
            time.sleep(3)  # the last of the window reach the API
            steady = lat.window(t0, t1)
            steady["window_s"] = round(t1 - t0, 1)
            steady["hub_ingested_msgs_per_s"] = round((m1 - m0) / (t1 - t0), 1)
            steady["offered_msgs_per_s"] = round(CAMERAS / 5.0 + args.event_rate
                                                 + args.burst / args.burst_every_s, 1)  # fmt: skip
            steady["loadavg_1m"] = round(load1, 2)
            log(f"steady: {steady}")

            # 2. the public feed, under the same load
            log("feed: wrk on one hub, then through nginx")
            out["feed"] = self.feed()
            log(f"feed: {out['feed']}")

            # 3. the chaos cases, with the statuses slowed if asked (see --chaos-status-every-s)
            self.city.status_every_s = args.chaos_status_every_s
            if args.chaos_status_every_s != 5.0:
                self.notes.append(
                    f"replay and chaos ran with each camera's status every "
                    f"{args.chaos_status_every_s:g} s (not 5 s), so that each case starts "
                    f"with no backlog: at 5 s the leader ingested "
                    f"{steady['hub_ingested_msgs_per_s']} msg/s of the "
                    f"{steady['offered_msgs_per_s']} offered (loadavg "
                    f"{steady['loadavg_1m']}), no room for a 5,000 burst or a 10k replay; the "
                    f"cases measure loss, duplicates and takeover, not capacity"
                )
            behind = self.settle()
            log(f"settled in {behind} s")

            # 4. a box comes back with 10k events in its spool
            replay = self.spool_replay()
            replay["backlog_before_s"] = behind
            log(f"replay: {replay}")
            out["ingest"] = {
                "events_per_s": replay["events_per_s"],
                "p95_s": steady["p95_s"],
                "p50_s": steady["p50_s"],
                "latency": steady,
                "spool_replay": replay,
                "offered_events_per_s": args.event_rate,
                "status_msgs_per_s": CAMERAS / 5.0,
            }
            chaos: dict[str, Any] = {}
            for name, case in (
                ("leader_kill", self.leader_kill),
                ("hub_kill_escalation", self.hub_kill_escalation),
                ("db_outage", self.db_outage),
                ("broker_restart", self.broker_restart),
            ):
                log(f"chaos: {name}")
                try:
                    behind = self.settle()
                    chaos[name] = case()
                    chaos[name]["backlog_before_s"] = behind
                except Exception as exc:  # reported, not hidden: the other cases still run
                    self.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
                    chaos[name] = None
                log(f"{name}: {chaos[name]}")
                self.ensure_up()
            out["chaos"] = chaos
            out["load"] = {
                "boxes": BOXES, "cameras": CAMERAS, "statuses_sent": self.city.statuses,
                "status_every_s": 5.0, "chaos_status_every_s": args.chaos_status_every_s,
                "events_sent": self.city.events, "bursts": self.city.bursts,
                "burst_size": args.burst, "dashboards": len(dashboards),
                "dashboard_opens": [d.opened for d in dashboards],
                "dashboard_alerts": [d.alerts for d in dashboards],
                "latency_polls": lat.polls, "latency_poll_errors": lat.errors,
            }  # fmt: skip
        finally:
            lat.stop_ev.set()
            for d in dashboards:
                d.close()
            self.city.stop()
        return out

    def settle(self) -> float | None:
        """Wait until the hubs have caught up with the city (a probe event from a box is
        listed), so that a case starts on the load alone, not on the last case's backlog:
        the seconds it took (None: not within 4 minutes)."""
        box, cam = self.city.cams[0]
        msg = event_msg(box, cam)
        t0 = time.monotonic()
        self.city.clients[box].publish(
            contract.events_topic(SITE, box), msg.model_dump_json().encode(), qos=1
        )
        path = f"/api/v1/events/{msg.id}"
        ok = safe_wait(lambda: self.alive().get(path), 240, 0.5)
        return round(time.monotonic() - t0, 1) if ok else None

    def total(self, hub: ClusterHub) -> int:
        return int(hub.get("/api/v1/events?limit=1")["total"])

    def spool_replay(self) -> dict[str, Any]:
        n = self.args.replay
        box = Box(self.tmp, self.broker, "box-replay", "replay-cam")
        for _ in range(n // 500):
            box.send(500)  # spooled: the publisher is not started (the box was offline)
        assert len(box.spool) == n, len(box.spool)
        t0 = time.monotonic()
        box.publisher.start()
        ok = drain(lambda: count(self.alive(), box.camera), n)
        dt = time.monotonic() - t0
        t = tally(self.alive(), box)
        box.close()
        return {**t, "seconds": round(dt, 2), "events_per_s": round(t["stored"] / dt, 1),
                "complete": bool(ok)}  # fmt: skip

    def leader_kill(self) -> dict[str, Any]:
        n = 5000
        lead, stand = self.leader(), self.standby()
        box = Box(self.tmp, self.broker, "box-leader", "chaos-leader")
        box.publisher.start()
        wait_for(lambda: box.publisher.connected, 10, what="box-leader connected")
        sender = box.paced(n, 500.0)
        wait_for(lambda: count(lead, box.camera) >= n // 4, 300, 0.05, what="a quarter stored")
        t_kill = lead.kill()
        at_kill = count(stand, box.camera)
        at_kill_total = self.total(stand)
        lead_s = resume_s = None
        while time.monotonic() - t_kill < 20 and (lead_s is None or resume_s is None):
            try:
                if lead_s is None and stand.cluster()["leader"]:
                    lead_s = time.monotonic() - t_kill
                if resume_s is None and self.total(stand) > at_kill_total:
                    resume_s = time.monotonic() - t_kill
            except Exception:
                pass
            time.sleep(0.05)
        sender.join(60)
        if not drain(lambda: count(stand, box.camera), n):
            self.notes.append("leader_kill: the count stopped growing before all were stored")
        time.sleep(2.0)  # a duplicate row would show now
        t = tally(stand, box)
        box.close()
        return {"sent": t["sent"], "stored": t["stored"], "duplicates": t["duplicates"],
                "takeover_s": round(resume_s, 2) if resume_s is not None else None,
                "leader_flag_s": round(lead_s, 2) if lead_s is not None else None,
                "stored_when_killed": at_kill, "killed": lead.hub_id,
                "redelivered_absorbed": t["redelivered_absorbed"]}  # fmt: skip

    def hub_kill_escalation(self) -> dict[str, Any]:
        k = 5
        lead, stand = self.leader(), self.standby()
        box = Box(self.tmp, self.broker, "box-fire", "fire-cam")
        box.publisher.start()
        for i in range(k):  # five hillsides, far apart: five incidents
            m = event_msg("box-fire", f"fire-cam-{i}", "forest_fire", analytic="fire",
                          label="fire", zone=None)  # fmt: skip
            box.sent.append(str(m.id))
            box.publisher.send(
                Message(
                    contract.events_topic(SITE, "box-fire"), m.model_dump_json().encode(), "event"
                )
            )
        wait_for(self.rangers.valid, 120, what="rangers' webhooks")
        time.sleep(2.0)  # the rest of the first notifications
        incidents = sorted({r.body["incident_id"] for r in self.rangers.valid()})
        due_at = min(r.time for r in self.rangers.valid()) + ACK_TIMEOUT_S  # wall clock

        def all_sent() -> bool:
            for inc in incidents:
                d = lead.get(f"/api/v1/incidents/{inc}")
                if not d["deliveries"] or not all(x["state"] == "sent" for x in d["deliveries"]):
                    return False
            return True

        wait_for(all_sent, 30, what="the rangers' deliveries marked sent")
        if self.ioc.valid():
            raise RuntimeError("ioc notified before the kill")
        t_kill = lead.kill()
        t_kill_wall = time.time() - (time.monotonic() - t_kill)
        due_in = due_at - t_kill_wall
        if due_in < 1:
            self.notes.append(f"hub_kill_escalation: kill only {due_in:.1f} s before due")

        def escalations() -> list[Any]:
            return [
                r for r in self.ioc.valid()
                if r.body.get("incident_id") in incidents and r.body.get("reason") == "escalation"
            ]  # fmt: skip

        safe_wait(lambda: len({r.body["incident_id"] for r in escalations()}) >= len(incidents),
                  ACK_TIMEOUT_S + 30, 0.2)  # fmt: skip
        got = escalations()
        first_s = min(r.time for r in got) - t_kill_wall if got else None
        time.sleep(4.0)  # a second firing would show now
        got = escalations()
        box.close()
        return {"due": len(incidents), "fired": len(got),
                "incidents_escalated": len({r.body["incident_id"] for r in got}),
                "fire_events": k, "killed": lead.hub_id, "fired_by": stand.hub_id,
                "due_after_kill_s": round(due_in, 1),
                "first_escalation_after_kill_s": round(first_s, 2) if first_s is not None else None,
                "rangers_notified": len(self.rangers.valid())}  # fmt: skip

    def paced_case(
        self, name: str, camera: str, fault: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """A box publishing 20 events/s for the fault and 10 s each side of it."""
        per_s = 20.0
        box = Box(self.tmp, self.broker, name, camera)
        box.publisher.start()
        wait_for(lambda: box.publisher.connected, 10, what=f"{name} connected")
        stop = threading.Event()
        sender = box.paced(10**6, per_s, stop)
        time.sleep(10)
        info = fault()
        time.sleep(10)
        stop.set()
        sender.join(10)
        n = len(box.sent)
        t0 = time.monotonic()
        ok = drain(lambda: count(self.alive(), camera), n)
        info["catch_up_s"] = round(time.monotonic() - t0, 1)
        time.sleep(2.0)
        t = tally(self.alive(), box)
        if not ok:
            self.notes.append(f"{name}: the count stopped growing before all were stored")
        box.close()
        return {"sent": t["sent"], "stored": t["stored"], "duplicates": t["duplicates"], **info}

    def db_outage(self) -> dict[str, Any]:
        def fault() -> dict[str, Any]:
            t = time.monotonic()
            self.pg.stop()
            time.sleep(self.args.outage_s)
            self.pg.start()
            return {"outage_s": round(time.monotonic() - t, 1)}

        res = self.paced_case("box-db", "chaos-db", fault)
        res["hubs_alive_after"] = [h.hub_id for h in self.hubs.values()
                                   if h.proc is not None and h.proc.poll() is None]  # fmt: skip
        return res

    def broker_restart(self) -> dict[str, Any]:
        def fault() -> dict[str, Any]:
            t = time.monotonic()
            self.broker.stop()
            time.sleep(2)
            self.broker.start()
            return {"down_s": round(time.monotonic() - t, 1)}

        return self.paced_case("box-broker", "chaos-broker", fault)

    def feed(self) -> dict[str, Any]:
        a = self.alive()
        status, hdrs, body = feed_get(a.port)
        if status != 200 or body.count(b'"type":"Feature"') != 50:
            raise RuntimeError(f"hotspots feed: {status}")
        feed_get(self.nginx_port)
        wargs = argparse.Namespace(threads=2, connections=64, seconds=self.args.wrk_s)
        hub = wrk(a.port, wargs)
        front = wrk(self.nginx_port, wargs)
        return {"hub_rps": hub["rps"], "nginx_rps": front["rps"],
                "ratio": round(front["rps"] / hub["rps"], 1) if hub["rps"] else None,
                "hub_p99_ms": hub["p99_ms"], "nginx_p99_ms": front["p99_ms"],
                "connections": 64, "threads": 2, "seconds": self.args.wrk_s,
                "hubs_behind_nginx": 2, "runs": {"hub": hub, "nginx": front}}  # fmt: skip

    def close(self) -> None:
        for h in self.hubs.values():
            if h.proc is not None:
                h.stop()
        if getattr(self, "nginx", None) is not None:
            procs.stop(self.nginx, timeout=10)
        if getattr(self, "broker", None) is not None:
            self.broker.stop()
        self.rangers.stop()
        self.ioc.stop()
        if getattr(self, "pg", None) is not None:
            self.pg.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--load-s", type=float, default=60.0, help="steady load window for p95")
    ap.add_argument("--event-rate", type=float, default=4.0, help="city events/s (Poisson)")
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--burst-every-s", type=float, default=20.0)
    ap.add_argument("--replay", type=int, default=10_000)
    ap.add_argument("--outage-s", type=float, default=30.0)
    ap.add_argument("--wrk-s", type=int, default=8)
    ap.add_argument(
        "--chaos-status-every-s", type=float, default=5.0,
        help="each camera's status period during the replay and chaos (5: the full load)",
    )  # fmt: skip
    ap.add_argument(
        "--synchronous-commit", choices=("on", "off"), default="on",
        help="of the private PostgreSQL (on: PostgreSQL's default, a flush per commit)",
    )  # fmt: skip
    args = ap.parse_args()
    missing = [
        n
        for n in ("wrk", "mosquitto")
        if shutil.which(n) is None and not Path(f"/usr/sbin/{n}").exists()
    ]
    if deploy.nginx_binary() is None:
        missing.append("nginx")
    if missing:
        sys.exit(f"bench: missing {missing}")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-city-") as tmpdir:
        bench = Bench(Path(tmpdir), args)
        try:
            out = bench.run()
        finally:
            bench.close()
    out = {"chaos": out.get("chaos"), "ingest": out.get("ingest"), "feed": out.get("feed"), **out}
    out["notes"] = bench.notes
    out["seconds"] = round(time.time() - started, 1)
    out["cpus"] = os.cpu_count()
    out["postgres_synchronous_commit"] = args.synchronous_commit
    out["command"] = "python scripts/bench_city.py " + " ".join(sys.argv[1:])
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
