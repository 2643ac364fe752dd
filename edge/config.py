"""The edge worker's declarative config (YAML, validated by pydantic).

The analytics' own models live in their plugin folders (``edge/analytics/plugins/``);
``analytics:`` is the union the registry builds from every plugin found, so a new
analytic is validated here without a change to this file. The models of the analytics
that ship are re-exported under their old names for code that imports them from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.analytics.plugins.fire.config import (  # noqa: F401
    BurningAnalytic,
    FireAnalytic,
    LandUseZone,
    SeasonWindow,
)
from edge.analytics.plugins.flood.config import (  # noqa: F401
    DepthMark,
    FloodAnalytic,
    FloodLevel,
    GaugePoint,
)
from edge.analytics.plugins.objects.config import ObjectsAnalytic  # noqa: F401
from edge.analytics.plugins.traffic.config import (  # noqa: F401
    EvidenceSettings,
    LaneRestrictionRule,
    NoHelmetRule,
    NoStoppingRule,
    RedLightRule,
    SignalLamp,
    SignalSource,
    SpeedingRule,
    TrafficAnalytic,
    TrafficRuleConfig,
    WrongWayRule,
)
from edge.analytics.registry import config_union
from edgewatch.contract import ID_PATTERN, Location
from edgewatch.mqtt import MqttSettings

Analytic = config_union()

_URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "file://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    url: str = Field(
        description="the detect stream, which the analytics read: rtsp://, rtsps://, "
        "http(s):// or a file path / file:// URL (on an IP camera, its low-resolution "
        "sub-stream)"
    )
    record_url: str | None = Field(
        None,
        description="the record stream (the camera's main stream, full resolution): "
        "evidence clips, and the frames and crops cut from them, come from it; read (never "
        "decoded) only when an analytic keeps evidence clips",
    )
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

    @field_validator("url", "record_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(_URL_SCHEMES):
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
    parallel: int = Field(
        1,
        ge=1,
        le=16,
        description="runs of one model at once (threads of its shared engine); with many "
        "cameras on a small box, threads: 1 and parallel: <cores> use every core",
    )


class ConfigSource(_Strict):
    """Where the cameras come from: this file, or the hub (its retained configuration for
    this edge, applied live; the last good one is kept on disk so the edge starts
    without the hub)."""

    source: Literal["file", "hub"] = Field(
        "file", description="file: cameras below; hub: cameras set up at the hub"
    )
    state_dir: Path | None = Field(
        None,
        description="hub: where the last good configuration is kept (default: spool_dir/config)",
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
    reader_processes: int = Field(
        0,
        ge=0,
        le=64,
        description="child processes that read and decode the cameras' streams (each its "
        "own interpreter, so demuxing a hundred streams does not queue the analytics behind "
        "one GIL); 0: read in the worker's own process. On 2 cores it moved the work "
        "without reducing it (README); for a box with more cores than one process can feed",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    config: ConfigSource = Field(default_factory=ConfigSource)
    frame_interval_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="each camera's latest frame and what its analytics see, for the hub's "
        "set-up page, every this many seconds; 0: never",
    )
    cameras: list[CameraConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cameras_from_one_place(self) -> EdgeConfig:
        if self.config.source == "hub" and self.cameras:
            raise ValueError(
                "cameras: none may be listed here when config.source is hub (they are set "
                "up at the hub and applied live); remove them or use config.source: file"
            )
        return self

    @model_validator(mode="after")
    def _unique_cameras(self) -> EdgeConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"cameras: duplicate camera id {cam.id!r}")
            seen.add(cam.id)
        return self
