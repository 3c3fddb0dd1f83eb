"""Retention: message bodies and attachments are purged after the team's period; metadata and events stay."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.emails import repository

__all__ = ["purge_expired_bodies"]


async def purge_expired_bodies(engine: AsyncEngine) -> int:
    """Drop the bodies (MIME, html, text) of settled emails older than their team's retention period."""
    async with engine.begin() as conn:
        return await repository.purge_expired_bodies(conn)
