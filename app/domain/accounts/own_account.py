"""Changes a signed-in user makes to their own account, shared by `/auth` and the console: throttled like a
login, and recorded in the log of the team the session is on."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, User
from app.db.tenancy import scope_to_team
from app.domain.accounts import services
from app.lib.audit import record
from app.lib.state import Services

__all__ = ["change_password", "enable_totp", "record_account_change"]


async def record_account_change(db: AsyncSession, user_id: uuid.UUID, team_id: uuid.UUID | None, action: str,
                                ip: str) -> None:
    """Record a change to the user's own account in the log of the team the session is on, if they are still a
    member (a session without a team, such as an operator's, has no log to write to)."""
    if team_id is None:
        return
    await scope_to_team(db, team_id)
    if (await db.execute(select(Membership.id).where(Membership.team_id == team_id,
                                                     Membership.user_id == user_id))).first() is None:
        return  # no longer a member of that team
    await record(db, team_id=team_id, actor=("user", str(user_id)), action=action, resource_type="user",
                 resource_id=user_id, ip=ip)


async def change_password(db: AsyncSession, svc: Services, user: User, current: str, new: str,
                          team_id: uuid.UUID | None, ip: str) -> None:
    """Replace the password (the current one checked like a login) and revoke every session of the user."""
    attempt = await services.reserve_attempt(svc.credential_limiter, svc.settings, user.email, ip)
    await services.change_password(db, user, current, new)
    await services.release_attempt(svc.credential_limiter, attempt)
    await record_account_change(db, user.id, team_id, "user.password_changed", ip)


async def enable_totp(db: AsyncSession, svc: Services, user: User, code: str, team_id: uuid.UUID | None,
                      ip: str) -> list[str]:
    """Turn 2FA on with a code of the secret `services.start_totp` stored (checked like a login); returns the
    one-time backup codes."""
    attempt = await services.reserve_attempt(svc.credential_limiter, svc.settings, user.email, ip)
    codes = await services.enable_totp(db, user, code, svc.keyring)
    await services.release_attempt(svc.credential_limiter, attempt)
    await record_account_change(db, user.id, team_id, "user.2fa_enabled", ip)
    return codes
