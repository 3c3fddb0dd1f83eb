"""Per-transaction tenant settings read by the row-level security policies."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["scope_to_team", "scope_to_user"]


async def scope_to_team(session: AsyncSession, team_id: uuid.UUID) -> None:
    """Set `app.team_id` for the current transaction (SET LOCAL semantics)."""
    await session.execute(text("SELECT set_config('app.team_id', :v, true)"), {"v": str(team_id)})


async def scope_to_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Set `app.user_id` for the current transaction, so a user can list their memberships."""
    await session.execute(text("SELECT set_config('app.user_id', :v, true)"), {"v": str(user_id)})
