"""The channels a notification goes out on: a signed webhook, an MQTT topic, Web Push.

Each channel is what one attempt at one target takes, and the policy that guards it:
webhooks never follow redirects; a Web Push endpoint must be an https URL on an
allow-listed push service (never an IP address), at most ``push.max_subscriptions_per_team``
per team, since a browser subscription is a URL the hub will POST to and an enrolment
token is no proof of good intent. Retries, backoff and circuit breaking are the
dispatcher's (:mod:`central.delivery.dispatcher`); which targets a team has is routing's
(:mod:`central.incidents.routing`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from central.config import PushSettings
from central.delivery.redact import redact_url
from central.storage.models import PushSubscriptionRow

log = logging.getLogger(__name__)

TEAM_TOPIC = "edgewatch/v1/teams/{team}/incidents"  # a team's MQTT channel without a topic


class _Refused(Exception):
    """A delivery that policy forbids: failed at once, never retried, no circuit count."""


# --------------------------------------------------------------------------- webhook


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook answer of 3xx is an error: urllib raises HTTPError instead of following it
    (it would re-send a POST as a GET, signature headers and all, without the body)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_webhook(url: str, body: bytes, delivery_id: int, key: bytes, timeout_s: float) -> None:
    """POST ``body`` to ``url``, signed with HMAC-SHA256 over timestamp and body; raises on
    anything but a 2xx (a redirect included)."""
    ts = str(int(time.time()))
    mac = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "edgewatch-hub",
            "X-Edgewatch-Delivery": str(delivery_id),
            "X-Edgewatch-Timestamp": ts,
            "X-Edgewatch-Signature": f"sha256={mac}",
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            raise RuntimeError(f"HTTP {exc.code}: webhooks do not follow redirects") from None
        raise RuntimeError(f"HTTP {exc.code}") from None


# --------------------------------------------------------------------------- Web Push

MAX_PUSH_ENDPOINT = 512  # deliveries.target holds this much
_HOST_CHARS = re.compile(r"[a-z0-9.-]+")


class PushRefused(Exception):
    """A subscription the hub will not take; ``status`` is the HTTP answer (422 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _host_allowed(host: str, port: int, allowed: list[str]) -> bool:
    for entry in allowed:
        pattern, _, want = entry.partition(":")
        if port != (int(want) if want else 443):
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def push_endpoint_problem(endpoint: str, push: PushSettings) -> str | None:
    """Why the hub may not POST to this Web Push endpoint, or None when it may: https only,
    no user info, never an IP address, a host (and port) of ``push.allowed_hosts``."""
    if len(endpoint) > MAX_PUSH_ENDPOINT:
        return f"the endpoint is longer than {MAX_PUSH_ENDPOINT} characters"
    try:
        url = urlsplit(endpoint)
        port = url.port or 443
    except ValueError:
        return "the endpoint is not a valid URL"
    if url.scheme != "https":
        return "a push endpoint must be an https URL"
    if "@" in url.netloc:
        return "a push endpoint may not carry a user name or password"
    host = (url.hostname or "").rstrip(".")
    if not host:
        return "the endpoint has no host"
    if not _HOST_CHARS.fullmatch(host):
        return "the endpoint's host is not a DNS name"
    try:
        ipaddress.ip_address(host)
        return "a push endpoint must name a push service, not an IP address"
    except ValueError:
        pass
    if not _host_allowed(host, port, push.allowed_hosts):
        shown = host if port == 443 else f"{host}:{port}"
        return f"{shown} is not a push service this hub sends to (push.allowed_hosts)"
    return None


def admit_push_subscription(
    session: Session, push: PushSettings, team_id: str, endpoint: str
) -> None:
    """Raise :class:`PushRefused` unless ``endpoint`` may join ``team_id``: the endpoint
    policy (422), and the team's cap (409; the (N+1)th is refused, nothing is evicted, so
    whoever holds the enrolment token cannot push rangers' phones out). An endpoint already
    subscribed to the team may always renew its keys."""
    problem = push_endpoint_problem(endpoint, push)
    if problem is not None:
        log.warning(
            "push subscription refused",
            extra={"team": team_id, "reason": problem, "target": redact_url(endpoint)},
        )
        raise PushRefused(422, f"push endpoint refused: {problem}")
    mine = session.execute(
        select(PushSubscriptionRow.id).where(
            PushSubscriptionRow.endpoint == endpoint, PushSubscriptionRow.team_id == team_id
        )
    ).scalar_one_or_none()
    if mine is not None:
        return
    have = session.execute(
        select(func.count())
        .select_from(PushSubscriptionRow)
        .where(PushSubscriptionRow.team_id == team_id)
    ).scalar_one()
    cap = push.max_subscriptions_per_team
    if have >= cap:
        log.warning("push subscription refused: team is full", extra={"team": team_id, "cap": cap})
        raise PushRefused(
            409,
            f"team {team_id} already has the maximum of {cap} push subscriptions "
            "(push.max_subscriptions_per_team); ones whose push service reports them gone are "
            "dropped, or ask an operator to remove stale ones",
        )


def _push_session(push: PushSettings) -> Any:
    """A requests session for one push attempt: no redirects (a 3xx is an error, since
    pywebpush raises on any status above 202), and ``push.ca_file`` when set (passed with
    each request: a session's own ``verify`` loses to REQUESTS_CA_BUNDLE in the environment)."""
    import requests

    ca = str(push.ca_file) if push.ca_file is not None else None

    class NoRedirectSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs["allow_redirects"] = False
            if ca is not None:
                kwargs["verify"] = ca
            return super().request(*args, **kwargs)

    return NoRedirectSession()


def send_webpush(
    sessions: sessionmaker[Session],
    endpoint: str,
    body: bytes,
    vapid_key: Path | None,
    push: PushSettings,
    timeout_s: float,
) -> bool:
    """Push ``body`` to the subscription of ``endpoint``: True when it is gone (no longer
    stored, or the push service says so); :class:`_Refused` when the endpoint policy no
    longer allows it; raises on any other failure."""
    from pywebpush import WebPushException, webpush

    with sessions() as session:
        sub = session.execute(
            select(PushSubscriptionRow).where(PushSubscriptionRow.endpoint == endpoint)
        ).scalar_one_or_none()
    if sub is None:
        return True
    problem = push_endpoint_problem(sub.endpoint, push)
    if problem is not None:  # queued before the allow-list changed
        raise _Refused(f"push endpoint refused: {problem}")
    if vapid_key is None:
        raise RuntimeError("no VAPID key")
    http = _push_session(push)
    try:
        webpush(
            subscription_info={
                "endpoint": sub.endpoint,
                "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
            },
            data=body,
            vapid_private_key=str(vapid_key),
            vapid_claims={"sub": push.subject},
            ttl=push.ttl_s,
            timeout=timeout_s,
            requests_session=http,
        )
    except WebPushException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (404, 410):
            return True
        raise RuntimeError(f"push service: HTTP {status}") from None
    finally:
        http.close()
    return False


def load_vapid(path: Path) -> tuple[Path, str]:
    """The VAPID private key file (created when missing, mode 0600) and the public key for
    browsers (uncompressed point, base64url)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        log.info("VAPID key created", extra={"file": str(path)})
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    pub = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return path, base64.urlsafe_b64encode(pub).rstrip(b"=").decode()
