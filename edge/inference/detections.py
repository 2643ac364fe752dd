"""Detections as numpy arrays (in the manner of supervision.Detections)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, pixels of the source frame
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32)
        )

    def __len__(self) -> int:
        return int(self.confidence.shape[0])

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index])

    def anchors(self) -> np.ndarray:
        """Bottom-centre point of each box (where an object touches the ground), (N, 2)."""
        return np.stack(
            [(self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5, self.xyxy[:, 3]], axis=1
        ).astype(np.float32)


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


def nms(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou: float) -> np.ndarray:
    """Class-aware greedy NMS; indices kept, highest score first.

    Boxes of different classes never suppress each other: each class is shifted to its
    own region of the plane (the "batched NMS" offset trick), so one pass serves all.
    """
    if len(scores) == 0:
        return np.zeros((0,), np.int64)
    offset = (float(xyxy.max()) + 1.0) * class_id.astype(np.float32)
    boxes = xyxy + offset[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou]
    return np.asarray(keep, np.int64)
