"""The ``intrusion`` analytic's config: a zone, who is watched, and when it is armed.

Armed by windows of local time (a yard after closing, a construction site at night, a
school gate at weekends): each window names weekdays and hours; hours may wrap midnight,
and a wrapping window belongs to the day it starts (Friday 22:00-06:00 ends on Saturday
morning). No windows: always armed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig, polygon
from edge.analytics.base import Strict as _Strict
from edgewatch.contract import ID_PATTERN

Pt = tuple[float, float]


class ArmedWindow(_Strict):
    """When the zone is watched: weekdays (0 = Monday .. 6 = Sunday) and local hours."""

    days: list[int] = Field(
        default_factory=lambda: list(range(7)), description="weekdays, 0 = Monday .. 6 = Sunday"
    )
    hours: tuple[float, float] = Field(
        (0.0, 24.0), description="local hours [from, to), e.g. [18, 6]; may wrap midnight"
    )

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= d <= 6 for d in value):
            raise ValueError("days are weekdays 0 (Monday) .. 6 (Sunday), at least one")
        return sorted(set(value))

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[float, float]) -> tuple[float, float]:
        a, b = value
        if not (0 <= a <= 24 and 0 <= b <= 24):
            raise ValueError("hours are 0..24, [from, to)")
        if a == b:
            raise ValueError("hours: from and to are equal (use [0, 24] for the whole day)")
        return value


class IntrusionAnalytic(AnalyticConfig):
    """A person or vehicle (tracked) entering a zone while it is armed."""

    type: Literal["intrusion"] = "intrusion"
    name: str = Field("intrusion", pattern=ID_PATTERN)
    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(
        default_factory=lambda: ["person"], description="the detector's classes watched"
    )
    fps: float = Field(
        5.0,
        gt=0,
        le=30,
        description="frames analysed per second (a person's box must overlap itself from one "
        "sample to the next for the tracker: 2 fps loses people walking across a wide view)",
    )
    min_score: float = Field(0.2, gt=0, le=1, description="lowest box ByteTrack looks at")
    track_score: float = Field(0.5, gt=0, le=1, description="boxes that start and carry tracks")
    zone: list[Pt] = Field(description="the guarded polygon, fractions of width and height")
    zone_name: str | None = Field(
        None, pattern=ID_PATTERN, description="the zone's name on events; default: the name"
    )
    windows: list[ArmedWindow] = Field(
        default_factory=list, description="when the zone is armed; none: always"
    )
    timezone: str = Field("Asia/Ho_Chi_Minh", description="for the windows")
    min_inside: int = Field(
        2, ge=1, le=100, description="samples in a row inside before it is an intrusion"
    )
    from_outside: bool = Field(
        True,
        description="a track must be seen outside before it enters (a new tracker id for "
        "someone already inside, or someone inside when the zone is armed, is no intrusion)",
    )
    max_missing: int = Field(
        10, ge=1, le=1000, description="samples in a row unseen or outside that end the event"
    )
    rearm_s: float = Field(
        30.0,
        ge=0,
        le=86400,
        description="a track that gave an alarm gives another only after this long out of "
        "the zone (someone walking along its edge, in and out, is one alarm)",
    )
    max_event_s: float = Field(300.0, gt=0, le=86400, description="an event ends after this")
    priority: int = Field(2, ge=1, le=10, description="share of the inference engine (weight)")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: list[Pt]) -> list[Pt]:
        polygon(value, "zone")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one class")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _scores(self) -> IntrusionAnalytic:
        if self.track_score < self.min_score:
            raise ValueError("track_score: cannot be below min_score")
        return self
