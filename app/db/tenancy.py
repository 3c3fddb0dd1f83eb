"""Per-transaction tenant settings read by the row-level security policies.

`scope_to_team` costs no round trip when the session has not started a transaction yet: the team is
kept on the session and set as the first statement of each transaction it begins. A request whose
work is done elsewhere (`POST /emails` stores through the accept groups) then never opens one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

__all__ = ["scope_to_team", "scope_to_user"]

_TEAM = "postyard_team_id"
_SET_TEAM = text("SELECT set_config('app.team_id', :v, true)")


async def scope_to_team(session: AsyncSession, team_id: uuid.UUID) -> None:
    """Set `app.team_id` for the session's transactions (SET LOCAL semantics, kept for the next ones)."""
    if session.in_transaction():
        await session.execute(_SET_TEAM, {"v": str(team_id)})
    session.info[_TEAM] = str(team_id)


async def scope_to_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Set `app.user_id` for the current transaction, so a user can list their memberships."""
    await session.execute(text("SELECT set_config('app.user_id', :v, true)"), {"v": str(user_id)})


@event.listens_for(Session, "after_begin")
def _scope_new_transaction(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    team_id = session.info.get(_TEAM)
    if team_id is not None:
        connection.execute(_SET_TEAM, {"v": team_id})
