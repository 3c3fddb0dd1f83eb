"""Sign-up under the instance's mode (POSTYARD_SIGNUP): `invite`, `open` or `closed`.

An address that already has an account signs up only with that account's password, and then the account
itself joins the team (or starts the new one). Any other password is refused with the same status and
body shape as every other refusal, counted against the account like a failed login, after the same
argon2 work a new account costs; an address without an account is never refused for that reason. So the
answer shows whether an address has an account only to someone who holds both a usable invite (or an
open instance) and that account's password.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import User
from app.domain.accounts.services import release_attempt, reserve_attempt
from app.domain.teams.invites import claim_invite
from app.domain.teams.services import start_team, use_invite
from app.lib.api_error import ApiError
from app.lib.audit import record
from app.lib.hashing import hash_password, verify_password
from app.lib.state import Services

__all__ = ["SignedUp", "register"]


@dataclass(frozen=True)
class SignedUp:
    """The account that signed up (new or existing), the team it is now in and its role there."""

    user: User
    team_id: uuid.UUID
    role: str


async def _account(
    db: AsyncSession, svc: Services, existing: User | None, user_id: uuid.UUID, email: str, password: str, ip: str,
) -> User:
    """A new account, or the existing one when the password is its password (else 403)."""
    attempt = await reserve_attempt(svc.credential_limiter, svc.settings, email, ip)
    if existing is None:
        user = User(id=user_id, email=email, password_hash=await anyio.to_thread.run_sync(hash_password, password),
                    totp_enabled=False, is_operator=False)
        db.add(user)
        await db.flush()
    elif await anyio.to_thread.run_sync(verify_password, existing.password_hash, password):
        user = existing
    else:
        raise ApiError(403, "registration_refused", "Sign-up with this email and password is refused")
    await release_attempt(svc.credential_limiter, attempt)
    return user


async def register(
    db: AsyncSession, svc: Services, *, email: str, password: str, team_name: str | None, invite: str | None,
    ip: str,
) -> SignedUp:
    """Sign up with an invite (to join its team, or start the team an operator invited), or, on an open
    instance, without one to start a team that waits for an operator's approval."""
    mode = svc.settings.signup
    if mode == "closed":
        raise ApiError(403, "signup_closed", "Sign-up is closed on this instance; ask its operator")
    if mode == "invite" and not invite:
        raise ApiError(403, "invite_required", "Sign-up on this instance needs an invite")
    if invite is None and not team_name:
        raise ApiError(422, "validation_error", "team_name: required to start a team")
    existing = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    user_id = existing.id if existing is not None else uuid.uuid4()
    # The invite first: its refusals say nothing about the address, and a refused request rolls it back.
    claimed = await claim_invite(db, invite, user_id, email) if invite else None
    user = await _account(db, svc, existing, user_id, email, password, ip)
    if claimed is not None:
        team_id, role = await use_invite(db, claimed, user.id, team_name, ip)
        return SignedUp(user, team_id, role)
    assert team_name is not None
    team = await start_team(db, user.id, team_name, approved=False)
    await record(db, team_id=team.id, actor=("user", str(user.id)), action="team.created", resource_type="team",
                 resource_id=team.id, ip=ip, details={"awaiting_approval": True})
    return SignedUp(user, team.id, "owner")
