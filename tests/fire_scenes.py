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
from edgewatch.demo_media import jitter  # noqa: F401  (the same camera noise as the demo)


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
    """A soft-edged, nearly rectangular mask (a superellipse): no visible oval."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.abs((xx - w / 2) / (w / 2)) ** 4 + np.abs((yy - h / 2) / (h / 2)) ** 4
    return np.clip((1.0 - d) * 3.0, 0, 1)[..., None]


def paste(
    bg: np.ndarray,
    sprite: np.ndarray,
    base: tuple[int, int],
    height: int,
    alpha: float,
    emissive: bool = False,
) -> np.ndarray:
    """Sprite scaled to ``height`` px with its bottom centre at ``base``.

    ``emissive`` (fire): blended as light ("screen"), weighted by how bright and warm each
    sprite pixel is, so the flames add to the scene and the sprite's dark surroundings
    vanish. Otherwise (smoke): alpha-blended through the soft mask.
    """
    h, w = sprite.shape[:2]
    nh = max(8, height)
    nw = max(8, round(w * nh / h))
    s = cv2.resize(sprite, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x0, y0 = base[0] - nw // 2, base[1] - nh
    H, W = bg.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + nw), min(H, y0 + nh)
    if xb <= xa or yb <= ya:
        return bg
    m = feather(nh, nw) * alpha
    if emissive:
        warm = (s[..., 2:3] - s[..., 0:1]).clip(0, 255) / 255.0
        bright = s.max(axis=2, keepdims=True) / 255.0
        m = m * np.clip(1.5 * bright * (0.5 + warm), 0, 1)
    m = m[ya - y0 : yb - y0, xa - x0 : xb - x0]
    part = s[ya - y0 : yb - y0, xa - x0 : xb - x0]
    out = bg.astype(np.float32)
    region = out[ya:yb, xa:xb]
    if emissive:
        screen = 255.0 - (255.0 - region) * (255.0 - part) / 255.0
        out[ya:yb, xa:xb] = region * (1 - m) + screen * m
    else:
        out[ya:yb, xa:xb] = region * (1 - m) + part * m
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


def real_scenes(split: Path, width: int = 640, max_cover: float = 0.5):
    """Real fire/smoke frames of a split with a known 'before': the labelled fire and smoke
    inpainted away. Yields (name, kind, before, after, boxes in pixels) per usable image
    (images where the boxes cover more than ``max_cover`` of the frame have no credible
    'before' and are skipped)."""
    for img_path, lbl_path in split_items(str(split)):
        img = cv2.imread(img_path)
        if img is None:
            continue
        h = round(img.shape[0] * width / img.shape[1])
        img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
        xyxy, cls = read_yolo_labels(lbl_path, width, h)
        keep = (cls == 0) | (cls == 2)  # dataset classes: 0 Fire, 1 default, 2 smoke
        xyxy, cls = xyxy[keep], cls[keep]
        if not len(cls):
            continue
        mask = np.zeros((h, width), np.uint8)
        for x1, y1, x2, y2 in xyxy.astype(int):
            cv2.rectangle(mask, (x1 - 4, y1 - 4), (x2 + 4, y2 + 4), 255, -1)
        if mask.mean() / 255 > max_cover:
            continue
        before = cv2.inpaint(img, mask, 7, cv2.INPAINT_TELEA)
        kind = "fire" if (cls == 0).any() else "smoke"
        yield Path(img_path).stem[:40], kind, before, img, xyxy
