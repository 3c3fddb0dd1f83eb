"""Retention: message bodies and attachments are purged after the team's period; metadata and events stay."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["purge_expired_bodies"]

_PURGE = text("""
UPDATE emails e SET mime = NULL, html = NULL, text_body = NULL, purged_at = now(), updated_at = now()
FROM teams t
WHERE t.id = e.team_id AND e.purged_at IS NULL AND e.state NOT IN ('queued', 'sending')
  AND e.created_at < now() - make_interval(days => t.retention_days)
""")


async def purge_expired_bodies(engine: AsyncEngine) -> int:
    """Drop the bodies (MIME, html, text) of settled emails older than their team's retention period."""
    async with engine.begin() as conn:
        return int((await conn.execute(_PURGE)).rowcount or 0)
