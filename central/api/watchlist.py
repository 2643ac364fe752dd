"""The plate watch list's API: list, add, remove (``central.watchlist`` does the work).

Who: the ``review`` permission, that is admins and operators. Plates are personal data
and a listed plate sends people after a car: viewers only read the dashboard (the events
API already hides plates from them), rangers have ``act`` but work on fires only and see
no plates. Writes go through the same session checks as every other mutating route (a
browser session must echo its CSRF token; ``central.api.deps``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from central.api.deps import SessionDep, require
from central.auth import User
from central.storage.db import as_utc
from central.storage.models import EdgeRow
from central.storage.watchlist_models import WatchlistEntryRow
from central.watchlist import WatchlistError, WatchlistService
from edgewatch import contract

router = APIRouter(prefix="/api/v1/watchlist", tags=["watchlist"])

WatchlistDep = Annotated[User, Depends(require("review"))]
INT32_MAX = 2**31 - 1


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plate: str = Field(
        max_length=32, description="as written on the plate: 30A-123.45; stored as 30A12345"
    )
    reason: str | None = Field(
        None, max_length=200, pattern=r"^[^\x00]*$", description="why it is listed"
    )

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        return contract.normalize_plate(value)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        return (value or "").strip() or None


class EntryOut(BaseModel):
    id: int
    plate: str
    reason: str | None
    created_by: str
    created_at: datetime


class EdgeDelivery(BaseModel):
    site: str
    edge_id: str
    sent_version: int | None = Field(description="the version this hub last published to it")
    current: bool


class WatchlistOut(BaseModel):
    version: int
    updated_at: datetime
    entries: list[EntryOut]
    edges: list[EdgeDelivery]


def _service(request: Request) -> WatchlistService:
    service = getattr(request.app.state, "watchlist", None)
    if service is None:
        raise HTTPException(503, "the watch list is not enabled on this hub")
    return service  # type: ignore[no-any-return]


def _out(row: WatchlistEntryRow) -> EntryOut:
    return EntryOut(
        id=row.id,
        plate=row.plate,
        reason=row.reason,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
    )


@router.get("", response_model=WatchlistOut)
def list_entries(request: Request, session: SessionDep, _user: WatchlistDep) -> WatchlistOut:
    service = _service(request)
    version, updated_at = service.state(session)
    sent = service.sent()
    edges = session.execute(
        select(EdgeRow.site, EdgeRow.edge_id).order_by(EdgeRow.site, EdgeRow.edge_id)
    ).all()
    return WatchlistOut(
        version=version,
        updated_at=updated_at,
        entries=[_out(e) for e in service.entries(session)],
        edges=[
            EdgeDelivery(
                site=s,
                edge_id=e,
                sent_version=sent.get((s, e)),
                current=sent.get((s, e)) == version,
            )
            for s, e in edges
        ],
    )


@router.post("", status_code=201, response_model=EntryOut)
def add_entry(request: Request, body: EntryIn, user: WatchlistDep) -> EntryOut:
    try:
        row = _service(request).add(body.plate, body.reason, user.username)
    except WatchlistError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _out(row)


@router.delete("/{entry_id}", status_code=204)
def remove_entry(
    request: Request,
    entry_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    user: WatchlistDep,
) -> Response:
    try:
        _service(request).remove(entry_id, user.username)
    except WatchlistError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return Response(status_code=204)
