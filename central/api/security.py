"""One set of security headers on every answer of the hub: pages, assets, API, errors.

The Content-Security-Policy allows scripts, styles and connections from the hub itself
only (no inline code, no CDN), no framing by anyone (clickjacking), and no plugins. Pages
must therefore keep their scripts and styles in files under ``central/web``; a test
walks every route and page to check the headers, and loads the pages in Chromium to
check that nothing is blocked.

The one thing a deployment may add is the origin of its map tile server (``map.tile_url``
in the hub config, docs/maps.md): ``img-src`` then allows that origin too, and nothing
else changes.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def build_csp(img_origins: tuple[str, ...] = ()) -> str:
    """The policy; ``img_origins`` are origins pages may load images from besides the hub
    (the map's tile server, ``map.tile_url`` in the hub config: nothing else is added)."""
    img = " ".join(("'self'", "data:", "blob:", *img_origins))
    return "; ".join(
        (
            "default-src 'self'",
            f"img-src {img}",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "style-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        )
    )


CSP = build_csp()

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    # Ack links and ranger enrolment links carry tokens in their query: never send a URL
    # of the hub to anyone, not even to the hub itself.
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Pure ASGI (streams, such as the live SSE stream, pass through unbuffered); the
    values here replace any a route set, so there is exactly one policy."""

    def __init__(self, app: ASGIApp, img_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        self.headers["Content-Security-Policy"] = build_csp(img_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
