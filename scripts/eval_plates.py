#!/usr/bin/env python
"""Plate reading on real photos: exact-match precision and recall of the legible plates.

    # the whole pipeline on photos: vehicles (yolox_nano), plates (plate_nano), reading
    python scripts/eval_plates.py --images ../shared/assets/datasets/vn_plates_ccby4/images \
        --truth scripts/data/vn_plates_truth.json --json docs/benchmarks/eval_plates_e2e.json
    # reading alone, on the plate boxes given in the truth file
    python scripts/eval_plates.py --given-boxes --images ... --truth ... --json ...
    # the plate detector alone: AP@0.5 against every labelled plate box of those images
    python scripts/eval_plates.py --ap --images ... --truth ... --json ...
    # the truth file, from the dataset's plate_texts.csv and its YOLO labels
    D=../shared/assets/datasets/vn_plates_ccby4
    python scripts/eval_plates.py --make-truth $D/plate_texts.csv --images $D/images \
        --truth scripts/data/vn_plates_truth.json

Why: a plate in a violation is a fine sent to a person, so the figure that matters is
precision (a produced plate that is not in the photo is a fine to the wrong person), then
recall of the plates a person can read. Scored per image, every plate in it:

- truth ``{"image.jpg": [{"plate": "30A-123.45", "clear": true}, ...]}`` in the canonical
  form the reader writes (``edge.analytics.plates``); ``clear: false`` entries are plates a
  person could not read fully (``?`` for the unread characters, or ``plate: null``); the
  converter adds ``box`` (x1, y1, x2, y2 pixels) and ``box_index`` (line of the label file);
- a produced plate equal to an unmatched clear plate of the image is **correct**; equal to
  one already matched is a **duplicate** (two boxes on one plate; not counted); matching an
  unclear plate's readable characters is **unclear** (not scored); anything else is
  **wrong**; a clear plate not read is **null** (with the reason of the read whose box
  overlaps it, else "no plate box found");
- ``precision = correct / (correct + wrong)``, ``recall = correct / legible``.

Images only in the folder and not in the truth are not read (the truth file defines the
test set). Every figure in the README and ``docs/benchmarks/eval_plates_*.json`` names the
data set it was measured on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.analytics.plates import (  # noqa: E402
    BoxReader,
    Ocr,
    PlateRead,
    canonical,
    plate_owner,
)
from edge.inference.metrics import iou_matrix, read_yolo_labels  # noqa: E402
from edge.inference.registry import sha256_file  # noqa: E402

VEHICLES = ("car", "motorcycle", "bus", "truck")
SPECIAL_SPACE = re.compile(r"^([A-Z]{2}) (\d{2}-\d{2})$")  # "BH 52-40" as printed -> BH-52-40


# --------------------------------------------------------------------------- truth


def canonical_truth(text: str) -> str:
    """The dataset's text in the reader's canonical form (military plates are written
    with dashes: the CSV has one ``BH 52-40`` as printed, which the reader writes
    ``BH-52-40``)."""
    m = SPECIAL_SPACE.match(text)
    return f"{m.group(1)}-{m.group(2)}" if m else text


def make_truth(csv_path: Path, images: Path) -> dict[str, list[dict[str, Any]]]:
    """plate_texts.csv (file, box_index, text, clear, kind) and the YOLO labels beside the
    images into the truth format; boxes of those images with no row become unclear plates
    (``plate: null``): a read there is not scored as correct, and wrong if it is not null."""
    labels = images.parent / "labels"
    rows: dict[str, dict[int, dict[str, str]]] = {}
    with csv_path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["file"], {})[int(row["box_index"])] = row
    truth: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(rows):
        img = cv2.imread(str(images / name))
        if img is None:
            raise SystemExit(f"{images / name}: not a readable image")
        h, w = img.shape[:2]
        xyxy, _ = read_yolo_labels(str(labels / (Path(name).stem + ".txt")), w, h)
        plates = []
        for i, box in enumerate(xyxy):
            row = rows[name].get(i)
            entry: dict[str, Any] = {
                "plate": canonical_truth(row["text"]) if row else None,
                "clear": bool(row and row["clear"] == "true"),
                "kind": row["kind"] if row else None,
                "box_index": i,
                "box": [round(float(v), 1) for v in box],
            }
            if entry["clear"] and not canonical(entry["plate"]):
                print(f"note: {name} box {i}: {entry['plate']!r} is not in canonical form")
            plates.append(entry)
        missing = set(rows[name]) - set(range(len(xyxy)))
        if missing:
            raise SystemExit(f"{name}: box_index {sorted(missing)} beyond its label file")
        truth[name] = plates
    return truth


# --------------------------------------------------------------------------- scoring


def _matches_unclear(plate: str, pattern: str | None) -> bool:
    if not pattern or len(plate) != len(pattern):
        return False
    return all(p == "?" or p == c for c, p in zip(plate, pattern, strict=True))


def score_image(truth: list[dict[str, Any]], reads: list[dict[str, Any]]) -> dict[str, Any]:
    """Match one image's produced plates against its truth (see the module docstring)."""
    clear = [t for t in truth if t["clear"]]
    matched = [False] * len(clear)
    out: dict[str, Any] = {"correct": [], "wrong": [], "duplicate": [], "unclear": [], "null": []}
    for r in reads:
        p = r["plate"]
        if p is None:
            continue
        hit = next((i for i, t in enumerate(clear) if t["plate"] == p and not matched[i]), None)
        if hit is not None:
            matched[hit] = True
            out["correct"].append(p)
        elif any(t["plate"] == p for t in clear):
            out["duplicate"].append(p)
        elif any(_matches_unclear(p, t["plate"]) for t in truth if not t["clear"]):
            out["unclear"].append(p)
        else:
            out["wrong"].append(p)
    for t, m in zip(clear, matched, strict=True):
        if m:
            continue
        reason = "no plate box found"
        if t.get("box") is not None:
            boxes = [r["box"] for r in reads if r.get("box") is not None]
            if boxes:
                ious = iou_matrix(np.array([t["box"]]), np.array(boxes))[0]
                j = int(ious.argmax())
                if ious[j] >= 0.3:
                    near = [r for r in reads if r.get("box") is not None][j]
                    reason = near["reason"] if near["plate"] is None else f"read {near['plate']}"
        out["null"].append({"plate": t["plate"], "reason": reason})
    return out


def summarise(per_image: dict[str, dict[str, Any]], truth: dict[str, list[dict[str, Any]]]) -> dict:
    legible = sum(1 for ts in truth.values() for t in ts if t["clear"])
    n = {
        k: sum(len(v[k]) for v in per_image.values())
        for k in ("correct", "wrong", "duplicate", "unclear")
    }
    produced = n["correct"] + n["wrong"]
    reasons: dict[str, int] = {}
    for v in per_image.values():
        for x in v["null"]:
            key = re.sub(r"[0-9]+(\.[0-9]+)?", "N", x["reason"])
            key = re.sub(r"'.'|[A-Z0-9]{2,}[A-Z0-9.\-]*", "X", key)
            reasons[key] = reasons.get(key, 0) + 1
    return {
        "legible": legible,
        "correct": n["correct"],
        "wrong": n["wrong"],
        "null": legible - n["correct"],
        "duplicate": n["duplicate"],
        "unclear_read": n["unclear"],
        "precision": round(n["correct"] / produced, 4) if produced else None,
        "recall": round(n["correct"] / legible, 4) if legible else None,
        "null_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
    }


# --------------------------------------------------------------------------- pipelines


def _read_dict(read: PlateRead, box: Any, **extra: Any) -> dict[str, Any]:
    return {
        "plate": read.plate,
        "reason": read.reason,
        "confidence": round(read.confidence, 3),
        "raw": read.raw,
        "box": None if box is None else [round(float(v), 1) for v in box],
        **extra,
    }


def read_given_boxes(
    reader: BoxReader, image: np.ndarray, truth: list[dict[str, Any]]
) -> list[dict]:
    """Reading alone: every plate box of the truth read once."""
    return [_read_dict(reader.read(image, t["box"]), t["box"]) for t in truth if t.get("box")]


def read_photo(
    reader: BoxReader,
    plates_det: Any,
    vehicles_det: Any,
    image: np.ndarray,
    plate_score: float,
    vehicle_score: float,
) -> list[dict[str, Any]]:
    """The whole pipeline on one photo: vehicles and plates detected on the whole image,
    every plate read on its box and given to the one vehicle it sits on (or none)."""
    vehicles: list[np.ndarray] = []
    labels: list[str] = []
    if vehicles_det is not None:
        d = vehicles_det.detect(image, vehicle_score)
        for box, cid in zip(d.xyxy, d.class_id.tolist(), strict=True):
            name = vehicles_det.class_names[cid]
            if name in VEHICLES:
                vehicles.append(box)
                labels.append(name)
    p = plates_det.detect(image, plate_score)
    out = []
    for box, score in zip(p.xyxy, p.confidence.tolist(), strict=True):
        owner, why = plate_owner(box, vehicles)
        out.append(
            _read_dict(
                reader.read(image, box),
                box,
                score=round(float(score), 3),
                vehicle=None if owner is None else labels[owner],
                vehicle_reason=why,
            )
        )
    return out


def load_detector(model_id: str, model_dir: Path, threads: int) -> Any:
    from edge.inference.detector import Detector
    from edge.inference.registry import Registry

    registry = Registry(model_dir)
    return Detector(registry.spec(model_id), registry.resolve(model_id), threads=threads)


def evaluate(
    images: Path,
    truth: dict[str, list[dict[str, Any]]],
    given_boxes: bool,
    model_dir: Path,
    threads: int = 2,
    min_char: float | None = None,
    plate_score: float | None = None,
    vehicle_score: float = 0.3,
    vehicles: bool = True,
) -> dict[str, Any]:
    box_reader = BoxReader(Ocr(threads=threads))
    if min_char is not None:
        box_reader.min_char = min_char
    plates_det = vehicles_det = None
    if not given_boxes:
        plates_det = load_detector("plate_nano", model_dir, threads)
        plate_score = plates_det.spec.threshold if plate_score is None else plate_score
        if vehicles:
            vehicles_det = load_detector("yolox_nano", model_dir, threads)
    per_image: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for name, ts in truth.items():
        img = cv2.imread(str(images / name))
        if img is None:
            raise SystemExit(f"{images / name}: not a readable image")
        if given_boxes:
            reads = read_given_boxes(box_reader, img, ts)
        else:
            reads = read_photo(
                box_reader, plates_det, vehicles_det, img, plate_score, vehicle_score
            )  # type: ignore[arg-type]
        per_image[name] = {**score_image(ts, reads), "reads": reads}
    seconds = time.perf_counter() - t0
    summary = summarise(per_image, truth)
    summary.update(
        mode="given boxes (reading alone)" if given_boxes else "photos (vehicles, plates, reading)",
        images=len(truth),
        min_char=box_reader.min_char,
        plate_score=plate_score,
        seconds=round(seconds, 1),
        ms_per_image=round(1000 * seconds / max(len(truth), 1), 1),
    )
    if not given_boxes:
        with_vehicle = sum(
            1 for v in per_image.values() for r in v["reads"] if r["plate"] and r["vehicle"]
        )
        summary["plates_given_a_vehicle"] = with_vehicle
    summary["per_image"] = per_image
    return summary


def detector_ap(
    images: Path, truth: dict[str, list[dict[str, Any]]], model_dir: Path, threads: int = 2
) -> dict[str, Any]:
    """The plate detector's AP on the truth's images against every labelled plate box
    (the label files beside ``images``), COCO-style, and P/R at its operating threshold."""
    from edge.inference.metrics import ImageResult
    from edge.inference.metrics import evaluate as detection_ap

    det = load_detector("plate_nano", model_dir, threads)
    labels = images.parent / "labels"
    results = []
    t0 = time.perf_counter()
    for name in truth:
        img = cv2.imread(str(images / name))
        if img is None:
            raise SystemExit(f"{images / name}: not a readable image")
        gt, gcls = read_yolo_labels(
            str(labels / (Path(name).stem + ".txt")), img.shape[1], img.shape[0]
        )
        d = det.detect(img, 0.001)
        results.append(ImageResult(gt, gcls * 0, d.xyxy, d.confidence, d.class_id))
    seconds = time.perf_counter() - t0
    m50, m5095, per = detection_ap(results, ["plate"], det.spec.threshold)
    r = per["plate"]
    return {
        "mode": "plate detector AP",
        "images": len(truth),
        "boxes": r.n_gt,
        "ap50": round(m50, 4),
        "ap50_95": round(m5095, 4),
        "threshold": det.spec.threshold,
        "precision": round(r.precision, 4),
        "recall": round(r.recall, 4),
        "sha256": sha256_file(model_path("plate_nano", model_dir)),
        "seconds": round(seconds, 1),
    }


def model_path(model_id: str, model_dir: Path) -> Path:
    from edge.inference.registry import Registry

    return Registry(model_dir).resolve(model_id)


def default_model_dir() -> Path:
    """Where the non-shipped models are: EDGEWATCH_MODEL_DIR, else the shared assets."""
    env = os.environ.get("EDGEWATCH_MODEL_DIR")
    if env:
        return Path(env)
    assets = os.environ.get("EDGEWATCH_ASSETS")
    return Path(assets) / "models" if assets else ROOT.parent / "shared/assets/models"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="folder of the photos")
    ap.add_argument(
        "--truth", type=Path, required=True, help="truth JSON (written by --make-truth)"
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--given-boxes", action="store_true", help="read the truth's plate boxes only")
    ap.add_argument("--ap", action="store_true", help="the plate detector's AP on these images")
    ap.add_argument(
        "--make-truth", type=Path, metavar="CSV", help="convert plate_texts.csv to --truth"
    )
    ap.add_argument("--model-dir", type=Path, default=None, help="models not shipped (yolox_nano)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-char", type=float, default=None, help="per-character confidence floor")
    ap.add_argument("--plate-score", type=float, default=None, help="plate detector threshold")
    ap.add_argument("--no-vehicles", action="store_true", help="skip the vehicle detector")
    ap.add_argument("--only", help="regex on image names: evaluate those only (debugging)")
    args = ap.parse_args(argv)

    if args.make_truth:
        truth = make_truth(args.make_truth, args.images)
        args.truth.parent.mkdir(parents=True, exist_ok=True)
        args.truth.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")
        n = sum(len(v) for v in truth.values())
        clear = sum(1 for v in truth.values() for t in v if t["clear"])
        print(f"wrote {args.truth}: {len(truth)} images, {n} plates, {clear} clear")
        return 0
    truth = json.loads(args.truth.read_text(encoding="utf-8"))
    if args.only:
        truth = {k: v for k, v in truth.items() if re.search(args.only, k)}
    if args.ap:
        result = detector_ap(
            args.images, truth, args.model_dir or default_model_dir(), args.threads
        )
        result["data"] = {"images": str(args.images), "truth": str(args.truth)}
        print(json.dumps(result, indent=1))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        return 0
    result = evaluate(
        args.images,
        truth,
        args.given_boxes,
        args.model_dir or default_model_dir(),
        threads=args.threads,
        min_char=args.min_char,
        plate_score=args.plate_score,
        vehicles=not args.no_vehicles,
    )
    result["data"] = {"images": str(args.images), "truth": str(args.truth)}
    brief = {k: v for k, v in result.items() if k != "per_image"}
    print(json.dumps(brief, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
