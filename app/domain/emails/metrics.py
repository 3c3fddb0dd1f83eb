"""Sending metrics in Resend's shape (`GET /emails/metrics`): the team's email events counted over a date range,
in total and broken down by period, sending domain or email.

Only what Postyard records is counted. Asking for a metric it does not track (opens, clicks, unsubscribes,
received mail) is refused with 422 rather than answered with a zero that would be false.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.emails.schemas import MetricsOut
from app.lib.api_error import ApiError
from app.lib.response_body import ABSENT

__all__ = ["COUNTED", "DIMENSIONS", "GRANULARITIES", "RATES", "MetricsQuery", "count_metrics", "parse_query"]

# metric: (event type, the bounce's kind in its detail, or None for any)
COUNTED = {
    "sent": ("sent", None), "delivered": ("delivered", None), "delivery_delayed": ("delivery_delayed", None),
    "bounced": ("bounced", None), "bounced_permanent": ("bounced", "hard"), "bounced_transient": ("bounced", "soft"),
    "complained": ("complained", None), "failed": ("failed", None), "suppressed": ("suppressed", None),
}
# rate: (numerator, denominator), both counted metrics
RATES = {"delivery_rate": ("delivered", "sent"), "bounce_rate": ("bounced", "sent"),
         "complaint_rate": ("complained", "sent")}
_NOT_TRACKED = {"received", "opened", "clicked", "unsubscribed", "unique_opened", "unique_clicked", "open_rate",
                "click_rate", "unsubscribe_rate", "bounced_undetermined"}
DIMENSIONS = ("period", "domain", "email")
GRANULARITIES = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
_STEP = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1),
         "monthly": timedelta(days=28)}
_MAX_PERIODS = 10_000
_MAX_IDS = 100


@dataclass(frozen=True)
class MetricsQuery:
    """A checked request for metrics."""

    start: datetime
    end: datetime
    zone: str
    granularity: str
    metrics: list[str]
    dimensions: list[str]
    domain_ids: list[uuid.UUID]
    email_ids: list[uuid.UUID]


def _refuse(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


def _listed(values: Sequence[str] | None) -> list[str]:
    """A list parameter given as comma-separated values, repeated, or both."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def _when(value: str | None, name: str, zone: ZoneInfo, default: datetime, *, day_end: bool = False) -> datetime:
    """A date or a date and time (in `zone` when it names no offset); a date alone is its first instant, or
    with `day_end` the first instant of the next day (the range's end is exclusive)."""
    if value is None:
        return default
    try:
        if "T" in value or " " in value:
            parsed = datetime.fromisoformat(value)
        else:
            parsed = datetime.combine(date.fromisoformat(value) + timedelta(days=1 if day_end else 0), time())
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _refuse(f"{name} must be an ISO 8601 date or date and time") from None
    return parsed


def _ids(values: Sequence[str] | None, name: str) -> list[uuid.UUID]:
    listed = _listed(values)
    if len(listed) > _MAX_IDS:
        raise _refuse(f"{name}: at most {_MAX_IDS} ids")
    try:
        return [uuid.UUID(v) for v in listed]
    except ValueError:
        raise _refuse(f"{name} must list ids") from None


def parse_query(start_date: str | None, end_date: str | None, timezone: str, granularity: str,
                metrics: Sequence[str] | None, dimensions: Sequence[str] | None, domain_ids: Sequence[str] | None,
                email_ids: Sequence[str] | None, now: datetime | None = None) -> MetricsQuery:
    """The request's parameters checked, with Resend's defaults (the 6 days before now, UTC, daily, every
    metric tracked, no dimension); 422 naming the first problem. The range's end is exclusive."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _refuse(f"timezone: {timezone} is not an IANA time zone") from None
    if granularity not in GRANULARITIES:
        raise _refuse(f"granularity must be one of {', '.join(GRANULARITIES)}")
    now = now or datetime.now(UTC)
    end = min(_when(end_date, "end_date", zone, now, day_end=True), now)
    try:
        start = _when(start_date, "start_date", zone, end - timedelta(days=6))
    except OverflowError:
        raise _refuse("end_date is too early") from None
    if start > end:
        raise _refuse("start_date must be on or before end_date")
    wanted = _listed(metrics) or [*COUNTED, *RATES]
    for metric in wanted:
        if metric in _NOT_TRACKED:
            raise _refuse(f"metrics: {metric} is not tracked by this instance")
        if metric not in COUNTED and metric not in RATES:
            raise _refuse(f"metrics: {metric} is not a metric")
    by = _listed(dimensions)
    for dimension in by:
        if dimension not in DIMENSIONS:
            raise _refuse(f"dimensions: {dimension} is not a dimension here ({', '.join(DIMENSIONS)})")
    if "period" in by and (end - start) / _STEP[granularity] > _MAX_PERIODS:
        raise _refuse(f"the date range holds more than {_MAX_PERIODS} {granularity} periods")
    return MetricsQuery(start=start, end=end, zone=timezone, granularity=granularity,
                        metrics=list(dict.fromkeys(wanted)), dimensions=list(dict.fromkeys(by)),
                        domain_ids=_ids(domain_ids, "domain_id"), email_ids=_ids(email_ids, "email_id"))


# Each metric counts the emails that had such an event in the range (an email to three recipients that all
# bounce is one bounced email), so that the rates are shares of the emails sent.
_FILTERS = {metric: f"e.type = '{event_type}'" + (f" AND e.detail->>'type' = '{kind}'" if kind else "")
            for metric, (event_type, kind) in COUNTED.items()}
_COUNTS = """
SELECT {keys}{counts}
FROM email_events e LEFT JOIN emails m ON m.id = e.email_id LEFT JOIN domains d ON d.id = m.domain_id
WHERE e.team_id = :team_id AND e.created_at >= :start AND e.created_at < :end
  AND e.type = ANY(CAST(:types AS text[]))
  AND (cardinality(CAST(:domain_ids AS uuid[])) = 0 OR m.domain_id = ANY(CAST(:domain_ids AS uuid[])))
  AND (cardinality(CAST(:email_ids AS uuid[])) = 0 OR e.email_id = ANY(CAST(:email_ids AS uuid[])))
{group_by}
"""
_KEYS = {"period": "date_trunc(CAST(:unit AS text), e.created_at, CAST(:zone AS text)) AS period",
         "domain": "m.domain_id AS domain_id, d.name AS domain_name", "email": "e.email_id AS email_id"}
_GROUPS = {"period": "period", "domain": "m.domain_id, d.name", "email": "e.email_id"}


def _values(counts: dict[str, int], metrics: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for metric in metrics:
        if metric in COUNTED:
            values[metric] = counts[metric]
        else:
            numerator, denominator = RATES[metric]
            total = counts[denominator]
            values[metric] = round(counts[numerator] / total, 4) if total else 0
    return values


def _row_key(row: Any, dimensions: list[str]) -> dict[str, Any]:
    key: dict[str, Any] = {}
    for dimension in dimensions:
        if dimension == "period":
            key["period"] = row.period
        elif dimension == "domain" and row.domain_id is not None:
            key |= {"domain_id": str(row.domain_id), "domain_name": row.domain_name}
        elif dimension == "email":
            key["email_id"] = str(row.email_id)
    return key


async def _count(db: AsyncSession, team_id: uuid.UUID, query: MetricsQuery, dimensions: list[str]) -> list[Any]:
    statement = _COUNTS.format(
        keys="".join(f"{_KEYS[d]}, " for d in dimensions),
        counts=", ".join(f"count(DISTINCT e.email_id) FILTER (WHERE {f}) AS {m}" for m, f in _FILTERS.items()),
        group_by=f"GROUP BY {', '.join(_GROUPS[d] for d in dimensions)}" if dimensions else "")
    return list((await db.execute(text(statement), {
        "team_id": team_id, "start": query.start, "end": query.end, "unit": GRANULARITIES[query.granularity],
        "zone": query.zone, "types": sorted({t for t, _ in COUNTED.values()}),
        "domain_ids": query.domain_ids, "email_ids": query.email_ids})).all())


async def count_metrics(db: AsyncSession, team_id: uuid.UUID, query: MetricsQuery) -> MetricsOut:
    """Resend's metrics answer for the team: totals, and one row per combination of the dimensions, in order."""
    [totals] = await _count(db, team_id, query, [])
    rows = await _count(db, team_id, query, query.dimensions) if query.dimensions else []
    zone = ZoneInfo(query.zone)
    ordered = sorted(((_row_key(row, query.dimensions), row) for row in rows),
                     key=lambda pair: tuple(str(v) for v in pair[0].values()) if "period" not in pair[0]
                     else (pair[0]["period"], *(str(v) for v in pair[0].values())))
    data = [{k: v.astimezone(zone).isoformat() if k == "period" else v for k, v in key.items()}
            | _values(row._mapping, query.metrics) for key, row in ordered]
    return MetricsOut(start_date=query.start.isoformat(), end_date=query.end.isoformat(), metrics=query.metrics,
                      dimensions=query.dimensions, granularity=query.granularity,
                      totals=_values(totals._mapping, query.metrics), data=data if query.dimensions else ABSENT)
