"""Detection accuracy: COCO-style average precision, numpy only.

AP is the area under the interpolated precision envelope sampled at 101 recall points
(as pycocotools does). Matching is greedy by score: each detection takes the unmatched
ground-truth box of its class with the highest IoU, if that IoU reaches the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)


@dataclass(frozen=True)
class ImageResult:
    """One image: ground truth and detections, boxes xyxy in the same pixel space."""

    gt_xyxy: np.ndarray  # (G, 4)
    gt_class: np.ndarray  # (G,)
    det_xyxy: np.ndarray  # (D, 4)
    det_score: np.ndarray  # (D,)
    det_class: np.ndarray  # (D,)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4): (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def _match(
    images: Sequence[ImageResult], cls: int, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores (D,) sorted high to low, true-positive flags (T, D), and the GT count."""
    scores: list[np.ndarray] = []
    flags: list[np.ndarray] = []
    n_gt = 0
    for im in images:
        gt = im.gt_xyxy[im.gt_class == cls]
        sel = im.det_class == cls
        det, sc = im.det_xyxy[sel], im.det_score[sel]
        order = np.argsort(-sc, kind="stable")
        det, sc = det[order], sc[order]
        n_gt += len(gt)
        tp = np.zeros((len(thresholds), len(det)), bool)
        if len(det) and len(gt):
            ious = iou_matrix(det, gt)
            for t, thr in enumerate(thresholds):
                taken = np.zeros(len(gt), bool)
                for d in range(len(det)):
                    cand = np.where(taken, -1.0, ious[d])
                    g = int(cand.argmax())
                    if cand[g] >= thr:
                        taken[g] = True
                        tp[t, d] = True
        scores.append(sc)
        flags.append(tp)
    if not scores:
        return np.zeros(0), np.zeros((len(thresholds), 0), bool), n_gt
    all_scores = np.concatenate(scores)
    all_flags = np.concatenate(flags, axis=1)
    order = np.argsort(-all_scores, kind="stable")
    return all_scores[order], all_flags[:, order], n_gt


def average_precision(tp: np.ndarray, n_gt: int) -> float:
    """AP of one ranked list of true/false positives, 101-point interpolation."""
    if n_gt == 0:
        return float("nan")
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


@dataclass(frozen=True)
class ClassReport:
    ap50: float
    ap50_95: float
    precision: float
    recall: float
    n_gt: int


def evaluate(
    images: Sequence[ImageResult], class_names: Sequence[str], threshold: float
) -> tuple[float, float, dict[str, ClassReport]]:
    """mAP@0.5, mAP@0.5:0.95 and per-class figures; precision/recall at ``threshold``.

    Classes with no ground-truth box in the split are reported with NaN AP and left out
    of the means.
    """
    per: dict[str, ClassReport] = {}
    for c, name in enumerate(class_names):
        scores, tp, n_gt = _match(images, c, IOU_THRESHOLDS)
        aps = [average_precision(tp[t], n_gt) for t in range(len(IOU_THRESHOLDS))]
        kept = scores >= threshold
        n_tp = int(tp[0][kept].sum())
        n_det = int(kept.sum())
        per[name] = ClassReport(
            ap50=aps[0],
            ap50_95=float(np.mean(aps)) if n_gt else float("nan"),
            precision=n_tp / n_det if n_det else 0.0,
            recall=n_tp / n_gt if n_gt else float("nan"),
            n_gt=n_gt,
        )
    present = [r for r in per.values() if r.n_gt]
    map50 = float(np.mean([r.ap50 for r in present])) if present else 0.0
    map50_95 = float(np.mean([r.ap50_95 for r in present])) if present else 0.0
    return map50, map50_95, per


def read_yolo_labels(path: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A YOLO-format label file (``cls cx cy w h``, normalised) as xyxy pixels and classes."""
    try:
        with open(path, encoding="utf-8") as fh:
            rows = [line.split() for line in fh if line.strip()]
    except FileNotFoundError:
        rows = []
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    bad = [r for r in rows if len(r) != 5]
    if bad:
        raise ValueError(f"{path}: expected 5 values per line (cls cx cy w h), got {bad[0]}")
    arr = np.asarray(rows, np.float64)
    cx, cy, w, h = arr[:, 1] * width, arr[:, 2] * height, arr[:, 3] * width, arr[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return xyxy.astype(np.float32), arr[:, 0].astype(np.int64)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def split_items(split_dir: str) -> list[tuple[str, str]]:
    """(image, label) paths of a YOLO-format split: ``images/`` and ``labels/`` side by side."""
    from pathlib import Path

    root = Path(split_dir)
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{root}: no images/ folder (expected a YOLO-format split)")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{images_dir}: no images")
    return [(str(p), str(root / "labels" / (p.stem + ".txt"))) for p in images]


def class_map(model_names: Sequence[str], data_names: Sequence[str]) -> np.ndarray:
    """Dataset class index -> model class index by name (case-insensitive); -1: not learnt."""
    lower = [n.lower() for n in model_names]
    mapping = np.array([lower.index(n.lower()) if n.lower() in lower else -1 for n in data_names])
    if not (mapping >= 0).any():
        raise ValueError(f"no class in common: model {list(model_names)}, data {list(data_names)}")
    return mapping.astype(np.int64)


def split_class_map(
    split_dir: str, model_names: Sequence[str], data_yaml: str | None = None
) -> tuple[np.ndarray | None, list[str]]:
    """The label->model class map from the dataset's ``data.yaml`` (beside or above the
    split), and the dataset classes the model does not have; (None, []) without one."""
    from pathlib import Path

    import yaml

    root = Path(split_dir)
    found = (
        Path(data_yaml)
        if data_yaml
        else next((p for p in (root / "data.yaml", root.parent / "data.yaml") if p.is_file()), None)
    )
    if found is None:
        return None, []
    names = [str(n) for n in yaml.safe_load(found.read_text(encoding="utf-8"))["names"]]
    mapping = class_map(model_names, names)
    return mapping, [n for n, m in zip(names, mapping, strict=True) if m < 0]


def run_split(
    detector,  # anything with detect_batch(frames, min_score)
    split_dir: str,
    min_score: float = 0.001,
    batch: int = 1,
    mapping: np.ndarray | None = None,
) -> list[ImageResult]:
    """Run ``detector`` over a split: one ImageResult per image.

    ``mapping`` (from :func:`class_map`) renumbers the labels' classes to the model's; boxes
    of a class the model does not have are left out of the ground truth.
    """
    import cv2

    items = split_items(split_dir)
    results: list[ImageResult] = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        frames = []
        for img_path, _ in chunk:
            frame = cv2.imread(img_path)
            if frame is None:
                raise ValueError(f"{img_path}: not a readable image")
            frames.append(frame)
        dets = detector.detect_batch(frames, min_score)
        for (_, lbl_path), frame, det in zip(chunk, frames, dets, strict=True):
            gt, gcls = read_yolo_labels(lbl_path, frame.shape[1], frame.shape[0])
            if mapping is not None and len(gcls):
                if gcls.max() >= len(mapping):
                    raise ValueError(f"{lbl_path}: class {gcls.max()} beyond the dataset's names")
                gcls = mapping[gcls]
                gt, gcls = gt[gcls >= 0], gcls[gcls >= 0]
            results.append(ImageResult(gt, gcls, det.xyxy, det.confidence, det.class_id))
    return results
