"""Bytes a phone downloads to open the public flood page (/hotspots), measured in Chromium.

Why: the page is meant for a phone on a slow network, so its first load must stay small
and the map library must come after the list. This loads the page in Debian's Chromium
(Playwright) at a phone's viewport, waits until the list and then the map are drawn,
and sums the response bodies it fetched, in three groups:

- ``first_load``: the HTML, CSS and JS of the page, the i18n module and its texts, and
  the hotspot list (what the first paint needs);
- ``map``: what the map adds afterwards (map.js/css, Leaflet's JS and CSS, the bundled
  outline, /api/v1/map, the map's texts; no tiles: none is configured);
- ``charts``: the level histories of the cards in view, fetched lazily.

``raw_bytes`` is what the hub sends (it does not compress); ``gzip_bytes`` is what the
same bodies weigh gzip-compressed (level 6, as a compressing reverse proxy would send
them). ``wire_bytes`` adds the response headers as Chromium counted them.

Run ``python scripts/bench_public_page.py`` (starts a hub in-process on a temporary
database with the 50 example hotspots of configs/hotspots.geojson, each with a reading)
or pass ``--base URL`` of a running hub; writes docs/benchmarks/public_page_size.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks" / "public_page_size.json"
MAP_PATHS = ("/vendor/", "/ui/map.js", "/ui/map.css", "/api/v1/map")


def _group(path: str, query: str) -> str:
    if path.startswith(MAP_PATHS) or (path.startswith("/i18n/") and query == "sections=map"):
        return "map"
    if path.endswith("/history"):
        return "charts"
    return "first_load"


def measure(base: str) -> dict[str, Any]:
    """Loads ``base``/hotspots in a fresh Chromium profile and sums what it fetched."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("Debian chromium is required (scripts/setup.sh installs it)")
    got: list[dict[str, Any]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, locale="vi-VN"
            )
            page = ctx.new_page()
            responses: list[Any] = []
            page.on("response", lambda r: responses.append(r))
            t0 = time.monotonic()
            page.goto(f"{base}/hotspots")
            page.wait_for_selector("li.card")
            list_s = time.monotonic() - t0
            page.wait_for_selector("#map[data-ready='1']", timeout=20000)
            map_s = time.monotonic() - t0
            page.wait_for_load_state("networkidle")
            for r in responses:
                url = urlsplit(r.url)
                path = url.path
                if path == "/favicon.ico":
                    continue  # the browser's own request, not the page's
                try:
                    body = r.body()
                except Exception:  # a redirect or an aborted body has none
                    body = b""
                sizes = r.request.sizes()
                got.append(
                    {
                        "path": path,
                        "query": url.query,
                        "status": r.status,
                        "group": _group(path, url.query),
                        "raw_bytes": len(body),
                        "gzip_bytes": len(gzip.compress(body, 6)) if body else 0,
                        "wire_bytes": sizes["responseBodySize"] + sizes["responseHeadersSize"],
                    }
                )
        finally:
            browser.close()
    out: dict[str, Any] = {}
    for group in ("first_load", "map", "charts"):
        rows = [g for g in got if g["group"] == group]
        out[group] = {
            "requests": len(rows),
            "raw_bytes": sum(g["raw_bytes"] for g in rows),
            "gzip_bytes": sum(g["gzip_bytes"] for g in rows),
            "wire_bytes": sum(g["wire_bytes"] for g in rows),
            "files": sorted(
                ({k: g[k] for k in ("path", "query", "raw_bytes", "gzip_bytes")} for g in rows),
                key=lambda g: -g["raw_bytes"],
            ),
        }
    out["seconds"] = {"list_drawn": round(list_s, 2), "map_drawn": round(map_s, 2)}
    return out


def _hub() -> tuple[str, Any]:
    """A hub in-process (uvicorn, a temporary database), every example hotspot read once."""
    import uvicorn

    from central.app import create_app
    from central.config import HubConfig
    from edgewatch import contract

    hotspots = ROOT / "configs" / "hotspots.geojson"
    tmp = Path(tempfile.mkdtemp(prefix="bench-public-"))
    app = create_app(
        HubConfig(database_url=f"sqlite:///{tmp}/hub.sqlite3", hotspots_file=hotspots),
        consume=False,
    )
    now = datetime.now(UTC)
    for f in json.loads(hotspots.read_text())["features"]:
        p = f["properties"]
        reading = contract.HotspotReading(
            hotspot_id=p["id"], camera_id=p["camera"]["camera_id"], analytic="flood",
            setup=p["setup"], time=now, state="normal", level_state="normal", level_cm=20.0,
            trend_cm_per_h=0.5, period_s=600,
        )  # fmt: skip
        topic = contract.hotspot_topic(p["camera"]["site"], p["camera"]["edge_id"], p["id"])
        app.state.ingestor.handle(topic, reading.model_dump_json(exclude_none=True).encode())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", help="a running hub (default: start one in-process)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    server = None
    base = args.base
    if base is None:
        sys.path.insert(0, str(ROOT))
        base, server = _hub()
    try:
        result = measure(base)
    finally:
        if server is not None:
            server.should_exit = True
    result["measured"] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "how": "scripts/bench_public_page.py: Debian Chromium via Playwright, 390x844, "
        "a fresh profile (empty cache), 50 example hotspots each with a reading",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for group in ("first_load", "map", "charts"):
        g = result[group]
        print(
            f"{group:10} {g['requests']:2} requests  raw {g['raw_bytes']:7} B  "
            f"gzip {g['gzip_bytes']:7} B"
        )


if __name__ == "__main__":
    main()
