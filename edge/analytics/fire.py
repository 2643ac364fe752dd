"""The ``fire`` and ``burning`` analytics: confirmed fire and smoke, routed by land use.

Fed detections of the fire/smoke model and time, a rule returns event transitions; it knows
nothing about video or MQTT. What it does with each sample, vectorised over the boxes:

1. keep fire and smoke boxes above the score threshold (lower in a burning season window);
2. drop boxes wider than ``max_box_width`` of the frame (low cloud, fog banks, haze);
3. drop boxes whose base (bottom centre) lies in an exclusion polygon (chimneys, kilns,
   incense and votive-paper burning spots) or in the sky polygon;
4. give each remaining box the land-use zone its base lies in (else the camera's default);
5. per zone, count the samples with a sighting among the last ``confirm_window``: an alert
   starts at ``confirm_hits``. When only smoke was seen, the smoke must also stay anchored
   (its base moves less than ``smoke_anchor`` of the frame) and not shrink (median area of
   the later sightings >= ``smoke_growth`` x that of the earlier ones): drifting cloud and
   passing steam fail that;
6. a running alert is held until nothing was seen for ``hold_s``, so it does not flicker.

Land use decides the kind: ``forest`` gives ``forest_fire`` (urgent), ``field`` gives
``straw_burning`` (environmental), anything else ``smoke``.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.base import Transition
from edge.analytics.geometry import PolygonZone
from edge.analytics.plugins.fire.config import BurningAnalytic, FireAnalytic
from edge.inference.detections import Detections

KIND_BY_USE = {"forest": "forest_fire", "field": "straw_burning", "other": "smoke"}


@dataclass
class _Sighting:
    is_fire: bool
    base: tuple[float, float]  # fractions of width/height
    area: float  # fraction of the frame
    score: float
    box: tuple[float, float, float, float]
    box_px: tuple[int, int, int, int]


@dataclass
class _ZoneState:
    name: str
    use: str
    hits: deque[_Sighting | None]
    event_id: uuid.UUID | None = None
    seq: int = 0
    start_time: datetime | None = None
    last_seen: datetime | None = None
    last_sent: datetime | None = None
    top: _Sighting | None = None
    improved: bool = False
    fire_seen: bool = False
    sightings: int = 0
    rejected_anchor: int = 0


@dataclass
class FireDecision:
    """Per-sample figures, for tests, metrics and the evaluation."""

    kept: int = 0
    too_wide: int = 0
    excluded: int = 0
    sky: int = 0
    in_season: bool = False
    per_zone: dict[str, int] = field(default_factory=dict)


class FireRule:
    kind = "fire"

    def __init__(
        self,
        cfg: FireAnalytic,
        class_names: tuple[str, ...],
        bearing_deg: float | None = None,
        hfov_deg: float | None = None,
    ) -> None:
        missing = [c for c in (cfg.fire_class, cfg.smoke_class) if c not in class_names]
        if missing:
            raise ValueError(
                f"analytic {cfg.name!r}: classes {missing} are not in model {cfg.model!r} "
                f"(it has {list(class_names)})"
            )
        self.cfg = cfg
        self.fire_id = class_names.index(cfg.fire_class)
        self.smoke_id = class_names.index(cfg.smoke_class)
        self.bearing_deg = bearing_deg
        self.hfov_deg = hfov_deg
        self.exclude = [PolygonZone(p) for p in cfg.exclude]
        self.sky = PolygonZone(cfg.sky) if cfg.sky else None
        self.zones = [(z.name, z.use, PolygonZone(z.polygon)) for z in cfg.zones]
        window = cfg.confirm_window
        self.states: dict[str, _ZoneState] = {
            name: _ZoneState(name, use, deque(maxlen=window)) for name, use, _ in self.zones
        }
        self.states["frame"] = _ZoneState("frame", cfg.land_use, deque(maxlen=window))
        self.last = FireDecision()
        self.zone = "frame"  # the worker's default zone name; transitions carry their own
        self._tz = ZoneInfo(cfg.timezone) if isinstance(cfg, BurningAnalytic) else None

    # -- sensitivity -------------------------------------------------------------------------

    def in_season(self, now: datetime) -> bool:
        cfg = self.cfg
        if not isinstance(cfg, BurningAnalytic) or not cfg.season or self._tz is None:
            return False
        local = now.astimezone(self._tz)
        for w in cfg.season:
            a, b = w.hours
            in_hours = a <= local.hour < b if a <= b else (local.hour >= a or local.hour < b)
            if local.month in w.months and in_hours:
                return True
        return False

    def thresholds(self, now: datetime) -> tuple[float, int]:
        cfg = self.cfg
        if isinstance(cfg, BurningAnalytic) and self.in_season(now):
            return min(cfg.min_score, cfg.season_min_score), min(
                cfg.confirm_hits, cfg.season_confirm_hits
            )
        return cfg.min_score, cfg.confirm_hits

    @property
    def min_score(self) -> float:
        """The lowest score this rule can use: what the detector is asked for."""
        cfg = self.cfg
        if isinstance(cfg, BurningAnalytic):
            return min(cfg.min_score, cfg.season_min_score)
        return cfg.min_score

    @property
    def active_events(self) -> int:
        return sum(1 for s in self.states.values() if s.event_id is not None)

    # -- per sample --------------------------------------------------------------------------

    def update(
        self, detections: Detections, frame_wh: tuple[int, int], now: datetime
    ) -> list[Transition]:
        cfg = self.cfg
        w, h = frame_wh
        min_score, hits_needed = self.thresholds(now)
        d = FireDecision(in_season=self.in_season(now))
        keep = (detections.confidence >= min_score) & np.isin(
            detections.class_id, (self.fire_id, self.smoke_id)
        )
        det = detections[keep]
        xyxy = det.xyxy
        base = det.anchors()
        wide = (xyxy[:, 2] - xyxy[:, 0]) > cfg.max_box_width * w
        d.too_wide = int(wide.sum())
        excluded = np.zeros(len(det), bool)
        for poly in self.exclude:
            excluded |= poly.contains(base, frame_wh)
        d.excluded = int((excluded & ~wide).sum())
        in_sky = self.sky.contains(base, frame_wh) if self.sky else np.zeros(len(det), bool)
        d.sky = int((in_sky & ~wide & ~excluded).sum())
        ok = ~wide & ~excluded & ~in_sky
        det, base = det[ok], base[ok]
        d.kept = len(det)
        zone_of = np.full(len(det), "frame", dtype=object)
        unassigned = np.ones(len(det), bool)
        for name, _, poly in self.zones:
            inside = poly.contains(base, frame_wh) & unassigned
            zone_of[inside] = name
            unassigned &= ~inside
        out: list[Transition] = []
        for name, state in self.states.items():
            sel = zone_of == name
            sighting = None
            if sel.any():
                idx = np.flatnonzero(sel)
                # the zone's sighting: fire first, then the highest score
                is_fire = det.class_id[idx] == self.fire_id
                order = np.lexsort((-det.confidence[idx], ~is_fire))
                i = int(idx[order[0]])
                x1, y1, x2, y2 = (float(v) for v in det.xyxy[i])
                sighting = _Sighting(
                    is_fire=bool(det.class_id[i] == self.fire_id) or bool(is_fire.any()),
                    base=(float(base[i, 0]) / w, float(base[i, 1]) / h),
                    area=max(0.0, (x2 - x1) * (y2 - y1)) / (w * h),
                    score=float(det.confidence[i]),
                    box=(x1 / w, y1 / h, x2 / w, y2 / h),
                    box_px=(int(x1), int(y1), int(x2), int(y2)),
                )
                d.per_zone[name] = int(sel.sum())
            state.hits.append(sighting)
            out += self._advance(state, sighting, hits_needed, now)
        self.last = d
        return out

    def _smoke_ok(self, seen: list[_Sighting]) -> bool:
        """Smoke only: anchored at its base and not shrinking over the confirming sightings."""
        bases = np.asarray([s.base for s in seen])
        spread = bases.max(axis=0) - bases.min(axis=0)
        if (spread > self.cfg.smoke_anchor).any():
            return False
        areas = np.asarray([s.area for s in seen])
        half = len(areas) // 2
        if half == 0:
            return True
        return float(np.median(areas[-half:])) >= self.cfg.smoke_growth * float(
            np.median(areas[:half])
        )

    def _advance(
        self, s: _ZoneState, sighting: _Sighting | None, hits_needed: int, now: datetime
    ) -> list[Transition]:
        cfg = self.cfg
        if sighting is not None:
            s.last_seen = now
        if s.event_id is None:
            seen = [x for x in s.hits if x is not None]
            if sighting is None or len(seen) < hits_needed:
                return []
            fire = any(x.is_fire for x in seen)
            if not fire and not self._smoke_ok(seen):
                s.rejected_anchor += 1
                return []
            s.event_id = uuid.uuid4()
            s.seq = 0
            s.start_time = now
            s.last_sent = now
            s.fire_seen = fire
            s.sightings = len(seen)
            s.top = max(seen, key=lambda x: (x.is_fire, x.score))
            return [self._transition(s, "new", now, snapshot=True)]
        s.sightings += sighting is not None
        if sighting is not None:
            s.fire_seen = s.fire_seen or sighting.is_fire
            if s.top is None or (sighting.is_fire, sighting.score) > (s.top.is_fire, s.top.score):
                s.top = sighting
                s.improved = True
        assert s.last_seen is not None and s.last_sent is not None
        if (now - s.last_seen).total_seconds() >= cfg.hold_s:
            t = self._transition(s, "end", now, end_time=s.last_seen)
            s.event_id, s.top, s.improved = None, None, False
            s.hits.clear()
            return [t]
        if s.improved and (now - s.last_sent).total_seconds() >= cfg.update_interval_s:
            s.improved = False
            s.last_sent = now
            return [self._transition(s, "update", now, snapshot=True)]
        return []

    def close(self, now: datetime) -> list[Transition]:
        """End every running alert (the worker is stopping)."""
        out = []
        for s in self.states.values():
            if s.event_id is not None:
                out.append(self._transition(s, "end", now, end_time=s.last_seen or now))
                s.event_id, s.top, s.improved = None, None, False
            s.hits.clear()
        return out

    def target_bearing(self, box: tuple[float, float, float, float]) -> float | None:
        """Compass bearing from the camera to the box centre, when bearing and FOV are known."""
        if self.bearing_deg is None or self.hfov_deg is None:
            return None
        cx = (box[0] + box[2]) / 2
        # pinhole: the angle off-axis is atan of the offset on the image plane
        half = math.radians(self.hfov_deg) / 2
        off = math.degrees(math.atan((cx - 0.5) * 2 * math.tan(half)))
        return round((self.bearing_deg + off) % 360, 2)

    def _transition(
        self,
        s: _ZoneState,
        type_: str,
        now: datetime,
        snapshot: bool = False,
        end_time: datetime | None = None,
    ) -> Transition:
        assert s.event_id is not None and s.start_time is not None and s.top is not None
        top = s.top
        s.seq += 1
        attrs: dict[str, str | int | float | bool | None] = {
            "land_use": s.use,
            "fire_seen": s.fire_seen,
            "smoke_only": not s.fire_seen,
            "sightings": s.sightings,
            "urgent": s.use == "forest",
        }
        if self.bearing_deg is not None:
            attrs["camera_bearing_deg"] = self.bearing_deg
        if self.hfov_deg is not None:
            attrs["camera_hfov_deg"] = self.hfov_deg
        bearing = self.target_bearing(top.box)
        if bearing is not None:
            attrs["target_bearing_deg"] = bearing
        return Transition(
            type=type_,  # type: ignore[arg-type]
            event_id=s.event_id,
            seq=s.seq,
            label="fire" if s.fire_seen else "smoke",
            start_time=s.start_time,
            frame_time=now,
            score=round(top.score, 3),
            box=top.box,
            box_px=top.box_px,
            end_time=end_time,
            snapshot=snapshot,
            kind=KIND_BY_USE[s.use],
            zone=s.name,
            attributes=attrs,
        )
