"""Reading the team's audit log a page at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditLog

__all__ = ["AuditFilter", "page"]


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read: one action, one actor (its id), from `since` (inclusive) to `until` (exclusive)."""

    action: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _matching(query: Select[tuple[AuditLog]], only: AuditFilter) -> Select[tuple[AuditLog]]:
    if only.action is not None:
        query = query.where(AuditLog.action == only.action)
    if only.actor_id is not None:
        query = query.where(AuditLog.actor_id == only.actor_id)
    if only.since is not None:
        query = query.where(AuditLog.created_at >= only.since)
    if only.until is not None:
        query = query.where(AuditLog.created_at < only.until)
    return query


async def page(db: AsyncSession, team_id: uuid.UUID, limit: int, after: uuid.UUID | None,
               only: AuditFilter | None = None) -> tuple[list[AuditLog], bool]:
    """Up to `limit` entries older than the entry `after` (matching `only`), newest first, and whether more
    remain."""
    query = select(AuditLog).where(AuditLog.team_id == team_id)
    if only is not None:
        query = _matching(query, only)
    if after is not None:
        cursor = (await db.execute(select(AuditLog.created_at, AuditLog.id).where(
            AuditLog.id == after, AuditLog.team_id == team_id))).first()
        if cursor is not None:
            query = query.where(tuple_(AuditLog.created_at, AuditLog.id) < tuple_(cursor[0], cursor[1]))
    rows = list((await db.execute(
        query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit

