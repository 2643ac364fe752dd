"""One runtime for the analytics that are a rule fed by tracks: detections -> ByteTrack -> rule.

Why a base of its own: the dwell analytics (``sidewalk_encroachment``, ``illegal_parking``)
and ``intrusion`` differ only in their rule; the way from detections to tracks, and from
the rule's transitions to the worker, is the same and must stay the same (the watched
classes cut as the traffic analytic cuts them, a tracker that keeps a hidden object's id
as long as the rule waits for it, every analysed sample tracked, no motion gating).
A plugin subclasses it, gives its rule, and is done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import numpy as np

from edge.analytics.base import Analytic, CameraContext, Outputs, Sample, Schedule, Transition
from edge.analytics.geometry import RuleConfigError
from edge.analytics.tracking import ByteTrack, Tracks
from edge.inference.detections import Detections, keep_classes


class TrackedRule(Protocol):
    """Tracks (pixels) and time in, event transitions out; knows no video or MQTT."""

    zone_name: str

    def update(self, tracks: Tracks, wh: tuple[int, int], now: datetime) -> list[Transition]: ...

    def tick(self, now: datetime) -> list[Transition]: ...

    def close(self, now: datetime) -> list[Transition]: ...


class TrackedConfig(Protocol):
    name: str
    model: str
    classes: list[str]
    min_score: float
    track_score: float
    fps: float
    max_missing: int
    priority: int


def class_ids(names: tuple[str, ...], wanted: list[str], what: str) -> np.ndarray:
    """The model's ids of the watched classes; a class the model lacks is a config error."""
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise RuleConfigError(f"{what}: classes {unknown} are not in the model")
    return np.asarray([names.index(c) for c in wanted], np.int32)


class TrackedRuleRuntime(Analytic):
    """Detections of the watched classes -> one ByteTrack for the runtime -> ``self.rule``."""

    rule: TrackedRule

    def __init__(self, cfg: TrackedConfig, ctx: CameraContext, rule: TrackedRule) -> None:
        names = ctx.class_names(cfg.model)
        self.cfg = cfg
        self.names = names
        self.class_ids = class_ids(names, cfg.classes, f"analytics.{cfg.name}.classes")
        self.rule = rule
        self.zone = rule.zone_name
        period = 1.0 / cfg.fps
        self.tracker = ByteTrack(
            high_thresh=cfg.track_score,
            low_thresh=cfg.min_score,
            new_track_thresh=min(1.0, cfg.track_score + 0.1),
            # an object hidden for a while keeps its id as long as the rule waits for it
            lost_ttl_s=max(1.5, (cfg.max_missing + 1) * period),
            fps_hint=cfg.fps,
            num_classes=len(names),
        )
        # tracking needs every analysed sample: no motion gating
        self.schedule = Schedule(
            period_s=period, model=cfg.model, min_score=cfg.min_score, priority=cfg.priority
        )

    def track(self, dets: Detections, t: float) -> Tracks:
        """The watched classes only (every class's score cut to them when the detector
        kept them, as the traffic analytic does), then the tracker."""
        dets = keep_classes(dets, self.class_ids, len(self.names), self.cfg.min_score)
        return self.tracker.update(dets, t)

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        tracks = self.track(sample.detections, sample.time.timestamp())
        return self.out(self.rule.update(tracks, sample.wh, sample.time))

    def tick(self, now: datetime) -> Outputs:
        return self.out(self.rule.tick(now))

    def close(self, now: datetime) -> Outputs:
        return self.out(self.rule.close(now))
