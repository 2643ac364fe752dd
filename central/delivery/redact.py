"""What logs and stored errors may show of a delivery target.

Webhook URLs and Web Push endpoints are credentials (a Slack-style secret path, a token in
the query, a push service's subscription id), and the HTTP libraries name them in their
exceptions. Both the channels (a refused subscription is logged) and the dispatcher (every
attempt is logged, its error stored) cut them down here, so there is one rule for it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` and a marker: webhook and push URLs carry secrets in their
    path or query (a Slack hook, a push endpoint's token), so logs get no more than this."""
    try:
        u = urlsplit(url)
        host = u.hostname or "?"
        port = f":{u.port}" if u.port else ""
    except ValueError:
        return "<unparsable url>"
    rest = "/..." if (u.path not in ("", "/") or u.query or u.fragment) else ""
    return f"{u.scheme}://{host}{port}{rest}"


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>)]+")
_URL_PATH_IN_TEXT = re.compile(r"(url: )(/[^\s'\"<>)]*)")


def scrub(error: str) -> str:
    """An error message with any URL cut to its origin and any request path dropped:
    requests and urllib3 name them in their errors, and they carry secrets."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), error)
    return _URL_PATH_IN_TEXT.sub(lambda m: m.group(1) + "/...", text)
