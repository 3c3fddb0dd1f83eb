"""Who is calling: an API key (Bearer) or a session cookie, scoped to one team, rate limited."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, Session
from app.db.team_policy import TeamPolicy
from app.db.tenancy import scope_to_team, scope_to_user
from app.lib.api_error import ApiError
from app.lib.api_keys import is_well_formed
from app.lib.dependencies import DbSession
from app.lib.hashing import same, sha256
from app.lib.lookups import Lookups
from app.lib.state import Services

__all__ = ["Principal", "SESSION_COOKIE", "client_ip", "provide_principal",
           "provide_sending_principal", "services"]

SESSION_COOKIE = "postyard_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITE_ROLES = frozenset({"owner", "admin"})
_LAST_USED: dict[uuid.UUID, float] = {}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and the team every query of the request is scoped to."""

    team_id: uuid.UUID
    ip: str
    user_id: uuid.UUID | None = None
    role: str | None = None
    api_key_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    mode: str = "live"
    domain_id: uuid.UUID | None = None
    # The team's sending policy as read when authenticating (cached for seconds, app/lib/lookups.py).
    policy: TeamPolicy | None = None

    @property
    def actor(self) -> tuple[str, str]:
        """(actor type, actor id) for the audit log."""
        if self.api_key_id is not None:
            return "api_key", str(self.api_key_id)
        return "user", str(self.user_id)

    def require_write(self) -> None:
        """Refuse members (read-only) from changing team resources."""
        if self.api_key_id is None and self.role not in _WRITE_ROLES:
            raise ApiError(403, "insufficient_role", "This action needs the owner or admin role")


def services(request: Request[Any, Any, Any]) -> Services:
    """The app's services."""
    return request.app.state.services  # type: ignore[no-any-return]


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The peer address of the request."""
    return request.client.host if request.client else "unknown"


def _ip_allowed(ip: str, allowlist: list[str] | None) -> bool:
    if not allowlist:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowlist)


async def _from_api_key(lookups: Lookups, token: str, db: AsyncSession, ip: str, sending: bool = False) -> Principal:
    if not is_well_formed(token):
        raise ApiError(403, "invalid_api_key", "API key is invalid")
    row = await lookups.api_key(db, sha256(token))
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise ApiError(403, "invalid_api_key", "API key is invalid")
    if row.permission != "full_access" and not sending:
        raise ApiError(401, "restricted_api_key", "This API key is restricted to only send emails")
    if not _ip_allowed(ip, row.allowed_ips):
        raise ApiError(403, "invalid_api_key", "API key is not allowed from this address")
    await scope_to_team(db, row.team_id)
    if time.monotonic() - _LAST_USED.get(row.id, -1e9) > 60:
        _LAST_USED[row.id] = time.monotonic()
        await db.execute(text("UPDATE api_keys SET last_used_at = now() WHERE id = :id"), {"id": row.id})
    return Principal(team_id=row.team_id, ip=ip, api_key_id=row.id, mode=row.mode, domain_id=row.domain_id)


async def _from_session(request: Request[Any, Any, Any], token: str, db: AsyncSession, ip: str) -> Principal:
    session = (await db.execute(select(Session).where(Session.token_hash == sha256(token)))).scalar_one_or_none()
    now = datetime.now(UTC)
    if session is None or session.revoked_at is not None or session.expires_at <= now or session.mfa_pending:
        raise ApiError(401, "unauthorized", "Session is missing or expired")
    if request.method not in _SAFE_METHODS and not same(request.headers.get(CSRF_HEADER, ""), session.csrf_token):
        raise ApiError(403, "csrf_failed", "Missing or wrong X-CSRF-Token header")
    if session.team_id is None:
        raise ApiError(403, "no_team", "This account belongs to no team")
    await scope_to_team(db, session.team_id)
    await scope_to_user(db, session.user_id)
    role = (await db.execute(select(Membership.role).where(
        Membership.team_id == session.team_id, Membership.user_id == session.user_id))).scalar_one_or_none()
    if role is None:
        raise ApiError(403, "no_team", "You are no longer a member of this team")
    return Principal(team_id=session.team_id, ip=ip, user_id=session.user_id, role=role, session_id=session.id)


async def provide_principal(request: Request[Any, Any, Any], db_session: DbSession) -> Principal:
    """Authenticate, scope the transaction to the caller's team, and apply its rate limits."""
    return await _authenticate(request, db_session, sending=False)


async def provide_sending_principal(request: Request[Any, Any, Any], db_session: DbSession) -> Principal:
    """As `provide_principal`, but `sending_access` keys are accepted too (the sending routes)."""
    return await _authenticate(request, db_session, sending=True)


async def _authenticate(request: Request[Any, Any, Any], db_session: AsyncSession, sending: bool) -> Principal:
    svc = services(request)
    ip = client_ip(request)
    authorization = request.headers.get("authorization", "")
    cookie = request.cookies.get(SESSION_COOKIE)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing_api_key", "Missing API key in the authorization header")
        principal = await _from_api_key(svc.lookups, token.strip(), db_session, ip, sending)
    elif cookie:
        principal = await _from_session(request, cookie, db_session, ip)
    else:
        raise ApiError(401, "missing_api_key", "Missing API key in the authorization header")
    policy = await svc.lookups.team_policy(db_session, principal.team_id)
    if policy is None:  # the team was deleted after its key or session was read
        if principal.api_key_id is not None:
            raise ApiError(403, "invalid_api_key", "API key is invalid")
        raise ApiError(401, "unauthorized", "Session is missing or expired")
    principal = dataclasses.replace(principal, policy=policy)
    keys, limits = [f"team:{principal.team_id}"], [policy.rate_limit or svc.settings.rate_limit]
    if principal.api_key_id is not None:
        keys.append(f"key:{principal.api_key_id}")
        limits.append(policy.api_key_rate_limit or svc.settings.api_key_rate_limit)
    decision = await svc.limiter.hit(keys, limits, svc.settings.rate_limit_window)
    request.state.ratelimit = decision
    if not decision.allowed:
        raise ApiError(429, "rate_limit_exceeded", "Too many requests", headers=decision.headers())
    return principal

