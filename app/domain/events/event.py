"""An event on an email, and what it carries of the email: the values the recorder stores and the webhook
body is made from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["EVENT_TYPES", "EmailSummary", "Event", "summary_of"]

EVENT_TYPES = ("queued", "sent", "delivered", "delivery_delayed", "bounced", "complained", "failed", "suppressed",
               "scheduled", "canceled", "opened", "clicked")


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


def summary_of(row: Any, team_id: uuid.UUID | None = None) -> EmailSummary:
    """The summary of an email row (its own `team_id` unless given)."""
    return EmailSummary(id=row.id, team_id=team_id or row.team_id, from_address=row.from_address,
                        to_addresses=list(row.to_addresses), subject=row.subject, created_at=row.created_at,
                        tags=list(row.tags or []))


@dataclass(frozen=True)
class Event:
    """One event on one email; `unique` events are recorded once per (email, type, recipient)."""

    email: EmailSummary
    type: str
    recipient: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    unique: bool = False
