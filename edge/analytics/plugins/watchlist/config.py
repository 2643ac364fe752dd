"""The ``watchlist`` analytic's config: where the list comes from, how often one plate alerts."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from edge.analytics.base import AnalyticConfig
from edgewatch.contract import ID_PATTERN

_TOPIC = re.compile(r"^[^\x00#+]{1,200}$")


class WatchlistAnalytic(AnalyticConfig):
    """Plates read by this camera's ``traffic`` analytic, matched against the watch list."""

    type: Literal["watchlist"] = "watchlist"
    name: str = Field("watchlist", pattern=ID_PATTERN)
    topic: str | None = Field(
        None,
        description="the list's MQTT topic; default this edge's own config topic "
        "edgewatch/v1/config/{site}/{edge_id}/watchlist (the only one the hub writes)",
    )
    cooldown_s: float = Field(
        300.0, ge=0, le=86_400, description="at most one alert per plate in this time"
    )

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not _TOPIC.match(value):
            # a filter (+ or #) would mix lists of several topics into one
            raise ValueError("a topic of 1-200 characters, without MQTT wildcards (+ #)")
        return value
