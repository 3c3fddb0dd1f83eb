"""Reading the team's audit log a page at a time."""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditLog

__all__ = ["page"]


async def page(db: AsyncSession, team_id: uuid.UUID, limit: int,
               after: uuid.UUID | None) -> tuple[list[AuditLog], bool]:
    """Up to `limit` entries older than the entry `after`, newest first, and whether more remain."""
    query = select(AuditLog).where(AuditLog.team_id == team_id)
    if after is not None:
        cursor = (await db.execute(select(AuditLog.created_at, AuditLog.id).where(
            AuditLog.id == after, AuditLog.team_id == team_id))).first()
        if cursor is not None:
            query = query.where(tuple_(AuditLog.created_at, AuditLog.id) < tuple_(cursor[0], cursor[1]))
    rows = list((await db.execute(
        query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit

