"""Escalation and digests: what the periodic tick does with incidents nobody handled.

An urgent incident nobody acknowledged within the team's ``ack_timeout_s`` goes to the
team's ``escalate_to`` (else ``incidents.ops_team``), again and again up the chain, until
there is nowhere further to go; acknowledging (or closing) it stops that. Teams with a
``digest_s`` get one digest per period of the incidents they were told about instead of a
message each. These are the rules; :meth:`~central.incidents.manager.IncidentManager.tick`
applies them once a second in the dispatcher's thread and queues the notifications.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.config import HubConfig, Team
from central.storage.db import as_utc
from central.storage.models import DeliveryRow, IncidentRow


def due(session: Session, now: datetime) -> Iterable[IncidentRow]:
    """Open incidents whose acknowledgement is overdue."""
    return session.execute(
        select(IncidentRow)
        .where(IncidentRow.state == "open")
        .where(IncidentRow.escalate_at.is_not(None))
        .where(IncidentRow.escalate_at <= now)
    ).scalars()


def next_team(cfg: HubConfig, inc: IncidentRow) -> Team | None:
    """Who an overdue incident goes to next: the notified team's ``escalate_to``, else the
    ops team; None when that is nobody, or the team already told."""
    current = cfg.team(inc.notified_team or inc.team_id or "")
    nxt_id = (current.escalate_to if current else None) or cfg.incidents.ops_team
    nxt = cfg.team(nxt_id) if nxt_id else None
    if nxt is None or nxt.id == inc.notified_team:
        return None
    return nxt


def digest_due(session: Session, team: Team, now: datetime) -> list[IncidentRow]:
    """The incidents for the team's next digest, oldest first; empty while its period since
    the last digest has not passed (or nothing is waiting)."""
    last = session.execute(
        select(DeliveryRow.created_at)
        .where(DeliveryRow.team_id == team.id, DeliveryRow.reason == "digest")
        .order_by(DeliveryRow.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    last = as_utc(last)
    if last is not None and (now - last).total_seconds() < team.digest_s:  # type: ignore[operator]
        return []
    return list(
        session.execute(
            select(IncidentRow)
            .where(IncidentRow.notified_team == team.id)
            .where(IncidentRow.digested_at.is_(None))
            .order_by(IncidentRow.opened_at)
        ).scalars()
    )
