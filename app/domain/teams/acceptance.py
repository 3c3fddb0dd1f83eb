"""Accepting an invite as a signed-in user, shared by `POST /invites/accept` and the console."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session
from app.domain.teams import invites, services

__all__ = ["Accepted", "accept_invite"]


@dataclass(frozen=True)
class Accepted:
    """The team joined (or started), the role there, and the session's CSRF token."""

    team_id: uuid.UUID
    role: str
    csrf_token: str


async def accept_invite(db: AsyncSession, token: str, team_name: str | None, user_id: uuid.UUID, email: str,
                        session_id: uuid.UUID, ip: str) -> Accepted:
    """Claim the invite for the user, join its team (or start the team an operator's invite is for), and move
    the session to that team; 403 `invalid_invite` saying why an invite cannot be used."""
    claimed = await invites.claim_invite(db, token, user_id, email)
    team_id, role = await services.use_invite(db, claimed, user_id, team_name, ip)
    csrf = (await db.execute(update(Session).where(Session.id == session_id)
                             .values(team_id=team_id).returning(Session.csrf_token))).scalar_one()
    return Accepted(team_id, role, csrf)
