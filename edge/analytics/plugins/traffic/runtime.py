"""The ``traffic`` analytic at run time: tracking, the signal, rules, evidence, plates.

Everything traffic needs that the worker used to special-case lives here: the signal
source (a controller's MQTT topic, or the camera itself by a model or the lamps), the
plate reader, and the evidence package assembled once a violation's clip is complete
(from the camera's packet ring, which this analytic asks for in its schedule). A plate
read is also an observation for the camera's other analytics (a watch list).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from edge.analytics.base import (
    Analytic,
    CameraContext,
    Observation,
    Outputs,
    Sample,
    Schedule,
    Transition,
)
from edge.analytics.plugins.traffic.config import TrafficAnalytic
from edge.analytics.signal import SignalReader, signal_state
from edge.analytics.traffic import SignalState
from edge.analytics.traffic_monitor import TrafficMonitor
from edge.transport.spool import Message
from edgewatch import contract

log = logging.getLogger(__name__)


def signal_feed(signal: SignalState):  # type: ignore[no-untyped-def]
    """A signal controller's MQTT messages: {"state": "red", "time": ISO 8601}."""

    def on_message(topic: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
            state = {"yellow": "amber"}.get(doc["state"], doc["state"])
            at = doc.get("time")
            t = datetime.fromisoformat(at).timestamp() if at else time.time()
            signal.set(t, state)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bad signal message", extra={"topic": topic, "error": str(exc)[:200]})

    return on_message


class TrafficAnalyticRuntime(Analytic):
    kind = "traffic"

    def __init__(self, cfg: TrafficAnalytic, ctx: CameraContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        signal = signal_state(cfg.signal)  # a camera's: sure only between two looks that agree
        self.monitor = TrafficMonitor(cfg, ctx.class_names(cfg.model), ctx.camera.id, signal)
        if cfg.signal is not None and cfg.signal.source == "mqtt":
            ctx.subscribe(cfg.signal.topic, signal_feed(signal))  # type: ignore[arg-type]
        if cfg.signal is not None and cfg.signal.source in ("model", "lamps"):
            detector = ctx.detector(cfg.signal.model) if cfg.signal.source == "model" else None
            self.monitor.signal_reader = SignalReader(cfg.signal, signal, detector)
        self.plate_reader: Any = ctx.plate_reader() if cfg.evidence.plates else None
        self.signal_next = 0.0
        self.schedule = Schedule(
            period_s=1.0 / cfg.fps,
            model=cfg.model,
            min_score=cfg.min_score,
            priority=cfg.priority,
            packets_s=cfg.evidence.ring_s,
            packets_mb=cfg.evidence.ring_mb,
        )

    def update(self, sample: Sample) -> Outputs:
        assert sample.detections is not None
        reader = self.monitor.signal_reader
        if reader is not None and sample.mono >= self.signal_next:
            self.signal_next = sample.mono + reader.period_s
            reader.look(sample.time.timestamp(), sample.bgr())
        out = self.out(self.monitor.update(sample.detections, sample.wh, sample.time))
        out += self._finalize()
        return out

    def tick(self, now: datetime) -> Outputs:
        return self._finalize()

    def close(self, now: datetime) -> Outputs:
        out = self._finalize(force=True)
        out += self.out(self.monitor.close(now))
        return out

    def _finalize(self, force: bool = False) -> Outputs:
        out = Outputs()
        if not self.monitor.pending:
            return out
        ctx = self.ctx
        done = self.monitor.finalize(
            time.time(), ctx.ring, ctx.frame_wh, self.plate_reader, force=force
        )
        for transitions, pkg in done:
            if pkg is not None:
                for name in pkg.files:
                    topic = contract.evidence_topic(
                        ctx.site, ctx.edge_id, transitions[0].event_id, name
                    )
                    out.messages.append(
                        Message(topic, (pkg.folder / name).read_bytes(), kind="evidence")
                    )
            out += self.out(transitions)
            out.observations += _plates(transitions)
        return out


def _plates(transitions: list[Transition]) -> list[Observation]:
    out = []
    for t in transitions:
        plate = t.attributes.get("plate")
        if t.type == "update" and plate:
            out.append(
                Observation(
                    "plate",
                    t.frame_time,
                    {
                        "plate": plate,
                        "event_id": str(t.event_id),
                        "rule": t.attributes.get("rule"),
                        "label": t.label,
                        "box": t.box,
                        "box_px": t.box_px,
                    },
                )
            )
    return out


def build(cfg: TrafficAnalytic, ctx: CameraContext) -> TrafficAnalyticRuntime:
    return TrafficAnalyticRuntime(cfg, ctx)
