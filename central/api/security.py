"""One set of security headers on every answer of the hub: pages, assets, API, errors.

The Content-Security-Policy allows scripts, styles and connections from the hub itself
only (no inline code, no CDN), no framing by anyone (clickjacking), and no plugins. Pages
must therefore keep their scripts and styles in files under ``central/web``; a test
walks every route and page to check the headers, and loads the pages in Chromium to
check that nothing is blocked.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data: blob:",
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

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
