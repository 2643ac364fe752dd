"""Detections as numpy arrays (in the manner of supervision.Detections), and NMS.

Two suppressions, because one object can score as several classes:

- ``nms``: class-aware. Boxes of different classes never suppress each other. Right for
  a model whose classes can truly sit on one box (a signal head that is red *and* shows
  a left arrow: OpenLenda's own post-processing is per class for that reason).
- ``merge_nms``: across the classes of a group. COCO's ``car``, ``truck`` and ``bus`` are
  one physical thing seen three ways: a van boxed as both ``car`` (0.6) and ``truck``
  (0.55) at IoU 0.9 is one vehicle, and class-aware NMS hands the tracker two boxes, so
  two tracks, two violations, and a "truck" in a lane trucks may not use. Within a group
  the best box wins, keeps its best class, and records every class's best score over the
  boxes it suppressed (``class_scores``), so the tracker can vote with all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, pixels of the source frame
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32
    # (N, C) float32: every class's score for the object (the best over the boxes merged
    # into it); None when the decoder did not keep them
    class_scores: np.ndarray | None = None

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32)
        )

    def __len__(self) -> int:
        return int(self.confidence.shape[0])

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        scores = None if self.class_scores is None else self.class_scores[index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], scores)

    def anchors(self) -> np.ndarray:
        """Bottom-centre point of each box (where an object touches the ground), (N, 2)."""
        return np.stack(
            [(self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5, self.xyxy[:, 3]], axis=1
        ).astype(np.float32)


def keep_classes(
    dets: Detections, class_ids: np.ndarray, n_classes: int, min_score: float = 0.0
) -> Detections:
    """An analytic's classes only, at or above ``min_score``. With every class's score kept
    (``merge_nms``), a box is the best of the analytic's classes, so a bus the model
    thinks a "train" first is a bus here, not lost, and a tracker's class vote counts only
    those classes."""
    if dets.class_scores is not None and dets.class_scores.shape[1] == n_classes:
        scores = np.zeros_like(dets.class_scores)
        scores[:, class_ids] = dets.class_scores[:, class_ids]
        best = scores.argmax(axis=1).astype(np.int32)
        conf = scores[np.arange(len(best)), best]
        return Detections(dets.xyxy, conf, best, scores)[conf >= min_score]
    keep = np.isin(dets.class_id, class_ids) & (dets.confidence >= min_score)
    return dets[keep]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with many (N, 4)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def merge_nms(
    xyxy: np.ndarray, scores: np.ndarray, group: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy NMS where boxes of the same ``group`` suppress each other.

    Returns the indices kept (highest score first) and, for every input box, the index of
    the kept box that absorbed it (itself when kept). Groups are kept apart by shifting
    each to its own region of the plane (the "batched NMS" offset trick), so one pass
    serves all.
    """
    owner = np.arange(len(scores), dtype=np.int64)
    if len(scores) == 0:
        return np.zeros((0,), np.int64), owner
    offset = (float(np.abs(xyxy).max()) + 1.0) * group.astype(np.float64)
    boxes = xyxy.astype(np.float64) + offset[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        gone = box_iou(boxes[i], boxes[rest]) > iou
        owner[rest[gone]] = i
        order = rest[~gone]
    return np.asarray(keep, np.int64), owner


def nms(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou: float) -> np.ndarray:
    """Class-aware greedy NMS; indices kept, highest score first."""
    return merge_nms(xyxy, scores, class_id, iou)[0]
