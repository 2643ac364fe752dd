"""``congestion``: occupancy and queue length of a lane zone; free / slow / jammed, and an
event while it is jammed."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.congestion.config import CongestionAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="congestion",
        config=CongestionAnalytic,
        kinds=(
            KindSpec(
                "congestion",
                severity="medium",
                description="a lane stayed jammed (smoothed occupancy over the threshold; "
                "cleared with hysteresis)",
            ),
        ),
        runtime="edge.analytics.plugins.congestion.runtime:build",
        summary="occupancy, vehicles and queue length of a lane every interval; states "
        "free / slow / jammed with hysteresis, an event while jammed",
        needs=("detections",),
        readings=("occupancy", "queue_length", "vehicles"),
        geometry=(
            Geometry("zone", "polygon", "lane"),
            Geometry("direction", "vector", "queue direction (towards its head)", optional=True),
        ),
    ),
)
