"""Retention of received mail: a message goes once its team's retention period has passed (the worker, hourly)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.receiving import repository

__all__ = ["purge_expired_received"]


async def purge_expired_received(engine: AsyncEngine) -> int:
    """Delete the received emails older than their team's retention period; how many."""
    async with engine.begin() as conn:
        return await repository.delete_expired(conn)
