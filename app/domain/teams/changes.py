"""Changing a team: its settings, its members' roles and its invites, with the owner/admin rules and audit entries
that /team and the console share."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Invite, Membership, Team, User
from app.domain.accounts.services import normalise_email
from app.domain.teams import invites, services
from app.domain.teams.schemas import TeamUpdate
from app.lib.api_error import ApiError
from app.lib.audit import record
from app.lib.auth import Principal

__all__ = ["change_role", "create_invite", "require_grantable", "remove_member", "revoke_invite",
           "two_factor_by_user", "update_team"]


def require_grantable(principal: Principal, role: str) -> None:
    """Refuse (403) unless the principal may grant `role`: an owner or admin, and for the owner role an owner
    logged in."""
    principal.require_write()
    # A key is not a person: it must not mint an owner who outlives the key's revocation.
    if role == "owner" and (principal.api_key_id is not None or principal.role != "owner"):
        raise ApiError(403, "insufficient_role", "Only an owner, logged in, can grant or change the owner role")


async def _keeps_an_owner(db: AsyncSession, principal: Principal, membership: Membership) -> None:
    if not await services.owners_left(db, principal.team_id, membership.id):
        raise ApiError(409, "conflict", "A team keeps at least one owner")


async def update_team(db: AsyncSession, principal: Principal, data: TeamUpdate) -> Team:
    """Rename the team, set its rate limits or its retention period (owner or admin)."""
    principal.require_write()
    team = await services.get_team(db, principal.team_id)
    changes = {k: v for k, v in (("name", data.name), ("rate_limit", data.rate_limit),
                                 ("api_key_rate_limit", data.api_key_rate_limit),
                                 ("retention_days", data.retention_days)) if v is not None}
    for field, value in changes.items():
        setattr(team, field, value)
    if changes:
        await record(db, team_id=team.id, actor=principal.actor, action="team.updated", resource_type="team",
                     resource_id=team.id, ip=principal.ip, details=changes)
    return team


async def change_role(db: AsyncSession, principal: Principal, member_id: uuid.UUID,
                      role: str) -> tuple[Membership, str]:
    """Give a member another role (the team always keeps an owner); the membership and its email."""
    membership, email = await services.get_member(db, principal.team_id, member_id)
    require_grantable(principal, "owner" if "owner" in (role, membership.role) else role)
    if membership.role == "owner" and role != "owner":
        await _keeps_an_owner(db, principal, membership)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="member.role_changed",
                 resource_type="membership", resource_id=membership.id, ip=principal.ip,
                 details={"role": role, "was": membership.role})
    membership.role = role
    return membership, email


async def remove_member(db: AsyncSession, principal: Principal, member_id: uuid.UUID) -> None:
    """Remove a member (the team always keeps an owner)."""
    membership, _ = await services.get_member(db, principal.team_id, member_id)
    require_grantable(principal, membership.role)
    if membership.role == "owner":
        await _keeps_an_owner(db, principal, membership)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="member.removed",
                 resource_type="membership", resource_id=membership.id, ip=principal.ip,
                 details={"user_id": str(membership.user_id)})
    await db.delete(membership)


async def create_invite(db: AsyncSession, principal: Principal, email: str | None, role: str,
                        ttl_hours: int) -> tuple[Invite, str]:
    """An invite to join the team with `role`; its token (shown once)."""
    require_grantable(principal, role)
    address = normalise_email(email) if email is not None else None
    user_id = principal.user_id if principal.api_key_id is None else None
    invite, token = await invites.create_invite(db, team_id=principal.team_id, email=address, role=role,
                                                ttl_hours=ttl_hours, created_by=user_id)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="invite.created",
                 resource_type="invite", resource_id=invite.id, ip=principal.ip,
                 details={"email": address, "role": role, "expires_at": invite.expires_at.isoformat()})
    return invite, token


async def revoke_invite(db: AsyncSession, principal: Principal, invite_id: uuid.UUID) -> Invite:
    """Revoke an invite of the team that was not used yet."""
    principal.require_write()
    invite = await invites.revoke_invite(db, invite_id, principal.team_id)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="invite.revoked",
                 resource_type="invite", resource_id=invite.id, ip=principal.ip)
    return invite


async def two_factor_by_user(db: AsyncSession, team_id: uuid.UUID) -> dict[uuid.UUID, bool]:
    """Whether each member of the team has two-factor authentication on, by user id."""
    rows = await db.execute(select(User.id, User.totp_enabled).join(Membership, Membership.user_id == User.id)
                            .where(Membership.team_id == team_id))
    return {user_id: enabled for user_id, enabled in rows.all()}
