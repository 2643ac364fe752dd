"""``watchlist``: a plate the traffic analytic read that is on the hub's watch list.

The list is managed at the hub (API and dashboard page) and reaches each edge retained on
its own config topic; this analytic needs no frames and no model: it is fed the plates the
camera's ``traffic`` analytic reads (observations of kind ``plate``) and matches them.
"""

from edge.analytics.base import AnalyticPlugin, KindSpec
from edge.analytics.plugins.watchlist.config import WatchlistAnalytic

PLUGINS = (
    AnalyticPlugin(
        type="watchlist",
        config=WatchlistAnalytic,
        kinds=(
            KindSpec(
                "watchlist",
                severity="urgent",
                urgent=True,
                description="a plate read by the traffic analytic is on the hub's watch list "
                "(exact match of the normalized plate)",
            ),
        ),
        runtime="edge.analytics.plugins.watchlist.runtime:build",
        summary="plates read by the traffic analytic matched against the hub's watch list",
        needs=("mqtt", "plates"),
        consumes=("plate",),
    ),
)
