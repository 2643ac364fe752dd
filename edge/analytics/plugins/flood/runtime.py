"""The ``flood`` analytic at run time: a hotspot reading every period, frames or not.

Each reading goes out twice: as the hotspot's retained reading (the citizens' feed reads
it) and as a generic reading (the dashboard's chart, the readings API). A dead or frozen
stream still gets a reading every period: ``unknown``, ``no_frames``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from edge.analytics.base import Analytic, CameraContext, Outputs, Sample, Schedule
from edge.analytics.base import Reading as GenericReading
from edge.analytics.flood import FloodOutput, FloodRule
from edge.analytics.plugins.flood.config import FloodAnalytic
from edge.transport.spool import Message
from edgewatch import contract

log = logging.getLogger(__name__)


class FloodAnalyticRuntime(Analytic):
    kind = "flood_level"

    def __init__(self, cfg: FloodAnalytic, ctx: CameraContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.rule = FloodRule(cfg)
        self.zone = self.rule.zone
        self.schedule = Schedule(period_s=cfg.period_s, priority=cfg.priority, full_frame=True)
        self.last_reading = time.monotonic()

    def update(self, sample: Sample) -> Outputs:
        return self._out(self.rule.update(sample.bgr(), sample.time))

    def tick(self, now: datetime) -> Outputs:
        if time.monotonic() - self.last_reading >= 3 * self.cfg.period_s:
            return self._out(self.rule.missing(now))
        return Outputs()

    def close(self, now: datetime) -> Outputs:
        return self.out(self.rule.close(now))

    def _out(self, out: FloodOutput) -> Outputs:
        self.last_reading = time.monotonic()
        cfg, r, ctx = self.cfg, out.reading, self.ctx
        msg = contract.HotspotReading(
            hotspot_id=cfg.hotspot,
            camera_id=ctx.camera.id,
            analytic=cfg.name,
            setup=cfg.setup,
            time=r.time,
            state=r.state,
            level_state=r.level_state,
            level_cm=None if r.level_cm is None else round(r.level_cm, 1),
            raw_cm=None if r.raw_cm is None else round(r.raw_cm, 1),
            reason=r.reason,
            trend_cm_per_h=r.trend_cm_per_h,
            next_level=r.next_level,
            eta_s=r.eta_s,
            confidence=r.confidence,
            cover=r.cover,
            depth_class=r.depth_class,
            period_s=cfg.period_s,
            levels=[
                contract.LevelRef(name=lv.name, level_cm=lv.level_cm) for lv in self.rule.levels
            ],
        )
        if r.state == "unknown":
            log.info(
                "flood reading unknown",
                extra={"camera": ctx.camera.id, "hotspot": cfg.hotspot, "reason": r.reason},
            )
        topic = contract.hotspot_topic(ctx.site, ctx.edge_id, cfg.hotspot)
        payload = msg.model_dump_json(exclude_none=True).encode()
        reading = GenericReading(
            time=r.time,
            values={
                "level_cm": msg.level_cm,
                "raw_cm": msg.raw_cm,
                "trend_cm_per_h": r.trend_cm_per_h,
                "confidence": r.confidence,
                **({"cover": r.cover} if cfg.setup == "road_cover" else {}),
            },
            units={"level_cm": "cm", "raw_cm": "cm", "trend_cm_per_h": "cm/h"},
            period_s=cfg.period_s,
            state=r.state if r.state == "unknown" else r.level_state,
        )
        return self.out(
            out.transitions,
            messages=[Message(topic, payload, "reading", retain=True)],
            readings=[reading],
        )


def build(cfg: FloodAnalytic, ctx: CameraContext) -> FloodAnalyticRuntime:
    return FloodAnalyticRuntime(cfg, ctx)
