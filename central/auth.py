"""Accounts, roles, sessions and bearer tokens.

Passwords are hashed with Argon2id (argon2-cffi, its RFC 9106 low-memory profile).
A login creates an opaque random secret; the database keeps only its SHA-256, so a
leaked table cannot be replayed. Browser sessions carry a CSRF secret that every
state-changing request must echo in ``X-CSRF-Token``; bearer tokens (API clients) are
not sent by browsers on their own, so they need none.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from central.config import AuthSettings
from central.storage.db import as_utc
from central.storage.models import AuthSessionRow, UserRow
from edge.analytics import registry

Role = Literal["admin", "operator", "ranger", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "operator", "ranger", "viewer")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 10

# What each role may do. Rangers see and act on fire only (see ``may_see_kind``).
# ``setup``: cameras' configurations (their analytics, URLs, which edge runs them).
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {"read", "evidence", "act", "review", "incidents", "users", "internal", "metrics", "setup"}
    ),
    "operator": frozenset(
        {"read", "evidence", "act", "review", "incidents", "internal", "metrics", "setup"}
    ),
    "ranger": frozenset({"read", "evidence", "act", "incidents"}),
    "viewer": frozenset({"read"}),
}
# The kinds the analytics (and the hub's watchdog) declare for rangers: fire and outages.
RANGER_KINDS = frozenset(registry.kinds_where(roles="ranger"))

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters
_DUMMY_HASH = _hasher.hash("edgewatch: a hash to compare against for unknown users")


class AuthError(Exception):
    """A user-facing account problem (bad name, weak password, unknown user)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    via: Literal["cookie", "bearer"] = "bearer"
    csrf: str | None = None

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    def may_see_kind(self, kind: str) -> bool:
        return self.role != "ranger" or kind in RANGER_KINDS


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise AuthError("a user name is 1-64 letters, digits or _ . @ - (starting alphanumeric)")
    return username


def add_user(session: Session, username: str, role: str, password: str) -> UserRow:
    check_username(username)
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if session.scalar(select(UserRow).where(UserRow.username == username)) is not None:
        raise AuthError(f"user {username!r} exists (use passwd to change the password)")
    row = UserRow(
        username=username,
        role=role,
        password_hash=hash_password(password),
        disabled=False,
        created_at=_now(),
    )
    session.add(row)
    session.flush()
    return row


def set_password(session: Session, username: str, password: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.username == username))
    if row is None:
        raise AuthError(f"no user {username!r}")
    row.password_hash = hash_password(password)
    # A new password ends every session and token of the old one.
    session.execute(delete(AuthSessionRow).where(AuthSessionRow.user_id == row.id))
    return row


def verify_login(session: Session, username: str, password: str) -> UserRow | None:
    """The user when the password is right; the same work is done for unknown users."""
    row = session.scalar(select(UserRow).where(UserRow.username == username))
    stored = row.password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    row.last_login_at = _now()
    return row


def start_session(
    session: Session, user: UserRow, kind: Literal["cookie", "bearer"], ttl_s: int
) -> tuple[str, AuthSessionRow]:
    """A new secret for the user; only its digest is stored."""
    secret = secrets.token_urlsafe(32)
    now = _now()
    row = AuthSessionRow(
        token_sha256=_digest(secret),
        user_id=user.id,
        kind=kind,
        csrf=secrets.token_urlsafe(24) if kind == "cookie" else None,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        last_seen_at=now,
    )
    session.add(row)
    # Expired sessions of anyone are swept on each login.
    session.execute(delete(AuthSessionRow).where(AuthSessionRow.expires_at < now))
    return secret, row


def resolve(
    session: Session,
    secret: str,
    kind: Literal["cookie", "bearer"],
    settings: AuthSettings,
    *,
    touch: bool = True,
) -> User | None:
    """The account behind a secret, or None when it is unknown, expired, idle too long or
    its user disabled. ``touch=False`` checks without counting as use (a live stream's
    re-checks must not keep an unattended session from idling out)."""
    row = session.get(AuthSessionRow, _digest(secret))
    if row is None or row.kind != kind:
        return None
    now = _now()
    expires = as_utc(row.expires_at)
    seen = as_utc(row.last_seen_at)
    assert expires is not None and seen is not None
    if now >= expires or (
        kind == "cookie" and (now - seen).total_seconds() > settings.idle_timeout_s
    ):
        session.delete(row)
        session.commit()
        return None
    user = session.get(UserRow, row.user_id)
    if user is None or user.disabled:
        return None
    if touch and (now - seen).total_seconds() > 60:  # keep writes rare
        row.last_seen_at = now
        session.commit()
    return User(user.id, user.username, user.role, kind, row.csrf)  # type: ignore[arg-type]


def end_session(session: Session, secret: str) -> None:
    session.execute(delete(AuthSessionRow).where(AuthSessionRow.token_sha256 == _digest(secret)))


GLOBAL_KEY = "*"


class LoginLimiter:
    """Failed logins per user name and per client address in a sliding window, and of all
    of them together.

    Once either key has ``max_failures`` failures inside ``window_s``, further attempts
    are refused (429) until the oldest failure leaves the window, right password or not.
    Every failure also counts against a global budget of ``global_max`` per window: a
    spray of guesses spread over many names and addresses (each under its own limit)
    still stops there.
    """

    def __init__(self, max_failures: int, window_s: float, global_max: int = 100) -> None:
        self.max = max_failures
        self.global_max = global_max
        self.window = window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _limit(self, key: str) -> int:
        return self.global_max if key == GLOBAL_KEY else self.max

    def _trim(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds until an attempt is allowed; 0 when it is."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key in (*keys, GLOBAL_KEY):
                q = self._trim(key, now)
                limit = self._limit(key)
                if len(q) >= limit:
                    # the attempt is allowed again once the count is below the limit
                    waits.append(self.window - (now - q[len(q) - limit]))
            return max(waits, default=0.0)

    def global_spent(self) -> bool:
        """Whether the global budget is what refuses attempts now."""
        now = time.monotonic()
        with self._lock:
            return len(self._trim(GLOBAL_KEY, now)) >= self.global_max

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (*keys, GLOBAL_KEY):
                self._trim(key, now).append(now)
            if len(self._fails) > 10000:  # bound memory under a spray of names
                for k in [k for k, q in self._fails.items() if not q]:
                    del self._fails[k]

    def succeeded(self, username_key: str) -> None:
        with self._lock:
            self._fails.pop(username_key, None)
