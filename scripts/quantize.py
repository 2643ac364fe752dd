#!/usr/bin/env python
"""Static INT8 quantisation of a detector with onnxruntime, and what it costs in accuracy.

    python scripts/quantize.py fire_smoke_nano \
        --calib ../shared/assets/datasets/fire_smoke_ccby4/train \
        --eval ../shared/assets/datasets/fire_smoke_ccby4/test --out /tmp/fire_smoke_nano_int8.onnx

Calibration feeds ``--calib-images`` images of the calibration split through the model's own
pre-processing (the runtime's letterbox), so activation ranges match what the edge sees.
Quantisation is QDQ, per-channel INT8 weights, UINT8 activations, MinMax or percentile
calibration. Then both models are measured on the same images: latency (model only, batch
1, the same thread count) and mAP on ``--eval``, and the change is printed and written
with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.inference.bench import bench  # noqa: E402
from edge.inference.detector import Detector  # noqa: E402
from edge.inference.metrics import evaluate, run_split, split_class_map, split_items  # noqa: E402
from edge.inference.registry import ModelError, Registry, sha256_file  # noqa: E402

try:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
except ImportError as exc:  # onnxruntime.quantization needs the onnx package
    sys.exit(f"quantize.py needs onnx (pip install -e .[dev]): {exc}")


class Images(CalibrationDataReader):
    def __init__(self, det: Detector, paths: list[str]) -> None:
        self.det = det
        self.paths = iter(paths)

    def get_next(self):  # type: ignore[no-untyped-def]
        for path in self.paths:
            frame = cv2.imread(path)
            if frame is None:
                continue
            batch, _ = self.det.preprocess([frame])
            return {self.det.input_name: batch}
        return None


def head_nodes(path: Path) -> list[str]:
    """Names of the Conv nodes that produce the raw predictions (their weights are named
    ``head.{reg,obj,cls}_preds.*`` in YOLOX exports)."""
    import onnx

    model = onnx.load(str(path))
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "Conv"
        and any(".reg_preds." in i or ".obj_preds." in i or ".cls_preds." in i for i in n.input)
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", help="manifest id")
    ap.add_argument("--calib", type=Path, required=True, help="YOLO split for calibration")
    ap.add_argument("--calib-images", type=int, default=200)
    ap.add_argument("--eval", type=Path, required=True, help="YOLO split for the mAP check")
    ap.add_argument("--out", type=Path, required=True, help="the INT8 model to write")
    ap.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", type=Path, default=Path("var/models"))
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--keep-head-fp32",
        action="store_true",
        help="leave the head's output convolutions (box, objectness, class) in FP32",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    try:
        reg = Registry(args.model_dir, args.manifest)
        spec = reg.spec(args.model)
        src = reg.resolve(args.model)
        fp32 = Detector(spec, src, threads=args.threads)
        items = split_items(str(args.calib))
    except (ModelError, FileNotFoundError) as exc:
        print(f"quantize: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    pick = rng.permutation(len(items))[: args.calib_images]
    calib = [items[i][0] for i in sorted(pick)]

    started = time.monotonic()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        up = Path(tmp) / "opset13.onnx"
        import onnx
        from onnx import version_converter

        model = onnx.load(str(src))
        if max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) < 13:
            # per-channel QDQ needs DequantizeLinear's axis attribute: opset 13
            model = version_converter.convert_version(model, 13)
        onnx.save(model, str(up))
        quant_pre_process(str(up), str(pre), skip_symbolic_shape=True)
        method = {
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }[args.method]
        quantize_static(
            str(pre),
            str(args.out),
            Images(fp32, calib),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            extra_options={"CalibPercentile": 99.999} if args.method == "percentile" else {},
            nodes_to_exclude=head_nodes(pre) if args.keep_head_fp32 else [],
        )
    quant_s = time.monotonic() - started
    int8_spec = replace(
        spec, id=spec.id + "_int8", file=args.out.name, sha256=sha256_file(args.out)
    )
    int8 = Detector(int8_spec, args.out, threads=args.threads)

    report: dict = {"model": spec.id, "method": args.method, "calib_images": len(calib)}
    for name, det in (("fp32", fp32), ("int8", int8)):
        row = bench(det, batches=(1,), runs=30)[0]
        mapping, _ = split_class_map(str(args.eval), spec.classes)
        results = run_split(det, str(args.eval), mapping=mapping)
        m50, m5095, per = evaluate(results, spec.classes, spec.threshold)
        report[name] = {
            "model_ms": row["model_ms"],
            "map50": round(m50, 4),
            "map50_95": round(m5095, 4),
            "per_class_ap50": {k: round(v.ap50, 4) for k, v in per.items() if v.n_gt},
            "bytes": (src if name == "fp32" else args.out).stat().st_size,
        }
    f, q = report["fp32"], report["int8"]
    report["speedup"] = round(f["model_ms"] / q["model_ms"], 2)
    report["map50_change"] = round(q["map50"] - f["map50"], 4)
    report["quantize_s"] = round(quant_s, 1)
    print(f"{'':6}{'ms':>8}{'mAP50':>8}{'mAP50-95':>10}{'MB':>7}")
    for name in ("fp32", "int8"):
        r = report[name]
        print(
            f"{name:6}{r['model_ms']:>8.2f}{r['map50']:>8.3f}{r['map50_95']:>10.3f}"
            f"{r['bytes'] / 1e6:>7.2f}"
        )
    print(f"speed-up x{report['speedup']}, mAP@0.5 change {report['map50_change']:+.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
