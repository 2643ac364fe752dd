"""The ``objects`` analytic's config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from edge.analytics.base import AnalyticConfig
from edgewatch.contract import ID_PATTERN


class ObjectsAnalytic(AnalyticConfig):
    """Objects of some classes inside a polygon zone, for a few samples in a row."""

    type: Literal["objects"] = "objects"
    name: str = Field("objects", pattern=ID_PATTERN)
    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(default_factory=lambda: ["person", "car", "bus", "truck"])
    min_score: float = Field(0.4, gt=0, le=1)
    zone: list[tuple[float, float]] | None = Field(
        None, description="polygon, points as fractions of width and height; none = whole frame"
    )
    zone_name: str = Field("frame", pattern=ID_PATTERN)
    fps: float = Field(2.0, gt=0, le=30, description="samples analysed per second")
    min_consecutive: int = Field(2, ge=1, le=100, description="samples in a row to start")
    max_missing: int = Field(3, ge=1, le=1000, description="samples in a row without to end")
    update_interval_s: float = Field(10.0, gt=0, description="min time between updates")
    priority: int = Field(
        1, ge=1, le=10, description="share of the inference engine under overload (weight)"
    )
    motion_gating: bool = Field(
        False, description="skip inference when nothing changed in the zone since the last run"
    )
    motion_threshold: float = Field(
        0.01, gt=0, lt=1, description="fraction of zone pixels that must change to run"
    )

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is None:
            return value
        if len(value) < 3:
            raise ValueError("a zone needs at least 3 points")
        for x, y in value:
            if not (0 <= x <= 1 and 0 <= y <= 1):
                raise ValueError("zone points are fractions of width and height (0..1)")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one class")
        return value
