"""The ``traffic`` analytic's config: tracking, the signal source, rules, evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from edge.analytics.base import AnalyticConfig
from edge.analytics.base import Strict as _Strict
from edge.analytics.base import fractions as _fractions
from edgewatch.contract import ID_PATTERN

Pt = tuple[float, float]


class _TrafficRuleBase(_Strict):
    name: str | None = Field(None, pattern=ID_PATTERN, description="default: the type")
    classes: list[str] | None = Field(None, description="default: every vehicle class")


class RedLightRule(_TrafficRuleBase):
    type: Literal["red_light"]
    stop_line: tuple[Pt, Pt]
    direction: Pt = Field(description="the way traffic crosses the stop line, e.g. [0, -1] (up)")
    grace_s: float = Field(0.5, ge=0, description="red must have been on this long")


class WrongWayRule(_TrafficRuleBase):
    type: Literal["wrong_way"]
    lane: list[Pt]
    direction: Pt = Field(description="the lane's legal direction")
    min_distance: float = Field(0.15, gt=0, le=2, description="share of the frame moved against it")


class LaneRestrictionRule(_TrafficRuleBase):
    type: Literal["lane_restriction"]
    lane: list[Pt]
    forbidden: list[str] = Field(min_length=1, description="classes not allowed in the lane")
    min_time_s: float = Field(3.0, gt=0)


class NoStoppingRule(_TrafficRuleBase):
    type: Literal["no_stopping"]
    zone: list[Pt]
    max_dwell_s: float = Field(30.0, gt=0)
    still_distance: float = Field(0.03, gt=0, le=1)


class SpeedingRule(_TrafficRuleBase):
    type: Literal["speeding"]
    line_a: tuple[Pt, Pt]
    line_b: tuple[Pt, Pt]
    distance_m: float = Field(gt=0, description="measured on the road between the two lines")
    limit_kmh: float = Field(gt=0)


class NoHelmetRule(_TrafficRuleBase):
    type: Literal["no_helmet"]
    model: str | None = Field(None, description="a rider/helmet classifier (none ships yet)")


TrafficRuleConfig = Annotated[
    RedLightRule | WrongWayRule | LaneRestrictionRule | NoStoppingRule | SpeedingRule
    | NoHelmetRule,
    Field(discriminator="type"),
]  # fmt: skip


class SignalLamp(_Strict):
    """One lamp of a fixed signal head, marked once on a snapshot of the camera."""

    at: tuple[float, float] = Field(description="the lamp's centre, fractions of width, height")
    radius: float = Field(gt=0, le=0.2, description="the lamp's radius, fraction of the width")
    colour: Literal["red", "amber", "green"] | None = Field(
        None,
        description="the lamp's colour: the lit lamp's hue must agree with it; none: the "
        "hue alone decides (weaker, for a head whose layout is not known)",
    )
    arrow: bool = Field(False, description="an arrow lamp: reported, not the head's state")

    @field_validator("at")
    @classmethod
    def _at(cls, value: tuple[float, float]) -> tuple[float, float]:
        _fractions([value], "lamp")
        return value


class SignalSource(_Strict):
    """Where a junction's signal state comes from: the controller (``mqtt``), or the
    camera, by the OpenLenda model on the head's region (``model``) or by the configured
    lamps of a fixed head (``lamps``). A camera's state counts for a red-light violation
    only between two looks that saw the same state."""

    source: Literal["model", "mqtt", "lamps"]
    model: str = Field("openlenda_nano", description="model: traffic-light detector id")
    region: tuple[float, float, float, float] | None = Field(
        None, description="model: x1, y1, x2, y2 (fractions) around the signal head"
    )
    mirror: bool = Field(
        False,
        description="model: flip the view first; set it for horizontal heads with red on "
        "the left (OpenLenda learned Japan's, red on the right); never for vertical heads",
    )
    lamps: list[SignalLamp] = Field(
        default_factory=list, description="lamps: the head's lamps (two or more, not arrows)"
    )
    min_score: float = Field(0.15, gt=0, le=1, description="model: OpenLenda scores low")
    period_s: float = Field(
        0.5, ge=0.1, le=5, description="model, lamps: seconds between looks at the head"
    )
    topic: str | None = Field(
        None, description='mqtt: the controller\'s topic; JSON {"state": "red", "time": ISO}'
    )

    @model_validator(mode="after")
    def _complete(self) -> SignalSource:
        if self.source == "model" and self.region is None:
            raise ValueError("region: the model source needs the signal head's region")
        if self.source == "mqtt" and not self.topic:
            raise ValueError("topic: the mqtt source needs the controller's topic")
        if self.source == "lamps" and sum(not lp.arrow for lp in self.lamps) < 2:
            raise ValueError(
                "lamps: the lamps source needs the head's lamps, two or more that are not "
                "arrows (the lit one must stand out from the others)"
            )
        return self


class EvidenceSettings(_Strict):
    dir: Path = Field(Path("var/evidence"), description="packages are kept here too")
    pre_s: float = Field(4.0, ge=0.5, le=30, description="clip starts this long before")
    post_s: float = Field(4.0, ge=0.5, le=30, description="clip ends this long after")
    ring_s: float = Field(30.0, ge=5, le=300, description="video kept in memory per camera")
    ring_mb: float = Field(64.0, ge=4, le=1024)
    plates: bool = Field(
        True, description="read plates (plate_nano detector, then rapidocr-onnxruntime)"
    )
    plate_min_reads: int = Field(
        2, ge=1, le=3, description="frames whose reads must agree before a plate is reported"
    )
    plate_min_char: float = Field(
        0.7, gt=0, lt=1, description="every character of a plate must score this much"
    )


class TrafficAnalytic(AnalyticConfig):
    """Vehicles tracked (ByteTrack) at the analysis rate, and per-camera traffic rules."""

    type: Literal["traffic"] = "traffic"
    name: str = Field("traffic", pattern=ID_PATTERN)
    model: str = Field("yolox_nano", description="model id from the manifest")
    classes: list[str] = Field(
        default_factory=lambda: ["car", "motorcycle", "bus", "truck", "bicycle", "person"]
    )
    fps: float = Field(10.0, gt=0, le=30, description="frames analysed per second")
    min_score: float = Field(0.1, gt=0, le=1, description="lowest box ByteTrack looks at")
    track_score: float = Field(0.5, gt=0, le=1, description="boxes that start and carry tracks")
    calibrated: bool = Field(
        False, description="speeds are evidence only on a calibrated camera (else monitoring)"
    )
    signal: SignalSource | None = None
    rules: list[TrafficRuleConfig] = Field(min_length=1)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    priority: int = Field(3, ge=1, le=10, description="share of the inference engine (weight)")
    motion_gating: bool = Field(False, exclude=True)  # tracking needs every analysed frame
    motion_threshold: float = Field(0.01, exclude=True)

    def models_used(self) -> dict[str, list[str]]:
        used = {self.model: list(self.classes)}
        if self.signal is not None and self.signal.source == "model":
            used.setdefault(self.signal.model, [])
        return used

    def model_key(self, model: str) -> str:
        return "model" if model == self.model else "signal.model"

    def problems(self, classes_of: Any) -> list[tuple[str, str]]:
        out = super().problems(classes_of)
        if out:
            return out
        from edge.analytics.traffic import RuleConfigError, SignalState
        from edge.analytics.traffic_monitor import build_rules

        try:
            build_rules(self, tuple(classes_of(self.model)), SignalState())
        except RuleConfigError as exc:
            out.append(("rules", str(exc)))
        return out

    @model_validator(mode="after")
    def _signal(self) -> TrafficAnalytic:
        if any(r.type == "red_light" for r in self.rules) and self.signal is None:
            raise ValueError("signal: a red_light rule needs a signal source (model or mqtt)")
        names = [r.name or r.type for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rules: names must be unique (set name: on repeated types)")
        return self
