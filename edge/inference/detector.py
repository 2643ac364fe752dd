"""Any YOLO-family ONNX detector on onnxruntime: letterbox, output adapter, NMS.

The manifest's ``format`` picks the adapter that turns the model's raw output into boxes:

- ``yolox``: the raw YOLOX head ``(N, A, 5 + C)``: ``[dx, dy, log w, log h, obj, C scores]``
  per anchor point on grids of strides 8/16/32; ``xy = (dxy + grid) * stride``,
  ``wh = exp(.) * stride``, ``score = obj * cls``.
- ``yolov5``: Ultralytics YOLOv5 export ``(N, A, 5 + C)``: ``[cx, cy, w, h, obj, C scores]``
  in input pixels; ``score = obj * cls``.
- ``yolov8``: Ultralytics YOLOv8 / YOLO11 export ``(N, 4 + C, A)``: ``[cx, cy, w, h,
  C scores]`` in input pixels, no objectness (YOLO11 has the same head).

Decoding, two ways (``decode``):

- one class per box (detectors of things): each anchor's best class; NMS merges the
  classes of a group (``merge``; by default COCO's road vehicles, bicycle, car,
  motorcycle, bus and truck) so a van the model half calls a truck is one box, which
  keeps its best class and every class's score (``Detections.class_scores``);
- ``multi_label`` (state classifiers such as OpenLenda): every class of every anchor
  scored on its own and NMS per class, as the model's own post-processing does, so a head
  lit red with a left arrow is both, and a weak red is not hidden behind a stronger
  "other" on the same box.

Everything per frame is vectorised; only NMS keeps a loop over the surviving boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from edge.inference.detections import Detections, merge_nms, nms
from edge.inference.registry import FORMATS, ModelError, ModelSpec

log = logging.getLogger(__name__)

# One physical kind of thing, seen as several classes: suppressed together. ``train`` is
# left out on purpose: the traffic analytic does not track it, and a bus absorbed into a
# "train" box would be lost to it.
VEHICLE_GROUP = ("bicycle", "car", "motorcycle", "bus", "truck")

DEFAULT_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)


# --------------------------------------------------------------------------- pre-processing


@dataclass(frozen=True)
class Placement:
    """How a source image sits in the model input: ``model = source * ratio + (dx, dy)``."""

    ratio: float
    dx: float = 0.0
    dy: float = 0.0


def _offsets(w: int, h: int, width: int, height: int, center: bool) -> tuple[int, int]:
    if not center:
        return 0, 0
    return (width - w) // 2, (height - h) // 2


def pad(
    image: np.ndarray, width: int, height: int, pad_value: float, center: bool = False
) -> tuple[np.ndarray, int, int]:
    """An already scaled image on a (height, width) canvas, as CHW float32, and its offset."""
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    h, w = min(height, image.shape[0]), min(width, image.shape[1])
    dx, dy = _offsets(w, h, width, height, center)
    canvas[dy : dy + h, dx : dx + w] = image[:h, :w]
    return canvas.transpose(2, 0, 1).astype(np.float32), dx, dy


def letterbox(
    frame: np.ndarray, width: int, height: int, pad_value: float, center: bool = False
) -> tuple[np.ndarray, float]:
    """Resize keeping aspect ratio onto a (height, width) canvas (top-left or centred).

    Returns the CHW float32 tensor and the scale from source pixels to model pixels.
    """
    tensor, placement = fit(frame, width, height, pad_value, center)
    return tensor, placement.ratio


def fit(
    image: Any, width: int, height: int, pad_value: float, center: bool = False
) -> tuple[np.ndarray, Placement]:
    """Letterbox an array, or a reader Frame (scaled and converted by the decoder's swscale)."""
    if isinstance(image, np.ndarray):
        h, w = image.shape[:2]
        ratio = min(width / w, height / h)
        nw, nh = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
        scaled = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    else:
        scaled, ratio = image.bgr_fit(width, height)
    tensor, dx, dy = pad(scaled, width, height, pad_value, center)
    return tensor, Placement(ratio, dx, dy)


def make_grid(width: int, height: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    grids, expanded = [], []
    for stride in strides:
        hs, ws = height // stride, width // stride
        yv, xv = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


# --------------------------------------------------------------------------- adapters


class OutputAdapter:
    """Raw output of one image into (cx, cy, w, h) in model pixels and per-class scores."""

    name = ""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.nc = len(spec.classes)

    def expected(self) -> str:
        raise NotImplementedError

    def check(self, shape: Sequence[Any]) -> bool:
        raise NotImplementedError

    def boxes_scores(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class YoloxAdapter(OutputAdapter):
    name = "yolox"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.grid, self.stride = make_grid(spec.input_width, spec.input_height, spec.strides)

    def expected(self) -> str:
        return (
            f"[N, {len(self.grid)}, {5 + self.nc}] (anchors on strides {list(self.spec.strides)})"
        )

    def check(self, shape: Sequence[Any]) -> bool:
        return len(shape) == 3 and shape[2] == 5 + self.nc and shape[1] in (len(self.grid), None)

    def boxes_scores(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy = (raw[:, :2] + self.grid) * self.stride
        wh = np.exp(np.clip(raw[:, 2:4], -10, 10)) * self.stride
        return np.concatenate([xy, wh], axis=1), raw[:, 5:] * raw[:, 4:5]


class Yolov5Adapter(OutputAdapter):
    name = "yolov5"

    def expected(self) -> str:
        return f"[N, anchors, {5 + self.nc}]"

    def check(self, shape: Sequence[Any]) -> bool:
        return len(shape) == 3 and shape[2] == 5 + self.nc

    def boxes_scores(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return raw[:, :4], raw[:, 5:] * raw[:, 4:5]


class Yolov8Adapter(OutputAdapter):
    name = "yolov8"

    def expected(self) -> str:
        return f"[N, {4 + self.nc}, anchors]"

    def check(self, shape: Sequence[Any]) -> bool:
        return len(shape) == 3 and shape[1] == 4 + self.nc

    def boxes_scores(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = raw.T  # (A, 4 + C)
        return t[:, :4], t[:, 4:]


ADAPTERS: dict[str, type[OutputAdapter]] = {
    a.name: a for a in (YoloxAdapter, Yolov5Adapter, Yolov8Adapter)
}


def adapter_for(spec: ModelSpec, output_shape: Sequence[Any]) -> OutputAdapter:
    """The manifest's adapter, checked against the model's real output shape."""
    cls = ADAPTERS.get(spec.format)
    if cls is None:
        raise ModelError(
            f"model {spec.id!r}: unknown format {spec.format!r} (known: {', '.join(FORMATS)})"
        )
    shape = [d if isinstance(d, int) else None for d in output_shape]
    adapter = cls(spec)
    if not adapter.check(shape):
        fits = [
            name
            for name, other in ADAPTERS.items()
            if name != spec.format and other(spec).check(shape)
        ]
        hint = f"; it looks like format {fits[0]!r}" if fits else ""
        raise ModelError(
            f"model {spec.id!r}: output shape {shape} does not fit format {spec.format!r} with "
            f"{len(spec.classes)} classes, which expects {adapter.expected()}{hint}"
        )
    return adapter


def default_merge(classes: Sequence[str]) -> list[tuple[str, ...]]:
    """The groups suppressed together for a model with these classes."""
    group = tuple(c for c in VEHICLE_GROUP if c in classes)
    return [group] if len(group) >= 2 else []


def group_ids(classes: Sequence[str], merge: Sequence[Sequence[str]]) -> np.ndarray:
    """Per class, the id NMS suppresses by: its group's first class, else itself."""
    gid = np.arange(len(classes), dtype=np.int64)
    for group in merge:
        unknown = [c for c in group if c not in classes]
        if unknown:
            raise ModelError(f"merge group {list(group)}: classes {unknown} are not in the model")
        ids = [classes.index(c) for c in group]
        gid[ids] = ids[0]
    return gid


# --------------------------------------------------------------------------- providers


def select_providers(preferred: Sequence[str]) -> list[str]:
    """The preferred execution providers that this onnxruntime build has, in order."""
    available = ort.get_available_providers()
    chosen = [p for p in preferred if p in available]
    missing = [p for p in preferred if p not in available]
    if missing:
        log.info(
            "execution providers not in this onnxruntime build, skipped",
            extra={"missing": missing, "available": available},
        )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def make_session(
    path: Path, preferred: Sequence[str], threads: int, model_id: str = ""
) -> ort.InferenceSession:
    """A session on the first provider that works, falling back along ``preferred``.

    A provider can be in the build and still fail at session creation (no GPU, missing
    CUDA/TensorRT libraries): each failure is logged and the next provider is tried; the
    log line ``inference provider`` says which one runs.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Idle intra-op threads would spin waiting for work, burning the CPU that decoding
    # and the other cameras need; on a busy edge box they must sleep instead.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chain = select_providers(preferred)
    errors: dict[str, str] = {}
    for i, provider in enumerate(chain):
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=chain[i:])
        except Exception as exc:
            errors[provider] = str(exc).splitlines()[0][:200]
            log.warning(
                "execution provider failed, falling back",
                extra={"model": model_id, "provider": provider, "error": errors[provider]},
            )
            continue
        running = session.get_providers()[0]
        asked = preferred[0] if preferred else "CPUExecutionProvider"
        log.info(
            "inference provider",
            extra={
                "model": model_id,
                "provider": running,
                "preferred": asked,
                "fallback": running != asked,
                "threads": threads,
            },
        )
        return session
    raise ModelError(f"model {model_id!r}: no execution provider could load {path}: {errors}")


# --------------------------------------------------------------------------- detector


class Detector:
    """One onnxruntime session with its adapter, safe to share between camera threads."""

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 2,
        nms_iou: float = 0.45,
        max_detections: int = 300,
        merge: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self.spec = spec
        self.nms_iou = nms_iou
        self.max_detections = max_detections
        self.merge = [tuple(g) for g in (default_merge(spec.classes) if merge is None else merge)]
        self.group_of = group_ids(spec.classes, self.merge)
        self.session = make_session(path, providers, threads, spec.id)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        in_shape = list(inp.shape)
        if len(in_shape) != 4 or (isinstance(in_shape[1], int) and in_shape[1] != 3):
            raise ModelError(f"model {spec.id!r}: input {in_shape} is not [N, 3, H, W]")
        for axis, want in ((2, spec.input_height), (3, spec.input_width)):
            if isinstance(in_shape[axis], int) and in_shape[axis] != want:
                raise ModelError(
                    f"model {spec.id!r}: input is {in_shape[2]}x{in_shape[3]} (HxW), the manifest "
                    f"says {spec.input_height}x{spec.input_width}"
                )
        self.adapter = adapter_for(spec, self.session.get_outputs()[0].shape)
        log.info(
            "detector ready",
            extra={
                "model": spec.id,
                "format": spec.format,
                "providers": self.session.get_providers(),
                "dynamic_batch": self.dynamic_batch,
            },
        )

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.classes

    @property
    def dynamic_batch(self) -> bool:
        """True when the model takes any batch size (its batch dimension is symbolic)."""
        return not isinstance(self.session.get_inputs()[0].shape[0], int)

    def preprocess(self, frames: Sequence[Any]) -> tuple[np.ndarray, list[Placement]]:
        """BGR arrays or reader Frames into a model batch and where each image sits in it."""
        spec = self.spec
        tensors, places = zip(
            *(
                fit(f, spec.input_width, spec.input_height, spec.pad_value, spec.center)
                for f in frames
            ),
            strict=True,
        )
        batch = np.stack(tensors)
        if spec.color == "rgb":
            batch = batch[:, ::-1]
        if spec.scale != 1.0:
            batch = batch * np.float32(spec.scale)
        return np.ascontiguousarray(batch, dtype=np.float32), list(places)

    def decode(
        self,
        raw: np.ndarray,
        placement: Placement | float,
        min_score: float,
        multi_label: bool = False,
    ) -> Detections:
        """One image's raw output into detections in source pixels (see the module doc for
        the two ways)."""
        if not isinstance(placement, Placement):
            placement = Placement(float(placement))
        cxcywh, cls_scores = self.adapter.boxes_scores(raw)
        if multi_label:
            rows, class_id = np.nonzero(cls_scores >= min_score)
        else:
            best = cls_scores.argmax(axis=1)
            rows = np.nonzero(cls_scores[np.arange(len(best)), best] >= min_score)[0]
            class_id = best[rows]
        if len(rows) == 0:
            return Detections.empty()
        score = cls_scores[rows, class_id]
        cxcywh = cxcywh[rows]
        half = cxcywh[:, 2:4] / 2
        xyxy = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
        xyxy = (xyxy - np.array([placement.dx, placement.dy] * 2, np.float32)) / placement.ratio
        rows_scores = cls_scores[rows].astype(np.float32)
        if multi_label:
            idx = nms(xyxy, score, class_id, self.nms_iou)[: self.max_detections]
            class_scores = rows_scores[idx]
        else:
            keep, owner = merge_nms(xyxy, score, self.group_of[class_id], self.nms_iou)
            idx = keep[: self.max_detections]
            # every class's best score over the boxes each kept box absorbed
            slot = np.full(len(score), -1, np.int64)
            slot[idx] = np.arange(len(idx))
            into = slot[owner]
            ok = into >= 0
            class_scores = rows_scores[idx].copy()
            np.maximum.at(class_scores, into[ok], rows_scores[ok])
        return Detections(
            xyxy[idx].astype(np.float32),
            score[idx].astype(np.float32),
            class_id[idx].astype(np.int32),
            class_scores,
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The raw model output for a preprocessed batch (looping when the batch is fixed)."""
        # No lock: onnxruntime's Run is thread-safe, and the engine's parallel runs
        # (models.parallel) are concurrent calls on this one session.
        if batch.shape[0] == 1 or self.dynamic_batch:
            return self.session.run(None, {self.input_name: batch})[0]
        return np.concatenate(
            [self.session.run(None, {self.input_name: b[None]})[0] for b in batch]
        )

    def detect_batch(
        self, frames: Sequence[Any], min_score: float, multi_label: bool = False
    ) -> list[Detections]:
        batch, places = self.preprocess(frames)
        outputs = self.run(batch)
        return [
            self.decode(outputs[i], places[i], min_score, multi_label) for i in range(len(frames))
        ]

    def detect(
        self, frame: np.ndarray, min_score: float = 0.25, multi_label: bool = False
    ) -> Detections:
        """Detections in one BGR frame (H, W, 3) uint8."""
        return self.detect_batch([frame], min_score, multi_label)[0]
