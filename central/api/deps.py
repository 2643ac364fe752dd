"""Dependencies injected into the routers: the DB session and the caller's account."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from central import auth
from central.auth import User

COOKIE = "ew_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Declares the OAuth2 password flow in OpenAPI (the "Authorize" button in /docs); the
# cookie is checked too, so auto_error is off and the 401 comes from ``current_user``.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


Credential = tuple[Literal["cookie", "bearer"], str]


def credential(request: Request) -> Credential | None:
    """The secret this request authenticates with: a bearer token first, else the cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "bearer", value.strip()
    cookie = request.cookies.get(COOKIE)
    return ("cookie", cookie) if cookie else None


def recheck(app: Any, cred: Credential) -> User | None:
    """The account behind ``cred`` now (None once logged out, expired, disabled or
    re-keyed); a check that does not count as use of the session."""
    with app.state.sessions() as session:
        return auth.resolve(session, cred[1], cred[0], app.state.cfg.auth, touch=False)


def _same_secret(sent: str, expected: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII strings with a TypeError (a 500).
    return hmac.compare_digest(sent.encode(), expected.encode())


def optional_user(request: Request, bearer: Annotated[str | None, Depends(oauth2)]) -> User | None:
    # Its own short session, closed before the endpoint runs: a live stream must not hold
    # a pooled connection for hours (the pool would run dry with a dozen dashboards open).
    settings = request.app.state.cfg.auth
    cookie = request.cookies.get(COOKIE)
    if not bearer and not cookie:
        return None
    with request.app.state.sessions() as session:
        if bearer:
            return auth.resolve(session, bearer, "bearer", settings)
        user = auth.resolve(session, cookie, "cookie", settings)  # type: ignore[arg-type]
    if user is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not user.csrf or not _same_secret(sent, user.csrf):
            raise HTTPException(403, "missing or wrong CSRF token (send X-CSRF-Token)")
    return user


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise HTTPException(
            401, "not authenticated", headers={"WWW-Authenticate": 'Bearer realm="edgewatch"'}
        )
    return user


UserDep = Annotated[User, Depends(current_user)]
OptionalUserDep = Annotated[User | None, Depends(optional_user)]


def require(permission: str) -> Callable[[User], User]:
    def check(user: UserDep) -> User:
        if not user.can(permission):
            raise HTTPException(403, f"the {user.role} role may not do this ({permission})")
        return user

    return check


def evidence_user(user: UserDep) -> User:
    """A caller whose role may see evidence (snapshots, clips, plates): the evidence
    routes' own 403, which names the role and nothing else."""
    if not user.can("evidence"):
        raise HTTPException(403, f"the {user.role} role may not see evidence")
    return user


ActorDep = Annotated[User, Depends(require("act"))]
EvidenceDep = Annotated[User, Depends(evidence_user)]
ReviewerDep = Annotated[User, Depends(require("review"))]
AdminDep = Annotated[User, Depends(require("users"))]
IncidentsDep = Annotated[User, Depends(require("incidents"))]
InternalDep = Annotated[User, Depends(require("internal"))]
MetricsDep = Annotated[User, Depends(require("metrics"))]

# No page of results starts further in than this: SQLite (and PostgreSQL's bigint) would
# overflow on a larger OFFSET and answer 500.
MAX_OFFSET = 1_000_000_000
