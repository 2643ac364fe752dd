"""The flood hotspots the hub serves: a GeoJSON file, validated on load.

Each feature is a Point with properties ``id``, ``name`` (and ``names``, the place as
each language writes it, e.g. ``{"vi": "Phú Hội"}``), ``levels`` (ascending alarm
levels, ``{"name", "level_cm"}``), ``period_s`` (expected seconds between readings),
optional ``unit_label`` and ``example``, and ``camera`` (``site``, ``edge_id``,
``camera_id``): internal, never served publicly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from edgewatch.contract import ID_PATTERN, LevelRef

NameText = Annotated[str, StringConstraints(min_length=1, max_length=120)]


class CameraLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(pattern=ID_PATTERN)
    edge_id: str = Field(pattern=ID_PATTERN)
    camera_id: str = Field(pattern=ID_PATTERN)


class Hotspot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    names: dict[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")], NameText] = Field(
        default_factory=dict, max_length=8
    )
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    levels: list[LevelRef] = Field(min_length=1)
    period_s: float = Field(60.0, gt=0)
    setup: str = Field("gauge", pattern=r"^(gauge|virtual_gauge|road_cover)$")
    example: bool = False
    camera: CameraLink | None = None

    @model_validator(mode="after")
    def _ascending(self) -> Hotspot:
        values = [lv.level_cm for lv in self.levels]
        if values != sorted(values) or len(set(values)) != len(values):
            raise ValueError("levels must be strictly ascending")
        return self


class HotspotFileError(ValueError):
    pass


def load_hotspots(path: Path) -> list[Hotspot]:
    """The hotspots in ``path``; errors name the file, the feature and the key."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HotspotFileError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise HotspotFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise HotspotFileError(f"{path}: not a GeoJSON FeatureCollection")
    out: list[Hotspot] = []
    seen: set[str] = set()
    for i, feat in enumerate(doc.get("features") or []):
        where = f"{path}: features.{i}"
        geom = (feat or {}).get("geometry") or {}
        if geom.get("type") != "Point" or len(geom.get("coordinates") or []) < 2:
            raise HotspotFileError(f"{where}.geometry: a Point [lon, lat] is required")
        props = dict((feat or {}).get("properties") or {})
        props["lon"], props["lat"] = geom["coordinates"][:2]
        try:
            h = Hotspot.model_validate(props)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise HotspotFileError(f"{where}.properties.{key}: {first['msg']}") from None
        if h.id in seen:
            raise HotspotFileError(f"{where}.properties.id: duplicate id {h.id!r}")
        seen.add(h.id)
        out.append(h)
    return out
