"""Deleting dead sessions: expired or revoked ones authenticate nobody, so their rows only take space."""

from __future__ import annotations

from sqlalchemy import delete, func, or_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import Session

__all__ = ["purge_dead_sessions"]


async def purge_dead_sessions(engine: AsyncEngine) -> int:
    """Delete every session that has expired or was revoked (an unknown token is refused alike); how many."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(Session).where(or_(Session.expires_at < func.now(), Session.revoked_at.is_not(None))))
        return int(result.rowcount or 0)
