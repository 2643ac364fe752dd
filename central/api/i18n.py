"""The pages' translations: the i18n module and one catalogue per language, in sections.

Every page of the hub (dashboard, login, rangers, the public flood page) takes its texts
from ``central/web/i18n/<lang>.json``, whose flat keys are grouped by a section prefix
(``common.*``, ``dashboard.*``, ``public.*``, ...). A page asks only for the sections it
shows (``/i18n/vi.json?sections=common,public``): a phone on a slow link opening the public
flood page must not download the dashboard's strings. The answers carry an ``ETag`` and
may be cached five minutes; a browser that still holds the catalogue gets a 304.

Public, like the pages themselves: the texts hold no data. The catalogue files are read
again when they change on disk (mtime), so an edited catalogue needs no restart.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parents[1] / "web"
CATALOGUES = WEB / "i18n"
LANG = re.compile(r"^[a-z]{2}$")
SECTION = re.compile(r"^[a-z_]+$")
CACHE = "public, max-age=300"

_lock = threading.Lock()
_cache: dict[str, tuple[int, dict[str, Any]]] = {}  # lang -> (mtime_ns, catalogue)


def catalogue(lang: str) -> dict[str, Any]:
    """The whole catalogue of ``lang`` (404 when there is none), re-read when it changed."""
    if not LANG.match(lang):
        raise HTTPException(404, "unknown language")
    path = CATALOGUES / f"{lang}.json"
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise HTTPException(404, "unknown language") from None
    with _lock:
        hit = _cache.get(lang)
        if hit and hit[0] == mtime:
            return hit[1]
        data = json.loads(path.read_text(encoding="utf-8"))
        _cache[lang] = (mtime, data)
        return data


def section_of(key: str) -> str:
    return key.split(".", 1)[0]


@router.get("/i18n/i18n.js")
def module() -> FileResponse:
    return FileResponse(
        WEB / "i18n.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )


@router.get("/i18n/i18n.css")
def style() -> FileResponse:
    return FileResponse(
        WEB / "i18n.css", media_type="text/css", headers={"Cache-Control": "no-cache"}
    )


@router.get("/i18n/{lang}.json")
def texts(lang: str, request: Request, sections: str | None = None) -> Response:
    data = catalogue(lang)
    known = {section_of(k) for k in data}
    if sections is None:
        chosen = known
    else:
        chosen = {s.strip() for s in sections.split(",") if s.strip()}
        unknown = sorted(s for s in chosen if not SECTION.match(s) or s not in known)
        if unknown or not chosen:
            raise HTTPException(404, f"unknown section: {', '.join(unknown) or '(none)'}")
    body = json.dumps(
        {k: v for k, v in data.items() if section_of(k) in chosen},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE, "Vary": "Accept-Encoding"}
    match = request.headers.get("if-none-match", "")
    if etag in {m.strip() for m in match.split(",")} or match.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
