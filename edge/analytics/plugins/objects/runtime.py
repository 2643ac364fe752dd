"""The ``objects`` analytic at run time: ``ObjectsRule`` on the shared detector's output."""

from __future__ import annotations

from datetime import datetime

from edge.analytics.base import Analytic, CameraContext, Outputs, Sample, Schedule
from edge.analytics.objects import ObjectsRule
from edge.analytics.plugins.objects.config import ObjectsAnalytic


class ObjectsAnalyticRuntime(Analytic):
    kind = "object"

    def __init__(self, cfg: ObjectsAnalytic, ctx: CameraContext) -> None:
        self.rule = ObjectsRule(cfg, ctx.class_names(cfg.model))
        self.zone = cfg.zone_name
        self.schedule = Schedule(
            period_s=1.0 / cfg.fps,
            model=cfg.model,
            min_score=cfg.min_score,
            priority=cfg.priority,
            motion_gating=cfg.motion_gating,
            motion_threshold=cfg.motion_threshold,
            motion_zone=cfg.zone,
        )

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        return self.out(self.rule.update(sample.detections, sample.wh, sample.time))

    def close(self, now: datetime) -> Outputs:
        return self.out(self.rule.close(now))


def build(cfg: ObjectsAnalytic, ctx: CameraContext) -> ObjectsAnalyticRuntime:
    return ObjectsAnalyticRuntime(cfg, ctx)
