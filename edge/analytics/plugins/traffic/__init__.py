"""``traffic``: vehicles tracked, per-camera traffic rules, evidence packages, plates."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.traffic.config import TrafficAnalytic

_RULES = {
    "red_light": "crossed the stop line on red (the signal sure between two looks)",
    "wrong_way": "moved against the lane's direction",
    "lane_restriction": "a forbidden class in a restricted lane",
    "no_stopping": "stood in a no-stopping zone beyond the dwell time",
    "speeding": "over the limit between two lines (evidence only when calibrated)",
    "no_helmet": "a rider without a helmet (needs a classifier; none ships)",
}

PLUGINS = (
    AnalyticPlugin(
        type="traffic",
        config=TrafficAnalytic,
        kinds=tuple(
            KindSpec(name, severity="medium", review=True, description=text)
            for name, text in _RULES.items()
        ),
        runtime="edge.analytics.plugins.traffic.runtime:build",
        summary="vehicles tracked (ByteTrack) and traffic rules, with evidence and plates",
        needs=("detections", "packets", "signal", "mqtt"),
        geometry=(
            Geometry("rules.*.stop_line", "line", "stop line"),
            Geometry("rules.*.direction", "vector", "direction of travel"),
            Geometry("rules.*.lane", "polygon", "lane"),
            Geometry("rules.*.zone", "polygon", "no-stopping zone"),
            Geometry("rules.*.line_a", "line", "speed line A"),
            Geometry("rules.*.line_b", "line", "speed line B"),
            Geometry("signal.region", "box", "signal head region", optional=True),
            Geometry("signal.lamps.*.at", "point", "signal lamp"),
        ),
    ),
)
