"""Signing in, the steps shared by `/auth/login` and the console: password, then the second factor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session, User
from app.db.tenancy import scope_to_team
from app.domain.accounts import services
from app.lib.api_error import ApiError
from app.lib.audit import record
from app.lib.metrics import LOGIN_FAILURES
from app.lib.state import Services

__all__ = ["SignedIn", "password_login", "second_factor_login"]


@dataclass(frozen=True)
class SignedIn:
    """A new session (waiting for its second factor when `session.mfa_pending`), its cookie token, and the team
    it opens on with the user's role there (None for a user in no team)."""

    user: User
    session: Session
    token: str
    team_id: uuid.UUID | None
    role: str | None


async def _record_failure(db: AsyncSession, email: str, ip: str) -> None:
    """Log a failed password in the team of the account it was for, if any, and keep that record."""
    known = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    membership = await services.default_membership(db, known.id) if known else None
    if known is None or membership is None:
        return
    await scope_to_team(db, membership.team_id)
    await record(db, team_id=membership.team_id, actor=("user", str(known.id)), action="login.failed",
                 resource_type="user", resource_id=membership.user_id, ip=ip)
    await db.commit()


async def password_login(db: AsyncSession, svc: Services, email: str, password: str, ip: str) -> SignedIn:
    """Check the password (throttled per account and address) and open a session; with 2FA on, the session
    waits for `second_factor_login`. 401 `invalid_credentials` for a wrong email or password."""
    email = email.strip().lower()
    attempt = await services.reserve_attempt(svc.credential_limiter, svc.settings, email, ip)
    user = await services.authenticate(db, email, password)
    if user is None:
        LOGIN_FAILURES.inc()
        await _record_failure(db, email, ip)
        raise ApiError(401, "invalid_credentials", "Email or password is wrong")
    await services.release_attempt(svc.credential_limiter, attempt)
    membership = await services.default_membership(db, user.id)
    team_id = membership.team_id if membership else None
    session, token = await services.create_session(db, user, team_id, svc.settings.session_ttl,
                                                   mfa_pending=user.totp_enabled)
    if team_id is not None and not user.totp_enabled:
        await scope_to_team(db, team_id)
        await record(db, team_id=team_id, actor=("user", str(user.id)), action="login.succeeded",
                     resource_type="user", resource_id=user.id, ip=ip)
    return SignedIn(user, session, token, team_id, membership.role if membership else None)


async def second_factor_login(db: AsyncSession, svc: Services, pending: Session, code: str, ip: str) -> SignedIn:
    """Complete the login `pending` waits for with a TOTP or backup code: a new full session replaces it.
    401 `invalid_code` for a wrong code."""
    user = (await db.execute(select(User).where(User.id == pending.user_id))).scalar_one()
    attempt = await services.reserve_attempt(svc.credential_limiter, svc.settings, user.email, ip)
    if not await services.check_second_factor(db, user, code, svc.keyring):
        LOGIN_FAILURES.inc()
        raise ApiError(401, "invalid_code", "The code is wrong")
    await services.release_attempt(svc.credential_limiter, attempt)
    await services.revoke_sessions(db, user.id, only=pending.id)
    session, token = await services.create_session(db, user, pending.team_id, svc.settings.session_ttl,
                                                   mfa_pending=False)
    role = None
    if pending.team_id is not None:
        await scope_to_team(db, pending.team_id)
        membership = await services.default_membership(db, user.id)
        role = membership.role if membership else None
        await record(db, team_id=pending.team_id, actor=("user", str(user.id)), action="login.succeeded",
                     resource_type="user", resource_id=user.id, ip=ip, details={"second_factor": True})
    return SignedIn(user, session, token, pending.team_id, role)
