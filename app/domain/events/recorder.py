"""Recording events on emails, and fanning them out to the team's subscribed webhooks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import text

__all__ = ["EVENT_TYPES", "EmailSummary", "Event", "record_events"]

EVENT_TYPES = ("queued", "sent", "delivered", "delivery_delayed", "bounced", "complained", "failed", "suppressed",
               "scheduled", "canceled")


class _Executor(Protocol):
    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...


@dataclass(frozen=True)
class EmailSummary:
    """What a webhook payload says about the email an event belongs to."""

    id: uuid.UUID
    team_id: uuid.UUID
    from_address: str
    to_addresses: list[str]
    subject: str
    created_at: datetime
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Event:
    """One event on one email; `unique` events are recorded once per (email, type, recipient)."""

    email: EmailSummary
    type: str
    recipient: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    unique: bool = False


def _payload(event: Event, at: datetime) -> str:
    email = event.email
    data: dict[str, Any] = {
        "email_id": str(email.id), "from": email.from_address, "to": email.to_addresses, "subject": email.subject,
        "created_at": email.created_at.isoformat(), "tags": {t["name"]: t.get("value", "") for t in email.tags},
    }
    if event.recipient:
        data["recipient"] = event.recipient
    if event.type == "bounced":
        data["bounce"] = {k: v for k, v in event.detail.items() if k in ("type", "status", "diagnostic", "message")}
    elif event.detail:
        data["detail"] = event.detail
    return json.dumps({"type": f"email.{event.type}", "created_at": at.isoformat(), "data": data},
                      separators=(",", ":"))


async def _already_recorded(db: _Executor, event: Event) -> bool:
    row = (await db.execute(text(
        "SELECT 1 FROM email_events WHERE email_id = :e AND type = :t AND recipient IS NOT DISTINCT FROM :r LIMIT 1"),
        {"e": event.email.id, "t": event.type, "r": event.recipient})).first()
    return row is not None


_RECORD = """
WITH {prefix}recorded AS (
    INSERT INTO email_events (id, team_id, email_id, type, recipient, detail)
    SELECT gen_random_uuid(), e.team, e.email, e.type, e.recipient, CAST(e.detail AS jsonb)
    FROM unnest(CAST(:teams AS uuid[]), CAST(:emails AS uuid[]), CAST(:types AS text[]),
                CAST(:recipients AS text[]), CAST(:details AS text[])) WITH ORDINALITY
         AS e(team, email, type, recipient, detail, n)
    ORDER BY e.n
), moved AS (
    UPDATE emails SET last_event = l.type, updated_at = now()
    FROM unnest(CAST(:last_emails AS uuid[]), CAST(:last_types AS text[])) AS l(email, type)
    WHERE emails.id = l.email
      -- Postfix can deliver (and the log follower record it) before the worker records `sent`.
      AND NOT (l.type = 'sent' AND emails.last_event IN ('delivered', 'delivery_delayed', 'bounced', 'complained'))
)
INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload)
SELECT gen_random_uuid(), w.team_id, w.id, 'msg_' || replace(CAST(gen_random_uuid() AS text), '-', ''),
       'email.' || e.type, e.payload
FROM unnest(CAST(:teams AS uuid[]), CAST(:types AS text[]), CAST(:payloads AS text[])) AS e(team, type, payload)
JOIN webhooks w ON w.team_id = e.team AND w.status = 'enabled' AND ('email.' || e.type) = ANY(w.events)
"""
_RECORD_ONLY = text(_RECORD.format(prefix=""))
_PARAMETERS = frozenset({"teams", "emails", "types", "recipients", "details", "payloads", "last_emails", "last_types"})


async def record_events(db: _Executor, events: Sequence[Event], *, set_last_event: bool = True,
                        before: tuple[str, dict[str, Any]] | None = None) -> int:
    """Insert the events, move each email's `last_event`, and queue one delivery per subscribed webhook.

    One statement, in the caller's transaction, which must be scoped to the events' team (or run as a
    role RLS does not bind); `before` is an INSERT (and its parameters) run as the statement's first
    step, e.g. the email the events belong to. Unique events already present are skipped; returns how
    many were recorded.
    """
    events = [e for e in events if not (e.unique and await _already_recorded(db, e))]
    if not events:
        return 0
    now = datetime.now(UTC)
    last = {e.email.id: e.type for e in events} if set_last_event else {}
    statement = _RECORD_ONLY if before is None else text(_RECORD.format(prefix=f"inserted AS ({before[0]}), "))
    if before is not None and _PARAMETERS & before[1].keys():
        raise ValueError(f"parameter names taken by record_events: {sorted(_PARAMETERS & before[1].keys())}")
    await db.execute(statement, {**(before[1] if before else {}),
        "teams": [e.email.team_id for e in events], "emails": [e.email.id for e in events],
        "types": [e.type for e in events], "recipients": [e.recipient for e in events],
        "details": [json.dumps(e.detail) for e in events], "payloads": [_payload(e, now) for e in events],
        "last_emails": list(last), "last_types": list(last.values()),
    })
    return len(events)
