"""Synthetic Vietnamese plates in the real formats and province codes: one-line car
plates (``30A-123.45``, older ``29A-1234``, two-letter series ``51LD-123.45``) and two-line
motorbike plates (``29-B1`` over ``123.45``), in varied fonts, blurred, rotated, small and
JPEG-compressed, on a vehicle-coloured surround. Ground truth is the canonical text
``parse`` returns, and the plate's box in the image (what a plate detector would give the
reader)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.analytics.plates import PROVINCES

SERIES = "ABCDEFGHKLMNPSTUVXYZ"  # letters used on Vietnamese plates
PROVINCE_CODES = sorted(c for c in PROVINCES if c != 80)  # 80: central agencies only
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
TTF = ["DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSansMono-Bold.ttf",
       "DejaVuSerif-Bold.ttf", "DejaVuSerifCondensed-Bold.ttf"]  # fmt: skip
HERSHEY = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX]


@dataclass
class Plate:
    text: str  # canonical
    kind: str  # car / car_old / car_two_letter / motorbike
    font: str
    image: np.ndarray
    box: np.ndarray  # the plate in ``image``: x1, y1, x2, y2


def _number(rng: np.random.Generator, kind: str) -> tuple[str, list[str]]:
    prov = f"{PROVINCE_CODES[rng.integers(len(PROVINCE_CODES))]:02d}"
    letter = SERIES[rng.integers(len(SERIES))]
    five = f"{rng.integers(0, 100000):05d}"
    four = f"{rng.integers(0, 10000):04d}"
    if kind == "car":
        return f"{prov}{letter}-{five[:3]}.{five[3:]}", [f"{prov}{letter}-{five[:3]}.{five[3:]}"]
    if kind == "car_old":
        return f"{prov}{letter}-{four}", [f"{prov}{letter}-{four}"]
    if kind == "car_two_letter":
        l2 = SERIES[rng.integers(len(SERIES))]
        t = f"{prov}{letter}{l2}-{five[:3]}.{five[3:]}"
        return t, [t]
    d = int(rng.integers(1, 10))
    return f"{prov}{letter}{d}-{five[:3]}.{five[3:]}", [
        f"{prov}-{letter}{d}",
        f"{five[:3]}.{five[3:]}",
    ]


def _draw_lines(lines: list[str], font: str, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 245, np.uint8)
    cv2.rectangle(img, (4, 4), (w - 5, h - 5), (20, 20, 20), 4)
    n = len(lines)
    if font.endswith(".ttf") and (FONT_DIR / font).is_file():
        from PIL import Image, ImageDraw, ImageFont

        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        px = int(h / n * 0.72)
        f = ImageFont.truetype(str(FONT_DIR / font), px)
        for i, line in enumerate(lines):
            box = draw.textbbox((0, 0), line, font=f)
            tw, th = box[2] - box[0], box[3] - box[1]
            while tw > w - 24 and px > 10:
                px -= 2
                f = ImageFont.truetype(str(FONT_DIR / font), px)
                box = draw.textbbox((0, 0), line, font=f)
                tw, th = box[2] - box[0], box[3] - box[1]
            y = int(h * (i + 0.5) / n - th / 2 - box[1])
            draw.text(((w - tw) // 2 - box[0], y), line, font=f, fill=(15, 15, 15))
        return np.asarray(pil).copy()
    face = HERSHEY[sum(map(ord, font)) % len(HERSHEY)]  # str hash() differs per process
    for i, line in enumerate(lines):
        scale = 1.0
        (tw, th), _ = cv2.getTextSize(line, face, scale, 3)
        scale = min((w - 30) / tw, (h / n * 0.6) / th)
        (tw, th), _ = cv2.getTextSize(line, face, scale, 3)
        y = int(h * (i + 0.5) / n + th / 2)
        cv2.putText(img, line, ((w - tw) // 2, y), face, scale, (15, 15, 15), 3, cv2.LINE_AA)
    return img


def degrade(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """As a traffic camera sees it: on a car, small, tilted, blurred, compressed; and
    where the plate ended up (x1, y1, x2, y2: the box a plate detector would draw)."""
    h, w = img.shape[:2]
    pad = int(0.25 * max(h, w))
    body = np.array(rng.integers(40, 200, 3), np.uint8)
    canvas = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[:] = body
    canvas[pad : pad + h, pad : pad + w] = img
    angle = rng.uniform(-8, 8)
    m = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), angle, 1.0)
    shear = rng.uniform(-0.12, 0.12)
    m[0, 1] += shear
    canvas = cv2.warpAffine(
        canvas, m, (canvas.shape[1], canvas.shape[0]), borderValue=body.tolist()
    )
    corners = np.array([[pad, pad], [pad + w, pad], [pad + w, pad + h], [pad, pad + h]], np.float32)
    corners = cv2.transform(corners[None], m)[0]
    target_w = int(rng.uniform(70, 200)) if w > h * 1.8 else int(rng.uniform(50, 130))
    f = target_w / w
    box = np.concatenate([corners.min(0), corners.max(0)]) * f
    small = cv2.resize(canvas, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(0.0, 1.5)
    if sigma > 0.3:
        small = cv2.GaussianBlur(small, (0, 0), sigma)
    noise = rng.normal(0, rng.uniform(0, 6), small.shape)
    small = np.clip(small.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(45, 90))])
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR), box


def plates(n: int = 200, seed: int = 5) -> list[Plate]:
    rng = np.random.default_rng(seed)
    kinds = ["car", "car_old", "car_two_letter", "motorbike"]
    fonts = TTF + ["hershey-simplex", "hershey-duplex", "hershey-triplex"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        font = fonts[int(rng.integers(len(fonts)))]
        text, lines = _number(rng, kind)
        size = (520, 112) if len(lines) == 1 else (280, 200)
        image, box = degrade(_draw_lines(lines, font, size), rng)
        out.append(Plate(text, kind, font, image, box))
    return out
