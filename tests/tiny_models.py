"""Tiny ONNX models in each detector export format, built with onnx.helper.

Each model takes ``images`` [N, 3, H, W] and returns a fixed raw output (the same for every
image of the batch), laid out exactly as the real exporter lays it out. Tests know the boxes
the output encodes, so they can check the whole path: letterbox, session, adapter,
scores, NMS and the mapping back to source pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_model(path: Path, raw: np.ndarray, size: int = 416, batch: int | None = None) -> Path:
    """A model whose output is ``raw`` (shape (1, ...)) repeated along a batch of N images.

    ``batch=None`` gives a symbolic batch dimension (any batch); an int fixes it.
    """
    raw = raw.astype(np.float32)
    n: int | str = "N" if batch is None else batch
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [n, 3, size, size])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [n, *raw.shape[1:]])
    rest = np.asarray(raw.shape[1:], np.int64)
    nodes = [
        helper.make_node("Shape", ["images"], ["in_shape"]),
        helper.make_node("Slice", ["in_shape", "zero", "one"], ["n"]),
        helper.make_node("Concat", ["n", "rest"], ["out_shape"], axis=0),
        helper.make_node("Expand", ["raw", "out_shape"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(raw, "raw"),
        numpy_helper.from_array(np.asarray([0], np.int64), "zero"),
        numpy_helper.from_array(np.asarray([1], np.int64), "one"),
        numpy_helper.from_array(rest, "rest"),
    ]
    graph = helper.make_graph(nodes, "tiny", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# Boxes in model pixels (cx, cy, w, h), objectness and per-class scores (2 classes).
BOXES = np.array(
    [
        [100.0, 150.0, 40.0, 20.0],  # strong class 1
        [102.0, 151.0, 40.0, 20.0],  # overlaps the first, weaker: NMS removes it
        [300.0, 200.0, 60.0, 60.0],  # class 0
        [50.0, 50.0, 10.0, 10.0],  # below any sensible threshold
    ],
    np.float32,
)
OBJ = np.array([0.9, 0.9, 0.8, 0.1], np.float32)
CLS = np.array([[0.1, 0.8], [0.1, 0.6], [0.7, 0.2], [0.5, 0.5]], np.float32)


def yolov5_raw() -> np.ndarray:
    """Ultralytics YOLOv5 export: (1, A, 5 + C) = [cx, cy, w, h, obj, cls...]."""
    return np.concatenate([BOXES, OBJ[:, None], CLS], axis=1)[None]


def yolov8_raw() -> np.ndarray:
    """Ultralytics YOLOv8/YOLO11 export: (1, 4 + C, A), class scores already combined."""
    return np.concatenate([BOXES, CLS * OBJ[:, None]], axis=1).T[None]


def manifest_entry(file: str, fmt: str, sha256: str, letterbox: str = "center") -> dict:
    return {
        "file": file,
        "sha256": sha256,
        "format": fmt,
        "classes": ["a", "b"],
        "input": {
            "width": 416,
            "height": 416,
            "color": "rgb",
            "scale": 1 / 255,
            "letterbox": letterbox,
        },
        "threshold": 0.3,
    }
