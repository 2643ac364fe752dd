"""Vehicle count across a line, with the traffic analytic's own detector and tracker.

    python scripts/eval_count.py VIDEO --line Y --seconds S --json OUT [--truth FILE]
                                 [--from T] [--analytic traffic|line_count]

Counts the vehicles whose bottom-centre (where the vehicle meets the road, the anchor the
rules use) crosses the horizontal line at fraction ``Y`` of the frame height in the first
``S`` seconds of ``VIDEO``, in either direction, once per track id. ``--from T`` starts
the analysis (and the tracker) at T seconds instead of 0, for a short check late in a
clip.

Why a count: a count is the plainest check that one vehicle is one track. A vehicle that
the detector boxes as both ``car`` and ``truck`` becomes two tracks if suppression is
per class, and each of them crosses the line: the count goes up, and so would every
violation that vehicle commits (twice, once as a "truck"). Rules stitch ID switches
(one track after another), not two tracks at once, so nothing downstream hides it.

What runs is what the ``traffic`` analytic runs with its defaults (``TrafficAnalytic``):
YOLOX-Nano from the manifest (pulled from ``$EDGEWATCH_ASSETS/models``), boxes down to
``min_score``, the analytic's classes, sampled at its ``fps`` the way the worker samples
(one frame per period, the next due a period after the last), and its ByteTrack, built
by ``TrafficMonitor``. Vehicles are its classes except ``person``.

``--analytic line_count`` counts with the ``line_count`` plugin instead (built through the
analytics registry with its defaults, its vehicle classes, one line across the frame at
``Y``): its own tracker, its band and confirmation rules, counted per crossing and direction.

OUT has ``count``, ``tracks`` (distinct vehicle track ids reported in the S seconds,
anywhere in the frame), ``fps`` (the analysis rate), the crossings (time, track id,
voted class, direction), ``simultaneous_duplicates`` (pairs of tracks reported in the
same frame with IoU >= 0.7: one vehicle with two ids) and, with ``--truth``, the
crossings matched to hand-labelled ones (within 0.6 s, greedy by time, a crossing of
the same class first), missed and extra.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.analytics.tracking import Tracks, iou_matrix  # noqa: E402
from edge.analytics.traffic_monitor import TrafficMonitor  # noqa: E402
from edge.config import TrafficAnalytic  # noqa: E402
from edge.inference.detector import Detector  # noqa: E402
from edge.inference.registry import Registry  # noqa: E402

MATCH_S = 0.6  # a counted crossing matches a labelled one this close in time...
CLASS_COST_S = 0.5  # ...preferring one of the same class (a car and a cyclist 0.1 s apart)
DUPLICATE_IOU = 0.7


def assets() -> Path:
    return Path(os.environ.get("EDGEWATCH_ASSETS", ROOT.parent / "shared" / "assets"))


def analytic() -> TrafficAnalytic:
    """The traffic analytic with its defaults (one inert rule: a config needs a rule)."""
    return TrafficAnalytic.model_validate(
        {"rules": [{"type": "no_stopping", "zone": [[0, 0], [0.01, 0], [0, 0.01]]}]}
    )


def sampled_frames(video: Path, seconds: float, fps: float, start: float = 0.0):  # type: ignore[no-untyped-def]
    """(time, BGR frame) at ``fps`` as the worker samples: one frame once a sample is due."""
    period = 1.0 / fps
    due = start
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        for i, f in enumerate(c.decode(stream)):
            t = float(f.time) if f.time is not None else i / float(stream.average_rate)
            if t >= seconds:
                break
            if t + 1e-6 < due:
                continue
            due = max(due + period, t + period / 2)
            yield t, f.to_ndarray(format="bgr24")


def crossings_of(history: dict[int, list[tuple[float, float, int]]], y: float) -> list[dict]:
    """One crossing per track: the first time its anchor goes from one side of y to the other
    (the moment interpolated between the two samples)."""
    out = []
    for tid, seq in history.items():
        for (t0, y0, _), (t1, y1, c1) in zip(seq, seq[1:], strict=False):
            if (y0 < y) != (y1 < y):
                tc = t0 + (t1 - t0) * (y - y0) / (y1 - y0)
                out.append(
                    {"t": round(tc, 2), "track_id": tid, "class_id": c1,
                     "direction": "down" if y1 > y0 else "up"}
                )  # fmt: skip
                break
    return sorted(out, key=lambda c: c["t"])


def match_truth(counted: list[dict], truth: list[dict]) -> dict[str, Any]:
    pairs = sorted(
        (abs(c["t"] - g["t"]) + CLASS_COST_S * (c["class"] != g.get("class", c["class"])), i, j)
        for i, c in enumerate(counted)
        for j, g in enumerate(truth)
        if abs(c["t"] - g["t"]) <= MATCH_S
    )
    used_c: set[int] = set()
    used_g: set[int] = set()
    for _, i, j in pairs:
        if i not in used_c and j not in used_g:
            used_c.add(i)
            used_g.add(j)
    return {
        "truth": len(truth),
        "matched": len(used_g),
        "missed": [g for j, g in enumerate(truth) if j not in used_g],
        "extra": [c for i, c in enumerate(counted) if i not in used_c],
    }


def evaluate(
    video: Path,
    line: float,
    seconds: float,
    work: Path,
    start: float = 0.0,
    ablate: bool = False,
) -> dict[str, Any]:
    """``ablate``: what the edge did before (class-aware NMS, every unmatched confident box
    a new track), to show the difference on the same frames."""
    cfg = analytic()
    reg = Registry(work / "models")
    reg.pull(cfg.model, mirror=assets() / "models")
    det = Detector(
        reg.spec(cfg.model), reg.resolve(cfg.model), threads=2, merge=[] if ablate else None
    )
    names = det.class_names
    monitor = TrafficMonitor(cfg, names, "eval-count")
    if ablate:
        monitor.tracker.dup_iou = float("inf")
    vehicles = {names.index(c) for c in cfg.classes if c != "person"}
    history: dict[int, list[tuple[float, float, int]]] = {}
    track_ids: set[int] = set()
    duplicates = 0
    analysed = 0
    height = 0
    busy = 0.0
    for t, img in sampled_frames(video, seconds, cfg.fps, start):
        height = img.shape[0]
        t0 = time.perf_counter()
        dets = det.detect(img, cfg.min_score)
        track = getattr(monitor, "track", None)
        if track is not None:
            tracks: Tracks = track(dets, t)
        else:  # what TrafficMonitor.update did before it had track()
            tracks = monitor.tracker.update(dets[np.isin(dets.class_id, monitor.class_ids)], t)
        busy += time.perf_counter() - t0
        analysed += 1
        keep = np.isin(tracks.class_id, list(vehicles))
        ids, cls, anchors = tracks.track_id[keep], tracks.class_id[keep], tracks.anchors()[keep]
        iou = iou_matrix(tracks.xyxy[keep], tracks.xyxy[keep])
        duplicates += int(np.triu(iou >= DUPLICATE_IOU, 1).sum())
        for tid, c, (_, ay) in zip(ids.tolist(), cls.tolist(), anchors.tolist(), strict=True):
            track_ids.add(tid)
            history.setdefault(tid, []).append((t, ay / height, c))
    crossed = crossings_of(history, line)
    for c in crossed:
        c["class"] = names[c.pop("class_id")]
    by_class: dict[str, int] = {}
    for c in crossed:
        by_class[c["class"]] = by_class.get(c["class"], 0) + 1
    return {
        "video": str(video),
        "line": line,
        "seconds": seconds,
        "from": start,
        "model": cfg.model,
        "fps": cfg.fps,
        "frames_analysed": analysed,
        "ms_per_frame_detect_track": round(busy / max(analysed, 1) * 1000, 1),
        "count": len(crossed),
        "count_by_class": dict(sorted(by_class.items())),
        "tracks": len(track_ids),
        "simultaneous_duplicates": duplicates,
        "crossings": crossed,
    }


def evaluate_line_count(
    video: Path, line: float, seconds: float, work: Path, start: float = 0.0
) -> dict[str, Any]:
    """The same clip, counted by the ``line_count`` plugin as the worker runs it."""
    from datetime import UTC, datetime

    from edge.analytics import registry
    from edge.analytics.base import CameraContext, Sample

    cfg = registry.plugin("line_count").config.model_validate(
        {
            "type": "line_count",
            "classes": ["car", "motorcycle", "bus", "truck", "bicycle"],
            "lines": [{"name": "y", "a": [0.0, line], "b": [1.0, line], "direction": [0, 1]}],
        }
    )
    reg = Registry(work / "models")
    reg.pull(cfg.model, mirror=assets() / "models")
    det = Detector(reg.spec(cfg.model), reg.resolve(cfg.model), threads=2)
    names = tuple(det.class_names)

    def refuse(*_: Any) -> Any:
        raise RuntimeError("not used by line_count")

    ctx = CameraContext(
        camera=None, site="eval", edge_id="eval", class_names=lambda _m: names,
        detector=refuse, subscribe=refuse, plate_reader=lambda: None,
    )  # fmt: skip
    rt = registry.plugin("line_count").build(cfg, ctx)
    crossings: list[dict] = []
    counter_update = rt.counter.update  # type: ignore[attr-defined]

    def spy(tracks: Tracks, t: float) -> list:
        out = counter_update(tracks, t)
        crossings.extend(
            {"t": round(c.time - t0_epoch, 2), "track_id": c.track, "class": names[c.class_id],
             "direction": "down" if c.direction > 0 else "up"}
            for c in out
        )  # fmt: skip
        return out

    rt.counter.update = spy  # type: ignore[attr-defined]
    t0_epoch = 1_700_000_000.0  # clip seconds on a fixed epoch (the plugin wants datetimes)
    analysed, busy, total = 0, 0.0, 0.0
    for t, img in sampled_frames(video, seconds, cfg.fps, start):
        h, w = img.shape[:2]
        t0 = time.perf_counter()
        dets = det.detect(img, cfg.min_score)
        when = datetime.fromtimestamp(t0_epoch + t, UTC)
        for r in rt.update(Sample(None, when, (w, h), dets)).readings:
            total += sum(v or 0 for k, v in r.values.items() if ".total." in k)
        busy += time.perf_counter() - t0
        analysed += 1
    end = datetime.fromtimestamp(t0_epoch + seconds, UTC)
    for r in rt.close(end).readings:
        total += sum(v or 0 for k, v in r.values.items() if ".total." in k)
    crossings.sort(key=lambda c: c["t"])
    by_class: dict[str, int] = {}
    for c in crossings:
        by_class[c["class"]] = by_class.get(c["class"], 0) + 1
    return {
        "video": str(video),
        "analytic": "line_count",
        "line": line,
        "seconds": seconds,
        "from": start,
        "model": cfg.model,
        "fps": cfg.fps,
        "frames_analysed": analysed,
        "ms_per_frame_detect_track": round(busy / max(analysed, 1) * 1000, 1),
        "count": len(crossings),
        "count_in_readings": int(total),  # what the readings published: must equal count
        "count_by_class": dict(sorted(by_class.items())),
        "tracks": len({c["track_id"] for c in crossings}),
        "simultaneous_duplicates": None,
        "crossings": crossings,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--line", type=float, required=True, help="fraction of the frame height")
    ap.add_argument("--seconds", type=float, required=True, help="count in the first S seconds")
    ap.add_argument("--json", type=Path, required=True, help="write the result here")
    ap.add_argument("--from", dest="start", type=float, default=0.0, help="start at T seconds")
    ap.add_argument(
        "--truth",
        type=Path,
        help='hand-labelled crossings: {"line": Y, "crossings": [{"t": s, "what": ...}]}',
    )
    ap.add_argument(
        "--analytic",
        choices=("traffic", "line_count"),
        default="traffic",
        help="count with the traffic analytic's tracker (default) or the line_count plugin",
    )
    args = ap.parse_args()
    if not 0 < args.line < 1:
        ap.error("--line is a fraction of the height, between 0 and 1")
    with tempfile.TemporaryDirectory() as d:
        if args.analytic == "line_count":
            result = evaluate_line_count(args.video, args.line, args.seconds, Path(d), args.start)
        else:
            result = evaluate(args.video, args.line, args.seconds, Path(d), args.start)
    if args.truth:
        spec = json.loads(args.truth.read_text())
        if abs(float(spec["line"]) - args.line) > 1e-6:
            ap.error(f"{args.truth} labels the line at {spec['line']}, not {args.line}")
        truth = [g for g in spec["crossings"] if args.start <= g["t"] < args.seconds]
        result["truth"] = match_truth(result["crossings"], truth)
    print(
        f"{result['count']} vehicles crossed y={args.line} in {args.seconds:g} s "
        f"({result['count_by_class']}); {result['tracks']} vehicle tracks; "
        f"{result['simultaneous_duplicates']} simultaneous duplicate pairs; "
        f"{result['frames_analysed']} frames at {result['fps']:g} fps"
    )
    if "truth" in result:
        tr = result["truth"]
        print(
            f"truth {tr['truth']}: matched {tr['matched']}, missed {len(tr['missed'])}, "
            f"extra {len(tr['extra'])}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
