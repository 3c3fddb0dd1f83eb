"""Whether a team may send now: not suspended, approved, and within its daily and monthly quotas.

One set of rules for `POST /emails`, `/emails/batch` and SMTP submission. Quotas count emails, one per
email stored, whatever its number of recipients; emails of `sk_test_` keys count nothing (they are never
delivered). The count is taken in the transaction that stores the emails, by one conditional upsert per
send, so concurrent sends on every path together never pass a quota, and a send that fails or rolls
back for any reason takes its count back with it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.team_policy import TeamPolicy, read_team_policy
from app.domain.emails import repository
from app.lib.api_error import ApiError

__all__ = ["Quotas", "SendingRefused", "admit", "check", "count", "period_starts", "resets_at"]

Period = Literal["day", "month"]

_NAMES: dict[Period, str] = {"day": "daily", "month": "monthly"}


class SendingRefused(ApiError):
    """The team may not send now: 403 when suspended or awaiting approval, 429 with Retry-After over a quota."""

    def __init__(self, name: str, message: str, retry_after: int | None = None) -> None:
        if retry_after is None:
            super().__init__(403, name, message)
        else:
            super().__init__(429, name, message, headers={"Retry-After": str(retry_after)})
        self.message, self.retry_after = message, retry_after

    @property
    def smtp_reply(self) -> str:
        """554 5.7.1 (refused by policy, do not retry), or 450 4.7.1 over a quota (refused by policy, for now).

        450 is RFC 5321's temporary reply for a policy rejection after DATA (451 here means the database
        is unreachable), and `450 4.7.1` is what Postfix itself answers over its per-client message rate.
        """
        reply = f"554 5.7.1 {self.message}" if self.retry_after is None else f"450 4.7.1 {self.message}"
        # One ASCII line within RFC 5321's 512 octets, whatever an operator's reason holds.
        return " ".join("".join(c if c.isprintable() else " " for c in reply).split()).encode(
            "ascii", "replace").decode()[:510]


@dataclass(frozen=True)
class Quotas:
    """A team's sending quotas in emails per UTC day and month; None is unlimited."""

    daily: int | None = None
    monthly: int | None = None


def period_starts(now: datetime) -> dict[Period, date]:
    """The first day of the UTC day and month that `now` falls in."""
    today = now.astimezone(UTC).date()
    return {"day": today, "month": today.replace(day=1)}


def resets_at(now: datetime, period: Period) -> datetime:
    """When the UTC day or month of `now` ends and its count starts again from zero."""
    start = period_starts(now)[period]
    if period == "day":
        end = start + timedelta(days=1)
    else:
        end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


async def check(db: AsyncSession | AsyncConnection, team_id: uuid.UUID, policy: TeamPolicy | None = None) -> Quotas:
    """Refuse a suspended team (with the operator's reason) or one awaiting approval; its quotas otherwise.
    `policy` is the team's as the API read it when authenticating; without it, it is read now."""
    team = policy or await read_team_policy(db, team_id)
    if team is None:
        raise SendingRefused("team_not_found", "This team no longer exists and cannot send")
    if team.suspended_at is not None:
        reason = f": {team.suspension_reason}" if team.suspension_reason else ""
        raise SendingRefused("team_suspended", f"This team is suspended and cannot send{reason}")
    if team.approved_at is None:
        raise SendingRefused("team_awaiting_approval",
                             "This team is awaiting an operator's approval and cannot send yet")
    return Quotas(team.daily_quota, team.monthly_quota)


async def count(db: AsyncSession | AsyncConnection, team_id: uuid.UUID, quotas: Quotas, emails: int,
                now: datetime | None = None) -> None:
    """Add `emails` to the team's counts of this day and month, or refuse (429/450) if that passes a quota."""
    if emails <= 0 or (quotas.daily is None and quotas.monthly is None):
        return
    now = now or datetime.now(UTC)
    starts = period_starts(now)
    counted = await repository.count_sends(db, team_id, emails, starts["day"], starts["month"], quotas.daily,
                                           quotas.monthly)
    limits: dict[Period, int | None] = {"day": quotas.daily, "month": quotas.monthly}
    over = [p for p, limit in limits.items() if limit is not None and p not in counted]
    if over:
        period = over[-1]  # the month's reset comes last when both are over
        until = resets_at(now, period)
        raise SendingRefused(
            "quota_exceeded",
            f"Sending {emails} more email{'s' if emails > 1 else ''} would pass this team's "
            f"{_NAMES[period]} quota of {limits[period]}; it resets at {until.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            retry_after=max(1, math.ceil((until - now).total_seconds())))


async def admit(db: AsyncSession | AsyncConnection, team_id: uuid.UUID, emails: int) -> None:
    """`check`, then `count`: the whole admission of a send, in the transaction that stores it."""
    await count(db, team_id, await check(db, team_id), emails)
