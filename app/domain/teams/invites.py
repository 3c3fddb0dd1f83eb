"""One-time, expiring invites: made by an operator (to start a team) or a team's owner or admin (to join it).

A token is `inv_` and 32 random bytes; only its SHA-256 is stored. Claiming marks the invite used in the
same statement that checks it (a SECURITY DEFINER function, since the claimant belongs to no team yet), so
of concurrent claims exactly one gets it, and a refused request's transaction rolls the claim back.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Invite
from app.lib.api_error import ApiError
from app.lib.hashing import sha256

__all__ = [
    "ClaimedInvite",
    "claim_invite",
    "create_invite",
    "invite_status",
    "is_well_formed",
    "list_invites",
    "revoke_invite",
]

_TOKEN = re.compile(r"^inv_[A-Za-z0-9_-]{43}$")
_REFUSALS = {
    "unknown": "This invite does not exist",
    "revoked": "This invite was revoked",
    "used": "This invite was already used",
    "expired": "This invite has expired",
    "other_email": "This invite is for another email address",
    "inviter_gone": "Whoever made this invite may no longer grant its role",
}


@dataclass(frozen=True)
class ClaimedInvite:
    """An invite just claimed: to join `team_id` with `role`, or (team_id None) to start a team."""

    id: uuid.UUID
    team_id: uuid.UUID | None
    role: str
    created_by: uuid.UUID | None


def is_well_formed(token: str) -> bool:
    """Whether the token looks like an invite token (checked before any database lookup)."""
    return bool(_TOKEN.match(token))


def invite_status(invite: Invite, now: datetime | None = None) -> str:
    """pending, used, revoked or expired."""
    if invite.revoked_at is not None:
        return "revoked"
    if invite.used_at is not None:
        return "used"
    return "expired" if invite.expires_at <= (now or datetime.now(UTC)) else "pending"


async def create_invite(
    db: AsyncSession, *, team_id: uuid.UUID | None, email: str | None, role: str, ttl_hours: int,
    created_by: uuid.UUID | None,
) -> tuple[Invite, str]:
    """A new invite and its token (shown once; only the hash is stored)."""
    token = f"inv_{secrets.token_urlsafe(32)}"
    invite = Invite(id=uuid.uuid4(), token_hash=sha256(token), team_id=team_id, email=email, role=role,
                    created_by=created_by, expires_at=datetime.now(UTC) + timedelta(hours=ttl_hours))
    db.add(invite)
    await db.flush()
    return invite, token


async def claim_invite(db: AsyncSession, token: str, user_id: uuid.UUID, email: str) -> ClaimedInvite:
    """Use the invite for `user_id` signing up or joining as `email`; 403 `invalid_invite` saying why not."""
    digest = sha256(token) if is_well_formed(token) else None
    if digest is not None:
        row = (await db.execute(text("SELECT * FROM postyard_invite_claim(:h, :u, :e)"),
                                {"h": digest, "u": user_id, "e": email})).first()
        if row is not None:
            return ClaimedInvite(id=row.id, team_id=row.team_id, role=row.role, created_by=row.created_by)
        reason = (await db.execute(text("SELECT postyard_invite_refusal(:h, :e)"),
                                   {"h": digest, "e": email})).scalar_one()
    else:
        reason = "unknown"
    # No reason: a concurrent claim held it a moment ago.
    raise ApiError(403, "invalid_invite", _REFUSALS[reason or "used"])


async def list_invites(db: AsyncSession, team_id: uuid.UUID | None) -> list[Invite]:
    """A team's invites (team_id None: invites to start a team), newest first."""
    where = Invite.team_id.is_(None) if team_id is None else Invite.team_id == team_id
    return list((await db.execute(select(Invite).where(where).order_by(Invite.created_at.desc()))).scalars())


async def revoke_invite(db: AsyncSession, invite_id: uuid.UUID, team_id: uuid.UUID | None) -> Invite:
    """Revoke an unused invite of the team (team_id None: an invite to start a team); 404 when there is none."""
    where = Invite.team_id.is_(None) if team_id is None else Invite.team_id == team_id
    invite = (await db.execute(select(Invite).where(Invite.id == invite_id, where))).scalar_one_or_none()
    if invite is None:
        raise ApiError(404, "not_found", "Invite not found")
    if invite.used_at is not None:
        raise ApiError(409, "conflict", "This invite was already used")
    if invite.revoked_at is None:
        invite.revoked_at = datetime.now(UTC)
        await db.flush()
    return invite
