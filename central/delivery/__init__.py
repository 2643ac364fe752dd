"""Delivery of notifications: the dispatcher and the channels it sends on.

Incidents (:mod:`central.incidents`) decide who is told what and queue one ``deliveries``
row per recipient; this package sends those rows: :mod:`.dispatcher` (at least once, one
attempt per target in flight, a circuit breaker per target), :mod:`.channels` (signed
webhooks, MQTT topics, Web Push and its endpoint policy, the VAPID key) and
:mod:`.redact` (what logs may show of a target).
"""

from central.delivery.channels import (
    TEAM_TOPIC,
    PushRefused,
    admit_push_subscription,
    load_vapid,
    push_endpoint_problem,
)
from central.delivery.dispatcher import CircuitBreaker, Dispatcher
from central.delivery.redact import redact_url, scrub

__all__ = [
    "TEAM_TOPIC",
    "CircuitBreaker",
    "Dispatcher",
    "PushRefused",
    "admit_push_subscription",
    "load_vapid",
    "push_endpoint_problem",
    "redact_url",
    "scrub",
]
