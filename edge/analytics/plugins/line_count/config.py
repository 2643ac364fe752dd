"""The ``line_count`` analytic's config: directed lines, the classes counted, the interval.

Lines are fractions of the frame like every other geometry, so a count survives a
resolution change. Each reading key is ``<line>.<class>.<direction>``; the validators
check here, at ``config check``, that every key fits the hub's reading-key pattern, so a
config that validates never publishes a reading the hub refuses.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig, Strict
from edge.analytics.base import fractions as _fractions
from edgewatch.contract import ID_PATTERN

Pt = tuple[float, float]

LINE_NAME = r"^[a-z0-9][a-z0-9_]{0,31}$"
READING_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$")
DIRECTIONS = ("forward", "backward")
MAX_VALUES = 64  # values per reading (edgewatch.contract.ReadingMessage)
TOTAL = "total"  # the per-line sum over classes; no class may be called this


def key_class(name: str) -> str:
    """A class name as it appears in reading keys (COCO's "traffic light" has a space)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


class CountLine(Strict):
    """One directed line: ``a`` to ``b``, and which side is "forward"."""

    name: str = Field(pattern=LINE_NAME, description='e.g. "north_in"; the reading keys start so')
    a: Pt = Field(description="one end, x, y as fractions of width and height")
    b: Pt = Field(description="the other end")
    direction: Pt = Field(
        description="a vector pointing to the side a forward crossing ends on, e.g. [0, 1] "
        "(down the image); only its side of the line matters"
    )

    @model_validator(mode="after")
    def _geometry(self) -> CountLine:
        _fractions([self.a, self.b], f"lines.{self.name}")
        dx, dy = self.b[0] - self.a[0], self.b[1] - self.a[1]
        length = (dx * dx + dy * dy) ** 0.5
        if length < 0.01:
            raise ValueError(f"lines.{self.name}: a and b must be different points")
        # the normal's component of the direction: zero means parallel to the line
        across = (-dy * self.direction[0] + dx * self.direction[1]) / length
        norm = (self.direction[0] ** 2 + self.direction[1] ** 2) ** 0.5
        if norm == 0 or abs(across) < 0.1 * norm:
            raise ValueError(
                f"lines.{self.name}.direction: must point across the line (it is parallel "
                "to it or zero), e.g. [0, 1] for a horizontal line crossed downwards"
            )
        return self


class LineCountAnalytic(AnalyticConfig):
    """Vehicles and people crossing directed lines, counted per class and direction."""

    type: Literal["line_count"]
    name: str = Field("line_count", pattern=ID_PATTERN)
    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(
        default_factory=lambda: ["car", "motorcycle", "bus", "truck", "bicycle", "person"],
        description="classes counted (the model's names); a track's class is its vote",
    )
    fps: float = Field(10.0, ge=2, le=30, description="frames analysed per second (tracking)")
    min_score: float = Field(0.1, gt=0, le=1, description="lowest box ByteTrack looks at")
    track_score: float = Field(0.5, gt=0, le=1, description="boxes that start and carry tracks")
    lines: list[CountLine] = Field(min_length=1, description="the lines counted, one or more")
    interval_s: float = Field(60.0, ge=5, le=3600, description="one reading every interval")
    margin: float = Field(
        0.01,
        ge=0,
        le=0.1,
        description="a crossing starts this far (fraction of the frame) behind the line and "
        "ends this far past it; a box jittering on the line stays inside the band",
    )
    confirm_s: float = Field(
        0.5,
        ge=0,
        le=5,
        description="a crossing counts once the track has stayed past the band this long "
        "(or was lost there); coming back into the band cancels it",
    )
    priority: int = Field(2, ge=1, le=10, description="share of the inference engine (weight)")

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one class")
        if len(set(value)) != len(value):
            raise ValueError("classes must be unique")
        if any(key_class(c) == TOTAL for c in value):
            raise ValueError(f'no class may be called "{TOTAL}" (the per-line sum is)')
        return value

    @model_validator(mode="after")
    def _keys(self) -> LineCountAnalytic:
        names = [ln.name for ln in self.lines]
        if len(set(names)) != len(names):
            raise ValueError("lines: names must be unique")
        for ln in self.lines:
            for c in [*self.classes, TOTAL]:
                key = f"{ln.name}.{key_class(c)}.backward"
                if not READING_KEY.match(key):
                    raise ValueError(
                        f"lines.{ln.name}: reading key {key!r} is too long (64 at most): "
                        "shorten the line's name"
                    )
        n = len(self.lines) * (len(self.classes) + 1) * len(DIRECTIONS) + 1  # + coverage
        if n > MAX_VALUES:
            raise ValueError(
                f"lines: {len(self.lines)} lines x {len(self.classes)} classes make {n} "
                f"reading values, more than a reading carries ({MAX_VALUES}): fewer lines "
                "or classes, or a second line_count analytic"
            )
        if self.track_score < self.min_score:
            raise ValueError("track_score must be at least min_score")
        return self
