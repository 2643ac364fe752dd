"""Where the water meets a gauge along a measuring strip, and how sure that reading is.

Why it works this way (what real frames of a GRIME2 marsh camera showed, day and night):

- **The waterline is a step with a known sign.** A gauge face, a target board or a pier
  above the water is brighter than the water in front of it, day and IR night alike, so
  the search looks for a *bright-above, darker-below* step (``water="darker"``; a dark wall
  over sky-lit water is ``"brighter"``, ``"any"`` takes either). The reflection of the gauge
  in the water is the trap: seen from a camera above, it starts at the waterline and ends
  further down, and a split that only asks "where does the strip change most" (the old
  two-segment change point) reads its far end, 40 cm too low at night. That end has the
  other sign (dark reflection over bright sky-lit water), or it is weaker than the real
  waterline (the reflection is attenuated), so the sign and the step size pick the right one.
- **Marks on the gauge are not the water.** Ticks, numbers, bolts and an old dirt line are
  dark, short along the line and usually narrower than the strip. Each row is read as a
  high percentile across the width (a tick or an E bar covering part of the width does not
  darken it; the gauge face beside it does the reading), then a vertical closing and
  opening as long as ``mark_cm`` (in pixels from the calibration) remove dark marks and
  bright glints (IR flashes on ripples) shorter than that. A step edge survives both
  exactly where it was, so the waterline keeps its position.
- **A reflection is a mirror.** When the reflection is bright (calm water, a lit board at
  night) its far end can be the strongest step of all. The view is mirrored about the real
  waterline, not about that end: a weaker candidate above the strongest about which the
  strip correlates clearly with itself mirrored (``MIRROR_FULL``, and clearly more than the
  strongest does) is taken as the waterline.
- **Many parallel lines, one answer.** The strip is read as ``lines`` overlapping
  sub-strips (two thirds of the width each, so an E bar never covers one completely); each
  places the edge sub-pixel (steepest descent, parabolic peak) near the common candidate;
  the reading is their median and their spread is one part of the confidence. GRIME2 does
  the same with swaths of search lines across its target and a line fit through them.

Confidence (0..1), the product of three parts, each from what the frame shows:

- ``contrast``: the step against the noise of the two segments beside it (the step over
  the mean of their standard deviations and the sensor noise): 1 from ``CONTRAST_FULL``;
- ``uniqueness``: the step against the next best step of the same sign elsewhere on the
  line: a dirt line, a wet band or a shadow that is nearly as strong makes the reading
  ambiguous; 1 from ``UNIQUE_FULL`` times the runner-up, or from a mirror correlation of
  ``MIRROR_FULL`` about the step (a reflection explains the runner-up);
- ``agreement``: the parallel lines' robust spread, in cm: 1 up to ``AGREE_CM``, 0 at
  ``AGREE_CM + AGREE_SPAN_CM``.

Agreement with the last readings is the state machine's physics gate (a change larger than
the time between readings allows waits for the next reading), not part of this number.
Everything is vectorised over rows and sub-strips (numpy/OpenCV); a strip of a few hundred
rows takes well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Water = Literal["darker", "brighter", "any"]

PERCENTILE = 90.0  # of each row across a sub-strip: the gauge face, not the marks on it
SUB_WIDTH = 2 / 3  # share of the strip's width each parallel line reads
CONTRAST_LOW, CONTRAST_FULL = 1.5, 4.0  # step / segment noise: 0 .. 1
UNIQUE_LOW, UNIQUE_FULL = 1.5, 3.0  # step / runner-up step: 0 .. 1
AGREE_CM, AGREE_SPAN_CM = 2.0, 4.0  # spread of the parallel lines: 1 up to 2 cm, 0 at 6 cm
MIRROR_LOW, MIRROR_FULL = 0.4, 0.7  # correlation of the strip with itself mirrored: 0 .. 1
MIRROR_CM = 15.0  # how far above and below the candidate the mirror is compared
CANDIDATE_SHARE = 0.3  # weaker steps than this share of the strongest are not candidates


@dataclass(frozen=True)
class Waterline:
    """A waterline along the strip: ``row`` is its sub-pixel position (rows from the top)."""

    row: float
    step: float  # grey levels, signed so that the expected sign is positive
    contrast: float  # step / noise of the segments beside it
    uniqueness: float  # step / the best other step of the same sign
    spread_cm: float  # robust spread of the parallel lines
    rows: tuple[float, ...]  # per parallel line
    confidence: float
    mirror: float = 0.0  # correlation of the strip above with the strip below, mirrored

    def parts(self) -> dict[str, float]:
        return {
            "contrast": round(_ramp(self.contrast, CONTRAST_LOW, CONTRAST_FULL), 3),
            "uniqueness": round(_unique(self.uniqueness, self.mirror), 3),
            "agreement": round(_agreement(self.spread_cm), 3),
        }


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def _agreement(spread_cm: float) -> float:
    return float(np.clip(1.0 - (spread_cm - AGREE_CM) / AGREE_SPAN_CM, 0.0, 1.0))


def _unique(uniqueness: float, mirror: float) -> float:
    """The step stands out from the others, or the view is mirrored about it."""
    return max(_ramp(uniqueness, UNIQUE_LOW, UNIQUE_FULL), _ramp(mirror, MIRROR_LOW, MIRROR_FULL))


def mirror_score(gray: np.ndarray, row: int, reach: int, gap: int, noise: float) -> float:
    """How well the strip below ``row`` is the strip above it mirrored (normalised
    correlation, gain and offset free: a reflection is dimmer), best of +-2 rows; 0 when
    either side has no structure to compare (a plain board, calm dark water)."""
    n = gray.shape[0]
    best = 0.0
    for r in range(row - 2, row + 3):
        m = min(reach, r - gap, n - r - gap)
        if m < 4:
            continue
        above = gray[r - gap - m : r - gap][::-1]  # going up from the line
        below = gray[r + gap : r + gap + m]  # going down from it
        a = above - above.mean()
        b = below - below.mean()
        sa, sb = float(np.sqrt((a * a).mean())), float(np.sqrt((b * b).mean()))
        if sa < 2 * noise or sb < 2 * noise:
            continue
        best = max(best, float((a * b).mean()) / (sa * sb))
    return best


def line_profiles(strip: np.ndarray, lines: int) -> np.ndarray:
    """(rows, lines) float32: per row, a high percentile across each overlapping sub-strip."""
    gray = cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY) if strip.ndim == 3 else strip
    gray = cv2.blur(gray.astype(np.float32), (3, 1))  # pixel noise, across the width only
    cols = gray.shape[1]
    lines = max(1, min(lines, cols))
    width = max(1, int(round(cols * SUB_WIDTH))) if lines > 1 else cols
    starts = np.linspace(0, cols - width, lines).round().astype(int)
    # all sub-strips at once: (rows, lines, width), the k-th value of each row (a partition,
    # not a sort: the percentile without interpolation)
    idx = starts[:, None] + np.arange(width)[None, :]
    k = int(round(PERCENTILE / 100.0 * (width - 1)))
    return np.ascontiguousarray(np.partition(gray[:, idx], k, axis=2)[..., k])


def _window_stats(p: np.ndarray, w: int) -> tuple[np.ndarray, ...]:
    """For every split row y in [w, n-w]: means and stds of p[y-w:y] and p[y:y+w]."""
    zero = np.zeros((1,) + p.shape[1:], np.float64)
    c1 = np.concatenate([zero, np.cumsum(p, axis=0, dtype=np.float64)])
    c2 = np.concatenate([zero, np.cumsum(p.astype(np.float64) ** 2, axis=0)])
    y = np.arange(w, p.shape[0] - w + 1)
    ma = (c1[y] - c1[y - w]) / w
    mb = (c1[y + w] - c1[y]) / w
    sa = np.sqrt(np.maximum((c2[y] - c2[y - w]) / w - ma * ma, 0.0))
    sb = np.sqrt(np.maximum((c2[y + w] - c2[y]) / w - mb * mb, 0.0))
    return y, ma, mb, sa, sb


def _subpixel_peak(g: np.ndarray, j: int) -> float:
    if 0 < j < len(g) - 1:
        a, b, c = float(g[j - 1]), float(g[j]), float(g[j + 1])
        den = a - 2 * b + c
        if den < 0:
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return 0.0


def find_waterline(
    strip: np.ndarray,
    px_per_cm: float,
    *,
    water: Water = "darker",
    mark_cm: float = 6.0,
    lines: int = 5,
) -> Waterline | None:
    """The waterline in a strip (rows along the line, top first), or None when the strip
    has no step of the expected sign at all (too short, flat)."""
    prof = line_profiles(strip, lines)
    n = prof.shape[0]
    k = max(3, int(round(mark_cm * px_per_cm))) | 1
    w = max(3, k // 2)
    if n < 2 * w + 2:
        return None
    kernel = np.ones((k, 1), np.uint8)
    clean = cv2.morphologyEx(prof, cv2.MORPH_CLOSE, kernel)  # dark marks out
    clean = cv2.morphologyEx(clean, cv2.MORPH_OPEN, kernel)  # bright glints out
    if water == "brighter":  # the sign is flipped once, the rest is the same
        clean = -clean
    y, ma, mb, sa, sb = _window_stats(clean, w)
    step = ma - mb  # per split row and parallel line: brighter above is positive
    if water == "any":
        step = np.abs(step)
    common = np.median(step, axis=1)
    best = int(np.argmax(common))
    top = float(common[best])
    if top <= 0:
        return None
    raw = prof.mean(axis=1)
    noise = 1.4826 * float(np.median(np.abs(np.diff(raw)))) / np.sqrt(2.0) + 0.5
    # A reflection: the mirrored gauge ends further down with a second step, often the
    # stronger one. A weaker candidate above the strongest about which the view is clearly
    # mirrored is the waterline, and the strongest is the reflection's end.
    # ripples on the reflection are fine structure along the line: compare a little smoothed
    gray = cv2.GaussianBlur(_gray(strip), (1, 5), 1.0)
    reach = max(6, int(round(MIRROR_CM * px_per_cm)))
    gap = max(2, int(round(0.5 * px_per_cm)))
    cands = {best, *_candidates(common, w, CANDIDATE_SHARE * top)}
    mirrors = {c: mirror_score(gray, int(y[c]), reach, gap, noise) for c in cands}
    above = [
        c for c in cands if y[c] < y[best] and mirrors[c] >= max(MIRROR_FULL, mirrors[best] + 0.25)
    ]
    if above:
        best = max(above, key=lambda c: mirrors[c])
        top = float(common[best])
    far = np.abs(y - y[best]) >= 2 * w
    runner = float(common[far].max()) if far.any() else 0.0
    mirror = mirrors[best]
    # each parallel line places the edge near the common candidate, sub-pixel
    drop = clean[:-1] - clean[1:]  # between rows j and j+1
    if water == "any":
        drop = np.abs(drop)
    lo = max(0, int(y[best]) - w)
    hi = min(drop.shape[0], int(y[best]) + w)
    seg = drop[lo:hi]
    js = np.argmax(seg, axis=0)
    rows = np.array(
        [lo + j + 0.5 + _subpixel_peak(seg[:, i], int(j)) for i, j in enumerate(js)], np.float64
    )
    row = float(np.median(rows))
    srt = np.sort(rows)
    spread = float(srt[-2] - srt[1]) if len(srt) >= 4 else float(np.ptp(srt))  # one may stray
    seg_noise = float(np.median((sa[best] + sb[best]) / 2.0))
    contrast = top / (seg_noise + noise)
    uniqueness = top / max(runner, 1e-6) if runner > 0 else 1e3
    spread_cm = spread / max(px_per_cm, 1e-6)
    conf = (
        _ramp(contrast, CONTRAST_LOW, CONTRAST_FULL)
        * _unique(uniqueness, mirror)
        * _agreement(spread_cm)
    )
    return Waterline(
        row=row,
        step=top,
        contrast=contrast,
        uniqueness=min(uniqueness, 1e3),
        spread_cm=spread_cm,
        rows=tuple(float(r) for r in rows),
        confidence=float(conf),
        mirror=mirror,
    )


def _gray(strip: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY) if strip.ndim == 3 else strip
    return g.astype(np.float32)


def _candidates(common: np.ndarray, w: int, floor: float) -> list[int]:
    """Indices of the local maxima of ``common`` above ``floor``, at least 2w apart,
    strongest first (at most 4)."""
    peak = np.r_[False, (common[1:-1] >= common[:-2]) & (common[1:-1] > common[2:]), False]
    idx = np.flatnonzero(peak & (common >= floor))
    out: list[int] = []
    for i in idx[np.argsort(-common[idx])]:
        if all(abs(int(i) - j) >= 2 * w for j in out):
            out.append(int(i))
        if len(out) == 4:
            break
    return out
