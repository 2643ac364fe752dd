"""Log in and out, bearer tokens (OAuth2 password flow), and user administration."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select

from central import auth
from central.api.deps import COOKIE, AdminDep, SessionDep, UserDep
from central.auth import ROLES, AuthError, LoginLimiter, Role
from central.storage.db import as_utc
from central.storage.models import UserRow

router = APIRouter(tags=["auth"])
log = logging.getLogger(__name__)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class LoginIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class Me(BaseModel):
    username: str
    role: Role
    permissions: list[str]
    csrf_token: str | None = Field(description="echo in X-CSRF-Token on POST (cookie sessions)")


class UserOut(BaseModel):
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class UserIn(BaseModel):
    username: str = Field(max_length=64)
    role: Role
    password: str = Field(min_length=auth.MIN_PASSWORD, max_length=1024)


class UserPatch(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(None, min_length=auth.MIN_PASSWORD, max_length=1024)


def _limiter(request: Request) -> LoginLimiter:
    state = request.app.state
    if not hasattr(state, "login_limiter"):
        s = state.cfg.auth
        state.login_limiter = LoginLimiter(
            s.login_max_failures, s.login_window_s, s.login_global_max_failures
        )
    return state.login_limiter  # type: ignore[no-any-return]


def _login(request: Request, session: SessionDep, username: str, password: str) -> UserRow:
    limiter = _limiter(request)
    # The peer's address; X-Forwarded-For counts only from http.trusted_proxies (the app's
    # proxy middleware rewrote it then), so a client cannot pick the key it is counted by.
    client = request.client.host if request.client else "unknown"
    keys = (f"u:{username.lower()}", f"ip:{client}")
    wait = limiter.retry_after(*keys)
    if wait > 0:
        log.warning(
            "login throttled",
            extra={
                "user": username[:64],
                "client": client,
                "global_budget_spent": limiter.global_spent(),
            },
        )
        raise HTTPException(
            429,
            "too many failed logins; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = auth.verify_login(session, username, password)
    if user is None:
        limiter.failed(*keys)
        log.warning("login failed", extra={"user": username[:64], "client": client})
        raise HTTPException(
            401,
            "wrong user name or password",
            headers={"WWW-Authenticate": 'Bearer realm="edgewatch"'},
        )
    limiter.succeeded(keys[0])
    log.info("login", extra={"user": user.username, "role": user.role, "client": client})
    return user


@router.post(
    "/api/v1/auth/token",
    response_model=Token,
    summary="OAuth2 password flow: a bearer token for API clients",
    openapi_extra={"x-edgewatch-auth": "public"},
)
def token(
    request: Request,
    session: SessionDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> Token:
    user = _login(request, session, form.username, form.password)
    ttl = request.app.state.cfg.auth.token_ttl_s
    secret, _row = auth.start_session(session, user, "bearer", ttl)
    session.commit()
    return Token(access_token=secret, expires_in=ttl)


@router.post(
    "/api/v1/auth/login",
    response_model=Me,
    summary="Browser login: sets an HttpOnly, SameSite=Strict session cookie",
    openapi_extra={"x-edgewatch-auth": "public"},
)
def login(body: LoginIn, request: Request, response: Response, session: SessionDep) -> Me:
    user = _login(request, session, body.username, body.password)
    settings = request.app.state.cfg.auth
    secret, row = auth.start_session(session, user, "cookie", settings.session_ttl_s)
    session.commit()
    secure = settings.cookie_secure == "always" or (
        settings.cookie_secure == "auto"
        and (
            request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "").lower() == "https"
        )
    )
    response.set_cookie(
        COOKIE,
        secret,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    role: Role = user.role  # type: ignore[assignment]
    return Me(
        username=user.username,
        role=role,
        permissions=sorted(auth.PERMISSIONS[role]),
        csrf_token=row.csrf,
    )


@router.post("/api/v1/auth/logout", status_code=204, summary="End this session or token")
def logout(request: Request, response: Response, session: SessionDep, user: UserDep) -> None:
    secret = request.cookies.get(COOKIE) if user.via == "cookie" else None
    if secret is None:
        header = request.headers.get("authorization", "")
        secret = header.split(" ", 1)[1] if " " in header else None
    if secret:
        auth.end_session(session, secret)
        session.commit()
        request.app.state.live.sessions_changed()  # its open live streams end now
    response.delete_cookie(COOKIE, path="/")
    response.status_code = 204


@router.get("/api/v1/auth/me", response_model=Me, summary="Who is logged in")
def me(user: UserDep) -> Me:
    return Me(
        username=user.username,
        role=user.role,
        permissions=sorted(auth.PERMISSIONS[user.role]),
        csrf_token=user.csrf,
    )


def _user_out(row: UserRow) -> dict[str, Any]:
    return {
        "username": row.username,
        "role": row.role,
        "disabled": row.disabled,
        "created_at": as_utc(row.created_at),
        "last_login_at": as_utc(row.last_login_at),
    }


@router.get("/api/v1/users", response_model=list[UserOut], tags=["users"])
def list_users(session: SessionDep, _admin: AdminDep) -> list[dict[str, Any]]:
    return [_user_out(r) for r in session.scalars(select(UserRow).order_by(UserRow.username))]


@router.post("/api/v1/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(body: UserIn, session: SessionDep, admin: AdminDep) -> dict[str, Any]:
    try:
        row = auth.add_user(session, body.username, body.role, body.password)
    except AuthError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
    session.commit()
    log.info("user added", extra={"user": row.username, "role": row.role, "by": admin.username})
    return _user_out(row)


@router.patch("/api/v1/users/{username}", response_model=UserOut, tags=["users"])
def update_user(
    username: str, body: UserPatch, request: Request, session: SessionDep, admin: AdminDep
) -> dict[str, Any]:
    row = session.scalar(select(UserRow).where(UserRow.username == username))
    if row is None:
        raise HTTPException(404, f"no user {username!r}")
    if body.password is not None:
        auth.set_password(session, username, body.password)
    if body.role is not None:
        row.role = body.role
    if body.disabled is not None:
        if row.username == admin.username and body.disabled:
            raise HTTPException(422, "you cannot disable your own account")
        row.disabled = body.disabled
    session.commit()
    # A disabled account, a new password or another role: open live streams re-check now.
    request.app.state.live.sessions_changed()
    log.info("user changed", extra={"user": row.username, "by": admin.username})
    return _user_out(row)


__all__ = ["ROLES", "router"]
