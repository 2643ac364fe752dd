"""The ``congestion`` analytic's config: a lane zone, its thresholds and hysteresis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig, polygon
from edgewatch.contract import ID_PATTERN

Pt = tuple[float, float]


class CongestionAnalytic(AnalyticConfig):
    """Occupancy and queue length of a lane zone over time: free, slow, jammed."""

    type: Literal["congestion"]
    name: str = Field("congestion", pattern=ID_PATTERN)
    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(
        default_factory=lambda: ["car", "motorcycle", "bus", "truck", "bicycle"],
        description="the classes that occupy the lane",
    )
    fps: float = Field(2.0, gt=0, le=10, description="samples analysed per second")
    min_score: float = Field(0.3, gt=0, le=1, description="boxes below this are ignored")
    zone: list[Pt] = Field(description="the lane, a polygon of fractions of width and height")
    zone_name: str = Field("lane", pattern=ID_PATTERN, description="the events' zone name")
    direction: Pt | None = Field(
        None,
        description="the way the queue's traffic moves, towards its head (the stop line), "
        "e.g. [0, -1]; queue_length is then the lane's share from the head end back to the "
        "last vehicle of the queue. None: the share of the lane's length (along its longest "
        "axis) with vehicles on it, wherever they are",
    )
    window_s: float = Field(
        60.0, ge=5, le=1800, description="occupancy is the mean over this window (smoothing)"
    )
    slow: float = Field(0.3, gt=0, lt=1, description="smoothed occupancy that makes it slow")
    jammed: float = Field(0.6, gt=0, le=1, description="smoothed occupancy that makes it jammed")
    hysteresis: float = Field(
        0.1, ge=0, lt=0.5, description="a state is left only below its threshold minus this"
    )
    hold_s: float = Field(30.0, ge=0, le=1800, description="... for at least this long")
    queue_gap: float = Field(
        0.15,
        gt=0,
        le=0.5,
        description="gaps shorter than this share of the lane's length do not end the queue",
    )
    interval_s: float = Field(30.0, ge=1, le=3600, description="one reading every interval")
    update_interval_s: float = Field(
        60.0, gt=0, description="while jammed, an event update at most this often"
    )
    grid: int = Field(
        48, ge=8, le=128, description="occupancy is measured on grid x grid cells of the zone"
    )
    priority: int = Field(1, ge=1, le=10, description="share of the inference engine (weight)")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: list[Pt]) -> list[Pt]:
        polygon(value, "zone")
        nxt = value[1:] + value[:1]
        area = 0.5 * abs(
            sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(value, nxt, strict=True))
        )
        if area < 1e-4:
            raise ValueError("zone: the polygon has (almost) no area")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one class")
        return value

    @field_validator("direction")
    @classmethod
    def _direction(cls, value: Pt | None) -> Pt | None:
        if value is not None and value[0] == 0 and value[1] == 0:
            raise ValueError("direction: must not be zero (e.g. [0, -1] towards the top)")
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> CongestionAnalytic:
        if self.jammed <= self.slow:
            raise ValueError("jammed: must be above slow")
        if self.slow - self.hysteresis <= 0:
            raise ValueError("hysteresis: must be below slow (a state must be able to end)")
        return self
