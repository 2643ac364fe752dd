"""The ``fire`` and ``burning`` analytics' config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig
from edge.analytics.base import Strict as _Strict
from edge.analytics.base import fractions as _fractions
from edgewatch.contract import ID_PATTERN


class LandUseZone(_Strict):
    """A part of the view and what the land is: it decides what a confirmed fire means."""

    name: str = Field(pattern=ID_PATTERN)
    use: Literal["forest", "field", "other"]
    polygon: list[tuple[float, float]] = Field(description="fractions of width and height")

    @field_validator("polygon")
    @classmethod
    def _poly(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError("a polygon needs at least 3 points")
        _fractions(value, "polygon")
        return value


class SeasonWindow(_Strict):
    """When burning is likely (post-harvest): months (1-12) and local hours [from, to)."""

    months: list[int] = Field(default_factory=lambda: list(range(1, 13)))
    hours: tuple[int, int] = Field((0, 24), description="local hours, [from, to); may wrap")

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int]) -> list[int]:
        if not value or any(not 1 <= m <= 12 for m in value):
            raise ValueError("months are 1..12")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not (0 <= value[0] <= 24 and 0 <= value[1] <= 24):
            raise ValueError("hours are 0..24")
        return value


def _polygons(value: list[list[tuple[float, float]]], what: str) -> None:
    for poly in value:
        if len(poly) < 3:
            raise ValueError(f"each {what} polygon needs at least 3 points")
        _fractions(poly, what)


class FireAnalytic(AnalyticConfig):
    """Fire and smoke from the fire/smoke detector, confirmed over time, routed by land use."""

    type: Literal["fire"] = "fire"
    name: str = Field("fire", pattern=ID_PATTERN)
    model: str = Field("fire_smoke_nano", description="model id from the manifest")
    fire_class: str = "fire"
    smoke_class: str = "smoke"
    period_s: float = Field(2.0, ge=0.1, le=60, description="one detector sample every period")
    min_score: float = Field(0.4, gt=0, le=1)
    confirm_hits: int = Field(4, ge=1, le=100, description="samples with fire or smoke...")
    confirm_window: int = Field(8, ge=1, le=200, description="...among the last this many")
    max_box_width: float = Field(
        0.4, gt=0, le=1, description="boxes wider than this share of the frame are ignored"
    )
    exclude: list[list[tuple[float, float]]] = Field(
        default_factory=list,
        description="polygons never alerting (chimneys, kilns, incense and votive burning spots)",
    )
    sky: list[tuple[float, float]] | None = Field(
        None, description="sky polygon: detections based in it are ignored"
    )
    smoke_anchor: float = Field(
        0.08, gt=0, le=1, description="smoke base may move this share of the frame while confirming"
    )
    smoke_growth: float = Field(
        1.0, gt=0, description="smoke-only alerts: later box area / earlier box area at least"
    )
    hold_s: float = Field(
        120.0, ge=0, description="an alert ends this long after the last sighting"
    )
    update_interval_s: float = Field(30.0, gt=0, description="min time between updates")
    land_use: Literal["forest", "field", "other"] = Field(
        "other", description="land use where no zone applies"
    )
    zones: list[LandUseZone] = Field(default_factory=list)
    priority: int = Field(2, ge=1, le=10, description="share of the inference engine (weight)")

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        _polygons(value, "exclude")
        return value

    @field_validator("sky")
    @classmethod
    def _sky(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is not None:
            _polygons([value], "sky")
        return value

    @model_validator(mode="after")
    def _window(self) -> FireAnalytic:
        if self.confirm_hits > self.confirm_window:
            raise ValueError("confirm_hits: cannot exceed confirm_window")
        return self

    def models_used(self) -> dict[str, list[str]]:
        return {self.model: [self.fire_class, self.smoke_class]}

    @property
    def fps(self) -> float:
        return 1.0 / self.period_s

    motion_gating: bool = Field(
        False, description="skip inference when nothing changed in the frame since the last run"
    )
    motion_threshold: float = Field(
        0.01, gt=0, lt=1, description="fraction of the frame's pixels that must change to run"
    )


class BurningAnalytic(FireAnalytic):
    """Open burning (straw after harvest): fields by default, more sensitive in season."""

    type: Literal["burning"] = "burning"  # type: ignore[assignment]
    name: str = Field("burning", pattern=ID_PATTERN)
    land_use: Literal["forest", "field", "other"] = "field"
    period_s: float = Field(5.0, ge=0.1, le=60)
    season: list[SeasonWindow] = Field(
        default_factory=list, description="windows where sensitivity is raised"
    )
    season_min_score: float = Field(0.25, gt=0, le=1)
    season_confirm_hits: int = Field(3, ge=1, le=100)
    timezone: str = Field("Asia/Ho_Chi_Minh", description="for the season's months and hours")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
