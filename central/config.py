"""The hub's declarative config (YAML, validated by pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgewatch.mqtt import MqttSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class Limits(_Strict):
    max_event_bytes: int = Field(64 * 1024, ge=1024, description="largest event JSON accepted")
    max_status_bytes: int = Field(16 * 1024, ge=256)
    max_snapshot_bytes: int = Field(4 * 1024 * 1024, ge=1024)


class HubConfig(_Strict):
    database_url: str = Field(
        "sqlite:///var/hub.sqlite3",
        description="SQLAlchemy URL: sqlite:///FILE or postgresql+psycopg://USER@HOST/DB",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    mqtt_client_id: str = Field(
        "edgewatch-hub", description="fixed, so the broker keeps the hub's session"
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: Limits = Field(default_factory=Limits)
    hotspots_file: Path | None = Field(
        None, description="GeoJSON of the flood hotspots served at /api/v1/hotspots"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql")):
            raise ValueError("use sqlite:///FILE or postgresql+psycopg://...")
        return value
