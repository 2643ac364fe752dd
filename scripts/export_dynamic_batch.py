#!/usr/bin/env python3
"""Re-export a YOLOX detector as published with a dynamic batch, and prove nothing else moved.

    pip install -e .[train]   # onnx
    python scripts/export_dynamic_batch.py ../shared/assets/models/yolox_nano.onnx \
        var/models/yolox_nano_batch.onnx --frames ../shared/assets/video/<clip>.mp4

The edit is ``edgewatch.onnx_batch.batch_agnostic`` (the one the trainer's export makes):
no weight changes. The check runs both models through onnxruntime on real frames (the
clip's frames, letterboxed as the runtime does): the batch-1 original one frame at a time,
the new one on batches of 1, 2, 4 and 8, and requires every output to agree within
``--atol``; then it prints the new file's sha256 for ``models/manifest.yaml``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.inference.detector import fit  # noqa: E402
from edgewatch.onnx_batch import export  # noqa: E402


def frames_of(path: Path, n: int) -> list[np.ndarray]:
    import av

    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k % 25 == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    if len(out) < n:
        sys.exit(f"{path}: only {len(out)} frames sampled, need {n}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--frames", type=Path, required=True, help="a real video to check on")
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--atol", type=float, default=1e-3)
    args = ap.parse_args()

    import onnxruntime as ort

    export(args.src, args.dst)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    old = ort.InferenceSession(str(args.src), opts, providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(args.dst), opts, providers=["CPUExecutionProvider"])
    name = old.get_inputs()[0].name
    imgs = [fit(f, args.size, args.size, 114, False)[0] for f in frames_of(args.frames, 8)]
    x = np.stack(imgs).astype(np.float32)
    ref = np.concatenate([old.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    worst = 0.0
    for b in (1, 2, 4, 8):
        got = np.concatenate([new.run(None, {name: x[i : i + b]})[0] for i in range(0, 8, b)])
        worst = max(worst, float(np.abs(got - ref).max()))
    print(f"max |difference| over 8 real frames, batches 1/2/4/8: {worst:.2e}")
    if worst > args.atol:
        sys.exit(f"outputs differ by {worst} > {args.atol}: not written as equivalent")
    print(f"{args.dst}: sha256 {hashlib.sha256(args.dst.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
