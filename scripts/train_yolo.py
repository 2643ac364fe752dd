#!/usr/bin/env python
"""Fine-tune YOLOX-Nano (COCO weights) on any YOLO-format data: the detectors the product
ships (fire/smoke, licence plates) are all made by this one script.

    pip install -e .[train]            # torch (CPU build: torch==2.13.0) and onnx
    # the plate detector (models/cards/plate_nano.md has the exact command):
    python scripts/train_yolo.py --classes plate --alias 0=plate --alias license-plate=plate \
        --train ../shared/assets/datasets/vn_plates_ccby4 \
        --train ../shared/assets/datasets/openimages_plates_ccby/train \
        --valid ../shared/assets/datasets/openimages_plates_ccby/valid \
        --exclude ../shared/assets/datasets/vn_plates_ccby4/plate_texts.csv --holdout 0.12 \
        --out models/plate_nano.onnx --checkpoint /tmp/plate_nano.ckpt

Why one general script: a model trained here is only as honest as its split. Every
detector the project ships is trained the same way (the same network, loss, augmentation
and export), and the only thing that changes is the data, which this script takes as
YOLO-format folders (``images/`` and ``labels/`` side by side), with:

- ``--train`` / ``--valid`` (repeatable): the folders; each folder's class names come from
  the ``data.yaml`` beside or above it, mapped to the model's ``--classes`` by name, or by
  ``--alias DATA=MODEL`` where datasets name a class differently (``0``, ``license-plate``
  -> ``plate``). Boxes of a class the model does not learn are dropped (background).
- ``--exclude FILE`` (repeatable): images never read (a test set defined by a list, e.g. the
  ``file`` column of a CSV); with ``--group`` a regex that names an image's *source*, every
  image from an excluded source is left out too (augmented copies of a test photo).
- ``--holdout F``: a deterministic fraction of the training sources (by group) moved to
  validation, where a dataset has no valid split of its own.

How it works, in one file and without the YOLOX or ultralytics packages:

- **Network.** The COCO model's ONNX graph (Conv + SiLU, BN already folded into the convs)
  is run op by op in torch with its initializers as trainable parameters, so the pretrained
  backbone, neck and head are exactly those of ``yolox_nano.onnx``. The three class
  convolutions (``head.cls_preds.*``) are replaced by fresh ones for the dataset's classes.
- **Loss.** YOLOX's: SimOTA label assignment (centre prior, cost = class BCE + 3 * -log IoU,
  dynamic k from the top-10 IoUs), GIoU box loss, objectness BCE on every anchor, class BCE
  on the positives with the IoU as the soft target.
- **Augmentation that matters for cameras**: mosaic, random scale and placement, flips,
  HSV jitter, and then per image at random: Gaussian or motion blur, JPEG re-encoding at
  low quality, low light (gamma, gain, sensor noise) and fog (blend towards a bright haze).
- **Export.** The trained weights are written back into the original graph (the class
  convolutions resized, the final Reshapes made batch-agnostic), so the shipped model has
  the YOLOX raw-head layout the runtime's ``yolox`` adapter reads, with a dynamic batch.
- **Checkpoints.** With ``--checkpoint`` the full state (weights, optimiser, random
  generators, history) is saved after every epoch and a rerun of the same command resumes
  from it: a CPU run can be stopped and continued.

Seeded and single-threaded in data loading: two runs with the same arguments on the same
machine give the same weights. The best epoch is chosen on the validation mAP@0.5; excluded
images are never read here (``scripts/eval_detector.py`` and ``scripts/eval_plates.py``
report them).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

try:
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the optional extra
    sys.exit(f"training needs the train extra (pip install -e .[train]): {exc}")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.inference.detections import nms  # noqa: E402
from edge.inference.metrics import ImageResult, evaluate, read_yolo_labels  # noqa: E402
from edgewatch.onnx_batch import batch_agnostic  # noqa: E402

STRIDES = (8, 16, 32)
IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp")


# --------------------------------------------------------------------------- network


class OnnxYolox(nn.Module):
    """The YOLOX ONNX graph executed in torch, up to the raw per-level head outputs."""

    def __init__(self, path: Path, num_classes: int) -> None:
        super().__init__()
        model = onnx.load(str(path))
        graph = model.graph
        self.input_name = graph.input[0].name
        self.params = nn.ParameterDict()
        self.consts: dict[str, np.ndarray] = {}
        self.key: dict[str, str] = {}
        for init in graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype == np.float32 and arr.ndim >= 1 and arr.size > 4:
                k = "p" + str(len(self.params))
                self.key[init.name] = k
                self.params[k] = nn.Parameter(torch.from_numpy(arr.copy()))
            else:
                self.consts[init.name] = arr
        self.num_classes = num_classes
        # The class convolutions: new ones for our classes, prior probability 0.01.
        self.cls_names = [f"head.cls_preds.{i}" for i in range(3)]
        for name in self.cls_names:
            w = self.params[self.key[name + ".weight"]]
            new_w = torch.randn(num_classes, *w.shape[1:]) * 0.01
            new_b = torch.full((num_classes,), -math.log((1 - 0.01) / 0.01))
            self.params[self.key[name + ".weight"]] = nn.Parameter(new_w)
            self.params[self.key[name + ".bias"]] = nn.Parameter(new_b)
        # The head's raw outputs per level: the conv outputs feeding reg/obj/cls.
        self.outputs: list[tuple[str, str, str]] = []
        produced_by = {}
        for node in graph.node:
            for o in node.output:
                produced_by[o] = node
        conv_out = {}
        for node in graph.node:
            if node.op_type == "Conv":
                conv_out[node.input[1]] = node.output[0]
        for i in range(3):
            self.outputs.append(
                (
                    conv_out[f"head.reg_preds.{i}.weight"],
                    conv_out[f"head.obj_preds.{i}.weight"],
                    conv_out[f"head.cls_preds.{i}.weight"],
                )
            )
        needed = {n for trio in self.outputs for n in trio}
        # Keep only the nodes needed to compute the head outputs (drop the export tail).
        keep: list[onnx.NodeProto] = []
        wanted = set(needed)
        for node in reversed(list(graph.node)):
            if any(o in wanted for o in node.output):
                keep.append(node)
                wanted.update(node.input)
        self.nodes = list(reversed(keep))
        self.attrs = [
            {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            for node in self.nodes
        ]

    def _value(self, env: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        if name in env:
            return env[name]
        if name in self.key:
            return self.params[self.key[name]]
        return torch.from_numpy(self.consts[name].copy()).to(env[self.input_name].device)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        env: dict[str, torch.Tensor] = {self.input_name: x}
        for node, at in zip(self.nodes, self.attrs, strict=True):
            op = node.op_type
            ins = [self._value(env, n) if n else None for n in node.input]
            if op == "Conv":
                pads = at.get("pads", [0, 0, 0, 0])
                y = F.conv2d(
                    ins[0],
                    ins[1],
                    ins[2] if len(ins) > 2 else None,
                    stride=tuple(at.get("strides", [1, 1])),
                    padding=(pads[0], pads[1]),
                    dilation=tuple(at.get("dilations", [1, 1])),
                    groups=at.get("group", 1),
                )
            elif op == "Sigmoid":
                y = torch.sigmoid(ins[0])
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Concat":
                y = torch.cat(ins, dim=at["axis"])
            elif op == "Slice":
                data, starts, ends = ins[0], ins[1], ins[2]
                axes = ins[3] if len(ins) > 3 else torch.arange(len(starts))
                steps = ins[4] if len(ins) > 4 else torch.ones(len(starts), dtype=torch.int64)
                idx = [slice(None)] * data.dim()
                for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
                    e = int(e)
                    idx[int(a)] = slice(int(s), None if e > 2**30 else e, int(st))
                y = data[tuple(idx)]
            elif op == "MaxPool":
                k, p = at["kernel_shape"], at.get("pads", [0, 0, 0, 0])
                y = F.max_pool2d(
                    ins[0],
                    tuple(k),
                    stride=tuple(at.get("strides", [1, 1])),
                    padding=(p[0], p[1]),
                )
            elif op == "Resize":
                scales = ins[2] if len(ins) > 2 and ins[2] is not None and ins[2].numel() else None
                factor = float(scales[-1]) if scales is not None else 2.0
                y = F.interpolate(ins[0], scale_factor=factor, mode="nearest")
            else:
                raise NotImplementedError(f"ONNX op {op} ({node.name})")
            env[node.output[0]] = y
        return [(env[r], env[o], env[c]) for r, o, c in self.outputs]

    def export(self, src: Path, dst: Path, class_names: list[str]) -> None:
        """Write the trained weights back into the source graph, batch-agnostic."""
        model = onnx.load(str(src))
        graph = model.graph
        nc = len(class_names)
        for init in graph.initializer:
            if init.name in self.key:
                arr = self.params[self.key[init.name]].detach().cpu().numpy().astype(np.float32)
                init.CopyFrom(numpy_helper.from_array(arr, init.name))
        # The export tail reshapes each level to (1, 5 + 80, -1): make it (N, 5 + nc, -1).
        batch_agnostic(model, 5 + nc)
        model.doc_string = f"edgewatch YOLOX-Nano {dst.stem}; classes: " + ",".join(class_names)
        dst.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(dst))


# --------------------------------------------------------------------------- data

RF_SUFFIX = re.compile(r"_(jpg|jpeg|png|bmp)\.rf\.[0-9a-f]+$", re.I)


def original_name(path: Path) -> str:
    """The image's name before a Roboflow export renamed it (``x_jpg.rf.<hash>`` -> ``x``)."""
    return RF_SUFFIX.sub("", path.stem)


def group_of(path: Path, pattern: re.Pattern[str] | None) -> str:
    """The image's source: the first capture group of ``pattern`` on its original name
    (augmented copies of one photo share it), else the original name itself."""
    name = original_name(path)
    if pattern is not None:
        m = pattern.search(name)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return name


def read_name_list(path: Path) -> set[str]:
    """Image file names from a CSV with a ``file`` column, or one name per line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        return {row["file"] for row in csv.DictReader(text.splitlines()) if row.get("file")}
    return {line.strip() for line in text.splitlines() if line.strip()}


def folder_names(folder: Path) -> list[str] | None:
    """The dataset's class names from the data.yaml beside or above the folder."""
    import yaml

    for p in (folder / "data.yaml", folder.parent / "data.yaml"):
        if p.is_file():
            return [str(n).lower() for n in yaml.safe_load(p.read_text())["names"]]
    return None


def class_mapping(folder: Path, names: list[str], aliases: dict[str, str]) -> np.ndarray:
    """Dataset class index -> model class index (-1: not learnt) for one folder."""
    data_names = folder_names(folder)
    if data_names is None:  # no data.yaml: the label numbers are the model's classes
        return np.arange(len(names), dtype=np.int64)
    mapping = [
        names.index(aliases.get(n, n)) if aliases.get(n, n) in names else -1 for n in data_names
    ]
    if max(mapping) < 0:
        sys.exit(f"{folder}: none of the dataset classes {data_names} maps to {names}")
    return np.array(mapping, np.int64)


def list_split(root: Path) -> list[tuple[Path, Path]]:
    images = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in IMG_EXT)
    return [(p, root / "labels" / (p.stem + ".txt")) for p in images]


def holdout_hash(group: str, seed: int) -> float:
    """A stable number in [0, 1) per source group: the hold-out does not depend on order."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def build_items(
    train_dirs: list[Path],
    valid_dirs: list[Path],
    excluded: set[str],
    pattern: re.Pattern[str] | None,
    holdout: float,
    seed: int,
) -> tuple[list[tuple[Path, Path, int]], list[tuple[Path, Path, int]], dict]:
    """(image, label, folder index) for train and valid, and a report of what was left out.

    An image is excluded when its file name is in ``excluded`` or (with ``pattern``) it
    comes from the same source group as an excluded image of the same folder."""
    folders = train_dirs + valid_dirs
    train: list[tuple[Path, Path, int]] = []
    valid: list[tuple[Path, Path, int]] = []
    report: dict = {"excluded_listed": 0, "excluded_same_source": [], "held_out": 0}
    for fi, folder in enumerate(folders):
        items = list_split(folder)
        bad_groups = {group_of(p, pattern) for p, _ in items if p.name in excluded}
        for img, lbl in items:
            if img.name in excluded:
                report["excluded_listed"] += 1
                continue
            g = group_of(img, pattern)
            if pattern is not None and g in bad_groups:
                report["excluded_same_source"].append(img.name)
                continue
            if fi >= len(train_dirs):
                valid.append((img, lbl, fi))
            elif holdout > 0 and holdout_hash(f"{folder.name}/{g}", seed) < holdout:
                valid.append((img, lbl, fi))
                report["held_out"] += 1
            else:
                train.append((img, lbl, fi))
    return train, valid, report


class Dataset:
    def __init__(
        self, items: list[tuple[Path, Path, int]], size: int, mappings: list[np.ndarray]
    ) -> None:
        self.items = items
        self.size = size
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for i, (img_path, lbl_path, fi) in enumerate(items):
            img = cv2.imread(str(img_path))
            if img is None:
                raise SystemExit(f"cannot read image {img_path}")
            h, w = img.shape[:2]
            r = size / max(h, w)
            if r < 1:  # keep memory small: store at training scale
                img = cv2.resize(img, (round(w * r), round(h * r)), interpolation=cv2.INTER_AREA)
            xyxy, cls = read_yolo_labels(str(lbl_path), img.shape[1], img.shape[0])
            mapping = mappings[fi]
            if len(cls) and cls.max() >= len(mapping):
                raise SystemExit(f"{lbl_path}: class {cls.max()} beyond the dataset's names")
            cls = mapping[cls] if len(cls) else cls
            keep = cls >= 0  # a dataset class the model does not learn: not an object
            self.cache[i] = (img, xyxy[keep], cls[keep])

    def __len__(self) -> int:
        return len(self.items)

    def boxes(self) -> int:
        return sum(len(c) for _, _, c in self.cache.values())

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        img, xyxy, cls = self.cache[i]
        return img, xyxy.copy(), cls.copy()


def place(
    img: np.ndarray, xyxy: np.ndarray, scale: float, canvas: np.ndarray, x0: int, y0: int
) -> np.ndarray:
    """Paste ``img`` scaled by ``scale`` at (x0, y0) into ``canvas`` (clipped); boxes follow."""
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    im = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    H, W = canvas.shape[:2]
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    cw, ch = min(nw - sx0, W - dx0), min(nh - sy0, H - dy0)
    if cw > 0 and ch > 0:
        canvas[dy0 : dy0 + ch, dx0 : dx0 + cw] = im[sy0 : sy0 + ch, sx0 : sx0 + cw]
    boxes = xyxy * scale + np.array([x0, y0, x0, y0], np.float32)
    return boxes


def clip_boxes(xyxy: np.ndarray, cls: np.ndarray, w: int, h: int, min_side: float = 3.0):
    if len(xyxy) == 0:
        return xyxy, cls
    orig_area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    c = xyxy.copy()
    c[:, [0, 2]] = c[:, [0, 2]].clip(0, w)
    c[:, [1, 3]] = c[:, [1, 3]].clip(0, h)
    bw, bh = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    keep = (bw >= min_side) & (bh >= min_side) & (bw * bh >= 0.2 * orig_area)
    return c[keep], cls[keep]


def camera_degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a street or forest camera does to a picture: blur, JPEG, low light, fog."""
    if rng.random() < 0.25:
        if rng.random() < 0.5:
            k = int(rng.choice([3, 5]))
            img = cv2.GaussianBlur(img, (k, k), 0)
        else:
            k = int(rng.choice([5, 7, 9]))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2] = 1.0 / k
            rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < 0.2:  # low light: darker, gamma, sensor noise
        f = img.astype(np.float32) / 255.0
        f = np.power(f, float(rng.uniform(1.3, 2.2))) * float(rng.uniform(0.35, 0.8))
        f += rng.normal(0, float(rng.uniform(0.01, 0.04)), f.shape).astype(np.float32)
        img = (f.clip(0, 1) * 255).astype(np.uint8)
    if rng.random() < 0.15:  # fog/haze
        a = float(rng.uniform(0.2, 0.55))
        haze = float(rng.uniform(170, 235))
        img = (img.astype(np.float32) * (1 - a) + haze * a).astype(np.uint8)
    if rng.random() < 0.3:
        q = int(rng.integers(20, 60))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


def hsv_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gains = rng.uniform(-1, 1, 3) * np.array([0.015, 0.6, 0.35]) + 1
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] * gains[0]) % 180
    hsv[..., 1:] = (hsv[..., 1:] * gains[1:]).clip(0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def sample(ds: Dataset, i: int, rng: np.random.Generator, aug: bool):
    s = ds.size
    canvas = np.full((s, s, 3), 114, np.uint8)
    if not aug:
        img, xyxy, cls = ds.raw(i)
        r = s / max(img.shape[:2])
        boxes = place(img, xyxy, r, canvas, 0, 0)
        return canvas, boxes, cls
    if rng.random() < 0.5:  # mosaic of four
        cx, cy = (int(rng.uniform(0.3 * s, 0.7 * s)) for _ in range(2))
        idx = [i, *rng.integers(0, len(ds), 3)]
        all_b, all_c = [], []
        for k, j in enumerate(idx):
            img, xyxy, cls = ds.raw(int(j))
            r = s / max(img.shape[:2]) * float(rng.uniform(0.4, 0.8))
            nw, nh = img.shape[1] * r, img.shape[0] * r
            x0 = cx - nw if k in (0, 2) else cx
            y0 = cy - nh if k in (0, 1) else cy
            tile = np.full_like(canvas, 114)
            b = place(img, xyxy, r, tile, int(x0), int(y0))
            xa, xb = (0, cx) if k in (0, 2) else (cx, s)
            ya, yb = (0, cy) if k in (0, 1) else (cy, s)
            canvas[ya:yb, xa:xb] = tile[ya:yb, xa:xb]
            b = b.copy()
            b[:, [0, 2]] = b[:, [0, 2]].clip(xa, xb)
            b[:, [1, 3]] = b[:, [1, 3]].clip(ya, yb)
            all_b.append(b)
            all_c.append(cls)
        boxes, cls = np.concatenate(all_b), np.concatenate(all_c)
        # Drop boxes the quadrant cut down to a sliver.
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (bw >= 3) & (bh >= 3)
        boxes, cls = boxes[keep], cls[keep]
    else:
        img, xyxy, cls = ds.raw(i)
        r = s / max(img.shape[:2]) * float(rng.uniform(0.5, 1.3))
        nw, nh = img.shape[1] * r, img.shape[0] * r
        x0 = int(rng.uniform(min(0, s - nw), max(0, s - nw)))
        y0 = int(rng.uniform(min(0, s - nh), max(0, s - nh)))
        boxes = place(img, xyxy, r, canvas, x0, y0)
    boxes, cls = clip_boxes(boxes, cls, s, s)
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1].copy()
        boxes = boxes.copy()
        boxes[:, [0, 2]] = s - boxes[:, [2, 0]]
    canvas = hsv_jitter(canvas, rng)
    canvas = camera_degrade(canvas, rng)
    return canvas, boxes, cls


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    # BGR, 0-255, no normalisation: what yolox_nano.onnx was trained with.
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32))


# --------------------------------------------------------------------------- loss


def grids(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g, st = [], []
    for s in STRIDES:
        n = size // s
        yv, xv = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        g.append(torch.stack((xv, yv), 2).reshape(-1, 2))
        st.append(torch.full((n * n,), float(s)))
    return torch.cat(g).float().to(device), torch.cat(st).to(device)


def flatten(outs) -> torch.Tensor:
    """Per-level (reg, obj, cls) maps to (B, A, 4 + 1 + C), level-major then row-major."""
    parts = []
    for reg, obj, cls in outs:
        b = reg.shape[0]
        parts.append(torch.cat([reg, obj, cls], 1).reshape(b, reg.shape[1] + 1 + cls.shape[1], -1))
    return torch.cat(parts, 2).permute(0, 2, 1)


def decode_boxes(raw: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor) -> torch.Tensor:
    xy = (raw[..., :2] + grid) * stride[:, None]
    wh = torch.exp(raw[..., 2:4].clamp(-10, 10)) * stride[:, None]
    return torch.cat([xy - wh / 2, xy + wh / 2], -1)


def box_iou_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def giou_loss(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    lt = torch.max(p[:, :2], t[:, :2])
    rb = torch.min(p[:, 2:], t[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    ap = (p[:, 2:] - p[:, :2]).clamp(min=0).prod(1)
    at = (t[:, 2:] - t[:, :2]).prod(1)
    union = ap + at - inter + 1e-9
    iou = inter / union
    clt = torch.min(p[:, :2], t[:, :2])
    crb = torch.max(p[:, 2:], t[:, 2:])
    carea = (crb - clt).clamp(min=0).prod(1) + 1e-9
    return 1 - (iou - (carea - union) / carea)


@torch.no_grad()
def simota(
    boxes: torch.Tensor,  # (A, 4) decoded predictions
    obj: torch.Tensor,  # (A,) logits
    cls: torch.Tensor,  # (A, C) logits
    gt: torch.Tensor,  # (G, 4)
    gt_cls: torch.Tensor,  # (G,)
    grid: torch.Tensor,
    stride: torch.Tensor,
):
    centers = (grid + 0.5) * stride[:, None]
    x, y = centers[:, 0], centers[:, 1]
    in_box = (
        (x[None] > gt[:, None, 0])
        & (x[None] < gt[:, None, 2])
        & (y[None] > gt[:, None, 1])
        & (y[None] < gt[:, None, 3])
    )
    gc = (gt[:, :2] + gt[:, 2:]) / 2
    r = 2.5 * stride[None]
    in_ctr = ((x[None] - gc[:, 0:1]).abs() < r) & ((y[None] - gc[:, 1:2]).abs() < r)
    fg = (in_box | in_ctr).any(0)
    if not fg.any():
        return None
    both = (in_box & in_ctr)[:, fg]
    ious = box_iou_t(gt, boxes[fg])  # (G, F)
    nc = cls.shape[1]
    p = (torch.sigmoid(cls[fg]) * torch.sigmoid(obj[fg])[:, None]).sqrt()  # (F, C)
    onehot = F.one_hot(gt_cls, nc).float()  # (G, C)
    pc = p[None].expand(len(gt), -1, -1).clamp(1e-6, 1 - 1e-6)
    cls_cost = F.binary_cross_entropy(pc, onehot[:, None].expand_as(pc), reduction="none").sum(-1)
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * (~both)
    k = torch.topk(ious, min(10, ious.shape[1]), dim=1).values.sum(1).int().clamp(min=1)
    match = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(len(gt)):
        idx = torch.topk(cost[g], int(min(k[g], cost.shape[1])), largest=False).indices
        match[g, idx] = True
    multi = match.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        match[:, multi] = False
        match[best, multi.nonzero().squeeze(1)] = True
    pos = match.any(0)
    gt_idx = match[:, pos].float().argmax(0)
    fg_idx = fg.nonzero().squeeze(1)[pos]
    return fg_idx, gt_idx, ious[gt_idx, pos]


def yolox_loss(outs, targets, grid, stride):
    raw = flatten(outs)
    b, a, _ = raw.shape
    nc = raw.shape[2] - 5
    boxes = decode_boxes(raw, grid, stride)
    obj_t = torch.zeros(b, a, device=raw.device)
    reg_p, reg_t, cls_p, cls_t = [], [], [], []
    for i, (gt, gcls) in enumerate(targets):
        if len(gt) == 0:
            continue
        m = simota(
            boxes[i].detach(), raw[i, :, 4].detach(), raw[i, :, 5:].detach(), gt, gcls, grid, stride
        )
        if m is None:
            continue
        fg_idx, gt_idx, iou = m
        obj_t[i, fg_idx] = 1.0
        reg_p.append(boxes[i, fg_idx])
        reg_t.append(gt[gt_idx])
        cls_p.append(raw[i, fg_idx, 5:])
        cls_t.append(F.one_hot(gcls[gt_idx], nc).float() * iou[:, None])
    n_fg = max(1.0, float(obj_t.sum()))
    l_obj = F.binary_cross_entropy_with_logits(raw[..., 4], obj_t, reduction="sum") / n_fg
    if reg_p:
        l_iou = giou_loss(torch.cat(reg_p), torch.cat(reg_t)).sum() / n_fg
        l_cls = (
            F.binary_cross_entropy_with_logits(torch.cat(cls_p), torch.cat(cls_t), reduction="sum")
            / n_fg
        )
    else:
        l_iou = l_cls = raw.sum() * 0
    return 5.0 * l_iou + l_obj + l_cls, (
        float(l_iou.detach()),
        float(l_obj.detach()),
        float(l_cls.detach()),
    )


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def validate(model: OnnxYolox, ds: Dataset, names: list[str], threshold: float) -> dict:
    model.eval()
    device = next(model.parameters()).device
    grid, stride = grids(ds.size, device)
    results = []
    for i in range(len(ds)):
        img, xyxy, cls = ds.raw(i)
        r = ds.size / max(img.shape[:2])
        canvas = np.full((ds.size, ds.size, 3), 114, np.uint8)
        place(img, xyxy, r, canvas, 0, 0)
        raw = flatten(model(to_tensor([canvas]).to(device)))[0]
        boxes = decode_boxes(raw, grid, stride).cpu().numpy() / r
        scores = (torch.sigmoid(raw[:, 5:]) * torch.sigmoid(raw[:, 4:5])).cpu().numpy()
        cid = scores.argmax(1)
        sc = scores[np.arange(len(cid)), cid]
        keep = sc >= 0.01
        b, s, c = boxes[keep], sc[keep], cid[keep]
        k = nms(b, s, c, 0.45)[:100]
        results.append(ImageResult(xyxy, cls, b[k], s[k], c[k]))
    model.train()
    m50, m5095, per = evaluate(results, names, threshold)
    return {"map50": m50, "map50_95": m5095, "per_class": {k: v.ap50 for k, v in per.items()}}


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--train",
        type=Path,
        action="append",
        required=True,
        help="a YOLO-format folder (images/, labels/) to train on; repeatable",
    )
    ap.add_argument(
        "--valid",
        type=Path,
        action="append",
        default=[],
        help="a folder to choose the best epoch on; repeatable",
    )
    ap.add_argument(
        "--classes",
        required=True,
        help="classes to learn, comma-separated, in the model's order; boxes of "
        "other dataset classes are dropped",
    )
    ap.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="DATA=MODEL",
        help="a dataset class name that means a model class (e.g. 0=plate)",
    )
    ap.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        help="images never read: a CSV with a 'file' column or one name a line",
    )
    ap.add_argument(
        "--group",
        default=None,
        help="regex on an image's original name whose first group names its source "
        "(augmented copies share it): a source with an excluded image is excluded, "
        "and --holdout moves whole sources",
    )
    ap.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        help="fraction of the training sources moved to validation (0-0.5)",
    )
    ap.add_argument(
        "--weights", type=Path, default=ROOT.parent / "shared/assets/models/yolox_nano.onnx"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--no-aug-epochs", type=int, default=3, help="last epochs without augmentation")
    ap.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="full training state after every epoch; a rerun resumes from it",
    )
    ap.add_argument(
        "--stop-after",
        type=int,
        default=0,
        help="stop (resumably) after this many epochs in this run (0: run to the end)",
    )
    ap.add_argument("--log", type=Path, default=None, help="JSON log of the run")
    ap.add_argument("--progress", type=int, default=0, help="print every N batches (0: never)")
    ap.add_argument(
        "--export-best",
        action="store_true",
        help="train no more: export the best epoch so far (OUT.best.pt) of a stopped run",
    )
    args = ap.parse_args(argv)
    if not 0 <= args.holdout <= 0.5:
        ap.error("--holdout: between 0 and 0.5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for p in [args.weights, *args.train, *args.valid, *args.exclude]:
        if not p.exists():
            sys.exit(f"not found: {p}")
    names = [n.strip().lower() for n in args.classes.split(",")]
    aliases = {}
    for a in args.alias:
        data, _, model = a.partition("=")
        if not model or model.strip().lower() not in names:
            sys.exit(f"--alias {a!r}: expected DATA=MODEL with MODEL one of {names}")
        aliases[data.strip().lower()] = model.strip().lower()
    if args.export_best:  # a stopped run: its best epoch, in the shipped format
        best_pt = args.out.with_suffix(".best.pt")
        if not best_pt.is_file():
            sys.exit(f"{best_pt}: no best epoch saved yet")
        model = OnnxYolox(args.weights, len(names))
        model.load_state_dict(torch.load(best_pt, map_location="cpu"))
        model.export(args.weights, args.out, names)
        print(f"wrote {args.out} from {best_pt}")
        if args.log and args.checkpoint is not None and args.checkpoint.is_file():
            state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
            summary = {
                "out": str(args.out),
                "classes": names,
                "train": [str(p) for p in args.train],
                "valid": [str(p) for p in args.valid],
                "exclude": [str(p) for p in args.exclude],
                "stopped": f"after epoch {state['epoch']} of {args.epochs} (--export-best)",
                "best_valid_map50": state["best"],
                "epochs": args.epochs,
                "seconds": round(state["seconds"]),
                "device": args.device,
                "threads": args.threads or torch.get_num_threads(),
                "history": state["history"],
            }
            args.log.parent.mkdir(parents=True, exist_ok=True)
            args.log.write_text(json.dumps(summary, indent=1))
        return 0
    excluded: set[str] = set()
    for p in args.exclude:
        excluded |= read_name_list(p)
    pattern = re.compile(args.group) if args.group else None
    folders = [*args.train, *args.valid]
    mappings = [class_mapping(f, names, aliases) for f in folders]
    train_items, valid_items, split_report = build_items(
        args.train, args.valid, excluded, pattern, args.holdout, args.seed
    )
    if not valid_items:
        sys.exit("no validation images: give --valid or --holdout")

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(args.seed)

    train = Dataset(train_items, args.size, mappings)
    valid = Dataset(valid_items, args.size, mappings)
    split_report.update(
        train_images=len(train),
        train_boxes=train.boxes(),
        valid_images=len(valid),
        valid_boxes=valid.boxes(),
    )
    print(
        json.dumps(
            {
                "split": {
                    k: v if not isinstance(v, list) else len(v) for k, v in split_report.items()
                }
            }
        ),
        flush=True,
    )
    model = OnnxYolox(args.weights, len(names)).to(device)
    head = [p for n, p in model.params.items() if p.ndim == 1]
    weights = [p for n, p in model.params.items() if p.ndim > 1]
    opt = torch.optim.AdamW(
        [{"params": weights, "weight_decay": 5e-4}, {"params": head, "weight_decay": 0.0}],
        lr=args.lr,
    )
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = min(steps_per_epoch * 2, total // 5)

    def lr_at(step: int) -> float:
        if step < warm:
            return args.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    grid, stride = grids(args.size, device)
    best, history, step, first_epoch, spent = -1.0, [], 0, 0, 0.0
    tmp = args.out.with_suffix(".best.pt")

    ckpt = args.checkpoint
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state["args"] != {k: str(v) for k, v in vars(args).items() if k not in RESUME_FREE}:
            sys.exit(f"{ckpt}: made with other arguments; delete it or use the same command")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        random.setstate(state["py_rng"])
        np.random.set_state(state["np_rng"])
        torch.set_rng_state(state["torch_rng"])
        best, history, step = state["best"], state["history"], state["step"]
        first_epoch, spent = state["epoch"], state["seconds"]
        print(f"resumed from {ckpt} after epoch {first_epoch}", flush=True)
    started = time.monotonic()
    ran = 0
    for epoch in range(first_epoch, args.epochs):
        if args.stop_after and ran >= args.stop_after:
            print(f"stopped after epoch {epoch} (--stop-after); rerun to resume", flush=True)
            return 0
        aug = epoch < args.epochs - args.no_aug_epochs
        order = rng.permutation(len(train))
        t0 = time.monotonic()
        losses = []
        for s0 in range(0, len(order), args.batch):
            batch = [sample(train, int(i), rng, aug) for i in order[s0 : s0 + args.batch]]
            x = to_tensor([b[0] for b in batch]).to(device)
            targets = [
                (
                    torch.from_numpy(b[1]).float().to(device),
                    torch.from_numpy(b[2]).long().to(device),
                )
                for b in batch
            ]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss, parts = yolox_loss(model(x), targets, grid, stride)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            losses.append([float(loss.detach()), *parts])
            step += 1
            if args.progress and len(losses) % args.progress == 0:
                done = len(losses) / steps_per_epoch
                took = time.monotonic() - t0
                print(f"  epoch {epoch + 1}: {done:.0%} in {took:.0f} s", flush=True)
        val = validate(model, valid, names, 0.3)
        mean = np.mean(losses, axis=0).round(3).tolist()
        row = {"epoch": epoch + 1, "loss": mean, "valid": val, "s": round(time.monotonic() - t0, 1)}
        history.append(row)
        print(json.dumps(row), flush=True)
        if val["map50"] > best:
            best = val["map50"]
            torch.save(model.state_dict(), tmp)
        ran += 1
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "args": {k: str(v) for k, v in vars(args).items() if k not in RESUME_FREE},
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "rng": rng.bit_generator.state,
                    "py_rng": random.getstate(),
                    "np_rng": np.random.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "best": best,
                    "history": history,
                    "step": step,
                    "epoch": epoch + 1,
                    "seconds": spent + time.monotonic() - started,
                },
                ckpt.with_suffix(".tmp"),
            )
            ckpt.with_suffix(".tmp").replace(ckpt)
    model.load_state_dict(torch.load(tmp, map_location=device))
    model.export(args.weights, args.out, names)
    tmp.unlink(missing_ok=True)
    summary = {
        "out": str(args.out),
        "classes": names,
        "train": [str(p) for p in args.train],
        "valid": [str(p) for p in args.valid],
        "exclude": [str(p) for p in args.exclude],
        "split": split_report,
        "best_valid_map50": best,
        "epochs": args.epochs,
        "seconds": round(spent + time.monotonic() - started),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "history": history,
    }
    if args.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out}: best valid mAP@0.5 {best:.3f} in {summary['seconds']} s")
    return 0


# Arguments a resumed run may change without changing what is trained.
RESUME_FREE = {"checkpoint", "stop_after", "log", "threads", "device", "progress", "export_best"}


if __name__ == "__main__":
    raise SystemExit(main())
