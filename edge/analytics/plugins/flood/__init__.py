"""``flood``: the water level at a flood hotspot, never a false all-clear."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.flood.config import FloodAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="flood",
        config=FloodAnalytic,
        kinds=(
            KindSpec(
                "flood_level",
                severity="high",
                description="the water reached an alarm level (cleared with hysteresis)",
            ),
            KindSpec(
                "flood_unknown",
                severity="medium",
                description="the level cannot be read (night, rain on the lens, moved camera)",
            ),
        ),
        runtime="edge.analytics.plugins.flood.runtime:build",
        summary="water level from a gauge, surveyed points or road cover; a hotspot reading "
        "every period",
        needs=("frame",),
        geometry=(
            Geometry("line", "line", "gauge line (top, then bottom)", optional=True),
            Geometry("points.*.at", "point", "calibration mark"),
            Geometry("road", "polygon", "road (road_cover)", optional=True),
            Geometry("marks.*.at", "point", "depth mark"),
        ),
        readings=("level_cm", "raw_cm", "trend_cm_per_h", "confidence", "cover"),
    ),
)
