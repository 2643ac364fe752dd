"""The edge worker's declarative config (YAML, validated by pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    realtime: bool = Field(True, description="pace files at their frame rate (as a camera)")
    loop: bool = Field(False, description="files only: start again at the end")
    analytics: list[ObjectsAnalytic] = Field(default_factory=list)
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
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers in order of preference",
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
    spool_max_mb: float = Field(256.0, gt=0)
    status_interval_s: float = Field(5.0, gt=0, le=300)
    snapshot_quality: int = Field(80, ge=10, le=100)
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus /metrics")
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
