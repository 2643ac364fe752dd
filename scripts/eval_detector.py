#!/usr/bin/env python
"""Accuracy of a detector on a YOLO-format split: mAP@0.5, mAP@0.5:0.95, per-class figures.

    python scripts/eval_detector.py fire_smoke_nano ../shared/assets/datasets/fire_smoke_ccby4/test
    python scripts/eval_detector.py --model models/fire_smoke_nano.onnx SPLIT_DIR --json out.json

MODEL is a manifest id or an ONNX file; a file is matched to its manifest entry by its
sha256 (then by file name), or described with --format and --classes. Detections are kept
down to a score of 0.001 for AP (as COCO does); precision and recall are given at the
operating threshold (the manifest's ``threshold``, or --threshold).

Classes are matched by name when the dataset's ``data.yaml`` (beside or above the split, or
--data-yaml) lists them; boxes of a dataset class the model does not have are left out.
Without a data.yaml, the labels' class numbers are taken to be the model's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.inference.detector import Detector  # noqa: E402
from edge.inference.metrics import evaluate, run_split, split_class_map  # noqa: E402
from edge.inference.registry import ModelError, ModelSpec, Registry, sha256_file  # noqa: E402


def resolve_model(args: argparse.Namespace, registry: Registry) -> tuple[ModelSpec, Path]:
    ref = args.model_opt or args.model
    if ref is None:
        sys.exit("give a model: a manifest id or an ONNX file")
    path = Path(ref)
    if ref in registry.specs and not path.is_file():
        return registry.spec(ref), registry.resolve(ref)
    if not path.is_file():
        known = ", ".join(sorted(registry.specs))
        sys.exit(f"model {ref!r}: neither a file nor a manifest id (manifest has: {known})")
    digest = sha256_file(path)
    spec = next((s for s in registry.specs.values() if s.sha256 == digest), None)
    spec = spec or next((s for s in registry.specs.values() if s.file == path.name), None)
    if args.format or args.classes:
        if not (args.format and args.classes):
            sys.exit("--format and --classes go together")
        base = spec or ModelSpec(
            id=path.stem,
            file=path.name,
            sha256=digest,
            url="",
            licence="unknown",
            format=args.format,
            classes=(),
            input_width=args.size,
            input_height=args.size,
        )
        spec = replace(base, format=args.format, classes=tuple(args.classes.split(",")))
    if spec is None:
        sys.exit(f"{path}: not in the manifest; describe it with --format and --classes")
    return spec, path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", nargs="?", help="manifest id or ONNX file")
    ap.add_argument("split", type=Path, help="YOLO-format split folder (images/, labels/)")
    ap.add_argument("--model", dest="model_opt", help="manifest id or ONNX file")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--threshold", type=float, help="operating threshold (default: manifest)")
    ap.add_argument("--format", choices=["yolox", "yolov5", "yolov8"])
    ap.add_argument("--classes", help="comma-separated class names, in the model's order")
    ap.add_argument("--size", type=int, default=416, help="input size for --format models")
    ap.add_argument("--model-dir", type=Path, default=Path("var/models"))
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-yaml", type=Path, help="the dataset's class names (YOLO data.yaml)")
    ap.add_argument("--providers", default="CPUExecutionProvider")
    args = ap.parse_args(argv)
    if args.model_opt and args.model:
        ap.error("give the model once: positionally or with --model")

    try:
        registry = Registry(args.model_dir, args.manifest)
        spec, path = resolve_model(args, registry)
        det = Detector(spec, path, providers=args.providers.split(","), threads=args.threads)
        threshold = args.threshold if args.threshold is not None else spec.threshold
        mapping, dropped = split_class_map(
            str(args.split), spec.classes, str(args.data_yaml) if args.data_yaml else None
        )
        started = time.monotonic()
        results = run_split(det, str(args.split), mapping=mapping)
        seconds = time.monotonic() - started
    except (ModelError, FileNotFoundError, ValueError) as exc:
        print(f"eval_detector: {exc}", file=sys.stderr)
        return 2
    map50, map50_95, per = evaluate(results, spec.classes, threshold)

    def num(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 4)

    print(f"model {spec.id} ({path.name}, {spec.format}) on {args.split}: {len(results)} images")
    print(f"operating threshold {threshold}")
    if dropped:
        print(f"dataset classes the model does not have (boxes left out): {', '.join(dropped)}")
    print(f"{'class':<12}{'boxes':>7}{'AP50':>8}{'AP50-95':>9}{'P':>7}{'R':>7}")
    for name, r in per.items():
        cells = [num(v) for v in (r.ap50, r.ap50_95, r.precision, r.recall)]
        text = "".join(
            f"{'-' if v is None else f'{v:.3f}':>{w}}"
            for v, w in zip(cells, (8, 9, 7, 7), strict=True)
        )
        print(f"{name:<12}{r.n_gt:>7}{text}")
    print(f"{'all':<12}{sum(r.n_gt for r in per.values()):>7}{map50:>8.3f}{map50_95:>9.3f}")
    if args.json:
        doc = {
            "map50": round(map50, 4),
            "map50_95": round(map50_95, 4),
            "per_class": {
                name: {
                    "ap50": num(r.ap50),
                    "ap50_95": num(r.ap50_95),
                    "precision": round(r.precision, 4),
                    "recall": num(r.recall),
                    "boxes": r.n_gt,
                }
                for name, r in per.items()
            },
            "model": spec.id,
            "file": path.name,
            "sha256": sha256_file(path),
            "split": str(args.split),
            "images": len(results),
            "threshold": threshold,
            "ignored_classes": dropped,
            "seconds": round(seconds, 2),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
