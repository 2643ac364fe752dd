"""JPEG evidence: the frame with the event's box drawn on it."""

from __future__ import annotations

import cv2
import numpy as np


def render_snapshot(
    frame: np.ndarray,
    box_px: tuple[int, int, int, int],
    caption: str,
    quality: int = 80,
) -> bytes:
    img = frame.copy()
    x1, y1, x2, y2 = box_px
    thickness = max(1, round(min(img.shape[:2]) / 240))
    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), thickness)
    scale = max(0.4, min(img.shape[:2]) / 600)
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    ty = max(th + base, y1)
    cv2.rectangle(img, (x1, ty - th - base), (x1 + tw, ty), (0, 0, 255), -1)
    cv2.putText(
        img,
        caption,
        (x1, ty - base),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
