"""``line_count``: vehicles and people crossing directed lines, per class and direction.

The traffic-counting feature: a reading every interval, no events (a count is a
measurement, not something an operator acts on).
"""

from edge.analytics.base import AnalyticPlugin, Geometry
from edge.analytics.plugins.line_count.config import LineCountAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="line_count",
        config=LineCountAnalytic,
        kinds=(),
        runtime="edge.analytics.plugins.line_count.runtime:build",
        summary="tracks (ByteTrack) crossing directed lines, counted per class and direction; "
        "a reading every interval",
        needs=("detections",),
        geometry=(
            Geometry("lines.*", "segment", "counting line"),
            Geometry("lines.*.direction", "vector", "forward side"),
        ),
        readings=(
            "<line>.<class>.forward",
            "<line>.<class>.backward",
            "<line>.total.forward",
            "<line>.total.backward",
            "coverage",
        ),
    ),
)
