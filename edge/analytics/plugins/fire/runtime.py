"""The ``fire`` / ``burning`` analytics at run time: ``FireRule`` on the detector's output.

Its zone for motion gating is the whole frame: fire's zones route alerts by land use,
they do not limit where it looks (the exclusions and the sky are filtered by the rule).
"""

from __future__ import annotations

from datetime import datetime

from edge.analytics.base import Analytic, CameraContext, Outputs, Sample, Schedule
from edge.analytics.fire import FireRule
from edge.analytics.plugins.fire.config import FireAnalytic


class FireAnalyticRuntime(Analytic):
    kind = "smoke"

    def __init__(self, cfg: FireAnalytic, ctx: CameraContext) -> None:
        cam = ctx.camera
        self.rule = FireRule(cfg, ctx.class_names(cfg.model), cam.bearing_deg, cam.hfov_deg)
        self.schedule = Schedule(
            period_s=cfg.period_s,
            model=cfg.model,
            min_score=self.rule.min_score,
            priority=cfg.priority,
            motion_gating=cfg.motion_gating,
            motion_threshold=cfg.motion_threshold,
            motion_zone=None,
        )

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        return self.out(self.rule.update(sample.detections, sample.wh, sample.time))

    def close(self, now: datetime) -> Outputs:
        return self.out(self.rule.close(now))


def build(cfg: FireAnalytic, ctx: CameraContext) -> FireAnalyticRuntime:
    return FireAnalyticRuntime(cfg, ctx)
