"""The overview's figures: one query per group, on the tables of the team the transaction is scoped to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ACTIVITY_TYPES", "WINDOWS", "Activity", "Queue", "WebhookFailures", "activity", "queue",
           "webhook_failures"]

# The periods the overview covers, (label, hours), and the activity it counts: (label, email event type).
WINDOWS = (("24 hours", 24), ("7 days", 24 * 7), ("30 days", 24 * 30))
ACTIVITY_TYPES = (("sent", "sent"), ("delivered", "delivered"), ("bounced", "bounced"),
                  ("complained", "complained"), ("deferred", "delivery_delayed"))

Activity = dict[str, dict[str, int]]
"""{window label: {activity label: number of events}}."""


@dataclass(frozen=True)
class Queue:
    """The team's emails waiting: due now, being handed to the MTA, and scheduled for later."""

    queued: int
    sending: int
    scheduled: int


@dataclass(frozen=True)
class WebhookFailures:
    """Webhook deliveries that gave up, per window, and those waiting to be tried again."""

    failed: dict[str, int]
    retrying: int


def _window_columns(condition: str) -> str:
    return ", ".join(f"count(*) FILTER (WHERE {condition} AND created_at > now() - make_interval(hours => {hours}))"
                     f" AS w{index}" for index, (_, hours) in enumerate(WINDOWS))


_LONGEST = max(hours for _, hours in WINDOWS)
_ACTIVITY = text(f"""
    SELECT type, {_window_columns("true")}
    FROM email_events
    WHERE team_id = :team AND type = ANY(:types) AND created_at > now() - make_interval(hours => {_LONGEST})
    GROUP BY type
""")
_QUEUE = text("""
    SELECT count(*) FILTER (WHERE state = 'queued' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS queued,
           count(*) FILTER (WHERE state = 'sending') AS sending,
           count(*) FILTER (WHERE state = 'queued' AND scheduled_at > now()) AS scheduled
    FROM emails
    WHERE team_id = :team AND state IN ('queued', 'sending')
""")
_WEBHOOKS = text(f"""
    SELECT {_window_columns("state = 'failed'")},
           count(*) FILTER (WHERE state IN ('pending', 'delivering') AND attempts > 0) AS retrying
    FROM webhook_deliveries
    WHERE team_id = :team AND (created_at > now() - make_interval(hours => {_LONGEST})
                               OR state IN ('pending', 'delivering'))
""")


async def activity(db: AsyncSession, team_id: uuid.UUID) -> Activity:
    """Events of each counted type in each window."""
    rows = (await db.execute(_ACTIVITY, {"team": team_id, "types": [t for _, t in ACTIVITY_TYPES]})).all()
    by_type = {row[0]: row[1:] for row in rows}
    return {window: {label: int(by_type.get(event, (0,) * len(WINDOWS))[index]) for label, event in ACTIVITY_TYPES}
            for index, (window, _) in enumerate(WINDOWS)}


async def queue(db: AsyncSession, team_id: uuid.UUID) -> Queue:
    """The team's queue depth."""
    row = (await db.execute(_QUEUE, {"team": team_id})).one()
    return Queue(queued=row.queued, sending=row.sending, scheduled=row.scheduled)


async def webhook_failures(db: AsyncSession, team_id: uuid.UUID) -> WebhookFailures:
    """Failed webhook deliveries per window, and those being retried."""
    row = (await db.execute(_WEBHOOKS, {"team": team_id})).one()
    return WebhookFailures(failed={window: int(row[index]) for index, (window, _) in enumerate(WINDOWS)},
                           retrying=int(row.retrying))
