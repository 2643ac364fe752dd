"""Incidents: fire and smoke alerts merged per plume, routed to teams, escalated, delivered.

- **Merging** (:mod:`.merge`). A new alert joins an open incident of a compatible kind when
  it comes within ``merge_window_s`` of the incident's last alert and from the same camera,
  or from a camera within ``merge_distance_m`` of one of the incident's cameras whose
  bearing to the plume crosses the new alert's bearing within ``max_range_m`` (both
  cameras looking at the same place). Cameras without bearings merge on distance and time
  alone. Where two bearings cross, the incident gets an estimated position.
- **Routing** (:mod:`.routing`). The incident goes to the first team whose kinds include
  it and whose area holds its (estimated, else camera) position.
- **Delivery** (:mod:`central.delivery`). One row per recipient and notification in
  ``deliveries``; the :class:`Dispatcher` sends them at least once, retrying with
  exponential backoff, and logs each attempt. Targets (a webhook URL, a push endpoint, an
  MQTT topic) are served concurrently, one attempt in flight per target, and a
  :class:`CircuitBreaker` per target defers the deliveries of one that keeps failing: a
  hung gateway holds up only its own queue. Webhooks never follow redirects (a 3xx is a
  failure, retried). A cooldown per incident keeps merged alerts from re-notifying. Teams
  with a ``digest_s`` get one digest per period instead of a message per incident.
- **Web Push endpoints** (:mod:`central.delivery.channels`) must be https URLs on a push
  service of ``push.allowed_hosts`` (never an IP address), at most
  ``push.max_subscriptions_per_team`` per team: a browser subscription is a URL the hub
  will POST to, and an enrolment token is no proof of good intent.
- **Escalation** (:mod:`.escalation`). An urgent incident nobody acknowledged within the
  team's ``ack_timeout_s`` is sent to the team's ``escalate_to`` (else the ops team), again
  and again up the chain. ``acknowledge`` stops it; every state change is in the audit
  trail. Ack links in notifications are :mod:`.acklinks`.

:class:`IncidentManager` (:mod:`.manager`) runs all of it against the database. This
package re-exports the names that lived in the single ``central/incidents.py`` before, so
``from central.incidents import ...`` keeps working, the delivery and geodesy names
included.
"""

from central.delivery.channels import (
    MAX_PUSH_ENDPOINT,
    TEAM_TOPIC,
    PushRefused,
    admit_push_subscription,
    load_vapid,
    push_endpoint_problem,
)
from central.delivery.dispatcher import CircuitBreaker, Dispatcher
from central.delivery.redact import redact_url, scrub
from central.geo import bearings_cross, distance_m, in_polygon
from central.incidents.acklinks import (
    ACK_SECRET_NAME,
    AckLinkError,
    AckSigner,
    AckToken,
    hub_secrets,
    stored_secret,
)
from central.incidents.manager import STATES, IncidentManager, incident_query_open
from central.incidents.merge import URGENT_KINDS, is_fire_kind

__all__ = [
    "ACK_SECRET_NAME",
    "MAX_PUSH_ENDPOINT",
    "STATES",
    "TEAM_TOPIC",
    "URGENT_KINDS",
    "AckLinkError",
    "AckSigner",
    "AckToken",
    "CircuitBreaker",
    "Dispatcher",
    "IncidentManager",
    "PushRefused",
    "admit_push_subscription",
    "bearings_cross",
    "distance_m",
    "hub_secrets",
    "in_polygon",
    "incident_query_open",
    "is_fire_kind",
    "load_vapid",
    "push_endpoint_problem",
    "redact_url",
    "scrub",
    "stored_secret",
]
