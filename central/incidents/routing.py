"""Routing: which team an incident goes to, and who in it receives a notification.

The incident goes to the first team whose kinds include it and whose area holds its
(estimated, else camera) position. A notification then goes to every channel of the
team: its webhook URL, its MQTT topic, and the team's newest Web Push subscriptions up to
``push.max_subscriptions_per_team`` that the endpoint policy still allows. Pure decisions
over the configuration and the subscriptions table; queueing the rows is the manager's.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.config import Channel, PushSettings, Team
from central.delivery.channels import TEAM_TOPIC, push_endpoint_problem
from central.geo import in_polygon
from central.storage.models import IncidentRow, PushSubscriptionRow

log = logging.getLogger(__name__)


def route(teams: list[Team], incident: IncidentRow) -> Team | None:
    lat = incident.est_lat if incident.est_lat is not None else incident.lat
    lon = incident.est_lon if incident.est_lon is not None else incident.lon
    for team in teams:
        if incident.kind not in team.kinds:
            continue
        if team.area is None or (lat is not None and in_polygon(lon, lat, team.area)):  # type: ignore[arg-type]
            return team
    return None


def targets(session: Session, push: PushSettings, team: Team, ch: Channel) -> list[str]:
    """The recipients of one of the team's channels: push endpoints, a topic, a URL."""
    if ch.type == "webpush":
        return push_targets(session, push, team.id)
    if ch.type == "mqtt":
        return [ch.topic or TEAM_TOPIC.format(team=team.id)]
    return [ch.url or ""]


def push_targets(session: Session, push: PushSettings, team_id: str) -> list[str]:
    """The team's newest subscriptions, up to the cap, that the endpoint policy allows
    (rows stored before the policy, or before a narrower allow-list, are never sent)."""
    subs = session.execute(
        select(PushSubscriptionRow.endpoint)
        .where(PushSubscriptionRow.team_id == team_id)
        .order_by(PushSubscriptionRow.created_at.desc(), PushSubscriptionRow.id.desc())
    ).scalars()
    found: list[str] = []
    refused = 0
    for endpoint in subs:
        if push_endpoint_problem(endpoint, push) is not None:
            refused += 1
        elif len(found) < push.max_subscriptions_per_team:
            found.append(endpoint)
    if refused:
        log.warning(
            "push subscriptions skipped: refused by the endpoint policy",
            extra={"team": team_id, "count": refused},
        )
    return found
