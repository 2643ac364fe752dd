#!/usr/bin/env python
"""Event-level evaluation of the fire analytic, and of alert delivery.

    python scripts/eval_fire.py --json docs/benchmarks/eval_fire.json

1. **Fire sequences.** Fire and smoke from the CC BY 4.0 dataset's *test* split (never
   trained on) are composited onto real background footage (the two road videos in
   ``../shared/assets/video``) from a known sample on: a crop is pasted with a feathered
   mask at a fixed base, growing and flickering as a real fire does. The shipped model and
   the edge's own ``FireRule`` (default config: 4 of 8 samples, every 2 s) run on every
   sample. Reported: detection rate (sequences alerted after the insert), time from first
   visible fire/smoke to the alert, and alerts before the insert (false).
2. **Look-alikes** with no fire: fog rolling in, low cloud drifting, headlights at night,
   dust, steam puffs, each over both backgrounds. Any alert is a look-alike false alarm.
3. **Background time.** Every frame of both videos, taken as one sample each: alerts per
   camera per day of sampled time.
4. **Alert to webhook.** A private mosquitto and the hub (a process) with a team whose
   webhook points at a loopback receiver; alerts are published as an edge publishes them,
   and the receiver times each one (p50/p95).

``--json FILE`` writes ``{"detection_rate", "median_time_to_alert_s",
"alert_to_webhook_p95_s", "false_alarms_per_camera_day", "lookalike_false_alarms", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.analytics.fire import FireRule  # noqa: E402
from edge.config import FireAnalytic  # noqa: E402
from edge.inference.detector import Detector  # noqa: E402
from edge.inference.registry import Registry  # noqa: E402
from tests.fire_scenes import crops, frames_of, jitter, paste, real_scenes  # noqa: E402

PERIOD_S = 2.0
T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def run_rule(det: Detector, frames: list[np.ndarray], cfg: FireAnalytic) -> list[tuple[int, str]]:
    """(sample index, kind) of each alert the rule raises over the frames."""
    rule = FireRule(cfg, det.class_names)
    alerts = []
    for i in range(0, len(frames), 4):
        batch = frames[i : i + 4]
        for j, d in enumerate(det.detect_batch(batch, rule.min_score)):
            now = T0 + timedelta(seconds=PERIOD_S * (i + j))
            h, w = batch[j].shape[:2]
            for t in rule.update(d, (w, h), now):
                if t.type == "new":
                    alerts.append((i + j, t.kind or ""))
    return alerts


# --------------------------------------------------------------------------- scenes


SIZES = {"near": 0.42, "far": 0.22}  # final sprite height, share of the frame height


def fire_sequences(backgrounds, fires, smokes, rng, n_samples=60, start=15):
    """(name, frames, start, size) with fire or smoke appearing at sample ``start``.

    Per background: fire and smoke, each near (a sprite 42% of the frame high when grown)
    and far (22%), two of each: 8 sequences.
    """
    seqs = []
    for b_i, bg in enumerate(backgrounds):
        for s_i in range(8):
            kind = "fire" if s_i % 2 == 0 else "smoke"
            size = "near" if (s_i // 2) % 2 == 0 else "far"
            pool = fires if kind == "fire" else smokes
            sprite = pool[int(rng.integers(len(pool)))]
            H, W = bg[0].shape[:2]
            base = (int(rng.uniform(0.3, 0.7) * W), int(rng.uniform(0.6, 0.9) * H))
            frames = []
            for i in range(n_samples):
                f = bg[(i * 7) % len(bg)]
                if i >= start:
                    grow = min(1.0, 0.5 + 0.05 * (i - start))
                    height = int(H * SIZES[size] * grow)
                    alpha = float(np.clip(0.85 + rng.normal(0, 0.08), 0.6, 1.0))
                    f = paste(f, sprite, base, height, alpha, emissive=kind == "fire")
                frames.append(f)
            seqs.append((f"bg{b_i}-{kind}-{size}{s_i}", frames, start, size))
    return seqs


def real_sequences(split: Path, rng, n_samples=45, start=15):
    """Real fire/smoke frames (the test split) after 15 samples of the same view with the
    fire inpainted away: (name, frames, start, kind)."""
    out = []
    for name, kind, before, after, _ in real_scenes(split):
        frames = [jitter(before if i < start else after, rng) for i in range(n_samples)]
        out.append((name, frames, start, kind))
    return out


def lookalikes(backgrounds, rng, n_samples=60):
    """Scenes with no fire: fog, low cloud, headlights at night, dust, steam."""
    out = []
    for b_i, bg in enumerate(backgrounds):
        H, W = bg[0].shape[:2]
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        for name in ("fog", "low_cloud", "night_headlights", "dust", "steam"):
            frames = []
            for i in range(n_samples):
                f = bg[(i * 7) % len(bg)].astype(np.float32)
                p = i / n_samples
                if name == "fog":
                    a = 0.15 + 0.6 * p
                    f = f * (1 - a) + 215 * a
                elif name == "low_cloud":
                    cx = W * (p * 1.4 - 0.2)
                    blob = np.exp(
                        -(((xx - cx) / (0.3 * W)) ** 2 + ((yy - 0.12 * H) / (0.12 * H)) ** 2)
                    )
                    f = f * (1 - 0.8 * blob[..., None]) + 225 * 0.8 * blob[..., None]
                elif name == "night_headlights":
                    f = f * 0.18
                    for k in range(2):
                        cx = W * ((p * 2 + 0.5 * k) % 1.0)
                        cy = H * (0.6 + 0.1 * k)
                        glow = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (0.03 * W) ** 2))
                        f = f + np.array([200, 235, 255], np.float32) * glow[..., None]
                elif name == "dust":
                    cx = W * (0.2 + 0.6 * p)
                    blob = np.exp(
                        -(((xx - cx) / (0.15 * W)) ** 2 + ((yy - 0.8 * H) / (0.1 * H)) ** 2)
                    )
                    noise = rng.normal(0, 12, (H, W, 1)).astype(np.float32)
                    f = (
                        f * (1 - 0.6 * blob[..., None])
                        + (np.array([120, 150, 175]) + noise) * 0.6 * blob[..., None]
                    )
                elif name == "steam":
                    if (i // 6) % 3 == 0:  # short puffs that drift up and vanish
                        k = i % 6
                        cy = H * (0.7 - 0.08 * k)
                        blob = np.exp(
                            -(((xx - 0.5 * W) / (0.06 * W)) ** 2 + ((yy - cy) / (0.09 * H)) ** 2)
                        )
                        f = f * (1 - 0.7 * blob[..., None]) + 240 * 0.7 * blob[..., None]
                frames.append(f.clip(0, 255).astype(np.uint8))
            out.append((f"bg{b_i}-{name}", frames))
    return out


# --------------------------------------------------------------------------- delivery


def alert_to_webhook(n: int = 30) -> dict:

    from edgewatch import contract
    from tests.helpers import Hub, Mosquitto, wait_for
    from tests.receivers import WebhookReceiver

    tmp = Path(tempfile.mkdtemp(prefix="eval_fire_"))
    broker = Mosquitto(tmp)
    broker.start()
    recv = WebhookReceiver("eval-secret")
    uid = uuid.uuid4().hex[:8]
    hub = Hub(
        tmp,
        f"sqlite:///{tmp / 'hub.sqlite3'}",
        broker,
        f"hub-{uid}",
        extra={
            "teams": [
                {
                    "id": "rangers",
                    "kinds": ["forest_fire"],
                    "channels": [{"type": "webhook", "url": recv.url, "secret": "eval-secret"}],
                }
            ],
            "incidents": {"merge_distance_m": 10},
        },
    )
    hub.start()
    client = broker.client(f"edge-{uid}", "edge", site="hue")
    sent: dict[str, float] = {}
    try:
        for i in range(n):
            now = datetime.now(UTC)
            msg = contract.EventMessage(
                id=uuid.uuid4(),
                type="new",
                seq=0,
                kind="forest_fire",
                analytic="fire",
                label="fire",
                site="hue",
                edge_id=f"edge-{uid}",
                camera_id=f"cam{i}",
                start_time=now,
                frame_time=now,
                score=0.8,
                location=contract.Location(lat=16.0 + i * 0.1, lon=107.0),  # far apart
            )
            sent[f"cam{i}"] = time.time()
            client.publish(
                contract.events_topic("hue", f"edge-{uid}"), msg.model_dump_json().encode(), qos=1
            )
            time.sleep(0.2)
        wait_for(lambda: len(recv.valid()) >= n, 30, what="all webhooks")
        lat = sorted(r.time - sent[r.body["alerts"][0]["camera_id"]] for r in recv.valid())
    finally:
        client.loop_stop()
        hub.stop()
        broker.stop()
        recv.stop()
    return {
        "alerts": n,
        "p50_s": round(float(np.percentile(lat, 50)), 3),
        "p95_s": round(float(np.percentile(lat, 95)), 3),
        "max_s": round(max(lat), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    assets = Path(os.environ.get("EDGEWATCH_ASSETS", ROOT.parent / "shared" / "assets"))
    ap.add_argument("--assets", type=Path, default=assets)
    ap.add_argument("--model", default="fire_smoke_nano")
    ap.add_argument("--model-dir", type=Path, default=Path("var/models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-delivery", action="store_true", help="skip the hub/webhook part")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    reg = Registry(args.model_dir)
    det = Detector(reg.spec(args.model), reg.resolve(args.model), threads=2)
    cfg = FireAnalytic(model=args.model, period_s=PERIOD_S)
    video = args.assets / "video"
    backgrounds = [
        frames_of(video / "highway_cctv_320x240.avi"),
        frames_of(video / "parking_lot_cars_768x432.mp4"),
    ]
    test = args.assets / "datasets" / "fire_smoke_ccby4" / "test"
    fires, smokes = crops(test, 0), crops(test, 2)
    started = time.monotonic()

    real_rows = []
    for name, frames, start, kind in real_sequences(test, rng):
        alerts = run_rule(det, frames, cfg)
        early = [a for a in alerts if a[0] < start]
        late = [a for a in alerts if a[0] >= start]
        real_rows.append(
            {
                "scene": name,
                "kind": kind,
                "detected": bool(late),
                "time_to_alert_s": (late[0][0] - start) * PERIOD_S if late else None,
                "false_before_insert": len(early),
            }
        )
    seq_rows = []
    for name, frames, start, size in fire_sequences(backgrounds, fires, smokes, rng):
        alerts = run_rule(det, frames, cfg)
        early = [a for a in alerts if a[0] < start]
        late = [a for a in alerts if a[0] >= start]
        seq_rows.append(
            {
                "sequence": name,
                "size": size,
                "detected": bool(late),
                "time_to_alert_s": (late[0][0] - start) * PERIOD_S if late else None,
                "false_before_insert": len(early),
            }
        )
    look_rows = []
    for name, frames in lookalikes(backgrounds, rng):
        alerts = run_rule(det, frames, cfg)
        look_rows.append({"scene": name, "alerts": len(alerts)})
    bg_alerts, bg_samples = 0, 0
    for bg in backgrounds:
        bg_alerts += len(run_rule(det, bg, cfg))
        bg_samples += len(bg)
    camera_days = bg_samples * PERIOD_S / 86400
    detected = [r for r in real_rows if r["detected"]]
    times = [r["time_to_alert_s"] for r in detected]
    by_size = {
        size: round(
            sum(r["detected"] for r in seq_rows if r["size"] == size)
            / max(1, sum(r["size"] == size for r in seq_rows)),
            3,
        )
        for size in SIZES
    }
    composited = [r for r in seq_rows if r["detected"]]
    report = {
        "detection_rate": round(len(detected) / max(1, len(real_rows)), 3),
        "detection_rate_by_kind": {
            k: round(
                sum(r["detected"] for r in real_rows if r["kind"] == k)
                / max(1, sum(r["kind"] == k for r in real_rows)),
                3,
            )
            for k in ("fire", "smoke")
        },
        "composited_detection_rate": round(len(composited) / len(seq_rows), 3),
        "composited_detection_rate_by_size": by_size,
        "median_time_to_alert_s": float(np.median(times)) if times else None,
        "false_alarms_per_camera_day": round(bg_alerts / camera_days, 2),
        "false_alarms_before_fire": sum(r["false_before_insert"] for r in real_rows + seq_rows),
        "lookalike_false_alarms": int(sum(r["alerts"] for r in look_rows)),
        "real_scenes": real_rows,
        "composited": seq_rows,
        "lookalikes": look_rows,
        "background": {"samples": bg_samples, "alerts": bg_alerts, "camera_days": camera_days},
        "config": {
            "period_s": PERIOD_S,
            "confirm": f"{cfg.confirm_hits}/{cfg.confirm_window}",
            "min_score": cfg.min_score,
            "model": args.model,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    if not args.no_delivery:
        sys.path.insert(0, str(ROOT))
        report["delivery"] = alert_to_webhook()
        report["alert_to_webhook_p95_s"] = report["delivery"]["p95_s"]
    else:
        report["alert_to_webhook_p95_s"] = None

    print(
        f"{'real scene (test split)':<42}{'kind':>6}{'detected':>9}{'to alert s':>11}{'false':>6}"
    )
    for r in real_rows:
        t = "-" if r["time_to_alert_s"] is None else f"{r['time_to_alert_s']:.0f}"
        print(
            f"{r['scene']:<42}{r['kind']:>6}{str(r['detected']):>9}{t:>11}"
            f"{r['false_before_insert']:>6}"
        )
    print(f"{'composited sequence':<22}{'detected':>9}{'to alert s':>11}{'false before':>13}")
    for r in seq_rows:
        t = "-" if r["time_to_alert_s"] is None else f"{r['time_to_alert_s']:.0f}"
        print(f"{r['sequence']:<22}{str(r['detected']):>9}{t:>11}{r['false_before_insert']:>13}")
    print(f"detection rate by size: {by_size}")
    print(f"{'look-alike':<24}{'alerts':>7}")
    for r in look_rows:
        print(f"{r['scene']:<24}{r['alerts']:>7}")
    print(
        f"detection rate {report['detection_rate']:.2f} (real scenes; composited "
        f"{report['composited_detection_rate']:.2f}), median time to alert "
        f"{report['median_time_to_alert_s']} s, false alarms/camera-day "
        f"{report['false_alarms_per_camera_day']}, look-alike false alarms "
        f"{report['lookalike_false_alarms']}, "
        f"alert->webhook p95 {report['alert_to_webhook_p95_s']} s"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
