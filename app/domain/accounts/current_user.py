"""The user behind a session cookie, whichever team the session is on (or none): for routes about the user
rather than a team, such as accepting an invite or the operator routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from sqlalchemy import select

from app.db.models import Session, User
from app.db.tenancy import scope_to_user
from app.lib.api_error import ApiError
from app.lib.auth import _SAFE_METHODS, CSRF_HEADER, SESSION_COOKIE, client_ip, services
from app.lib.dependencies import DbSession
from app.lib.hashing import same, sha256

__all__ = ["SessionUser", "count_user_request", "provide_session_user"]


@dataclass(frozen=True)
class SessionUser:
    """A logged-in user (second factor done), the session and the team it is on."""

    user_id: uuid.UUID
    email: str
    is_operator: bool
    totp_enabled: bool
    session_id: uuid.UUID
    team_id: uuid.UUID | None
    ip: str


async def provide_session_user(request: Request[Any, Any, Any], db_session: DbSession) -> SessionUser:
    """Authenticate a session cookie (CSRF-checked on writes), set `app.user_id` for the transaction, and apply
    the per-user rate limit (POSTYARD_RATE_LIMIT a window)."""
    if request.headers.get("authorization"):
        raise ApiError(403, "session_required", "This route needs a logged-in user, not an API key")
    token = request.cookies.get(SESSION_COOKIE)
    session = None
    if token:
        session = (await db_session.execute(select(Session).where(Session.token_hash == sha256(token)))
                   ).scalar_one_or_none()
    if session is None or session.revoked_at is not None or session.expires_at <= datetime.now(UTC) \
            or session.mfa_pending:
        raise ApiError(401, "unauthorized", "Session is missing or expired")
    if request.method not in _SAFE_METHODS and not same(request.headers.get(CSRF_HEADER, ""), session.csrf_token):
        raise ApiError(403, "csrf_failed", "Missing or wrong X-CSRF-Token header")
    user = (await db_session.execute(select(User).where(User.id == session.user_id))).scalar_one()
    await scope_to_user(db_session, user.id)
    await count_user_request(request, user.id)
    return SessionUser(user_id=user.id, email=user.email, is_operator=user.is_operator,
                       totp_enabled=user.totp_enabled, session_id=session.id,
                       team_id=session.team_id, ip=client_ip(request))


async def count_user_request(request: Request[Any, Any, Any], user_id: uuid.UUID) -> None:
    """Count a signed-in user's request against the per-user limit (the API's session routes and the console's
    pages share it); 429 beyond it."""
    svc = services(request)
    decision = await svc.limiter.hit([f"user:{user_id}"], [svc.settings.rate_limit], svc.settings.rate_limit_window)
    request.state.ratelimit = decision
    if not decision.allowed:
        raise ApiError(429, "rate_limit_exceeded", "Too many requests", headers=decision.headers())
