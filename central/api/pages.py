"""The operations-centre dashboard: static pages; every byte of data comes from the API.

The pages themselves hold no data, so they are served to anyone; the script asks
``/api/v1/auth/me`` first and sends a logged-out browser to ``/login``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parents[1] / "web"
ASSETS = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "login.js": "text/javascript",
    "watchlist.js": "text/javascript",
    "setup.js": "text/javascript",
    # the maps (docs/maps.md): map.js and map.css serve the public flood page too
    "map.js": "text/javascript",
    "map.css": "text/css",
    "mapview.js": "text/javascript",
}
# The security headers (CSP, frame-ancestors, nosniff, Referrer-Policy) come from
# central.api.security, on every answer of the hub.
HEADERS = {"Cache-Control": "no-cache"}


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=307)


@router.get("/login")
def login_page() -> FileResponse:
    return FileResponse(WEB / "login.html", headers=HEADERS)


@router.get("/ui")
def app_page() -> FileResponse:
    return FileResponse(WEB / "app.html", headers=HEADERS)


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404)
    return FileResponse(WEB / name, media_type=ASSETS[name], headers=HEADERS)
