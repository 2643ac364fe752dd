"""The ``sidewalk_encroachment`` and ``illegal_parking`` analytics' config.

Both are one rule (a vehicle standing in a polygon beyond a dwell time, the traffic
analytic's ``no_stopping`` generalised) with different defaults: a sidewalk is for
people, so a minute is enough and motorcycles count; a no-parking kerb tolerates a
stop to load or drop off, so five minutes, and motorcycles (parked on every kerb in the
city, usually tolerated) are left out unless named. Parking bans often hold by hour,
hence ``hours`` in the camera's local time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig, polygon
from edgewatch.contract import ID_PATTERN

Pt = tuple[float, float]


def check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class DwellAnalytic(AnalyticConfig):
    """Vehicles (tracked with ByteTrack) standing in a polygon beyond a dwell time."""

    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(description="the detector's classes that are watched")
    fps: float = Field(2.0, gt=0, le=30, description="frames analysed per second")
    min_score: float = Field(0.1, gt=0, le=1, description="lowest box ByteTrack looks at")
    track_score: float = Field(0.5, gt=0, le=1, description="boxes that start and carry tracks")
    zone: list[Pt] = Field(
        description="the sidewalk or no-parking polygon, fractions of width and height"
    )
    zone_name: str | None = Field(
        None, pattern=ID_PATTERN, description="the zone's name on events; default: the name"
    )
    exclude: list[list[Pt]] = Field(
        default_factory=list,
        description="polygons inside the zone where standing is allowed (a parking bay)",
    )
    max_dwell_s: float = Field(gt=0, le=86400, description="standing longer than this is an event")
    still_distance: float = Field(
        0.03,
        gt=0,
        le=1,
        description="standing: the anchor stays this close (fraction of the frame) to its "
        "mean position over the whole dwell (a slow queue that keeps moving is not standing)",
    )
    max_missing: int = Field(
        10,
        ge=1,
        le=1000,
        description="samples in a row unseen, or outside the zone and away from where it "
        "stood, that end a stay (a parked vehicle hidden by a passing bus keeps its stay)",
    )
    update_interval_s: float = Field(
        60.0, gt=0, description="min time between updates while it stands"
    )
    hours: tuple[float, float] | None = Field(
        None,
        description="local hours [from, to) the rule applies (may wrap midnight); none: always",
    )
    timezone: str = Field("Asia/Ho_Chi_Minh", description="for hours")
    priority: int = Field(1, ge=1, le=10, description="share of the inference engine (weight)")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: list[Pt]) -> list[Pt]:
        polygon(value, "zone")
        return value

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[list[Pt]]) -> list[list[Pt]]:
        for poly in value:
            polygon(poly, "exclude polygon")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one class")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is None:
            return value
        a, b = value
        if not (0 <= a <= 24 and 0 <= b <= 24):
            raise ValueError("hours are 0..24, [from, to)")
        if a == b:
            raise ValueError("hours: from and to are equal (leave hours out for always)")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _window(self) -> DwellAnalytic:
        if self.max_dwell_s * self.fps < 2:
            raise ValueError("max_dwell_s: must cover at least two samples at fps")
        if self.track_score < self.min_score:
            raise ValueError("track_score: cannot be below min_score")
        return self


class SidewalkEncroachmentAnalytic(DwellAnalytic):
    """Vehicles standing on a sidewalk beyond a dwell time (motorcycles included)."""

    type: Literal["sidewalk_encroachment"] = "sidewalk_encroachment"
    name: str = Field("sidewalk_encroachment", pattern=ID_PATTERN)
    classes: list[str] = Field(
        default_factory=lambda: ["car", "motorcycle", "bus", "truck"],
        description="the detector's classes that are watched",
    )
    max_dwell_s: float = Field(
        60.0, gt=0, le=86400, description="standing longer than this is an event"
    )


class IllegalParkingAnalytic(DwellAnalytic):
    """Vehicles parked in a no-parking polygon beyond a dwell time, optionally by hour."""

    type: Literal["illegal_parking"] = "illegal_parking"
    name: str = Field("illegal_parking", pattern=ID_PATTERN)
    classes: list[str] = Field(
        default_factory=lambda: ["car", "bus", "truck"],
        description="the detector's classes that are watched",
    )
    max_dwell_s: float = Field(
        300.0, gt=0, le=86400, description="standing longer than this is an event"
    )
