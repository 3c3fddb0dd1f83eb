"""Recording events on emails, and fanning them out to the team's subscribed webhooks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.db.executor import Executor
from app.domain.events import repository
from app.domain.events.event import EVENT_TYPES, EmailSummary, Event, summary_of
from app.domain.events.webhook_payload import webhook_payload

__all__ = ["EVENT_TYPES", "EmailSummary", "Event", "record_events", "summary_of"]


async def _not_yet_recorded(db: Executor, events: Sequence[Event]) -> list[Event]:
    """The events without the unique ones already recorded, or already among the earlier ones (one query)."""
    unique = [(e.email.id, e.type, e.recipient) for e in events if e.unique]
    seen = await repository.events_recorded(db, unique)
    kept = []
    for event in events:
        if event.unique:
            key = (event.email.id, event.type, event.recipient)
            if key in seen:
                continue
            seen.add(key)
        kept.append(event)
    return kept


async def record_events(db: Executor, events: Sequence[Event], *, set_last_event: bool = True,
                        before: tuple[str, dict[str, Any]] | None = None) -> int:
    """Insert the events, move each email's `last_event`, and queue one delivery per subscribed webhook.

    One statement, in the caller's transaction, which must be scoped to the events' team (or run as a
    role RLS does not bind); `before` is an INSERT (and its parameters) run as the statement's first
    step, e.g. the email the events belong to. Unique events already present are skipped; returns how
    many were recorded.
    """
    events = await _not_yet_recorded(db, events)
    if not events:
        return 0
    now = datetime.now(UTC)
    last = {e.email.id: e.type for e in events} if set_last_event else {}
    await repository.insert_events(
        db, team_ids=[e.email.team_id for e in events], email_ids=[e.email.id for e in events],
        types=[e.type for e in events], recipients=[e.recipient for e in events],
        details=[json.dumps(e.detail) for e in events], payloads=[webhook_payload(e, now) for e in events],
        last_event_email_ids=list(last), last_event_types=list(last.values()), first_step=before)
    return len(events)
