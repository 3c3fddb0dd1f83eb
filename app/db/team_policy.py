"""A team's sending policy, as one row: what decides whether and how fast the team may send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["TeamPolicy", "read_team_policy"]

_READ = text("SELECT approved_at, suspended_at, suspension_reason, daily_quota, monthly_quota, rate_limit, "
             "api_key_rate_limit FROM teams WHERE id = :id")


@dataclass(frozen=True)
class TeamPolicy:
    """Approval, suspension, sending quotas and request rate limits (None: the instance's default)."""

    approved_at: datetime | None
    suspended_at: datetime | None
    suspension_reason: str | None
    daily_quota: int | None
    monthly_quota: int | None
    rate_limit: int | None
    api_key_rate_limit: int | None


async def read_team_policy(db: AsyncSession | AsyncConnection, team_id: uuid.UUID) -> TeamPolicy | None:
    """The team's policy from the database; None once the team is gone."""
    row = (await db.execute(_READ, {"id": team_id})).first()
    return None if row is None else TeamPolicy(*row)
