"""The edge worker's declarative config (YAML, validated by pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from edgewatch.contract import ID_PATTERN, Location
from edgewatch.mqtt import MqttSettings

_URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "file://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectsAnalytic(_Strict):
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


def _fractions(points: list[tuple[float, float]], what: str) -> None:
    for x, y in points:
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f"{what} points are fractions of width and height (0..1)")


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


class FloodAnalytic(_Strict):
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


class FireAnalytic(_Strict):
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

    # what the worker's inference groups read
    @property
    def fps(self) -> float:
        return 1.0 / self.period_s

    motion_gating: bool = Field(False, exclude=True)
    motion_threshold: float = Field(0.01, exclude=True)


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


class TrafficAnalytic(_Strict):
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

    @model_validator(mode="after")
    def _signal(self) -> TrafficAnalytic:
        if any(r.type == "red_light" for r in self.rules) and self.signal is None:
            raise ValueError("signal: a red_light rule needs a signal source (model or mqtt)")
        names = [r.name or r.type for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rules: names must be unique (set name: on repeated types)")
        return self


def _analytic_type(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "objects"))
    return str(getattr(value, "type", "objects"))


Analytic = Annotated[
    Annotated[ObjectsAnalytic, Tag("objects")]
    | Annotated[FloodAnalytic, Tag("flood")]
    | Annotated[FireAnalytic, Tag("fire")]
    | Annotated[BurningAnalytic, Tag("burning")]
    | Annotated[TrafficAnalytic, Tag("traffic")],
    Discriminator(_analytic_type),
]


class ReconnectSettings(_Strict):
    initial_s: float = Field(0.5, gt=0)
    max_s: float = Field(4.0, gt=0, description="cap of the exponential backoff")
    open_timeout_s: float = Field(10.0, gt=0)
    stall_timeout_s: float = Field(5.0, gt=0, description="no packet for this long = reconnect")
    first_frame_timeout_s: float = Field(
        20.0, gt=0, description="connected but no decodable frame for this long = reconnect"
    )


class CameraConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    url: str = Field(description="rtsp://, rtsps://, http(s):// or a file path / file:// URL")
    enabled: bool = True
    transport: Literal["tcp", "udp"] = "tcp"
    decode: Literal["auto", "snapshot", "keyframes", "all"] = Field(
        "auto",
        description=(
            "auto: snapshot when sampling every 30 s or slower, keyframes from 1 s, else all"
        ),
    )
    hwaccel: Literal[
        "auto", "none", "cuda", "vaapi", "qsv", "videotoolbox", "d3d11va", "drm", "v4l2m2m"
    ] = Field("auto", description="hardware decoder; falls back to software with a log line")
    location: Location | None = None
    bearing_deg: float | None = Field(
        None, ge=0, lt=360, description="compass bearing of the image centre (0 = north)"
    )
    hfov_deg: float | None = Field(None, gt=0, le=180, description="horizontal field of view")
    realtime: bool = Field(True, description="pace files at their frame rate (as a camera)")
    loop: bool = Field(False, description="files only: start again at the end")
    analytics: list[Analytic] = Field(default_factory=list)
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" in value and not value.startswith(_URL_SCHEMES):
            raise ValueError("scheme must be one of " + ", ".join(_URL_SCHEMES))
        return value

    @property
    def is_file(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")


class ModelsSettings(_Strict):
    dir: Path = Field(Path("var/models"), description="where model files live")
    manifest: Path | None = Field(None, description="default: the project's models/manifest.yaml")
    providers: list[str] = Field(
        default_factory=lambda: [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "OpenVINOExecutionProvider",
            "CPUExecutionProvider",
        ],
        description="onnxruntime execution providers in order of preference; those missing "
        "from the build or failing to load are skipped (logged), the CPU is always last",
    )
    threads: int = Field(2, ge=1, le=64, description="intra-op threads per model")
    max_batch: int = Field(
        8, ge=1, le=64, description="largest batch per run, for models with a dynamic batch"
    )


class EdgeConfig(_Strict):
    edge_id: str = Field(pattern=ID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    spool_dir: Path = Path("var/spool")
    spool_max_mb: float = Field(
        256.0,
        ge=0.25,
        description="disk the spool may take (database, WAL, payload files, reserve)",
    )
    status_interval_s: float = Field(5.0, gt=0, le=300)
    snapshot_quality: int = Field(80, ge=10, le=100)
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus /metrics")
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address /metrics listens on; it has no authentication, so 0.0.0.0 "
        "(every interface) only behind a firewall or for a scraper on another host",
    )
    snapshot_concurrency: int = Field(
        16, ge=1, le=256, description="snapshot-policy cameras connecting at once, box-wide"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    cameras: list[CameraConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_cameras(self) -> EdgeConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"cameras: duplicate camera id {cam.id!r}")
            seen.add(cam.id)
        return self
