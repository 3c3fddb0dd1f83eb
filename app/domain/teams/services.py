"""Teams and their memberships: starting a team, joining one, its members and owners."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, Team, User
from app.db.tenancy import scope_to_team
from app.domain.teams.invites import ClaimedInvite
from app.lib.api_error import ApiError
from app.lib.audit import record

__all__ = ["get_member", "get_team", "join_team", "list_members", "owners_left", "start_team", "use_invite"]


async def get_team(db: AsyncSession, team_id: uuid.UUID) -> Team:
    """The team row."""
    return (await db.execute(select(Team).where(Team.id == team_id))).scalar_one()


async def list_members(db: AsyncSession, team_id: uuid.UUID) -> list[tuple[Membership, str]]:
    """Memberships of the team with each member's email."""
    query = (select(Membership, User.email).join(User, User.id == Membership.user_id)
             .where(Membership.team_id == team_id).order_by(Membership.created_at))
    return [(m, email) for m, email in (await db.execute(query)).all()]


async def get_member(db: AsyncSession, team_id: uuid.UUID, member_id: uuid.UUID) -> tuple[Membership, str]:
    """One membership of the team, or 404."""
    row = (await db.execute(select(Membership, User.email).join(User, User.id == Membership.user_id).where(
        Membership.id == member_id, Membership.team_id == team_id))).first()
    if row is None:
        raise ApiError(404, "not_found", "Member not found")
    return row[0], row[1]


async def start_team(db: AsyncSession, user_id: uuid.UUID, name: str, approved: bool) -> Team:
    """A new team owned by the user; unapproved teams cannot send until an operator approves them."""
    team = Team(id=uuid.uuid4(), name=name, approved_at=datetime.now(UTC) if approved else None)
    await scope_to_team(db, team.id)
    db.add(team)
    await db.flush()
    db.add(Membership(id=uuid.uuid4(), team_id=team.id, user_id=user_id, role="owner"))
    await db.flush()
    return team


async def join_team(db: AsyncSession, team_id: uuid.UUID, user_id: uuid.UUID, role: str) -> Membership:
    """Make the user a member of the team with the role (409 when they already are one)."""
    await scope_to_team(db, team_id)
    taken = (await db.execute(select(Membership.id).where(
        Membership.team_id == team_id, Membership.user_id == user_id))).first()
    if taken is not None:
        raise ApiError(409, "conflict", "Already a member of this team")
    membership = Membership(id=uuid.uuid4(), team_id=team_id, user_id=user_id, role=role)
    db.add(membership)
    await db.flush()
    return membership


async def use_invite(
    db: AsyncSession, invite: ClaimedInvite, user_id: uuid.UUID, team_name: str | None, ip: str | None,
) -> tuple[uuid.UUID, str]:
    """Join the invite's team, or start the team an operator's invite is for; returns (team id, role)."""
    details = {"invite_id": str(invite.id), "invited_by": str(invite.created_by) if invite.created_by else None}
    if invite.team_id is not None:
        membership = await join_team(db, invite.team_id, user_id, invite.role)
        await record(db, team_id=invite.team_id, actor=("user", str(user_id)), action="member.joined",
                     resource_type="membership", resource_id=membership.id, ip=ip,
                     details={**details, "role": invite.role})
        return invite.team_id, invite.role
    if not team_name:
        raise ApiError(422, "validation_error", "team_name: required to start a team")
    team = await start_team(db, user_id, team_name, approved=True)
    await record(db, team_id=team.id, actor=("user", str(user_id)), action="team.created", resource_type="team",
                 resource_id=team.id, ip=ip, details=details)
    return team.id, "owner"


async def owners_left(db: AsyncSession, team_id: uuid.UUID, excluding: uuid.UUID) -> int:
    """How many owners the team keeps without the membership `excluding`."""
    query = select(func.count()).select_from(Membership).where(
        Membership.team_id == team_id, Membership.role == "owner", Membership.id != excluding)
    return int((await db.execute(query)).scalar_one())
