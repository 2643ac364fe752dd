"""``traffic``: vehicles tracked, per-camera traffic rules, evidence packages, plates."""

from edge.analytics.base import AnalyticPlugin, KindSpec
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
    ),
)
