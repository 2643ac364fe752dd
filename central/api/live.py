"""The live stream: Server-Sent Events of every new or changed alert the caller may see.

A stream lives for hours, so it is re-checked: it ends at logout, a disabled account, a
new password, expiry or a change of role, and fails closed when the check cannot run.
What it sends is :mod:`central.services.live` (one document per change, redacted per
role); the fan-out is :mod:`central.live`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from central.api import deps
from central.api.deps import UserDep
from central.services.live import load_doc, redact

router = APIRouter(prefix="/api/v1/alerts", tags=["events"])
log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0


def _sse(event: str, data: dict[str, Any], ident: int | None = None) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


@router.get(
    "/stream",
    summary="Server-Sent Events: every new or changed alert the caller may see",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(request: Request, user: UserDep) -> StreamingResponse:
    app = request.app
    cred = deps.credential(request)
    assert cred is not None  # UserDep resolved one
    recheck_s = app.state.cfg.auth.stream_recheck_s
    sub = app.state.live.subscribe()

    async def still_valid() -> str | None:
        """None while the stream may go on; else why it ends. A stream outlives no logout,
        disabled account, new password or expiry, and shows no other role's view."""
        try:
            now = await run_in_threadpool(deps.recheck, app, cred)
        except Exception as exc:  # the database is away: fail closed, the client reconnects
            log.warning("live stream re-check failed", extra={"error": type(exc).__name__})
            return "recheck_failed"
        if now is None:
            return "signed_out"
        if now.id != user.id or now.role != user.role:
            return "role_changed"
        return None

    async def gen() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        n = 0
        next_check = loop.time() + recheck_s
        last_out = loop.time()
        try:
            yield b"retry: 2000\n\n" + _sse("hello", {"user": user.username})
            while True:
                wait = max(0.0, min(next_check, last_out + KEEPALIVE_S) - loop.time())
                try:
                    item: dict[str, Any] | None = await asyncio.wait_for(sub.queue.get(), wait)
                except TimeoutError:
                    item = None
                now = loop.time()
                if now >= next_check or (item is not None and item.get("type") == "sessions"):
                    reason = await still_valid()
                    if reason is not None:
                        log.info(
                            "live stream ended",
                            extra={"user": user.username, "reason": reason},
                        )
                        yield _sse("ended", {"reason": reason})
                        return
                    next_check = loop.time() + recheck_s
                if item is None or item.get("type") == "sessions":
                    if now - last_out >= KEEPALIVE_S:
                        if await request.is_disconnected():
                            return
                        yield b": keepalive\n\n"
                        last_out = now
                    continue
                if item.get("type") == "resync":
                    yield _sse("resync", {})
                    last_out = loop.time()
                    continue
                doc = item.get("doc")
                if doc is None:
                    doc = await run_in_threadpool(
                        load_doc, app.state.sessions, app.state.cfg, item["id"]
                    )
                doc = redact(doc, user) if doc is not None else None
                if doc is not None:
                    n += 1
                    yield _sse("alert", doc, n)
                    last_out = loop.time()
        finally:
            app.state.live.unsubscribe(sub)

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
