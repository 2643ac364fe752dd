"""``intrusion``: a person or vehicle (tracked) entering a zone while it is armed (windows
of weekdays and local hours), confirmed over a few samples, with a snapshot."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.intrusion.config import IntrusionAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="intrusion",
        config=IntrusionAnalytic,
        kinds=(
            KindSpec(
                "intrusion",
                severity="high",
                description="a watched class entered the zone while it was armed",
            ),
        ),
        runtime="edge.analytics.plugins.intrusion.runtime:build",
        summary="people or vehicles (ByteTrack) entering a zone during armed hours",
        needs=("detections",),
        geometry=(Geometry("zone", "polygon", "guarded zone"),),
    ),
)
