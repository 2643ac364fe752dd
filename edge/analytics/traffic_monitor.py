"""The ``traffic`` analytic on one camera: detections -> ByteTrack -> rules -> violations,
each one an event (``new`` at once with a snapshot; ``update`` with its evidence package
once the clip's after-part has been recorded; then ``end``).

The detector suppresses across the vehicle classes and keeps every class's score; here
those scores are cut to the analytic's classes before tracking, so an object the model
thinks a "train" first and a bus second is a bus here, not lost. The signal is read by
``edge.analytics.signal`` (``signal_reader``, set by the worker for camera sources); a
red-light violation carries the source that saw the red.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge.analytics.base import Transition
from edge.analytics.plates import configured
from edge.analytics.plugins.traffic.config import TrafficAnalytic
from edge.analytics.signal import SignalReader
from edge.analytics.tracking import ByteTrack, Tracks
from edge.analytics.traffic import (
    LaneRestriction,
    NoHelmet,
    NoStopping,
    RedLight,
    RuleConfigError,
    SignalState,
    Speeding,
    Violation,
    WrongWay,
)
from edge.events.evidence import Package, PacketRing, TrackHistory, assemble
from edge.inference.detections import Detections, keep_classes

log = logging.getLogger(__name__)


@dataclass
class _Zone:
    points: None = None  # the worker's motion mask: traffic looks at the whole frame


@dataclass
class _Pending:
    event_id: uuid.UUID
    violation: Violation
    rtype: str
    rule_name: str
    label: str
    due: float  # epoch seconds: the clip's after-part is recorded by then
    start: datetime
    box: tuple[float, float, float, float]
    box_px: tuple[int, int, int, int]
    attributes: dict[str, Any]
    geometry: dict[str, Any]


def _class_ids(names: tuple[str, ...], wanted: list[str] | None, what: str) -> list[int] | None:
    if wanted is None:
        return None
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise RuleConfigError(f"{what}: classes {unknown} are not in the model")
    return [names.index(c) for c in wanted]


def build_rules(
    cfg: TrafficAnalytic, names: tuple[str, ...], signal: SignalState
) -> list[tuple[str, Any, dict[str, Any]]]:
    """(name, rule, geometry for overlays) per configured rule; RuleConfigError if one
    cannot run (no_helmet without a classifier)."""
    vehicles = _class_ids(names, [c for c in cfg.classes if c != "person"], "classes")
    out = []
    for r in cfg.rules:
        name = r.name or r.type
        classes = _class_ids(names, r.classes, f"rules.{name}.classes") or vehicles
        geo: dict[str, Any] = {"lines": [], "polygons": []}
        rule: Any
        if r.type == "red_light":
            rule = RedLight(r.stop_line, r.direction, signal, grace_s=r.grace_s, classes=classes)
            geo["lines"] = [r.stop_line]
        elif r.type == "wrong_way":
            rule = WrongWay(r.lane, r.direction, r.min_distance, classes=classes)
            geo["polygons"] = [r.lane]
        elif r.type == "lane_restriction":
            forbidden = _class_ids(names, r.forbidden, f"rules.{name}.forbidden") or []
            rule = LaneRestriction(r.lane, forbidden, r.min_time_s)
            geo["polygons"] = [r.lane]
        elif r.type == "no_stopping":
            rule = NoStopping(r.zone, r.max_dwell_s, r.still_distance, classes=classes)
            geo["polygons"] = [r.zone]
        elif r.type == "speeding":
            rule = Speeding(
                r.line_a, r.line_b, r.distance_m, r.limit_kmh, cfg.calibrated, classes=classes
            )
            geo["lines"] = [r.line_a, r.line_b]
        else:
            rule = NoHelmet(r.model)  # raises: no classifier ships yet
        rule.name = name if name != r.type else rule.name
        out.append((r.type, rule, geo))
    return out


class TrafficMonitor:
    kind = "traffic"

    def __init__(
        self,
        cfg: TrafficAnalytic,
        class_names: tuple[str, ...],
        camera_id: str,
        signal: SignalState | None = None,
    ) -> None:
        self.cfg = cfg
        self.names = class_names
        self.camera_id = camera_id
        self.signal = signal or SignalState()
        self.min_score = cfg.min_score
        self.zone = _Zone()
        self.class_ids = np.array(_class_ids(class_names, cfg.classes, "classes") or [], np.int32)
        self.signal_reader: SignalReader | None = None  # a camera source, set by the worker
        self.tracker = ByteTrack(
            high_thresh=cfg.track_score,
            low_thresh=cfg.min_score,
            new_track_thresh=min(1.0, cfg.track_score + 0.1),
            fps_hint=cfg.fps,
            num_classes=len(class_names),
        )
        self.rules = build_rules(cfg, class_names, self.signal)
        self.history = TrackHistory(seconds=cfg.evidence.pre_s + cfg.evidence.post_s + 30)
        self.config_version = hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]
        self.pending: list[_Pending] = []
        self._last_forget = 0.0
        self.tracks_seen = 0

    def update(
        self, dets: Detections, frame_wh: tuple[int, int], frame_time: datetime
    ) -> list[Transition]:
        t = frame_time.timestamp()
        w, h = frame_wh
        tracks = self.track(dets, t)
        self.history.add(t, tracks.track_id, tracks.xyxy)
        scale = np.array([w, h, w, h], np.float32)
        norm = Tracks(
            tracks.track_id, tracks.xyxy / scale, tracks.class_id, tracks.confidence,
            tracks.class_share,
        )  # fmt: skip
        out = []
        for rtype, rule, geo in self.rules:
            for v in rule.update(norm, t):
                out.append(self._new(rtype, rule.name, v, geo, frame_wh, frame_time))
        if t - self._last_forget > 60:
            self._last_forget = t
            for _, rule, _ in self.rules:
                rule.forget(t)
        return out

    def track(self, dets: Detections, t: float) -> Tracks:
        """The analytic's classes only, then ByteTrack. With every class's score kept (the
        detector's cross-class NMS), a box is the best of the analytic's classes, and its
        vote counts only those."""
        dets = keep_classes(dets, self.class_ids, len(self.names), self.min_score)
        return self.tracker.update(dets, t)

    def _new(
        self,
        rtype: str,
        name: str,
        v: Violation,
        geo: dict[str, Any],
        frame_wh: tuple[int, int],
        frame_time: datetime,
    ) -> Transition:
        w, h = frame_wh
        box = tuple(min(1.0, max(0.0, float(x))) for x in v.box)
        box_px = (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
        state, _since = self.signal.at(v.time)
        attrs: dict[str, Any] = {
            "rule": name,
            "track_id": v.track_id,
            "config_version": self.config_version,
            "signal": state if rtype == "red_light" else None,
            "signal_source": self.signal.source if rtype == "red_light" else None,
            "evidence": "recording",
            **{k: v2 for k, v2 in v.details.items() if isinstance(v2, str | int | float | bool)},
        }
        start = datetime.fromtimestamp(v.time, UTC)
        p = _Pending(
            uuid.uuid4(),
            v,
            rtype,
            name,
            self.names[v.class_id],
            v.time + self.cfg.evidence.post_s,
            start,
            box,  # type: ignore[arg-type]
            box_px,
            attrs,
            geo,
        )
        self.pending.append(p)
        log.info(
            "violation",
            extra={
                "camera": self.camera_id,
                "rule": name,
                "track": v.track_id,
                "t": start.isoformat(),
            },
        )
        return Transition(
            type="new",
            event_id=p.event_id,
            seq=0,
            label=p.label,
            start_time=start,
            frame_time=frame_time,
            score=1.0,
            box=box,  # type: ignore[arg-type]
            box_px=box_px,
            snapshot=True,
            kind=rtype,
            zone=name,
            attributes=dict(attrs),
        )

    def finalize(
        self,
        now: float,
        ring: PacketRing | None,
        frame_wh: tuple[int, int],
        plate_reader: Callable[[list[np.ndarray]], tuple[str | None, str]] | None,
        force: bool = False,
    ) -> list[tuple[list[Transition], Package | None]]:
        """Evidence for the violations whose clip is complete (all of them with force)."""
        out = []
        keep = []
        for p in self.pending:
            if not force and now < p.due:
                keep.append(p)
                continue
            pkg = None
            attrs = dict(p.attributes)
            if ring is not None:
                folder = Path(self.cfg.evidence.dir) / self.camera_id / str(p.event_id)
                try:
                    pkg = assemble(
                        folder,
                        ring,
                        self.history,
                        track_id=p.violation.track_id,
                        t=p.violation.time,
                        frame_wh=frame_wh,
                        metadata={
                            "event_id": str(p.event_id),
                            "camera_id": self.camera_id,
                            "rule": p.rule_name,
                            "rule_config_version": self.config_version,
                            "vehicle_class": p.label,
                            "track_id": p.violation.track_id,
                            "signal": attrs.get("signal"),
                            "signal_source": attrs.get("signal_source"),
                            "details": p.violation.details,
                        },
                        lines=p.geometry["lines"],
                        polygons=p.geometry["polygons"],
                        pre_s=self.cfg.evidence.pre_s,
                        post_s=self.cfg.evidence.post_s,
                        plate_reader=configured(plate_reader, self.cfg.evidence),
                    )
                    attrs.update(
                        evidence="complete",
                        manifest_sha256=pkg.manifest_sha256,
                        plate=pkg.metadata.get("plate"),
                        plate_reason=pkg.metadata.get("plate_reason"),
                    )
                except Exception as exc:  # a broken package must not lose the violation
                    log.exception("evidence failed", extra={"camera": self.camera_id})
                    attrs.update(evidence="failed", evidence_error=str(exc)[:200])
            else:
                attrs.update(evidence="none")
            now_dt = datetime.fromtimestamp(now, UTC)
            common = dict(
                event_id=p.event_id,
                label=p.label,
                start_time=p.start,
                frame_time=now_dt,
                score=1.0,
                box=p.box,
                box_px=p.box_px,
                zone=p.rule_name,
                kind=p.rtype,
                attributes=attrs,
            )
            update = Transition(type="update", seq=1, **common)  # type: ignore[arg-type]
            end = Transition(type="end", seq=2, end_time=now_dt, **common)  # type: ignore[arg-type]
            out.append(([update, end], pkg))
        self.pending = keep
        return out

    def close(self, now: datetime) -> list[Transition]:
        return []  # pending violations are finalized by the worker (it has the ring)
