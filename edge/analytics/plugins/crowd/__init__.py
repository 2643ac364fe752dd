"""``crowd``: people in a zone above a threshold for a time, with hysteresis; a count
reading (mean and max people) every interval for the dashboard's chart."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.crowd.config import CrowdAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="crowd",
        config=CrowdAnalytic,
        kinds=(
            KindSpec(
                "crowd",
                severity="medium",
                description="at least min_people in the zone for min_duration_s",
            ),
        ),
        runtime="edge.analytics.plugins.crowd.runtime:build",
        summary="people counted in a zone; an event above a threshold held for a time "
        "(hysteresis), a reading every interval",
        needs=("detections",),
        readings=("people", "people_max"),
        geometry=(Geometry("zone", "polygon", "zone", optional=True),),
    ),
)
