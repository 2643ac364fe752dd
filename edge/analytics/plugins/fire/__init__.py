"""``fire`` and ``burning``: fire and smoke confirmed over time, routed by land use."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.fire.config import BurningAnalytic, FireAnalytic

KINDS = (
    KindSpec(
        "forest_fire",
        severity="urgent",
        urgent=True,
        roles=("ranger",),
        incident="fire",
        description="fire or smoke confirmed over forest",
    ),
    KindSpec(
        "straw_burning",
        severity="high",
        roles=("ranger",),
        incident="fire",
        description="open burning confirmed over fields (digests in season)",
    ),
    KindSpec(
        "smoke",
        severity="high",
        roles=("ranger",),
        incident="fire",
        description="fire or smoke confirmed where the land use is other",
    ),
)

GEOMETRY = (
    Geometry("exclude.*", "polygon", "exclusion (never alerts)"),
    Geometry("sky", "polygon", "sky", optional=True),
    Geometry("zones.*.polygon", "polygon", "land-use zone"),
)

PLUGINS = (
    AnalyticPlugin(
        type="fire",
        config=FireAnalytic,
        kinds=KINDS,
        runtime="edge.analytics.plugins.fire.runtime:build",
        summary="fire and smoke from the fire/smoke detector, confirmed, routed by land use",
        needs=("detections",),
        geometry=GEOMETRY,
    ),
    AnalyticPlugin(
        type="burning",
        config=BurningAnalytic,
        kinds=KINDS,
        runtime="edge.analytics.plugins.fire.runtime:build",
        summary="open (straw) burning: fields by default, more sensitive in season",
        needs=("detections",),
        geometry=GEOMETRY,
    ),
)
