"""The map library, the bundled outline of the Hue area, and the maps' settings.

Why served by the hub: the maps must work with no internet (no CDN, no tile server), so
Leaflet (installed from the npm registry, committed as built files under
``central/web/vendor/leaflet``) and a small openly licensed outline of the area
(``central/web/vendor/hue-outline.geojson``, made by ``scripts/make_map_outline.py``)
come from the hub itself. They change only with a release, so they may be cached for a
day, with an ``ETag`` (a content hash) so that a revalidation costs a ``304``.

``GET /api/v1/map`` is public (the public flood page draws a map too): the tile URL, its
attribution, the centre and zoom from the hub config's ``map`` section, and the credits
of the outline and of the library, which every map shows.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

router = APIRouter()
VENDOR = Path(__file__).resolve().parents[1] / "web" / "vendor"
CACHE_CONTROL = "public, max-age=86400"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".geojson": "application/geo+json",
    "LICENSE": "text/plain; charset=utf-8",
}
LEAFLET_FILES = ("leaflet.js", "leaflet.css", "LICENSE")
LEAFLET_IMAGES = (
    "layers.png",
    "layers-2x.png",
    "marker-icon.png",
    "marker-icon-2x.png",
    "marker-shadow.png",
)
OUTLINE = "hue-outline.geojson"
LIBRARY_CREDIT = "Leaflet (BSD-2-Clause)"
LIBRARY_URL = "https://leafletjs.com"

_lock = threading.Lock()
_files: dict[Path, tuple[int, str, bytes]] = {}  # path -> (mtime_ns, etag, body)


def _load(path: Path) -> tuple[str, bytes]:
    """The file's ETag and bytes, read again only when it changed on disk."""
    mtime = path.stat().st_mtime_ns
    with _lock:
        hit = _files.get(path)
        if hit is None or hit[0] != mtime:
            body = path.read_bytes()
            hit = (mtime, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', body)
            _files[path] = hit
    return hit[1], hit[2]


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    return any(t.strip() in (etag, "W/" + etag, "*") for t in given.split(",") if t.strip())


def _serve(request: Request, path: Path) -> Response:
    etag, body = _load(path)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    media = TYPES.get(path.name) or TYPES[path.suffix]
    return Response(body, media_type=media, headers=headers)


@router.get("/vendor/leaflet/{name}", include_in_schema=False)
def leaflet_file(request: Request, name: str) -> Response:
    if name not in LEAFLET_FILES:
        raise HTTPException(404)
    return _serve(request, VENDOR / "leaflet" / name)


@router.get("/vendor/leaflet/images/{name}", include_in_schema=False)
def leaflet_image(request: Request, name: str) -> Response:
    if name not in LEAFLET_IMAGES:
        raise HTTPException(404)
    return _serve(request, VENDOR / "leaflet" / "images" / name)


@router.get("/vendor/hue-outline.geojson", include_in_schema=False)
def outline(request: Request) -> Response:
    return _serve(request, VENDOR / OUTLINE)


def outline_credit() -> str:
    _, body = _load(VENDOR / OUTLINE)
    return str(json.loads(body)["properties"]["credit"])


@router.get(
    "/api/v1/map",
    summary="The maps' settings: tile server (if any), attribution, centre, zoom, credits (public)",
    openapi_extra={"x-edgewatch-auth": "public"},
    tags=["maps (public)"],
)
def map_settings(request: Request) -> dict[str, Any]:
    m = request.app.state.cfg.map
    return {
        "tile_url": m.tile_url,
        "attribution": m.attribution,
        "center": list(m.center),
        "zoom": m.zoom,
        "outline_url": f"/vendor/{OUTLINE}",
        "outline_credit": outline_credit(),
        "library_credit": LIBRARY_CREDIT,
        "library_url": LIBRARY_URL,
    }
