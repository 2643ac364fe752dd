"""The ``crowd`` analytic's config.

A crowd is a count held over time, not a frame: people bunch for a moment at a crossing
every minute. So an event needs ``min_people`` for ``min_duration_s`` (short dips, missed
detections of people hidden behind each other, are forgiven for ``gap_s``), and it clears
only below ``clear_below`` for ``hold_s``, so a crowd whose count wavers around the
threshold is one event, not ten.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig, polygon
from edgewatch.contract import ID_PATTERN

Pt = tuple[float, float]


class CrowdAnalytic(AnalyticConfig):
    """People in a zone above a threshold for a time; a count reading every interval."""

    type: Literal["crowd"] = "crowd"
    name: str = Field("crowd", pattern=ID_PATTERN)
    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(
        default_factory=lambda: ["person"], description="the detector's classes counted"
    )
    fps: float = Field(1.0, gt=0, le=30, description="frames analysed per second")
    min_score: float = Field(0.35, gt=0, le=1, description="boxes counted score this much")
    zone: list[Pt] | None = Field(
        None, description="polygon, fractions of width and height; none: the whole frame"
    )
    zone_name: str | None = Field(
        None, pattern=ID_PATTERN, description="the zone's name on events; default: the name"
    )
    min_people: int = Field(10, ge=1, le=10000, description="a crowd is at least this many")
    min_duration_s: float = Field(
        30.0, ge=0, le=86400, description="...for this long before an event"
    )
    gap_s: float = Field(
        3.0, ge=0, le=600, description="dips below min_people this short are forgiven"
    )
    clear_below: int | None = Field(
        None,
        ge=0,
        description="the event clears below this many people; default: 0.7 x min_people",
    )
    hold_s: float = Field(30.0, ge=0, le=86400, description="...held this long")
    update_interval_s: float = Field(60.0, gt=0, description="min time between updates")
    interval_s: float = Field(
        60.0, ge=1, le=3600, description="one reading (mean and max count) every interval"
    )
    priority: int = Field(1, ge=1, le=10, description="share of the inference engine (weight)")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: list[Pt] | None) -> list[Pt] | None:
        return polygon(value, "zone")

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one class")
        return value

    @model_validator(mode="after")
    def _clear(self) -> CrowdAnalytic:
        if self.clear_below is not None and self.clear_below > self.min_people:
            raise ValueError("clear_below: cannot exceed min_people (it is the lower threshold)")
        return self

    @property
    def clear_at(self) -> int:
        """The count the event clears below (``clear_below``, or 0.7 x min_people rounded)."""
        if self.clear_below is not None:
            return self.clear_below
        return int(round(self.min_people * 0.7))
