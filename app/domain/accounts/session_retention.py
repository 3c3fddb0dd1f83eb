"""Deleting dead sessions: expired or revoked ones authenticate nobody, so their rows only take space."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["purge_dead_sessions"]


async def purge_dead_sessions(engine: AsyncEngine) -> int:
    """Delete every session that has expired or was revoked (an unknown token is refused alike); how many."""
    async with engine.begin() as conn:
        result = await conn.execute(text("DELETE FROM sessions WHERE expires_at < now() OR revoked_at IS NOT NULL"))
        return int(result.rowcount or 0)
