"""The caller's team and its memberships."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, Team, User
from app.lib.errors import ApiError

__all__ = ["add_member", "get_member", "get_team", "list_members", "owners_left"]


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


async def add_member(db: AsyncSession, team_id: uuid.UUID, email: str, role: str) -> tuple[Membership, str]:
    """Add an existing user to the team (404 when no account has that email)."""
    user = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None:
        raise ApiError(404, "not_found", "No account with this email")
    taken = (await db.execute(select(Membership.id).where(
        Membership.team_id == team_id, Membership.user_id == user.id))).first()
    if taken is not None:
        raise ApiError(409, "conflict", "Already a member")
    membership = Membership(id=uuid.uuid4(), team_id=team_id, user_id=user.id, role=role)
    db.add(membership)
    await db.flush()
    return membership, user.email


async def owners_left(db: AsyncSession, team_id: uuid.UUID, excluding: uuid.UUID) -> int:
    """How many owners the team keeps without the membership `excluding`."""
    query = select(func.count()).select_from(Membership).where(
        Membership.team_id == team_id, Membership.role == "owner", Membership.id != excluding)
    return int((await db.execute(query)).scalar_one())
