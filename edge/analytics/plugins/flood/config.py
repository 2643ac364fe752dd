"""The ``flood`` analytic's config: a gauge, surveyed points or road cover."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from edge.analytics.base import AnalyticConfig
from edge.analytics.base import Strict as _Strict
from edge.analytics.base import fractions as _fractions
from edgewatch.contract import ID_PATTERN


class GaugePoint(_Strict):
    """A marked point on the measuring line: where it is in the image and its level."""

    at: tuple[float, float] = Field(description="x, y as fractions of width and height")
    level_cm: float = Field(description="water level (gauge datum) at this point, cm")


class DepthMark(_Strict):
    """A reference on a street (kerb top, a painted mark): its height above the road."""

    at: tuple[float, float] = Field(description="x, y as fractions of width and height")
    depth_cm: float = Field(gt=0, description="water this deep covers the mark")


class FloodLevel(_Strict):
    name: str = Field(pattern=ID_PATTERN, description='e.g. "I", "II", "III" or "knee"')
    level_cm: float


def _default_depth_levels() -> list[FloodLevel]:
    return [
        FloodLevel(name="ankle", level_cm=10),
        FloodLevel(name="knee", level_cm=40),
        FloodLevel(name="impassable", level_cm=60),
    ]


class FloodAnalytic(AnalyticConfig):
    """Water level at a flood hotspot, from a gauge, surveyed points or road cover."""

    type: Literal["flood"]
    name: str = Field("flood", pattern=ID_PATTERN)
    hotspot: str = Field(pattern=ID_PATTERN, description="hotspot id (configs/hotspots.geojson)")
    setup: Literal["gauge", "virtual_gauge", "road_cover"]
    period_s: float = Field(60.0, ge=1, le=3600, description="one reading every period_s")
    line: list[tuple[float, float]] | None = Field(
        None,
        description="gauge, virtual_gauge: the measuring line, top then bottom "
        "(fractions of width and height)",
    )
    line_width: float = Field(
        0.02, gt=0, le=0.2, description="width of the strip read along the line (fraction of W)"
    )
    points: list[GaugePoint] = Field(
        default_factory=list,
        description="gauge, virtual_gauge: two or more marked or surveyed points on the line",
    )
    road: list[tuple[float, float]] | None = Field(
        None, description="road_cover: the road polygon (fractions)"
    )
    marks: list[DepthMark] = Field(
        default_factory=list, description="road_cover: references of known height"
    )
    wet_cover: float = Field(
        0.15, gt=0, lt=1, description="road_cover: covered share of the road that counts as wet"
    )
    levels: list[FloodLevel] | None = Field(
        None,
        description="alarm levels, ascending; road_cover default ankle 10 / knee 40 / "
        "impassable 60 cm",
    )
    water: Literal["darker", "brighter", "any"] = Field(
        "darker",
        description="gauge, virtual_gauge: the water against the face above it: darker "
        "(a gauge, a target board, concrete; day and IR night), brighter (a dark wall over "
        "sky-lit water) or any",
    )
    mark_cm: float = Field(
        6.0,
        gt=0,
        le=100,
        description="gauge, virtual_gauge: marks shorter than this along the line (ticks, "
        "numbers, bolts, a dirt line, glints) are not taken for the waterline",
    )
    search_lines: int = Field(
        5, ge=1, le=32, description="parallel lines across the strip that must agree"
    )
    min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="readings less sure than this are unknown (low_confidence) and never "
        "move the alarm state",
    )
    margin_cm: float = Field(
        5.0, ge=5, description="a level clears only this far below it (hysteresis)"
    )
    hold_s: float = Field(
        600.0, ge=0, description="... in confident readings spanning at least this long"
    )
    clear_readings: int = Field(
        3,
        ge=2,
        le=100,
        description="... and at least this many of them in a row (an unknown starts again)",
    )
    smoothing: int = Field(
        5, ge=1, le=15, description="median (trend-following) over this many readings"
    )
    max_rate_cm_per_min: float = Field(
        2.0,
        gt=0,
        description="plausible change per minute between two readings; a larger change "
        "(plus jump_tolerance_cm) waits for the next reading to confirm it",
    )
    jump_tolerance_cm: float = Field(
        5.0, ge=0, description="what two readings may differ by at once (waves, noise)"
    )
    trend_window_s: float = Field(1200.0, ge=60, description="rate of rise over this window")
    temporal_median: int = Field(
        1, ge=1, le=9, description="frames whose median strip is read (rain, noise)"
    )
    reference_image: Path | None = Field(
        None,
        description="a good, dry view of the scene; default: the first usable frames",
    )
    min_brightness: float = Field(18.0, ge=0, le=255, description="darker = unknown (too dark)")
    max_glare: float = Field(
        0.2, gt=0, le=1, description="share of saturated pixels in the measured area = unknown"
    )
    max_blurred: float = Field(
        0.3, gt=0, le=1, description="share of blurred tiles (droplets, fog, focus) = unknown"
    )
    max_shift: float = Field(
        0.02, gt=0, le=0.5, description="camera moved by more than this share of the width"
    )
    unknown_after: int = Field(
        2, ge=1, le=100, description="unknown readings in a row that raise a flood_unknown event"
    )
    priority: int = Field(1, ge=1, le=10)

    @model_validator(mode="after")
    def _setup(self) -> FloodAnalytic:
        if self.setup in ("gauge", "virtual_gauge"):
            if not self.line or len(self.line) != 2:
                raise ValueError(f"setup {self.setup}: line needs two points (top, bottom)")
            _fractions(self.line, "line")
            if len(self.points) < 2:
                raise ValueError(f"setup {self.setup}: points needs two or more calibration points")
            _fractions([p.at for p in self.points], "points")
            if len({p.level_cm for p in self.points}) < 2:
                raise ValueError("points: calibration points need two different levels")
            if self.levels is None:
                raise ValueError(f"setup {self.setup}: levels (alarm levels in cm) are required")
        else:
            if not self.road or len(self.road) < 3:
                raise ValueError("setup road_cover: road needs a polygon of 3 or more points")
            _fractions(self.road, "road")
            _fractions([m.at for m in self.marks], "marks")
            if self.levels is None:
                self.levels = _default_depth_levels()
        values = [lv.level_cm for lv in self.levels]
        if values != sorted(values) or len(set(values)) != len(values):
            raise ValueError("levels: must be strictly ascending")
        if len({lv.name for lv in self.levels}) != len(self.levels):
            raise ValueError("levels: names must be unique")
        return self

    @property
    def fps(self) -> float:
        return 1.0 / self.period_s

    def problems(self, classes_of: Any) -> list[tuple[str, str]]:
        if self.reference_image and not Path(self.reference_image).is_file():
            return [("reference_image", f"{self.reference_image} does not exist")]
        return []
