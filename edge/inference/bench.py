"""Latency and throughput of one detector at several batch sizes (``edgewatch models bench``)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from edge.inference.detector import Detector


def synthetic_frame(width: int = 1280, height: int = 720, seed: int = 0) -> np.ndarray:
    """A textured BGR frame (noise on gradients) so that no layer sees constant input."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], 2)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def bench(
    det: Detector,
    batches: Sequence[int] = (1, 2, 4, 8),
    runs: int = 20,
    warmup: int = 3,
    frame: np.ndarray | None = None,
) -> list[dict]:
    """One row per batch size: model-only and end-to-end latency, images per second.

    ``model_ms``: the session run on an already preprocessed batch (median, p90);
    ``e2e_ms``: letterbox + run + decode + NMS for the batch (median); ``images_per_s``:
    batch size / median end-to-end time. ``native``: the model ran the batch in one call
    (a fixed batch-1 model runs image by image, and says so).
    """
    frame = synthetic_frame() if frame is None else frame
    rows = []
    for b in batches:
        frames = [frame] * b
        tensor, _ = det.preprocess(frames)
        for _ in range(warmup):
            det.run(tensor)
        model_t = []
        for _ in range(runs):
            t0 = time.perf_counter()
            det.run(tensor)
            model_t.append(time.perf_counter() - t0)
        e2e_t = []
        for _ in range(max(3, runs // 2)):
            t0 = time.perf_counter()
            det.detect_batch(frames, det.spec.threshold)
            e2e_t.append(time.perf_counter() - t0)
        model_ms = 1000 * np.asarray(model_t)
        e2e_ms = 1000 * float(np.median(e2e_t))
        rows.append(
            {
                "batch": b,
                "native": b == 1 or det.dynamic_batch,
                "model_ms": round(float(np.median(model_ms)), 2),
                "model_p90_ms": round(float(np.percentile(model_ms, 90)), 2),
                "model_ms_per_image": round(float(np.median(model_ms)) / b, 2),
                "e2e_ms": round(e2e_ms, 2),
                "images_per_s": round(1000 * b / e2e_ms, 1),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'batch':>5} {'native':>6} {'model ms':>9} {'p90':>7} {'ms/img':>7} "
    head += f"{'e2e ms':>8} {'img/s':>7}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['batch']:>5} {'yes' if r['native'] else 'loop':>6} {r['model_ms']:>9.2f} "
            f"{r['model_p90_ms']:>7.2f} {r['model_ms_per_image']:>7.2f} {r['e2e_ms']:>8.2f} "
            f"{r['images_per_s']:>7.1f}"
        )
    return "\n".join(lines)
