"""Scripted scenarios for the plugins' ``evaluation.py``: actors, their boxes, a runtime driven.

Why one module: every plugin that evaluates its rule on scripted input needs the same
parts (road users moving between keyframes, their boxes with jitter, score noise and
missed detections, a camera context with no camera behind it, the runtime fed sample
by sample as the worker feeds it, and the P/R summary). Each copy was a chance for the
figures of two plugins to mean different things. These are unit-style scenarios, never
an accuracy measure on video.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.base import Analytic, CameraContext, Outputs, Sample
from edge.inference.detections import Detections

W, H = 1280, 720
NAMES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")  # COCO
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Moving(Protocol):
    cls: str
    score: float
    miss: float
    jitter: float

    def at(self, t: float) -> tuple[float, float] | None: ...


@dataclass
class Actor:
    """One road user: a class, and keyframes (t from the scenario's start, anchor position
    as fractions) joined by straight lines; not visible before the first or after the last,
    nor in ``hidden`` intervals."""

    cls: str
    keys: list[tuple[float, tuple[float, float]]]
    hidden: list[tuple[float, float]] = field(default_factory=list)
    score: float = 0.78
    jitter: float = 0.002  # anchor noise, fraction of the frame (std)
    miss: float = 0.03  # chance a visible actor is not detected in a sample

    def at(self, t: float) -> tuple[float, float] | None:
        ts = [k[0] for k in self.keys]
        if t < ts[0] or t > ts[-1] or any(a <= t < b for a, b in self.hidden):
            return None
        x = float(np.interp(t, ts, [k[1][0] for k in self.keys]))
        y = float(np.interp(t, ts, [k[1][1] for k in self.keys]))
        return x, y


def detections(
    actors: Sequence[Moving],
    t: float,
    rng: np.random.Generator,
    sizes: dict[str, tuple[float, float]],
    score_sd: float = 0.05,
) -> Detections:
    """The detector's boxes (pixels) of the actors visible at ``t``: anchor jitter, score
    noise, and each actor missed with its own chance."""
    boxes, scores, cls = [], [], []
    for a in actors:
        p = a.at(t)
        if p is None or rng.random() < a.miss:
            continue
        w, h = sizes[a.cls]
        x, y = p[0] + rng.normal(0, a.jitter), p[1] + rng.normal(0, a.jitter)
        boxes.append([(x - w / 2) * W, (y - h) * H, (x + w / 2) * W, y * H])
        scores.append(float(np.clip(a.score + rng.normal(0, score_sd), 0.05, 0.99)))
        cls.append(NAMES.index(a.cls))
    if not boxes:
        return Detections.empty()
    return Detections(
        np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(cls, np.int32)
    )


def context() -> CameraContext:
    """A camera context with the COCO classes the scenarios use, and nothing behind it."""

    def no(*_: Any) -> Any:
        return None

    return CameraContext(
        camera=SimpleNamespace(id="cam_eval", bearing_deg=None, hfov_deg=None, location=None),
        site="eval",
        edge_id="eval",
        class_names=lambda _m: NAMES,
        detector=no,
        subscribe=no,
        plate_reader=no,
        frame_wh=(W, H),
    )


def drive(
    rt: Analytic,
    fps: float,
    start: float,
    duration: float,
    dets_at: Callable[[float], Detections],
    rng: np.random.Generator,
    time_jitter: float = 0.04,
) -> Iterator[tuple[float, Outputs]]:
    """Feed the runtime a sample every ``1 / fps`` s (off by up to ``time_jitter`` of a
    period, as the worker samples close to, not on, the period) from ``start`` (epoch s)
    for ``duration`` s; yields (t from start, outputs), last the close at the end."""
    period = 1.0 / fps
    t = 0.0
    while t <= duration:
        tt = t + float(rng.uniform(-time_jitter, time_jitter)) * period if time_jitter else t
        now = datetime.fromtimestamp(start + tt, TZ)
        yield tt, rt.update(Sample(frame=None, time=now, wh=(W, H), detections=dets_at(tt)))
        t += period
    yield duration, rt.close(datetime.fromtimestamp(start + duration, TZ))


def pr(scenarios: int, positives: int, tp: int, fp: int, fn: int) -> dict[str, Any]:
    """The figures every evaluation reports; the scenarios that are not positives are the
    near misses (nothing should happen)."""
    return {
        "scenarios": scenarios,
        "positives": positives,
        "near_misses": scenarios - positives,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
    }


def counted(results: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """``pr`` of scenarios scored by their count of events: (expected, got) each."""
    return pr(
        len(results),
        sum(1 for e, _ in results if e),
        sum(min(e, g) for e, g in results),
        sum(max(0, g - e) for e, g in results),
        sum(max(0, e - g) for e, g in results),
    )
