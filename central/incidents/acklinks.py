"""Ack links: signed, single-use tokens that let a ranger acknowledge from a phone.

A notification carries a link a team member can open without an account; it may only
acknowledge, expires, and works once (the manager stores its nonce when it is spent). The
key is ``incidents.secret``, else one the hub generated and keeps in the database
(``hub_secrets``), so links survive a restart and hubs sharing a database accept each
other's. Kept apart from merging and routing: this is the one piece of incidents that is
cryptography, and it is tested on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.storage.db import UTCDateTime

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class AckLinkError(Exception):
    """An ack token that may not be used; ``reason`` is invalid, expired or used."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AckToken:
    team_id: str
    expires: int  # Unix seconds
    nonce: str


class AckSigner:
    """Ack links in notifications, so a ranger can acknowledge from a phone without an
    account. A token is ``TEAM~EXPIRES~NONCE~MAC``: ``~`` is in neither a team id nor
    base64url, so team ids with dots (or anything else they may hold) parse back. The MAC
    is an HMAC-SHA256 over incident id, team id, expiry and nonce; the nonce makes each
    link unique, so :meth:`IncidentManager.redeem_ack` can spend it once. A token only
    acknowledges: resolving and false alarms need an account."""

    SEP = "~"

    def __init__(self, secret: str | None, ttl_s: float = 3600) -> None:
        raw = (secret or secrets.token_urlsafe(32)).encode()
        # a key of its own, so the incidents secret signs nothing else by accident
        self.key = hmac.new(raw, b"edgewatch ack link v1", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _mac(self, incident_id: str, team_id: str, expires: int, nonce: str) -> str:
        msg = "\n".join(("ack", incident_id, team_id, str(expires), nonce)).encode()
        mac = hmac.new(self.key, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def token(self, incident_id: str, team_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        nonce = secrets.token_urlsafe(16)
        mac = self._mac(incident_id, team_id, expires, nonce)
        return self.SEP.join((team_id, str(expires), nonce, mac))

    def check(self, incident_id: str, token: str, now: float | None = None) -> AckToken:
        """The token's team, expiry and nonce; :class:`AckLinkError` when it is not valid
        for this incident (forged, another incident or team, malformed) or has expired."""
        parts = token.split(self.SEP)
        if len(parts) != 4 or not all(parts) or not parts[1].isdigit() or len(token) > 256:
            raise AckLinkError("invalid", "the ack link is not valid for this incident")
        team_id, expires_s, nonce, mac = parts
        expires = int(expires_s)
        good = self._mac(incident_id, team_id, expires, nonce)
        if not hmac.compare_digest(good.encode(), mac.encode()):
            raise AckLinkError("invalid", "the ack link is not valid for this incident")
        if (time.time() if now is None else now) > expires:
            raise AckLinkError(
                "expired",
                "the ack link has expired; use the newest notification or log in to acknowledge",
            )
        return AckToken(team_id, expires, nonce)


# the hub's own generated secrets (migration 0008); a Core table: nothing but this module
# reads or writes it
hub_secrets = Table(
    "hub_secrets",
    MetaData(),
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
ACK_SECRET_NAME = "incidents.ack_link"


def stored_secret(sessions: sessionmaker[Session], name: str) -> str:
    """The secret ``name`` from the database, generated (32 random bytes) on first use. Hubs
    sharing a database race to create it; the first insert wins and all read that one."""
    query = select(hub_secrets.c.value).where(hub_secrets.c.name == name)
    with sessions() as session:
        value = session.execute(query).scalar_one_or_none()
    if value is not None:
        return value
    try:
        with sessions.begin() as session:
            session.execute(
                insert(hub_secrets).values(
                    name=name, value=secrets.token_urlsafe(32), created_at=_now()
                )
            )
        log.info("secret generated and stored in the database", extra={"secret_name": name})
    except IntegrityError:
        pass  # another hub on this database made it first
    with sessions() as session:
        return session.execute(query).scalar_one()
