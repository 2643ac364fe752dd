"""The API documentation at ``/docs``: Swagger UI from the installed ``swagger-ui-bundle``
package (a pinned copy served by the hub itself; deployments have no internet, and a
script from a CDN would run on the hub's own origin, next to the session cookie).

FastAPI's own /docs and /redoc load their scripts from a CDN and use an inline script,
so they are turned off in ``central.app``; ``http.docs: false`` removes these routes and
``/openapi.json`` too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parents[1] / "web"
VENDOR_CACHE = "public, max-age=86400"
VENDOR = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
OWN = {"docs.js": "text/javascript"}


def swagger_ui_dir() -> Path:
    """Where the package keeps Swagger UI's files (a dependency in pyproject.toml)."""
    import swagger_ui_bundle

    return Path(str(swagger_ui_bundle.swagger_ui_path))


@router.get("/docs")
def docs_page() -> FileResponse:
    return FileResponse(WEB / "docs.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs/{name}")
def docs_asset(name: str) -> FileResponse:
    if name in OWN:
        return FileResponse(WEB / name, media_type=OWN[name], headers={"Cache-Control": "no-cache"})
    if name not in VENDOR:
        raise HTTPException(404)
    return FileResponse(
        swagger_ui_dir() / name, media_type=VENDOR[name], headers={"Cache-Control": VENDOR_CACHE}
    )
