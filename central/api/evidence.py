"""A violation's evidence package (clip, frames, plate crop, manifest): the package checked
against its manifest, and each file byte for byte as the edge sent it.

Under ``/api/v1/events/{event_id}`` like the alert it belongs to, and only for roles that
may see evidence; the check itself is :mod:`central.services.evidence`.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from central.api.deps import EvidenceDep, SessionDep
from central.services import evidence as packages
from central.services.alerts import get_visible

router = APIRouter(prefix="/api/v1/events", tags=["events"])


class EvidenceFileOut(BaseModel):
    name: str
    content_type: str
    bytes: int
    sha256: str
    url: str


class EvidenceOut(BaseModel):
    event_id: str
    manifest_sha256: str | None = Field(description="as published with the event")
    verified: bool = Field(description="every file matches the manifest, and it the event")
    problems: list[str]
    files: list[EvidenceFileOut]


@router.get(
    "/{event_id}/evidence",
    response_model=EvidenceOut,
    summary="A violation's evidence package, checked against its manifest",
)
def evidence(event_id: str, session: SessionDep, user: EvidenceDep) -> EvidenceOut:
    row = get_visible(session, event_id, user)
    rows = packages.files_of(session, row)
    published = packages.published_manifest(row)
    problems = packages.verify(rows, published)
    return EvidenceOut(
        event_id=row.id,
        manifest_sha256=published,
        verified=not problems,
        problems=problems,
        files=[
            EvidenceFileOut(
                name=f.name,
                content_type=f.content_type,
                bytes=len(f.data),
                sha256=f.sha256,
                url=f"/api/v1/events/{row.id}/evidence/{f.name}",
            )
            for f in sorted(rows.values(), key=lambda f: f.name)
        ],
    )


@router.get(
    "/{event_id}/evidence/{name}",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}, "application/json": {}}}},
    summary="One evidence file, byte for byte as the edge sent it",
)
def evidence_file(event_id: str, name: str, session: SessionDep, user: EvidenceDep) -> Response:
    row = get_visible(session, event_id, user)
    f = packages.file_of(session, row, name)
    if f is None:
        raise HTTPException(404, "no such evidence file")
    return Response(
        f.data,
        media_type=f.content_type,
        headers={
            "ETag": f'"{f.sha256}"',
            "Cache-Control": "private, max-age=3600",
            "X-Content-SHA256": f.sha256,
        },
    )
