"""Soak: the whole system for a while under faults; nothing may grow without bound.

An edge worker with N cameras over RTSP (a few on a server that goes away every few
minutes), a secured mosquitto that is restarted now and then, a hub process (SQLite) that
is restarted now and then, and dashboards holding the live SSE stream open. Beside the
worker, a synthetic edge (the real spool and publisher) sends one known event every
``--event-every-s``; at the end every one of them must be at the hub exactly once.

Every ``--sample-s`` the RSS, open file descriptors and threads of the edge worker, the
hub and the broker are read from /proc. The slope per hour of each (least squares over a
process's samples after its first ``--warmup-s``; per lifetime for processes that are
restarted) is the figure: a leak shows as a slope that does not go to zero as the run
gets longer. Two hours give the figures for the README; ``--minutes 5`` is a smoke run.

    python scripts/soak.py --minutes 120 --json docs/benchmarks/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge.analytics.objects import Transition  # noqa: E402
from edge.events.messages import EventEncoder  # noqa: E402
from edge.events.snapshot import render_snapshot  # noqa: E402
from edge.inference.registry import Registry  # noqa: E402
from edge.ingest.media import make_test_video  # noqa: E402
from edge.transport.publisher import Publisher  # noqa: E402
from edge.transport.spool import Spool  # noqa: E402
from edgewatch import contract  # noqa: E402
from tests.helpers import Hub, Mosquitto, Process, RtspServer, wait_for  # noqa: E402

SITE = "soak"


def proc_stats(pid: int) -> dict[str, float] | None:
    """RSS (MiB), open fds and threads of a live process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    vals = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key == "VmRSS":
            vals["rss_mib"] = int(rest.split()[0]) / 1024
        elif key == "Threads":
            vals["threads"] = float(rest.strip())
    vals["fds"] = float(fds)
    return vals


def slope_per_hour(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3:
        return None
    t = np.array([s[0] for s in samples]) / 3600.0
    y = np.array([s[1] for s in samples])
    if np.ptp(t) <= 0:
        return None
    return float(np.polyfit(t, y, 1)[0])


class Emitter:
    """A synthetic edge: the real spool and publisher, one known event at a time."""

    def __init__(self, tmp: Path, broker: Mosquitto) -> None:
        self.edge_id = "soak-emitter"
        self.spool = Spool(tmp / "emitter-spool.sqlite3", max_bytes=64 * 1024 * 1024)
        self.publisher = Publisher(
            broker.settings(self.edge_id, "edge", site=SITE),
            self.edge_id,
            self.spool,
            contract.edge_status_topic(SITE, self.edge_id),
        )
        self.encoder = EventEncoder(SITE, self.edge_id)
        frame = np.full((120, 160, 3), 90, np.uint8)
        self.jpeg = render_snapshot(frame, (10, 10, 60, 60), "car 0.90")
        self.sent: list[str] = []

    def emit(self) -> None:
        now = datetime.now(UTC)
        eid = uuid.uuid4()
        common = dict(
            event_id=eid, label="car", start_time=now, score=0.9,
            box=(0.1, 0.1, 0.4, 0.4), box_px=(10, 10, 60, 60),
        )  # fmt: skip
        kw = dict(kind="object", analytic="soak", camera_id="synthetic", zone=None, location=None)
        new = Transition(type="new", seq=0, frame_time=now, snapshot=True, **common)
        end = Transition(type="end", seq=1, frame_time=now, end_time=now, **common)
        self.publisher.send(*self.encoder.encode(new, jpeg=self.jpeg, **kw))
        self.publisher.send(*self.encoder.encode(end, **kw))
        self.sent.append(str(eid))


def dashboard(hub: Hub, stop: threading.Event, counts: dict[str, int]) -> None:
    """An operator's live page: the SSE stream held open, reopened when the hub restarts."""
    while not stop.is_set():
        try:
            req = urllib.request.Request(
                f"{hub.base}/api/v1/alerts/stream", headers=hub._auth()
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                counts["opened"] += 1
                for line in r:
                    if stop.is_set():
                        return
                    if line.startswith(b"event:"):
                        counts["events"] += 1
        except Exception:  # the hub is restarting, or the stream timed out: reopen
            hub.token = None
            stop.wait(2)


def edge_config(uid: str, broker: Mosquitto, steady: RtspServer, flappy: RtspServer,
                model_dir: Path, tmp: Path, cameras: int, flapping: int) -> dict:  # fmt: skip
    cams = []
    for i in range(cameras):
        server = flappy if i < flapping else steady
        cams.append(
            {
                "id": f"cam-{i:02d}",
                "url": server.url("road"),
                "reconnect": {"initial_s": 1.0, "max_s": 10.0, "stall_timeout_s": 5.0},
                "analytics": [
                    {
                        "type": "objects", "name": "vehicles", "classes": ["car", "bus", "truck"],
                        "min_score": 0.5, "fps": 0.5, "min_consecutive": 2, "max_missing": 2,
                    }  # fmt: skip
                ],
            }
        )
    return {
        "edge_id": f"edge-{uid}",
        "site": SITE,
        "mqtt": broker.mqtt(f"edge-{uid}", "edge", site=SITE),
        "spool_dir": str(tmp / "edge-spool"),
        "models": {"dir": str(model_dir), "threads": 1},
        "status_interval_s": 5,
        "cameras": cams,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cameras", type=int, default=20)
    ap.add_argument("--flapping", type=int, default=4, help="cameras on the flapping server")
    ap.add_argument("--flap-every-s", type=float, default=180.0)
    ap.add_argument("--broker-restart-every-s", type=float, default=600.0)
    ap.add_argument("--hub-restart-every-s", type=float, default=900.0)
    ap.add_argument("--dashboards", type=int, default=3)
    ap.add_argument("--event-every-s", type=float, default=2.0)
    ap.add_argument("--sample-s", type=float, default=60.0)
    ap.add_argument("--warmup-s", type=float, default=120.0)
    ap.add_argument("--assets", default=os.environ.get("EDGEWATCH_ASSETS", "../shared/assets"))
    ap.add_argument("--json", type=Path, default=Path("soak.json"))
    args = ap.parse_args()

    assets = Path(args.assets).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-soak-"))
    uid = uuid.uuid4().hex[:6]
    model_dir = tmp / "models"
    Registry(model_dir).pull("yolox_nano", mirror=assets / "models")
    video = make_test_video(assets / "video/highway_cctv_320x240.avi", tmp / "road.mp4", loops=40)

    broker = Mosquitto(tmp / "broker")
    broker.start()
    steady = RtspServer(tmp / "rtsp-a", {"road": video})
    flappy = RtspServer(tmp / "rtsp-b", {"road": video})
    for d in (tmp / "rtsp-a", tmp / "rtsp-b"):
        d.mkdir()
    steady.start()
    flappy.start()
    hub = Hub(tmp, f"sqlite:///{tmp / 'hub.sqlite3'}", broker, f"hub-{uid}")
    hub.start()
    edge = Process(tmp, "edge", ["edge", "run"],
                   edge_config(uid, broker, steady, flappy, model_dir, tmp,
                               args.cameras, args.flapping))  # fmt: skip
    edge.start()
    em = Emitter(tmp, broker)
    em.publisher.start()

    stop = threading.Event()
    live = {"opened": 0, "events": 0}
    boards = [
        threading.Thread(target=dashboard, args=(hub, stop, live), daemon=True)
        for _ in range(args.dashboards)
    ]
    for b in boards:
        b.start()

    faults = {"broker_restarts": 0, "hub_restarts": 0, "camera_flaps": 0}
    samples: dict[str, list[dict]] = {"edge": [], "hub": [], "broker": []}
    lifetimes = {"edge": 0, "hub": 0, "broker": 0}
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    next_event = next_sample = t0
    next_flap = t0 + args.flap_every_s
    next_broker = t0 + args.broker_restart_every_s
    next_hub = t0 + args.hub_restart_every_s
    flappy_down = False
    print(f"soak: {args.minutes} min, work dir {tmp}", flush=True)
    try:
        while (now := time.monotonic()) < end:
            if now >= next_event:
                em.emit()
                next_event += args.event_every_s
            if now >= next_flap:
                if flappy_down:
                    flappy.start()
                else:
                    flappy.stop()
                    faults["camera_flaps"] += 1
                flappy_down = not flappy_down
                next_flap += args.flap_every_s / (4 if flappy_down else 1)  # down a while
            if now >= next_broker:
                broker.stop()
                time.sleep(5)
                broker.start()
                faults["broker_restarts"] += 1
                lifetimes["broker"] += 1
                next_broker += args.broker_restart_every_s
            if now >= next_hub:
                hub.stop()
                time.sleep(3)
                hub.start()
                faults["hub_restarts"] += 1
                lifetimes["hub"] += 1
                next_hub += args.hub_restart_every_s
            if now >= next_sample:
                pids = {
                    "edge": edge.proc.pid if edge.proc else None,
                    "hub": hub.proc.pid if hub.proc else None,
                    "broker": broker.proc.pid if broker.proc else None,
                }
                for role, pid in pids.items():
                    st = proc_stats(pid) if pid else None
                    if st:
                        samples[role].append(
                            {"t": round(now - t0, 1), "life": lifetimes[role], **st}
                        )
                line = {r: (s[-1] if s else None) for r, s in samples.items()}
                print(f"[{(now - t0) / 60:5.1f} min] {json.dumps(line)}", flush=True)
                next_sample += args.sample_s
            time.sleep(0.2)
        if flappy_down:
            flappy.start()
        # every synthetic event must arrive once
        em.publisher.stop(drain_timeout_s=60)
        sent = list(em.sent)

        def arrived() -> list[dict] | None:
            items = hub.all_events(camera="synthetic")
            return items if len({e["id"] for e in items}) >= len(sent) else None

        try:
            got = wait_for(arrived, 180, interval=2.0, what="every synthetic event")
        except AssertionError:
            got = hub.all_events(camera="synthetic")
        ids = [e["id"] for e in got]
        delivery = {
            "sent": len(sent),
            "arrived": len(set(ids) & set(sent)),
            "missing": len(set(sent) - set(ids)),
            "duplicated_rows": len(ids) - len(set(ids)),
            "not_ended": sum(1 for e in got if e["state"] != "ended"),
            "messages_replayed_absorbed": sum(max(0, e["messages"] - 2) for e in got),
        }
        edge_events = len(hub.all_events()) - len(got)
    finally:
        stop.set()
        edge.stop()
        hub.stop()
        steady.stop()
        flappy.stop()
        broker.stop()

    warm = args.warmup_s
    slopes: dict[str, dict[str, float | None]] = {}
    for role, rows in samples.items():
        out: dict[str, float | None] = {}
        for metric in ("rss_mib", "fds", "threads"):
            per_life = []
            for life in sorted({r["life"] for r in rows}):
                pts = [r for r in rows if r["life"] == life]
                start = pts[0]["t"] + warm if pts else 0
                per_life.append(
                    slope_per_hour([(r["t"], r[metric]) for r in pts if r["t"] >= start])
                )
            known = [s for s in per_life if s is not None]
            out[f"{metric}_per_h"] = round(max(known, key=abs), 3) if known else None
        slopes[role] = out
    result = {
        "minutes": args.minutes,
        "machine": f"{os.cpu_count()} CPUs",
        "cameras": args.cameras,
        "flapping_cameras": args.flapping,
        "dashboards": args.dashboards,
        "faults": faults,
        "delivery": delivery,
        "worker_events_at_hub": edge_events,
        "live_streams_opened": live["opened"],
        "live_events_seen": live["events"],
        "slopes": slopes,
        "samples": samples,
        "command": " ".join(sys.argv),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    ok = delivery["missing"] == 0 and delivery["duplicated_rows"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
