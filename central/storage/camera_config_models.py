"""Tables of the cameras' configurations at the hub (``central.services.camera_config``).

On the hub's declarative Base, in a module of their own (as the watch list's are) so the
set-up work can be read and reviewed apart; the schema comes from migration 0011.

- ``camera_configs``: one row per camera id (unique hub-wide: a camera runs on one edge at
  a time). ``config`` is the camera's ``edge.config.CameraConfig`` document with the URL's
  password replaced by ``***``; the password itself is in ``url_secret``, encrypted. So a
  dump of this table, a log line or an API answer never carries it.
- ``camera_config_history``: every version ever saved, redacted alike, with who, when,
  the comment and a short summary of what changed.
- ``camera_config_edges``: the version of each edge's retained configuration message.
- ``camera_frames``: the latest JPEG and preview each camera sent, for the set-up page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from central.storage.db import UTCDateTime
from central.storage.models import Base

MAX_FRAME_BYTES = 1024 * 1024  # a set-up picture, not evidence: larger frames are refused
MAX_PREVIEW_BYTES = 64 * 1024  # 300 detections and 32 analytics' readings fit


class CameraConfigRow(Base):
    __tablename__ = "camera_configs"
    __table_args__ = (Index("ix_camera_configs_edge", "site", "edge_id"),)

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per camera
    config_version: Mapped[str] = mapped_column(String(16))  # config_hash of what is sent
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # redacted: password as ***
    url_secret: Mapped[str | None] = mapped_column(Text)  # Fernet token of the password
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class CameraConfigHistoryRow(Base):
    __tablename__ = "camera_config_history"
    __table_args__ = (
        UniqueConstraint("camera_id", "version", name="uq_camera_config_history_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    config_version: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(64))
    edge_id: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # None: the camera was deleted
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    comment: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[list[str]] = mapped_column(JSON)


class CameraConfigEdgeRow(Base):
    """An edge the hub sends cameras to, and the version of its retained message."""

    __tablename__ = "camera_config_edges"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CameraFrameRow(Base):
    """The latest frame and preview of a camera, as the edge it came from sent them."""

    __tablename__ = "camera_frames"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jpeg: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    preview: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    preview_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
