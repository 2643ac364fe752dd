"""Vietnamese licence plates: found by a plate detector, read on the plate box, null when unsure.

Why it is built this way: a plate in a violation is a fine sent to a person. A wrong plate
is worse than no plate, so every step may answer ``None`` with a reason, and none guesses.
The first version OCR'd whole vehicle crops and paired any two text lines one above the
other; on real street photos it glued text from two vehicles into plates that do not exist
and read a neighbour's plate as this vehicle's. So:

- **Where**: ``plate_nano`` (YOLOX-Nano fine-tuned here, see ``models/cards/plate_nano.md``)
  finds plate boxes; a plate is read only inside its own box, and belongs to a vehicle only
  when it sits where that vehicle's plate can be and no other vehicle claims it as well.
- **Rectify**: the box (plus a margin) is cut out at a fixed working size and de-skewed by
  the angle of its text lines; each line is then cut out along its own quadrilateral
  (perspective) for the recogniser.
- **OCR**: rapidocr-onnxruntime's detector and recogniser (PP-OCRv4, models in its wheel),
  driven here so each character keeps its own confidence (the CTC peak of its frames).
- **Lines**: text boxes on one row (vertical overlap) are merged left to right (a one-line
  plate split in two boxes); two rows pair into a two-line plate only when both lie inside
  the same plate box, centred over each other, of similar height and adjacent.
- **Formats** (Circular 58/2020 and the older series still on the road):
  cars ``30A-123.45``, ``29A-1234``, two-letter series ``51LD-123.45`` (one line, or
  ``51F`` over ``324.88`` on square plates); motorbikes ``59-C2`` over ``316.01`` or
  ``72-S1`` over ``4860``, written ``59C2-316.01``; military ``BH-53-30``; diplomatic
  ``80-NG-166-71``. Province codes are the ones in use (``PROVINCES``).
- **Confusions** (O/0, I/1, B/8, S/5, Z/2, G/6, D/0, A/4) are corrected only where the
  format leaves no choice (a digit position, a letter position), and a corrected character
  keeps only part of its confidence. A character the recogniser does not know for a plate
  glyph (anything but A-Z, 0-9 and the separators) makes the row unreadable rather than
  being dropped (dropping a misread digit turns ``51F-311.18`` into a valid ``51F-3118``).
- **Certainty**: every character must reach ``min_char`` (look-alike letters that no
  format tells apart, G and C in the plate font, 0.9); a read with two different valid
  parses is null ("ambiguous"); across frames a plate is reported only when at least
  ``min_reads`` reads agree and no other plate has half as many.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

# Province codes in use on civil plates (80: central agencies, also on diplomatic plates).
PROVINCES = frozenset(
    [11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
     34, 35, 36, 37, 38, 40, 43, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
     62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83,
     84, 85, 86, 88, 89, 90, 92, 93, 94, 95, 97, 98, 99]
)  # fmt: skip
SERIES = frozenset("ABCDEFGHKLMNPRSTUVXYZ")  # letters of civil series (no I, J, O, Q, W)
TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "U": "0", "I": "1", "L": "1", "T": "1", "J": "1",
            "Z": "2", "S": "5", "B": "8", "G": "6", "A": "4"}  # fmt: skip
TO_LETTER = {"0": "D", "1": "T", "2": "Z", "4": "A", "5": "S", "6": "G", "8": "B"}
DOTS, DASHES, SPACES = frozenset(".·,"), frozenset("-—–_"), frozenset(" :")
CORRECTED = 0.6  # a character changed by a confusion correction keeps this share of its score
# Every character of a plate must score this much. Chosen on 400 synthetic plates
# (tests/plate_scenes.py, seed 5), not on the real test photos: 0.6 let 2 wrong plates
# through (381 right), 0.7 one (378 right), 0.85 none (364 right).
MIN_CHAR = 0.7
# Letters the plate font draws almost alike (its G has no spur: G/C), which no format can
# tell apart: they need a higher score than other characters.
LOOKALIKE = {"C": 0.9, "G": 0.9}


# --------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class Chars:
    """Text with one confidence per character (alphanumerics only, upper case), and the
    separator read just before each character (``-``, ``.`` or nothing)."""

    text: str
    conf: tuple[float, ...]
    marks: tuple[str, ...] = ()

    @staticmethod
    def of(text: str, conf: Sequence[float] | None = None) -> Chars | None:
        """From recogniser output: None when it holds a glyph no plate has."""
        conf = [1.0] * len(text) if conf is None else list(conf)
        out, cs, marks, mark = [], [], [], ""
        for ch, c in zip(text.upper(), conf, strict=True):
            if ch.isascii() and ch.isalnum():
                out.append(ch)
                cs.append(float(c))
                marks.append(mark)
                mark = ""
            elif ch in DOTS:
                mark = "."
            elif ch in DASHES:
                mark = "-"
            elif ch not in SPACES:
                return None
        return Chars("".join(out), tuple(cs), tuple(marks))

    def __add__(self, other: Chars) -> Chars:
        return Chars(self.text + other.text, self.conf + other.conf, self.marks + other.marks)

    def marks_ok(self, allowed: dict[int, str], offset: int = 0) -> bool:
        """Every separator read sits where the format prints one (index: the character it
        precedes; a 4-digit number has none, a 5-digit one a dot after its third digit)."""
        return all(not m or m in allowed.get(i + offset, "") for i, m in enumerate(self.marks))


@dataclass(frozen=True)
class Parsed:
    plate: str  # canonical
    kind: str  # car / motorbike / military / diplomatic
    conf: tuple[float, ...]  # per character of the plate's alphanumerics
    corrections: int


def _fix(ch: str, c: float, want: str) -> tuple[str, float, int] | None:
    """One character where the format wants a digit ('d'), a series letter ('L'), any
    letter ('A') or a series letter or digit ('x'): (char, confidence, corrected?) or None."""
    if want == "x":
        return (ch, c, 0) if ch.isdigit() or ch in SERIES else None
    if want == "d":
        if ch.isdigit():
            return ch, c, 0
        return (TO_DIGIT[ch], c * CORRECTED, 1) if ch in TO_DIGIT else None
    letters = SERIES if want == "L" else frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if ch in letters:
        return ch, c, 0
    fixed = TO_LETTER.get(ch)
    return (fixed, c * CORRECTED, 1) if fixed and fixed in letters else None


def _apply(s: Chars, pattern: str) -> tuple[str, tuple[float, ...], int] | None:
    if len(s.text) != len(pattern):
        return None
    out, cs, n = [], [], 0
    for ch, c, want in zip(s.text, s.conf, pattern, strict=True):
        r = _fix(ch, c, want)
        if r is None:
            return None
        out.append(r[0])
        cs.append(r[1])
        n += r[2]
    return "".join(out), tuple(cs), n


def _num(digits: str) -> str:
    return f"{digits[:3]}.{digits[3:]}" if len(digits) == 5 else digits


# One-row formats: pattern, where separators may be read, kind, canonical writer.
ONE_ROW: tuple[tuple[str, dict[int, str], str, Any], ...] = (
    ("ddLdddd", {3: "-."}, "car", lambda t: f"{t[:3]}-{t[3:]}"),
    ("ddLddddd", {3: "-.", 6: "."}, "car", lambda t: f"{t[:3]}-{_num(t[3:])}"),
    ("ddLLdddd", {4: "-."}, "car", lambda t: f"{t[:4]}-{t[4:]}"),
    ("ddLLddddd", {4: "-.", 7: "."}, "car", lambda t: f"{t[:4]}-{_num(t[4:])}"),
    ("AAdddd", {2: "-", 4: "-"}, "military", lambda t: f"{t[:2]}-{t[2:4]}-{t[4:]}"),
    ("ddAAddddd", {2: "-", 4: "-", 7: "-"}, "diplomatic",
     lambda t: f"{t[:2]}-{t[2:4]}-{t[4:7]}-{t[7:]}"),
)  # fmt: skip
DIPLOMATIC = frozenset(["NG", "NN", "QT", "CV"])  # foreign missions, organisations, staff


def _province_ok(text: str, kind: str) -> bool:
    if kind == "military":
        return True
    if kind == "diplomatic":
        return text[2:4] in DIPLOMATIC and int(text[:2]) in PROVINCES
    return int(text[:2]) in PROVINCES


def parse_one_line(s: Chars) -> list[Parsed]:
    """Every reading of one text row as a whole plate (usually 0 or 1)."""
    out = []
    for pattern, allowed, kind, write in ONE_ROW:
        r = _apply(s, pattern)
        if r is None or not s.marks_ok(allowed) or not _province_ok(r[0], kind):
            continue
        out.append(Parsed(write(r[0]), kind, r[1], r[2]))
    return out


def parse_two_lines(top: Chars, bottom: Chars) -> list[Parsed]:
    """Readings of a two-row plate: province and series over the number (cars' square
    plates ``51F`` / ``324.88``, motorbikes ``59-C2`` / ``316.01``), or a military ``BH``
    over ``52-40``."""
    out = []
    n = len(bottom.text)
    b = _apply(bottom, "d" * n) if n in (4, 5) else None
    if b is None:
        return out
    if n == 4 and bottom.marks_ok({2: "-"}):
        t = _apply(top, "AA")
        if t is not None and top.marks_ok({}):
            out.append(
                Parsed(f"{t[0]}-{b[0][:2]}-{b[0][2:]}", "military", t[1] + b[1], t[2] + b[2])
            )
    if not bottom.marks_ok({3: "."} if n == 5 else {}):
        return out
    for tp, kind in (("ddL", "car"), ("ddLx", "motorbike")):
        t = _apply(top, tp)
        if t is None or not top.marks_ok({2: "-."}) or int(t[0][:2]) not in PROVINCES:
            continue
        out.append(Parsed(f"{t[0]}-{_num(b[0])}", kind, t[1] + b[1], t[2] + b[2]))
    return out


def parse(text: str, top: str | None = None) -> str | None:
    """The canonical plate for a text (``top``: the upper row of a two-row plate), or None
    when it is not exactly one Vietnamese plate. Confidences are taken as certain."""
    s = Chars.of(text)
    if s is None:
        return None
    if top is None:
        found = parse_one_line(s)
    else:
        t = Chars.of(top)
        found = parse_two_lines(t, s) if t is not None else []
    if not found:
        return None
    fewest = min(p.corrections for p in found)
    plates = {p.plate for p in found if p.corrections == fewest}
    return plates.pop() if len(plates) == 1 else None


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Line:
    """One row of text in the rectified plate image."""

    chars: Chars | None  # None: not readable as plate text (``problem`` says why)
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 (rectified working pixels)
    raw: str
    problem: str | None = None

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class PlateRead:
    """One plate box read once: the plate, or None and why."""

    plate: str | None
    reason: str
    confidence: float = 0.0  # the least confident character
    chars: tuple[float, ...] = ()
    kind: str | None = None
    raw: str = ""


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def group_rows(lines: list[Line]) -> list[Line]:
    """Text boxes on one row merged left to right (one line split into two boxes)."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda r: (r.box[1] + r.box[3]) / 2):
        for row in rows:
            ref = row[0]
            ov = _overlap((ln.box[1], ln.box[3]), (ref.box[1], ref.box[3]))
            if ov >= 0.5 * min(ln.height, ref.height):
                row.append(ln)
                break
        else:
            rows.append([ln])
    out = []
    for row in rows:
        row.sort(key=lambda r: r.box[0])
        chars: Chars | None = Chars("", ())
        problem = next((ln.problem for ln in row if ln.problem), None)
        for a, b in zip(row, row[1:], strict=False):
            if b.box[0] - a.box[2] > 1.5 * max(a.height, b.height):
                problem = "text boxes on one row too far apart to be one plate line"
        for ln in row:
            chars = None if chars is None or ln.chars is None else chars + ln.chars
        box = (
            min(r.box[0] for r in row),
            min(r.box[1] for r in row),
            max(r.box[2] for r in row),
            max(r.box[3] for r in row),
        )
        raw = " ".join(r.raw for r in row)
        out.append(Line(None if problem else chars, box, raw, problem))
    return sorted(out, key=lambda r: r.box[1])


def stacked(top: Line, bottom: Line) -> bool:
    """The two rows of one two-row plate: adjacent, centred over each other, alike in size."""
    if not 0.6 <= top.height / max(bottom.height, 1e-6) <= 1.7:
        return False
    gap = bottom.box[1] - top.box[3]
    if not -0.35 * min(top.height, bottom.height) <= gap <= 0.8 * max(top.height, bottom.height):
        return False
    ov = _overlap((top.box[0], top.box[2]), (bottom.box[0], bottom.box[2]))
    if ov < 0.6 * min(top.box[2] - top.box[0], bottom.box[2] - bottom.box[0]):
        return False
    ct, cb = (top.box[0] + top.box[2]) / 2, (bottom.box[0] + bottom.box[2]) / 2
    return abs(ct - cb) <= 0.25 * max(top.box[2] - top.box[0], bottom.box[2] - bottom.box[0])


def decide(rows: list[Line], min_char: float) -> PlateRead:
    """The plate in a plate box's rows of text, or None and why."""
    raw = " | ".join(r.raw for r in rows)
    if not rows:
        return PlateRead(None, "no text in the plate box", raw=raw)
    found: list[Parsed] = []
    for r in rows:
        if r.chars is not None:
            found += parse_one_line(r.chars)
    for top, bottom in zip(rows, rows[1:], strict=False):
        if top.chars is not None and bottom.chars is not None and stacked(top, bottom):
            found += parse_two_lines(top.chars, bottom.chars)
    if not found:
        problem = next((r.problem for r in rows if r.problem), None)
        if problem:
            return PlateRead(None, problem, raw=raw)
        return PlateRead(None, "the text matches no Vietnamese plate format", raw=raw)
    fewest = min(p.corrections for p in found)  # a reading needing more corrections loses
    found = [p for p in found if p.corrections == fewest]
    plates = sorted({p.plate for p in found})
    if len(plates) > 1:
        return PlateRead(None, f"ambiguous: {' or '.join(plates)}", raw=raw)
    best = found[0]
    conf = min(best.conf) if best.conf else 0.0
    text = best.plate.replace("-", "").replace(".", "")
    for i, (ch, c) in enumerate(zip(text, best.conf, strict=True)):
        floor = max(min_char, LOOKALIKE.get(ch, 0.0))
        if c < floor:
            return PlateRead(
                None,
                f"unsure of character {i + 1} ({ch!r}, {math.floor(c * 100) / 100:.2f} < {floor})",
                conf,
                best.conf,
                best.kind,
                raw,
            )
    return PlateRead(best.plate, f"read as a {best.kind} plate", conf, best.conf, best.kind, raw)


class Ocr:
    """rapidocr-onnxruntime's text detector and recogniser, with per-character scores."""

    def __init__(self, threads: int = 2) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "plate OCR needs rapidocr-onnxruntime: pip install --no-deps "
                "rapidocr-onnxruntime==1.4.4 (scripts/setup.sh does; see README)"
            ) from exc
        self._ocr = RapidOCR(
            det_limit_type="max",
            det_limit_side_len=960,
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
        )
        self._rec = self._ocr.text_rec
        self._chars: list[str] = self._rec.postprocess_op.character

    def detect(self, img: np.ndarray) -> list[np.ndarray]:
        """Text quadrilaterals (4x2, clockwise from top-left)."""
        boxes, _ = self._ocr.text_det(img)
        return [] if boxes is None else [np.asarray(b, np.float32) for b in boxes]

    def recognise(self, img: np.ndarray, quads: list[np.ndarray]) -> list[tuple[str, list[float]]]:
        """Text of each quadrilateral, each character with the peak probability of its run."""
        crops = self._ocr.get_crop_img_list(img, [q.copy() for q in quads])
        out = []
        for crop in crops:
            h, w = crop.shape[:2]
            ratio = max(w / max(h, 1), self._rec.rec_image_shape[2] / self._rec.rec_image_shape[1])
            x = self._rec.resize_norm_img(crop, ratio)[None].astype(np.float32)
            probs = self._rec.session(x)[0][0]  # (T, classes)
            idx, p = probs.argmax(1), probs.max(1)
            text, conf = [], []
            prev = 0
            for t, k in enumerate(idx.tolist()):
                if k != 0 and k != prev:
                    text.append(self._chars[k] if k < len(self._chars) else "?")
                    conf.append(float(p[t]))
                elif k != 0 and k == prev:
                    conf[-1] = max(conf[-1], float(p[t]))
                prev = k
            out.append(("".join(text), conf))
        return out


def _deskew_angle(quads: list[np.ndarray]) -> float:
    """The text lines' tilt in degrees (median over the longer lines), 0 if none."""
    angles = []
    for q in quads:
        dx, dy = q[1] - q[0]
        if math.hypot(dx, dy) > 1.5 * np.linalg.norm(q[3] - q[0]):
            angles.append(math.degrees(math.atan2(dy, dx)))
    return float(np.median(angles)) if angles else 0.0


def _box_rows(poly: np.ndarray, two_rows: bool) -> list[np.ndarray]:
    """The plate box as one text quadrilateral, or its upper and lower halves."""
    x1, y1 = poly.min(0)
    x2, y2 = poly.max(0)
    inset = 0.04 * (x2 - x1)
    x1, x2 = x1 + inset, x2 - inset
    if not two_rows:
        return [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)]
    ym = (y1 + y2) / 2
    return [
        np.array([[x1, y1], [x2, y1], [x2, ym], [x1, ym]], np.float32),
        np.array([[x1, ym], [x2, ym], [x2, y2], [x1, y2]], np.float32),
    ]


@dataclass
class BoxReader:
    """Reads one plate box of an image (rectify, OCR, rows, formats)."""

    ocr: Ocr
    min_char: float = MIN_CHAR  # every character of a plate must score this much
    margin: tuple[float, float] = (0.08, 0.15)  # of the box's width and height, each side
    work_h_one: int = 72  # working height of a one-row box (pixels)
    work_h_two: int = 144  # ... of a two-row (squarish) box

    def read(self, image: np.ndarray, box: Sequence[float]) -> PlateRead:
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        bw, bh = x2 - x1, y2 - y1
        if bw < 8 or bh < 4:
            return PlateRead(None, f"plate box too small ({bw:.0f}x{bh:.0f} px)")
        mx, my = self.margin[0] * bw, self.margin[1] * bh
        H, W = image.shape[:2]
        cx1, cy1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
        cx2, cy2 = min(W, int(math.ceil(x2 + mx))), min(H, int(math.ceil(y2 + my)))
        crop = image[cy1:cy2, cx1:cx2]
        if crop.size == 0:
            return PlateRead(None, "plate box outside the image")
        two_rows = bw / bh < 2.2
        f = (self.work_h_two if two_rows else self.work_h_one) / bh
        f = min(f, 1600 / max(crop.shape[1], 1))
        work = cv2.resize(
            crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA
        )
        # The plate box in working pixels (a polygon: it turns when the crop is de-skewed).
        poly = (
            np.array(
                [
                    [x1 - cx1, y1 - cy1],
                    [x2 - cx1, y1 - cy1],
                    [x2 - cx1, y2 - cy1],
                    [x1 - cx1, y2 - cy1],
                ],
                np.float32,
            )
            * f
        )
        quads = self.ocr.detect(work)
        angle = _deskew_angle(quads)
        if abs(angle) > 2.0:
            h, w = work.shape[:2]
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            work = cv2.warpAffine(
                work, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
            )
            poly = cv2.transform(poly[None], m)[0]
            quads = self.ocr.detect(work)
        plate_h = float(poly[:, 1].max() - poly[:, 1].min())
        inside = []
        for q in quads:
            c = q.mean(0)
            qh = float(q[:, 1].max() - q[:, 1].min())
            if cv2.pointPolygonTest(poly.reshape(-1, 1, 2), (float(c[0]), float(c[1])), False) < 0:
                continue  # text beside the plate (another vehicle, a sticker): not read
            if qh < 0.18 * plate_h:
                continue  # small print on the plate or its frame
            inside.append(q)
        if not inside:
            # The text detector found no line (low contrast, small): the plate box itself
            # is the line (or its halves the rows); the formats and scores still decide.
            inside = _box_rows(poly, two_rows)
        lines = []
        for q, (text, conf) in zip(inside, self.ocr.recognise(work, inside), strict=True):
            if not text:
                continue
            box = (
                float(q[:, 0].min()),
                float(q[:, 1].min()),
                float(q[:, 0].max()),
                float(q[:, 1].max()),
            )
            chars = Chars.of(text, conf)
            problem = None if chars else f"a character no plate has was read ({text!r})"
            lines.append(Line(chars, box, text, problem))
        return decide(group_rows(lines), self.min_char)


# --------------------------------------------------------------------------- plates and vehicles


def on_vehicle(plate: Sequence[float], vehicle: Sequence[float]) -> bool:
    """Whether a plate box sits where a vehicle's own plate can: inside its box, in the
    middle 90% across and below its top 30%."""
    p, v = plate, vehicle
    vw, vh = v[2] - v[0], v[3] - v[1]
    if vw <= 0 or vh <= 0:
        return False
    cx, cy = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
    iw = max(0.0, min(p[2], v[2]) - max(p[0], v[0]))
    ih = max(0.0, min(p[3], v[3]) - max(p[1], v[1]))
    area = max((p[2] - p[0]) * (p[3] - p[1]), 1e-6)
    return (
        iw * ih / area >= 0.9
        and v[0] + 0.05 * vw <= cx <= v[2] - 0.05 * vw
        and cy >= v[1] + 0.3 * vh
    )


def own_plate(
    plates: Sequence[Sequence[float]],
    vehicle: Sequence[float],
    others: Sequence[Sequence[float]] = (),
) -> tuple[int | None, str]:
    """Which plate box (index) is this vehicle's, or None and why: two candidate plates on
    one vehicle are ambiguous, and a plate that another vehicle's box also holds where its
    plate could be is nobody's (overlapping vehicles: precision first)."""
    cands = [i for i, p in enumerate(plates) if on_vehicle(p, vehicle)]
    if not cands:
        return None, "no plate found on the vehicle"
    if len(cands) > 1:
        return None, f"{len(cands)} plates on the vehicle"
    i = cands[0]
    if any(on_vehicle(plates[i], o) for o in others):
        return None, "the plate is on two overlapping vehicles"
    return i, "one plate on the vehicle"


def plate_owner(
    plate: Sequence[float], vehicles: Sequence[Sequence[float]]
) -> tuple[int | None, str]:
    """The one vehicle (index) a plate belongs to, or None and why."""
    owners = [i for i, v in enumerate(vehicles) if on_vehicle(plate, v)]
    if not owners:
        return None, "no vehicle found around the plate"
    if len(owners) > 1:
        return None, f"the plate is on {len(owners)} overlapping vehicles"
    return owners[0], "one vehicle"


def vote(
    reads: Sequence[PlateRead | tuple[str | None, float]], min_reads: int = 2
) -> tuple[str | None, str]:
    """Per-frame reads of one vehicle into (plate, reason): a plate needs ``min_reads``
    agreeing reads and no rival with half as many."""
    if not reads:
        return None, "no frame to read"
    plates = [r.plate if isinstance(r, PlateRead) else r[0] for r in reads]
    valid = Counter(p for p in plates if p)
    if not valid:
        reasons = Counter(r.reason for r in reads if isinstance(r, PlateRead))
        why = f" ({reasons.most_common(1)[0][0]})" if reasons else ""
        return None, f"no frame gave a certain read{why}"
    ranked = valid.most_common()
    best, n = ranked[0]
    if len(ranked) > 1 and ranked[1][1] * 2 >= n:
        return None, f"reads disagree ({best} x{n} vs {ranked[1][0]} x{ranked[1][1]})"
    if n < min_reads:
        return None, f"only {n} read of {best} ({min_reads} needed)"
    return best, f"{n} of {len(reads)} reads agree"


@dataclass
class VehiclePlateReader:
    """The evidence pipeline's reader: vehicle crops of one track in, (plate, reason) out.

    In each crop the plate detector finds plate boxes, the vehicle's own plate is chosen
    (``own_plate``) and read on its box; the reads are then voted on (``vote``)."""

    detector: Any  # an edge.inference.detector.Detector for plate_nano
    box_reader: BoxReader
    min_score: float = 0.4
    min_reads: int = 2
    last: list[PlateRead] = field(default_factory=list)

    def plates(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        d = self.detector.detect(image, self.min_score)
        return [(b, float(s)) for b, s in zip(d.xyxy, d.confidence.tolist(), strict=True)]

    def read_vehicle(
        self, frame: np.ndarray, vehicle: Sequence[float], others: Sequence[Sequence[float]] = ()
    ) -> PlateRead:
        """The plate of one vehicle box in a frame (other vehicles' boxes: ``others``)."""
        x1, y1, x2, y2 = (int(v) for v in vehicle[:4])
        crop = frame[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
        if crop.size == 0:
            return PlateRead(None, "empty vehicle box")
        found = self.plates(crop)
        off = np.array([max(0, x1), max(0, y1)] * 2, np.float32)
        boxes = [b + off for b, _ in found]
        i, why = own_plate(boxes, vehicle, others)
        if i is None:
            return PlateRead(None, why)
        return self.box_reader.read(frame, boxes[i])

    def __call__(self, crops: Sequence[np.ndarray]) -> tuple[str | None, str]:
        """Vehicle crops (one track, several frames) -> (plate, reason)."""
        reads = []
        for crop in crops:
            h, w = crop.shape[:2]
            reads.append(self.read_vehicle(crop, (0, 0, w, h)))
        self.last = reads
        return vote(reads, self.min_reads)


class PlateReader:
    """Reads images that are plate crops (the whole image is the plate box): for plates
    already cut out, such as the synthetic ones of ``tests/plate_scenes.py``."""

    def __init__(self, min_char: float = MIN_CHAR, min_reads: int = 2, threads: int = 2) -> None:
        self.box_reader = BoxReader(Ocr(threads=threads), min_char=min_char)
        self.min_reads = min_reads

    def read_plate(self, img: np.ndarray, box: Sequence[float] | None = None) -> PlateRead:
        h, w = img.shape[:2]
        return self.box_reader.read(img, (0, 0, w, h) if box is None else box)

    def read(
        self, img: np.ndarray, box: Sequence[float] | None = None
    ) -> tuple[str | None, float, str]:
        """(plate or None, least character confidence, raw text) of one plate image (or of
        the plate ``box`` in it)."""
        r = self.read_plate(img, box)
        return r.plate, r.confidence, r.raw

    def __call__(self, crops: Sequence[np.ndarray]) -> tuple[str | None, str]:
        return vote([self.read_plate(c) for c in crops], self.min_reads)


def configured(reader: Any, evidence: Any) -> Any:
    """The reader with one camera's plate settings (``EvidenceSettings.plate_*``); the
    detector and OCR sessions are shared. Anything else (a test's stub, None) is returned
    as it is."""
    if not isinstance(reader, VehiclePlateReader):
        return reader
    return replace(
        reader,
        min_reads=evidence.plate_min_reads,
        box_reader=replace(reader.box_reader, min_char=evidence.plate_min_char),
        last=[],
    )


def reader_or_reason(
    model_dir: str | None = None, min_reads: int = 2, min_char: float = MIN_CHAR
) -> tuple[Any, str | None]:
    """A VehiclePlateReader (plate_nano + OCR), or None and why (so evidence says why there is no
    plate). The detector comes from the registry (``plate_nano`` ships in ``models/``)."""
    try:
        from pathlib import Path

        from edge.inference.detector import Detector
        from edge.inference.registry import ModelError, Registry

        registry = Registry(Path(model_dir or "var/models"))
        try:
            spec = registry.spec("plate_nano")
            detector = Detector(spec, registry.resolve("plate_nano"), threads=1)
        except ModelError as exc:
            return None, f"no plate detector: {exc}"
        reader = VehiclePlateReader(detector, BoxReader(Ocr(threads=1), min_char=min_char),
                             min_score=spec.threshold, min_reads=min_reads)  # fmt: skip
        return reader, None
    except RuntimeError as exc:
        return None, str(exc)


_FORMAT_RE = re.compile(
    r"^(\d{2}[A-Z]{1,2}\d?-(\d{3}\.\d{2}|\d{4})|[A-Z]{2}-\d{2}-\d{2}|\d{2}-[A-Z]{2}-\d{3}-\d{2})$"
)


def canonical(text: str) -> bool:
    """Whether ``text`` is written the way this module writes plates."""
    return bool(_FORMAT_RE.match(text))
