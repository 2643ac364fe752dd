"""Fire and smoke composited onto real footage, with known truth (tests and eval_fire.py).

Sprites come from the CC BY 4.0 fire/smoke dataset's *test* split (never trained on); a
crop is pasted with a feathered elliptical mask, its bottom centre at a fixed base.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from edge.inference.metrics import read_yolo_labels, split_items


def frames_of(path: Path, width: int = 640) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            img = f.to_ndarray(format="bgr24")
            if img.shape[1] != width:
                h = round(img.shape[0] * width / img.shape[1])
                img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
            out.append(img)
    return out


def crops(split: Path, cls: int, min_side: int = 40) -> list[np.ndarray]:
    """Fire (0) or smoke (2) crops from a split's labels (dataset class numbers)."""
    out = []
    for img_path, lbl_path in split_items(str(split)):
        img = cv2.imread(img_path)
        xyxy, c = read_yolo_labels(lbl_path, img.shape[1], img.shape[0])
        for (x1, y1, x2, y2), k in zip(xyxy.astype(int), c, strict=True):
            if k == cls and x2 - x1 >= min_side and y2 - y1 >= min_side:
                out.append(img[max(0, y1) : y2, max(0, x1) : x2].copy())
    return out


def feather(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return np.clip((1.0 - d) * 2.0, 0, 1)[..., None]


def paste(bg: np.ndarray, sprite: np.ndarray, base: tuple[int, int], height: int, alpha: float):
    """Sprite scaled to ``height`` px with its bottom centre at ``base``."""
    h, w = sprite.shape[:2]
    nh = max(8, height)
    nw = max(8, round(w * nh / h))
    s = cv2.resize(sprite, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x0, y0 = base[0] - nw // 2, base[1] - nh
    H, W = bg.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + nw), min(H, y0 + nh)
    if xb <= xa or yb <= ya:
        return bg
    m = feather(nh, nw)[ya - y0 : yb - y0, xa - x0 : xb - x0] * alpha
    out = bg.astype(np.float32)
    out[ya:yb, xa:xb] = out[ya:yb, xa:xb] * (1 - m) + s[ya - y0 : yb - y0, xa - x0 : xb - x0] * m
    return out.clip(0, 255).astype(np.uint8)


def write_video(frames: list[np.ndarray], path: Path, fps: int = 25) -> Path:
    """H.264 MP4 (1 s GOP, no B-frames) of BGR frames, as a camera would stream it."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "g": str(fps), "bf": "0"}
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    return path
