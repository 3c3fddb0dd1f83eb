"""Retention of what tracking learns of readers: the IP address and User-Agent of an open or a click are kept
until the team's retention period has passed since it happened, then removed from the event and from the body of
its webhook delivery (the worker, hourly). The event itself stays with its email."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Forgotten", "forget_readers"]

_EVENTS = text("""
UPDATE email_events v SET detail = v.detail - 'ip' - 'user_agent'
FROM teams t
WHERE t.id = v.team_id AND v.type IN ('opened', 'clicked') AND v.detail ?| ARRAY['ip', 'user_agent']
  AND v.created_at < now() - make_interval(days => t.retention_days)
""")
# Resend's click object requires both fields: they stay, empty. The age is the click's own time, which a
# replayed delivery (a new row, the same body) keeps.
_DELIVERIES = text("""
UPDATE webhook_deliveries d
SET payload = jsonb_set(CAST(d.payload AS jsonb), '{data,click}',
                        (CAST(d.payload AS jsonb) #> '{data,click}') || '{"ipAddress": "", "userAgent": ""}')::text
FROM teams t
WHERE t.id = d.team_id AND d.event_type = 'email.clicked'
  AND CAST(CAST(d.payload AS jsonb) #>> '{data,click,timestamp}' AS timestamptz)
      < now() - make_interval(days => t.retention_days)
  AND (CAST(d.payload AS jsonb) #>> '{data,click,ipAddress}' <> '' OR
       CAST(d.payload AS jsonb) #>> '{data,click,userAgent}' <> '')
""")


class Forgotten(NamedTuple):
    """How many events and webhook bodies lost a reader's address and User-Agent."""

    events: int
    deliveries: int


async def forget_readers(engine: AsyncEngine) -> Forgotten:
    """Remove readers' addresses and User-Agents older than their team's retention period."""
    async with engine.begin() as conn:
        events = (await conn.execute(_EVENTS)).rowcount or 0
        deliveries = (await conn.execute(_DELIVERIES)).rowcount or 0
    return Forgotten(int(events), int(deliveries))
