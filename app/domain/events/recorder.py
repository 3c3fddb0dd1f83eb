"""Recording events on emails, and fanning them out to the team's subscribed webhooks."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import text

__all__ = ["EVENT_TYPES", "EmailSummary", "Event", "record_events", "webhook_message_id"]

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


def webhook_message_id() -> str:
    """A Standard Webhooks message id (`webhook-id`), the same on every retry of one delivery."""
    return "msg_" + secrets.token_urlsafe(18)


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


async def record_events(db: _Executor, events: Sequence[Event], *, set_last_event: bool = True) -> int:
    """Insert the events, move each email's `last_event`, and queue one delivery per subscribed webhook.

    The caller's transaction must be scoped to the events' team (or run as a role RLS does not bind).
    Returns how many events were recorded (unique events already present are skipped).
    """
    events = [e for e in events if not (e.unique and await _already_recorded(db, e))]
    if not events:
        return 0
    now = datetime.now(UTC)
    await db.execute(text(
        "INSERT INTO email_events (id, team_id, email_id, type, recipient, detail) "
        "VALUES (:id, :team, :email, :type, :recipient, CAST(:detail AS jsonb))"),
        [{"id": uuid.uuid4(), "team": e.email.team_id, "email": e.email.id, "type": e.type,
          "recipient": e.recipient, "detail": json.dumps(e.detail)} for e in events])
    if set_last_event:
        last = {e.email.id: e.type for e in events}
        await db.execute(text("UPDATE emails SET last_event = :t, updated_at = now() WHERE id = :e"),
                         [{"e": email_id, "t": kind} for email_id, kind in last.items()])
    teams = {e.email.team_id for e in events}
    hooks = (await db.execute(text(
        "SELECT id, team_id, events FROM webhooks WHERE team_id = ANY(:teams) AND status = 'enabled'"),
        {"teams": list(teams)})).all()
    deliveries = [
        {"id": uuid.uuid4(), "team": hook.team_id, "hook": hook.id, "msg": webhook_message_id(),
         "type": f"email.{e.type}", "payload": _payload(e, now)}
        for e in events for hook in hooks
        if hook.team_id == e.email.team_id and f"email.{e.type}" in hook.events
    ]
    if deliveries:
        await db.execute(text(
            "INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload) "
            "VALUES (:id, :team, :hook, :msg, :type, :payload)"), deliveries)
    return len(events)
