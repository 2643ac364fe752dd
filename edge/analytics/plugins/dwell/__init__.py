"""``sidewalk_encroachment`` and ``illegal_parking``: vehicles standing in a polygon beyond
a dwell time (the traffic analytic's ``no_stopping``, generalised), with a snapshot for
the operators' review queue. One rule, two types: their defaults differ (see config)."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.dwell.config import (
    IllegalParkingAnalytic,
    SidewalkEncroachmentAnalytic,
)

RUNTIME = "edge.analytics.plugins.dwell.runtime:build"
GEOMETRY = (
    Geometry("zone", "polygon", "zone"),
    Geometry("exclude.*", "polygon", "exclusion (standing allowed)"),
)

PLUGINS = (
    AnalyticPlugin(
        type="sidewalk_encroachment",
        config=SidewalkEncroachmentAnalytic,
        kinds=(
            KindSpec(
                "sidewalk_encroachment",
                severity="medium",
                review=True,
                description="a vehicle stood on the sidewalk beyond the dwell time",
            ),
        ),
        runtime=RUNTIME,
        summary="vehicles (ByteTrack) standing on a sidewalk polygon beyond a dwell time",
        needs=("detections",),
        geometry=GEOMETRY,
    ),
    AnalyticPlugin(
        type="illegal_parking",
        config=IllegalParkingAnalytic,
        kinds=(
            KindSpec(
                "illegal_parking",
                severity="medium",
                review=True,
                description="a vehicle parked in a no-parking zone beyond the dwell time",
            ),
        ),
        runtime=RUNTIME,
        summary="vehicles (ByteTrack) parked in a no-parking polygon beyond a dwell time, "
        "optionally by hour",
        needs=("detections",),
        geometry=GEOMETRY,
    ),
)
