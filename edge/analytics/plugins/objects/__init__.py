"""``objects``: objects of some classes inside a zone, confirmed over consecutive samples."""

from edge.analytics.base import AnalyticPlugin, Geometry, KindSpec
from edge.analytics.plugins.objects.config import ObjectsAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="objects",
        config=ObjectsAnalytic,
        kinds=(KindSpec("object", severity="info", description="a watched class in the zone"),),
        runtime="edge.analytics.plugins.objects.runtime:build",
        summary="objects of some classes in a zone, for a few samples in a row",
        needs=("detections",),
        geometry=(Geometry("zone", "polygon", "zone", optional=True),),
    ),
)
