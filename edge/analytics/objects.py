"""The ``objects`` analytic: classes in a zone, confirmed over consecutive samples.

Fed detections and time, it returns event transitions (``new``/``update``/``end``);
it knows nothing about video or MQTT, so it is tested on arrays alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from edge.analytics.base import Transition
from edge.analytics.geometry import PolygonZone
from edge.analytics.plugins.objects.config import ObjectsAnalytic
from edge.inference.detections import Detections


@dataclass
class _Track:
    hits: int = 0
    misses: int = 0
    event_id: uuid.UUID | None = None
    seq: int = 0
    start_time: datetime | None = None
    last_sent: datetime | None = None
    top_score: float = 0.0
    top_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    top_box_px: tuple[int, int, int, int] = (0, 0, 0, 0)
    improved: bool = False
    pending: list[tuple[float, tuple[float, float, float, float], tuple[int, int, int, int]]] = (
        field(default_factory=list)
    )


class ObjectsRule:
    kind = "object"

    def __init__(self, cfg: ObjectsAnalytic, class_names: tuple[str, ...]) -> None:
        unknown = [c for c in cfg.classes if c not in class_names]
        if unknown:
            raise ValueError(
                f"analytic {cfg.name!r}: classes {unknown} are not in model {cfg.model!r}"
            )
        self.cfg = cfg
        self.class_names = class_names
        self.labels = list(cfg.classes)
        self.class_ids = np.asarray([class_names.index(c) for c in cfg.classes], np.int32)
        self.zone = PolygonZone(cfg.zone)
        self._tracks: dict[str, _Track] = {label: _Track() for label in self.labels}

    @property
    def active_events(self) -> int:
        return sum(1 for t in self._tracks.values() if t.event_id is not None)

    def update(
        self, detections: Detections, frame_wh: tuple[int, int], now: datetime
    ) -> list[Transition]:
        """Feed one sample; returns the transitions it causes."""
        keep = (detections.confidence >= self.cfg.min_score) & np.isin(
            detections.class_id, self.class_ids
        )
        det = detections[keep]
        det = det[self.zone.contains(det.anchors(), frame_wh)]
        w, h = frame_wh
        out: list[Transition] = []
        for cid, label in zip(self.class_ids, self.labels, strict=True):
            mine = det[det.class_id == cid]
            track = self._tracks[label]
            if len(mine):
                best = int(np.argmax(mine.confidence))
                x1, y1, x2, y2 = (float(v) for v in mine.xyxy[best])
                box = (
                    round(max(0.0, x1 / w), 4),
                    round(max(0.0, y1 / h), 4),
                    round(min(1.0, x2 / w), 4),
                    round(min(1.0, y2 / h), 4),
                )
                box_px = (int(x1), int(y1), int(x2), int(y2))
                out.extend(self._seen(track, label, float(mine.confidence[best]), box, box_px, now))
            else:
                out.extend(self._missed(track, label, now))
        return out

    def _seen(self, track, label, score, box, box_px, now) -> list[Transition]:  # type: ignore[no-untyped-def]
        track.hits += 1
        track.misses = 0
        if track.event_id is None:
            track.pending.append((score, box, box_px))
            if track.start_time is None:
                track.start_time = now
            if track.hits < self.cfg.min_consecutive:
                return []
            score, box, box_px = max(track.pending, key=lambda p: p[0])
            track.pending.clear()
            track.event_id = uuid.uuid4()
            track.seq = 0
            track.top_score, track.top_box, track.top_box_px = score, box, box_px
            track.last_sent = now
            return [self._transition(track, "new", label, now, snapshot=True)]
        if score > track.top_score:
            track.top_score, track.top_box, track.top_box_px = score, box, box_px
            track.improved = True
        due = (now - track.last_sent).total_seconds() >= self.cfg.update_interval_s
        if track.improved and due:
            track.seq += 1
            track.last_sent = now
            track.improved = False
            return [self._transition(track, "update", label, now, snapshot=True)]
        return []

    def _missed(self, track: _Track, label: str, now: datetime) -> list[Transition]:
        track.hits = 0
        if track.event_id is None:
            track.pending.clear()
            track.start_time = None
            return []
        track.misses += 1
        if track.misses < self.cfg.max_missing:
            return []
        track.seq += 1
        done = self._transition(track, "end", label, now)
        done.end_time = now
        self._tracks[label] = _Track()
        return [done]

    def _transition(
        self,
        track: _Track,
        kind: Literal["new", "update", "end"],
        label: str,
        now: datetime,
        snapshot: bool = False,
    ) -> Transition:
        assert track.event_id is not None and track.start_time is not None
        return Transition(
            type=kind,
            event_id=track.event_id,
            seq=track.seq,
            label=label,
            start_time=track.start_time,
            frame_time=now,
            score=round(track.top_score, 4),
            box=track.top_box,
            box_px=track.top_box_px,
            snapshot=snapshot,
        )

    def close(self, now: datetime) -> list[Transition]:
        """End every open event (the worker is stopping)."""
        out = []
        for label, track in self._tracks.items():
            if track.event_id is not None:
                track.seq += 1
                t = self._transition(track, "end", label, now)
                t.end_time = now
                out.append(t)
            self._tracks[label] = _Track()
        return out
