"""Retention of the audit log: entries go after POSTYARD_AUDIT_RETENTION_DAYS (the worker does it hourly)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.audit import repository

__all__ = ["purge_old_entries"]


async def purge_old_entries(engine: AsyncEngine, days: int) -> int:
    """Delete audit entries older than `days` days, across teams; how many."""
    async with engine.begin() as conn:
        return await repository.purge_older_than(conn, days)
