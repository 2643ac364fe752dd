"""Signal-state accuracy on real photos, for the ``model`` and ``lamps`` sources.

    python scripts/eval_signal.py --images DIR --truth FILE --json OUT [--source model|lamps]
                                  [--mirror] [--min-score 0.15]
    python scripts/eval_signal.py --from-yolo SPLIT_DIR --truth FILE [--margin 0.5]

FILE is ``{"image.jpg": {"head-name": {"region": [x1, y1, x2, y2], "state": "red"}}}``,
the region in fractions of the image; a head may also give ``head`` (the head's own box,
the region without its margin) and ``label`` (the data set's class, for the per-class
table; default the state). States are ``red``, ``amber`` (``yellow`` is read as amber),
``green``. OUT has ``accuracy`` (right answers / heads), ``n``, ``unknown``,
``precision`` (right answers / answers other than unknown: a wrong red is the costly
error, an unknown only a lost violation), ``per_class`` and ``per_head`` (what was read,
its score and, for unknown, why).

Sources, as the edge runs them (``edge/analytics/signal.py``):

- ``model``: OpenLenda-nano around the region (multi-label decoding, a window at the
  camera's scale, never upscaled); ``--mirror`` flips the view first, for horizontal
  heads with red on the left (the model learned Japan's, red on the right).
- ``lamps``: the lamps are laid out along the long axis of the head box (``head``, else
  the region): 1 lamp below 1.8:1, 3 up to 3.5:1, then 4 and 5, evenly spaced, radius
  0.4 of the box's width, **no colour per lamp** (hue alone decides: the Korean labels
  box only the lit lamp, and the Indonesian set is flipped upside down at random, so
  neither says which lamp is which). A real camera configures each lamp's colour from a
  snapshot, which adds a check this evaluation cannot make.

``--from-yolo SPLIT_DIR`` writes FILE from a YOLO split (``SPLIT_DIR/images``,
``SPLIT_DIR/labels``, class names from ``data.yaml`` beside it): one head per label,
region = its box (a polygon's min/max) grown by ``--margin`` of its size on every side,
``head`` = the box itself. Class ``left`` (a lit green left arrow, Korean set) is state
``green`` with label ``left``, and ``also_lit`` lists the other labels on the same head
(same row, within five box widths): a Korean head shows its arrow beside a red or a green.

An arrow is not the head's red/amber/green, so ``accuracy``, ``precision``, ``wrong`` and
``unknown`` are over the other labels; ``left`` has its own row in ``per_class`` (read
against green) and ``left_arrow`` says what was read beside which other lamp.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.analytics.signal import (  # noqa: E402
    COLOUR_CLASSES,
    SignalReading,
    lamps_along,
    read_lamps,
    read_model,
)
from edge.inference.detector import Detector  # noqa: E402
from edge.inference.registry import Registry  # noqa: E402

STATE_OF = {"red": "red", "yellow": "amber", "amber": "amber", "green": "green", "left": "green"}
MODEL = "openlenda_nano"


def assets() -> Path:
    return Path(os.environ.get("EDGEWATCH_ASSETS", ROOT.parent / "shared" / "assets"))


# -- truth from a YOLO split ----------------------------------------------------------------


def yolo_boxes(label_file: Path) -> list[tuple[int, tuple[float, float, float, float]]]:
    """(class, box) per line: ``cx cy w h``, or a polygon ``x y x y ...`` (its min/max)."""
    out = []
    for line in label_file.read_text().splitlines():
        v = line.split()
        if not v:
            continue
        p = np.array([float(x) for x in v[1:]])
        if len(p) == 4:
            cx, cy, w, h = p
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        else:
            box = (p[0::2].min(), p[1::2].min(), p[0::2].max(), p[1::2].max())
        out.append((int(v[0]), tuple(float(x) for x in box)))
    return out  # type: ignore[return-value]


def truth_from_yolo(split: Path, margin: float = 0.5) -> dict[str, dict[str, dict[str, Any]]]:
    names = yaml.safe_load((split.parent / "data.yaml").read_text())["names"]
    truth: dict[str, dict[str, dict[str, Any]]] = {}
    for img in sorted((split / "images").iterdir()):
        label = split / "labels" / (img.stem + ".txt")
        heads: dict[str, dict[str, Any]] = {}
        for k, (c, (x1, y1, x2, y2)) in enumerate(yolo_boxes(label) if label.exists() else []):
            name = names[c]
            mw, mh = margin * (x2 - x1), margin * (y2 - y1)
            region = [max(0.0, x1 - mw), max(0.0, y1 - mh), min(1.0, x2 + mw), min(1.0, y2 + mh)]
            heads[f"head-{k}"] = {
                "region": [round(x, 5) for x in region],
                "head": [round(x, 5) for x in (x1, y1, x2, y2)],
                "state": STATE_OF[name],
                "label": name,
            }
        for spec in heads.values():
            if spec["label"] != "left":
                continue
            x1, y1, x2, y2 = spec["head"]
            also = [
                o["label"]
                for o in heads.values()
                if o is not spec
                and abs((o["head"][1] + o["head"][3] - y1 - y2) / 2) < y2 - y1
                and abs((o["head"][0] + o["head"][2] - x1 - x2) / 2) < 5 * (x2 - x1)
            ]
            spec["also_lit"] = sorted(also)
        if heads:
            truth[img.name] = heads
    return truth


# -- evaluation ----------------------------------------------------------------------------


def read_legacy(
    detector: Detector, image: np.ndarray, region: tuple[float, ...], min_score: float
) -> SignalReading:
    """How the edge read the model before (kept to measure the change): the region cut
    out and letterboxed (so upscaled) to the model's input, one class per box, the best
    red / yellow / green box."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = region
    crop = image[int(y1 * h) : max(int(y2 * h), int(y1 * h) + 1),
                 int(x1 * w) : max(int(x2 * w), int(x1 * w) + 1)]  # fmt: skip
    d = detector.detect(crop, min_score)
    best: tuple[str, float] | None = None
    for cid, score in zip(d.class_id.tolist(), d.confidence.tolist(), strict=True):
        state = COLOUR_CLASSES.get(detector.class_names[cid])
        if state and (best is None or score > best[1]):
            best = (state, score)
    if best is None:
        return SignalReading("unknown", "model", 0.0, "no lit signal found in the region")
    return SignalReading(best[0], "model", round(best[1], 3))


def openlenda(work: Path) -> Detector:
    reg = Registry(work / "models")
    reg.pull(MODEL, mirror=assets() / "models")
    return Detector(reg.spec(MODEL), reg.resolve(MODEL), threads=2)


def evaluate(
    images: Path,
    truth: dict[str, dict[str, dict[str, Any]]],
    source: str,
    detector: Any = None,
    mirror: bool = False,
    min_score: float = 0.15,
    legacy: bool = False,
) -> dict[str, Any]:
    per_head: dict[str, dict[str, Any]] = {}
    per_class: dict[str, Counter] = defaultdict(Counter)
    confusion: Counter = Counter()
    reasons: Counter = Counter()
    arrows: Counter = Counter()
    for name, heads in sorted(truth.items()):
        img = cv2.imread(str(images / name))
        if img is None:
            raise SystemExit(f"{images / name}: cannot read the image")
        h, w = img.shape[:2]
        out = {}
        for head, spec in heads.items():
            want = STATE_OF[spec["state"]]
            region = tuple(spec["region"])
            if source == "model" and legacy:
                r = read_legacy(detector, img, region, min_score)
            elif source == "model":
                r = read_model(detector, img, region, min_score, mirror=mirror)  # type: ignore[arg-type]
            else:
                r = read_lamps(img, lamps_along(tuple(spec.get("head", region)), (w, h)))
            label = spec.get("label", want)
            c = per_class[label]
            c["n"] += 1
            c["correct" if r.state == want else "unknown" if r.state == "unknown" else "wrong"] += 1
            confusion[f"{label}->{r.state}"] += 1
            if label == "left":
                arrows[f"left+{'+'.join(spec.get('also_lit', [])) or 'alone'}->{r.state}"] += 1
                out[head] = {"truth": want, "read": r.state, "score": r.score, "reason": r.reason}
                continue
            if r.reason:
                reasons[r.reason.split(":")[0] if source == "lamps" else r.reason[:40]] += 1
            out[head] = {"truth": want, "read": r.state, "score": r.score, "reason": r.reason}
        per_head[name] = out
    states = [c for label, c in per_class.items() if label != "left"]
    n = sum(c["n"] for c in states)
    correct = sum(c["correct"] for c in states)
    unknown = sum(c["unknown"] for c in states)
    answered = n - unknown
    classes = {}
    for label, c in sorted(per_class.items()):
        ans = c["n"] - c["unknown"]
        classes[label] = {
            "n": c["n"],
            "correct": c["correct"],
            "wrong": c["wrong"],
            "unknown": c["unknown"],
            "accuracy": round(c["correct"] / c["n"], 3),
            "precision": round(c["correct"] / ans, 3) if ans else None,
        }
    return {
        "source": source,
        "mirror": mirror if source == "model" else None,
        "decoding": ("legacy" if legacy else "multi_label") if source == "model" else None,
        "min_score": min_score if source == "model" else None,
        "n": n,
        "accuracy": round(correct / n, 3) if n else None,
        "correct": correct,
        "wrong": answered - correct,
        "unknown": unknown,
        "precision": round(correct / answered, 3) if answered else None,
        "per_class": classes,
        "left_arrow": dict(sorted(arrows.items())),
        "confusion": dict(sorted(confusion.items())),
        "unknown_reasons": dict(reasons.most_common()),
        "per_head": per_head,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, help="folder of the images named in the truth file")
    ap.add_argument("--truth", type=Path, required=True, help="truth JSON (read, or written)")
    ap.add_argument("--json", type=Path, help="write the result here")
    ap.add_argument("--source", choices=["model", "lamps"], default="model")
    ap.add_argument("--mirror", action="store_true", help="model: flip the view (red-left heads)")
    ap.add_argument("--min-score", type=float, default=0.15, help="model: class threshold")
    ap.add_argument(
        "--legacy", action="store_true", help="model: the old reading (upscaled crop, one class)"
    )
    ap.add_argument("--from-yolo", type=Path, help="write --truth from this YOLO split, then stop")
    ap.add_argument("--margin", type=float, default=0.5, help="--from-yolo: region margin")
    args = ap.parse_args()
    if args.from_yolo:
        truth = truth_from_yolo(args.from_yolo, args.margin)
        args.truth.parent.mkdir(parents=True, exist_ok=True)
        args.truth.write_text(json.dumps(truth, indent=1) + "\n")
        n = sum(len(v) for v in truth.values())
        print(f"{args.truth}: {n} heads in {len(truth)} images")
        return 0
    if not args.images or not args.json:
        ap.error("--images and --json are needed (or --from-yolo)")
    truth = json.loads(args.truth.read_text())
    with tempfile.TemporaryDirectory() as d:
        det = openlenda(Path(d)) if args.source == "model" else None
        result = evaluate(
            args.images, truth, args.source, det, args.mirror, args.min_score, args.legacy
        )
    result = {"images": str(args.images), "truth": str(args.truth), **result}
    print(
        f"{args.source}{' (legacy)' if args.legacy else ''}"
        f"{' (mirrored)' if args.mirror else ''}: accuracy {result['accuracy']} "
        f"on {result['n']} heads; {result['unknown']} unknown; precision of the answers "
        f"{result['precision']} ({result['wrong']} wrong)"
    )
    for label, c in result["per_class"].items():
        print(
            f"  {label:<7} n {c['n']:>3}  accuracy {c['accuracy']:.3f}  wrong {c['wrong']:>3}  "
            f"unknown {c['unknown']:>3}"
        )
    if result["left_arrow"]:
        print(f"  left arrows: {result['left_arrow']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
