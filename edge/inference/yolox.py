"""YOLOX-format ONNX detector on onnxruntime: letterbox, grid decode, class-aware NMS."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from edge.inference.detections import Detections, nms
from edge.inference.registry import ModelSpec

log = logging.getLogger(__name__)


def letterbox(
    frame: np.ndarray, width: int, height: int, pad_value: float
) -> tuple[np.ndarray, float]:
    """Resize keeping aspect ratio into the top-left of a (height, width) canvas.

    Returns the CHW float32 tensor and the scale from source pixels to model pixels.
    """
    h, w = frame.shape[:2]
    ratio = min(width / w, height / h)
    nw, nh = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    return pad(
        cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR), width, height, pad_value
    ), ratio


def pad(image: np.ndarray, width: int, height: int, pad_value: float) -> np.ndarray:
    """An already scaled image into the top-left of a (height, width) canvas, as CHW float32."""
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    h, w = min(height, image.shape[0]), min(width, image.shape[1])
    canvas[:h, :w] = image[:h, :w]
    return canvas.transpose(2, 0, 1).astype(np.float32)


def fit(image: Any, width: int, height: int, pad_value: float) -> tuple[np.ndarray, float]:
    """Letterbox an array, or a reader Frame (scaled and converted by the decoder's swscale)."""
    if isinstance(image, np.ndarray):
        return letterbox(image, width, height, pad_value)
    scaled, ratio = image.bgr_fit(width, height)
    return pad(scaled, width, height, pad_value), ratio


def make_grid(width: int, height: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    grids, expanded = [], []
    for stride in strides:
        hs, ws = height // stride, width // stride
        yv, xv = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def select_providers(preferred: Sequence[str]) -> list[str]:
    available = ort.get_available_providers()
    chosen = [p for p in preferred if p in available]
    missing = [p for p in preferred if p not in available]
    if missing:
        log.warning("execution providers not available", extra={"missing": missing})
    return chosen or ["CPUExecutionProvider"]


class YoloxDetector:
    """One onnxruntime session, safe to share between camera threads."""

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 2,
        nms_iou: float = 0.45,
    ) -> None:
        self.spec = spec
        self.nms_iou = nms_iou
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle intra-op threads would spin waiting for work, burning the CPU that decoding
        # and the other cameras need; on a busy edge box they must sleep instead.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=select_providers(providers)
        )
        self.input_name = self.session.get_inputs()[0].name
        out_shape = self.session.get_outputs()[0].shape
        expected = 5 + len(spec.classes)
        if out_shape[-1] != expected:
            raise ValueError(
                f"model {spec.id!r}: output has {out_shape[-1]} values per anchor, a YOLOX head "
                f"with {len(spec.classes)} classes has {expected}"
            )
        self.grid, self.stride = make_grid(spec.input_width, spec.input_height, spec.strides)
        self._lock = threading.Lock()
        log.info(
            "detector ready",
            extra={"model": spec.id, "providers": self.session.get_providers()},
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.classes

    @property
    def dynamic_batch(self) -> bool:
        """True when the model takes any batch size (its batch dimension is symbolic)."""
        return not isinstance(self.session.get_inputs()[0].shape[0], int)

    def preprocess(self, frames: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """BGR arrays or reader Frames into a model batch and their scales."""
        spec = self.spec
        tensors, ratios = zip(
            *(fit(f, spec.input_width, spec.input_height, spec.pad_value) for f in frames),
            strict=True,
        )
        batch = np.stack(tensors)
        if self.spec.color == "rgb":
            batch = batch[:, ::-1]
        if self.spec.scale != 1.0:
            batch = batch * np.float32(self.spec.scale)
        return np.ascontiguousarray(batch, dtype=np.float32), np.asarray(ratios, np.float32)

    def decode(self, raw: np.ndarray, ratio: float, min_score: float) -> Detections:
        """One image's raw head output (A, 5 + C) into detections in source pixels."""
        xy = (raw[:, :2] + self.grid) * self.stride
        wh = np.exp(np.clip(raw[:, 2:4], -10, 10)) * self.stride
        cls_scores = raw[:, 5:] * raw[:, 4:5]
        class_id = cls_scores.argmax(axis=1)
        score = cls_scores[np.arange(len(class_id)), class_id]
        keep = score >= min_score
        if not keep.any():
            return Detections.empty()
        xy, wh, score, class_id = xy[keep], wh[keep], score[keep], class_id[keep]
        xyxy = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ratio
        idx = nms(xyxy, score, class_id, self.nms_iou)
        return Detections(
            xyxy[idx].astype(np.float32),
            score[idx].astype(np.float32),
            class_id[idx].astype(np.int32),
        )

    def detect_batch(self, frames: Sequence[Any], min_score: float) -> list[Detections]:
        batch, ratios = self.preprocess(frames)
        with self._lock:
            if batch.shape[0] == 1 or self.dynamic_batch:
                outputs = self.session.run(None, {self.input_name: batch})[0]
            else:  # a model exported with batch 1: run image by image
                outputs = np.concatenate(
                    [self.session.run(None, {self.input_name: b[None]})[0] for b in batch]
                )
        return [self.decode(outputs[i], float(ratios[i]), min_score) for i in range(len(frames))]

    def detect(self, frame: np.ndarray, min_score: float = 0.25) -> Detections:
        """Detections in one BGR frame (H, W, 3) uint8."""
        return self.detect_batch([frame], min_score)[0]
