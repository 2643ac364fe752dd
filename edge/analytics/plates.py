"""Vietnamese licence plates: format validation, OCR (rapidocr-onnxruntime), voting.

Formats (Circular 58/2020 and earlier series still on the road):
- cars, one line: ``30A-123.45`` (province, series letter, 5 digits) or older
  ``29A-1234`` (4 digits); two-letter series such as ``51LD-123.45``;
- motorbikes, two lines: ``29-B1`` over ``123.45`` (series letter + digit), written here
  on one line as ``29B1-123.45``.
Province codes are 11 to 99.

OCR confuses some glyphs (O/0, I/1, B/8, S/5, Z/2, G/6, D/0, A/4); a read is corrected by
position (a digit where the format wants a digit, a letter where it wants a letter) and
then must match a format. Several frames are read and the valid reads voted on; with no
valid read the plate is ``None`` with the reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "U": "0", "I": "1", "L": "1", "T": "1", "J": "1",
            "Z": "2", "S": "5", "B": "8", "G": "6", "A": "4"}  # fmt: skip
TO_LETTER = {"0": "D", "1": "T", "2": "Z", "4": "A", "5": "S", "6": "G", "8": "B"}


def normalize(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def _fix(chars: str, digit: bool) -> str:
    table = TO_DIGIT if digit else TO_LETTER
    return "".join(table.get(c, c) for c in chars)


def parse(text: str, top: str | None = None) -> str | None:
    """The plate in canonical form, or None when the text is not a Vietnamese plate.

    One line is read as a car plate first (``30A12345`` is ``30A-123.45``, the current
    5-digit series); ``top``, the upper line of a two-line plate, fixes the series
    length (``29B1`` over ``1234`` is ``29B1-1234``)."""
    s = normalize(text if top is None else top + text)
    if not 7 <= len(s) <= 10:
        return None
    lengths = (1, 2) if top is None else (len(normalize(top)) - 2,)
    if top is None and "-" in text:  # a dash follows the series (car) or province (bike)
        head = len(normalize(text.split("-")[0]))
        lengths = (2, 1) if head == 2 else (head - 2,)
    dotted = "." in text  # a dot splits a 5-digit number 3 + 2
    for series_len in lengths:
        if series_len not in (1, 2):
            continue
        number = s[2 + series_len :]
        if not 4 <= len(number) <= 5 or (dotted and len(number) != 5):
            continue
        prov = _fix(s[:2], digit=True)
        first = _fix(s[2], digit=False)
        second = s[3] if series_len == 2 else ""
        num = _fix(number, digit=True)
        if not (prov.isdigit() and 11 <= int(prov) <= 99 and first.isalpha()):
            continue
        if second and not (second.isalpha() or second.isdigit()):
            continue
        if not num.isdigit():
            continue
        num = f"{num[:3]}.{num[3:]}" if len(num) == 5 else num
        return f"{prov}{first}{second}-{num}"
    return None


def vote(reads: Sequence[tuple[str | None, float]]) -> tuple[str | None, str]:
    """Combine per-frame reads (canonical plate or None, confidence): (plate, reason)."""
    valid = [(p, c) for p, c in reads if p]
    if not reads:
        return None, "no frame to read"
    if not valid:
        return None, "no read matched a Vietnamese plate format"
    score: dict[str, float] = defaultdict(float)
    for p, c in valid:
        score[p] += c
    ranked = sorted(score.items(), key=lambda kv: -kv[1])
    best, s = ranked[0]
    if len(ranked) > 1 and ranked[1][1] >= 0.8 * s:
        return None, f"reads disagree ({best} vs {ranked[1][0]})"
    return best, f"{sum(1 for p, _ in valid if p == best)} of {len(reads)} reads agree"


class PlateReader:
    """OCR a vehicle or plate crop with rapidocr-onnxruntime (models ship in its wheel)."""

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "plate OCR needs rapidocr-onnxruntime: pip install --no-deps "
                "rapidocr-onnxruntime==1.4.4 (scripts/setup.sh does; see README)"
            ) from exc
        self._ocr = RapidOCR()

    def lines(self, img: np.ndarray) -> list[tuple[float, float, str, float]]:
        """Text lines found: (y centre, x left, text, confidence)."""
        h = img.shape[0]
        if h < 64:  # small crops read better enlarged
            f = 64 / h
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        result, _ = self._ocr(img)
        out = []
        for box, text, conf in result or []:
            pts = np.asarray(box, np.float32)
            out.append((float(pts[:, 1].mean()), float(pts[:, 0].min()), text, float(conf)))
        return sorted(out)

    def read(self, img: np.ndarray) -> tuple[str | None, float, str]:
        """(plate or None, confidence, raw text) for one image: single lines, then pairs
        of lines one above the other (two-line motorbike plates)."""
        lines = self.lines(img)
        raw = " | ".join(t for _, _, t, _ in lines)
        best: tuple[str | None, float] = (None, 0.0)
        for _, _, text, conf in lines:
            p = parse(text)
            if p and conf > best[1]:
                best = (p, conf)
        for (y1, _, t1, c1), (y2, _, t2, c2) in zip(lines, lines[1:], strict=False):
            p = parse(t2, top=t1)
            if p and y2 > y1 and min(c1, c2) > best[1]:
                best = (p, min(c1, c2))
        return best[0], best[1], raw

    def __call__(self, crops: Sequence[np.ndarray]) -> tuple[str | None, str]:
        reads = []
        for crop in crops:
            p, c, _ = self.read(crop)
            reads.append((p, c))
        return vote(reads)


def reader_or_reason() -> tuple[Any, str | None]:
    """A PlateReader, or None and why (so evidence says why there is no plate)."""
    try:
        return PlateReader(), None
    except RuntimeError as exc:
        return None, str(exc)
