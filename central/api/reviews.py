"""The traffic review queue: violations by review state, and a reviewer's decision.

A traffic violation is held for a person to confirm or reject before it counts; the queue
is oldest first. Routes only: the decision's rules are
:func:`central.services.alerts.decide_review`.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from central.api.deps import MAX_OFFSET, ReviewerDep, SessionDep
from central.api.schemas import EventDetail, EventPage
from central.services import alerts
from central.storage.models import EventRow

# tagged "events" too, as these routes always were: they serve alerts
router = APIRouter(prefix="/api/v1/reviews", tags=["events", "reviews"])


class ReviewIn(BaseModel):
    decision: Literal["confirmed", "rejected"]
    reason: str | None = Field(None, max_length=2000, description="required to reject")


@router.get(
    "",
    response_model=EventPage,
    summary="Traffic violations by review state, oldest first (the queue)",
)
def list_reviews(
    request: Request,
    session: SessionDep,
    user: ReviewerDep,
    state: Literal["pending", "confirmed", "rejected"] = "pending",
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> EventPage:
    query = select(EventRow).where(EventRow.review == state)
    keys = (EventRow.start_time.asc(), EventRow.id)
    return alerts.page(session, query, keys, request.app.state.cfg, user, limit, offset)


@router.post(
    "/{event_id}",
    response_model=EventDetail,
    summary="Confirm or reject a pending violation",
)
def decide(
    event_id: str, body: ReviewIn, request: Request, session: SessionDep, user: ReviewerDep
) -> EventDetail:
    state = request.app.state
    return alerts.decide_review(
        session, state.live, state.cfg, event_id, user, body.decision, body.reason
    )
