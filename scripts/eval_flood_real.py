#!/usr/bin/env python
"""Evaluate the flood analytic on a real time-lapse of a gauge, against levels read by eye.

    python scripts/eval_flood_real.py --frames DIR --config FILE --truth CSV --json OUT

Why a separate script: the rendered scenes of ``scripts/eval_flood.py`` know their truth
exactly but are drawn by the same people who wrote the analytic; a real camera (night IR,
reflections of the gauge in the water, sun coming out, a dirt line on the target) is what
decides whether a reading can be acted on. This script runs the edge's own ``FloodRule``
(the flood analytic of an edge config) over every frame of ``DIR`` in time order, as the
edge would see them, and scores what it published.

- Time of a frame: from a GRIME2 file name (``...-YY-MM-DD-HH-MM.jpg``), else its mtime.
- ``--config``: an edge config (YAML or JSON) with exactly one ``flood`` analytic, or that
  analytic alone. A relative ``reference_image`` is taken relative to the config file.
- ``--truth``: a CSV with a frame (file name) column (``frame``, ``file`` or ``name``) and a
  level column in cm (``level_cm`` or ``level``); other columns are ignored. Frames with no
  truth row are run (they feed the analytic's history) but not scored.

Written to ``--json`` (and printed as a summary):

- ``n``, ``unknown`` (readings published as ``unknown``), ``unknown_rate``;
- ``mae_cm``, ``p95_cm``, ``max_err_cm``: published level of every known reading against
  the truth; ``raw_mae_cm``: the same for the unsmoothed reading;
- ``errors_over_5cm``, ``errors_over_10cm``: known readings that far from the truth;
- ``false_clear``: a raised level cleared while the truth was still at or above it;
- ``late_raise_samples``: the worst delay, in samples, between the truth reaching a level
  and the analytic raising it (a level the truth reached and the analytic never raised
  counts as the samples left to the end plus one), ``missed_raise`` counts those;
- ``ms_per_frame``, and ``per_frame`` (time, truth, state, alarm state, level, raw level,
  confidence, reason, error).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.analytics.flood import UNKNOWN, FloodRule  # noqa: E402
from edge.config import EdgeConfig, FloodAnalytic  # noqa: E402

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
GRIME2_TIME = re.compile(r"(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.[A-Za-z]+$")


def frame_time(path: Path) -> datetime:
    """GRIME2 names end in -YY-MM-DD-HH-MM; anything else: the file's mtime (UTC)."""
    m = GRIME2_TIME.search(path.name)
    if m:
        yy, mo, dd, hh, mi = (int(g) for g in m.groups())
        return datetime(2000 + yy, mo, dd, hh, mi, tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def load_analytic(path: Path) -> FloodAnalytic:
    """The one flood analytic of an edge config (or a bare flood analytic mapping)."""
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a mapping")
    if doc.get("type") == "flood":
        found = [FloodAnalytic.model_validate(doc)]
    else:
        edge = EdgeConfig.model_validate(doc)
        found = [a for c in edge.cameras for a in c.analytics if isinstance(a, FloodAnalytic)]
    if len(found) != 1:
        raise ValueError(f"{path}: {len(found)} flood analytics, exactly one is needed")
    cfg = found[0]
    if cfg.reference_image is not None and not cfg.reference_image.is_absolute():
        cfg = cfg.model_copy(update={"reference_image": path.parent / cfg.reference_image})
    return cfg


def load_truth(path: Path) -> dict[str, float]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    keys = {k.strip().lower(): k for k in rows[0]}
    name = next((keys[k] for k in ("frame", "file", "name", "filename") if k in keys), None)
    level = next((keys[k] for k in ("level_cm", "level") if k in keys), None)
    if name is None or level is None:
        raise ValueError(f"{path}: needs a frame column and a level_cm column, has {list(keys)}")
    return {Path(r[name].strip()).name: float(r[level]) for r in rows if r[level].strip()}


def list_frames(folder: Path) -> list[tuple[datetime, Path]]:
    frames = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT]
    return sorted((frame_time(p), p) for p in frames)


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(float(v), nd)


def evaluate(frames: Path, config: Path, truth_csv: Path) -> dict[str, Any]:
    cfg = load_analytic(config)
    assert cfg.levels is not None
    truth = load_truth(truth_csv)
    rule = FloodRule(cfg)
    per_frame: list[dict[str, Any]] = []
    raised: list[list[int]] = []  # per sample: indices of the levels raised after it
    clears: list[tuple[int, int]] = []  # (sample, level index) of every "cleared"
    spent = 0.0
    names = [lv.name for lv in cfg.levels]
    for i, (t, path) in enumerate(list_frames(frames)):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        out = rule.missing(t) if img is None else rule.update(img, t)
        spent += time.perf_counter() - t0
        r = out.reading
        for tr in out.transitions:
            if tr.kind == "flood_level" and tr.type == "end":
                clears.append((i, names.index(tr.label)))
        idx = 0 if r.level_state == "normal" else names.index(r.level_state) + 1
        raised.append(list(range(idx)))
        true = truth.get(path.name)
        known = r.state != UNKNOWN and r.level_cm is not None
        per_frame.append(
            {
                "frame": path.name,
                "time": t.isoformat(),
                "truth_cm": true,
                "state": r.state,
                "level_state": r.level_state,
                "level_cm": _r(r.level_cm) if known else None,
                "raw_cm": _r(r.raw_cm),
                "confidence": _r(r.confidence, 3),
                "reason": r.reason,
                "err_cm": _r(r.level_cm - true) if known and true is not None else None,  # type: ignore[operator]
            }
        )
    n = len(per_frame)
    errs = np.array([abs(p["err_cm"]) for p in per_frame if p["err_cm"] is not None])
    raw = np.array(
        [
            abs(p["raw_cm"] - p["truth_cm"])
            for p in per_frame
            if p["state"] != UNKNOWN and p["raw_cm"] is not None and p["truth_cm"] is not None
        ]
    )
    tv = [p["truth_cm"] for p in per_frame]
    false_clear = sum(1 for i, k in clears if tv[i] is not None and tv[i] >= cfg.levels[k].level_cm)
    delays: list[int] = []
    missed = 0
    for k, lv in enumerate(cfg.levels):
        prev_above = False
        for i, v in enumerate(tv):
            if v is None:
                continue
            above = v >= lv.level_cm
            if above and not prev_above:  # the truth reaches the level at sample i
                hit = next((j for j in range(i, n) if k in raised[j]), None)
                if hit is None:
                    missed += 1
                    delays.append(n - i + 1)
                else:
                    delays.append(hit - i)
            prev_above = above
    unknown = sum(p["state"] == UNKNOWN for p in per_frame)
    return {
        "frames": str(frames),
        "config": str(config),
        "truth": str(truth_csv),
        "n": n,
        "scored": int(sum(p["truth_cm"] is not None for p in per_frame)),
        "unknown": int(unknown),
        "unknown_rate": round(unknown / n, 4) if n else None,
        "unknown_reasons": _count(p["reason"] for p in per_frame if p["state"] == UNKNOWN),
        "mae_cm": _r(errs.mean()) if errs.size else None,
        "p95_cm": _r(np.percentile(errs, 95)) if errs.size else None,
        "max_err_cm": _r(errs.max()) if errs.size else None,
        "raw_mae_cm": _r(raw.mean()) if raw.size else None,
        "errors_over_5cm": int((errs > 5).sum()),
        "errors_over_10cm": int((errs > 10).sum()),
        "false_clear": int(false_clear),
        "late_raise_samples": int(max(delays)) if delays else 0,
        "truth_crossings": len(delays),
        "missed_raise": missed,
        "levels": {lv.name: lv.level_cm for lv in cfg.levels},
        "ms_per_frame": round(1000 * spent / n, 2) if n else None,
        "per_frame": per_frame,
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in items:
        out[str(it)] = out.get(str(it), 0) + 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=Path, required=True, help="folder of frames")
    ap.add_argument("--config", type=Path, required=True, help="edge config, one flood analytic")
    ap.add_argument("--truth", type=Path, required=True, help="CSV: frame, level_cm")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    res = evaluate(args.frames, args.config, args.truth)
    for p in res["per_frame"]:
        print(
            f"{p['time'][:16]} truth {p['truth_cm']!s:>6} {p['state']:>8} "
            f"({p['level_state']:>6}) level {p['level_cm']!s:>7} raw {p['raw_cm']!s:>7} "
            f"conf {p['confidence']!s:>6} err {p['err_cm']!s:>6} {p['reason'] or ''}"
        )
    summary = {k: v for k, v in res.items() if k != "per_frame"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
