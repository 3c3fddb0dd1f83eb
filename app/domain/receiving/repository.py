"""The received emails' SQL, with named parameters: the receive pipe's look-up and insert (as the port-25 role,
across teams), the team's reads (scoped by row-level security), and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor
from app.db.keyset_page import newest_first_page

__all__ = ["RECEIVED_EVENT", "NewReceivedEmail", "delete_expired", "insert_received", "receiving_domains",
           "received_email", "received_page"]

RECEIVED_EVENT = "email.received"

# The domains that receive (migration 0018 says which) among the names, with their team (at most one team holds a
# name verified).
_RECEIVING_DOMAINS = text("SELECT id, team_id, domain AS name FROM mail_receiving_domains WHERE domain = ANY(:names)")
_INSERT = text("""
WITH stored AS (
    INSERT INTO received_emails (id, team_id, domain_id, queue_id, envelope_from, envelope_recipients, client_address,
                                 helo, from_address, to_addresses, cc_addresses, bcc_addresses, reply_to, subject,
                                 message_id, spf, dkim, dmarc, authentication_results, attachments, mime, size,
                                 created_at)
    VALUES (:id, :team_id, :domain_id, :queue_id, :envelope_from, :envelope_recipients, :client_address, :helo,
            :from_address, :to_addresses, :cc_addresses, :bcc_addresses, :reply_to, :subject,
            :message_id, :spf, :dkim, :dmarc, :authentication_results, CAST(:attachments AS jsonb), :mime, :size,
            :created_at)
    ON CONFLICT (team_id, queue_id) DO NOTHING  -- Postfix delivered it again: stored already
    RETURNING id
)
INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload)
SELECT gen_random_uuid(), w.team_id, w.id, 'msg_' || replace(CAST(gen_random_uuid() AS text), '-', ''),
       :event_type, :payload
FROM webhooks w, stored WHERE w.team_id = :team_id AND w.status = 'enabled' AND :event_type = ANY(w.events)
""")
_COLUMNS = ("id, from_address, to_addresses, cc_addresses, bcc_addresses, reply_to, subject, message_id, "
            "envelope_from, envelope_recipients, spf, dkim, dmarc, authentication_results, attachments, size, "
            "created_at")
_ONE = text(f"SELECT {_COLUMNS}, mime FROM received_emails WHERE team_id = :team_id AND id = :email_id")
_DELETE_EXPIRED = text("""
DELETE FROM received_emails r USING teams t
WHERE r.team_id = t.id AND r.created_at < now() - make_interval(days => t.retention_days)
""")


@dataclass(frozen=True)
class NewReceivedEmail:
    """A received message as stored for one team, with the webhook body of its `email.received` event."""

    id: uuid.UUID
    team_id: uuid.UUID
    domain_id: uuid.UUID
    queue_id: str
    envelope_from: str
    envelope_recipients: list[str]
    client_address: str
    helo: str
    from_address: str
    to_addresses: list[str]
    cc_addresses: list[str]
    bcc_addresses: list[str]
    reply_to: list[str]
    subject: str
    message_id: str
    spf: str
    dkim: str
    dmarc: str
    authentication_results: str
    attachments: str  # JSON: each attachment's id, filename, content_type, content_disposition, content_id, size
    mime: bytes
    created_at: datetime
    payload: str


async def receiving_domains(db: Executor, names: Sequence[str]) -> list[Row[Any]]:
    """The verified, receiving domains among `names` (lower case), with their teams."""
    return list((await db.execute(_RECEIVING_DOMAINS, {"names": list(names)})).all())


async def insert_received(db: Executor, email: NewReceivedEmail) -> None:
    """Store the message and queue its `email.received` event to each subscribed endpoint of the team."""
    await db.execute(_INSERT, {**vars(email), "size": len(email.mime), "event_type": RECEIVED_EVENT})


async def received_email(db: Executor, team_id: uuid.UUID, email_id: uuid.UUID) -> Row[Any] | None:
    """One received email of the team, with its message."""
    return (await db.execute(_ONE, {"team_id": team_id, "email_id": email_id})).first()


async def received_page(db: Executor, team_id: uuid.UUID, limit: int, after: uuid.UUID | None,
                        before: uuid.UUID | None) -> tuple[list[Row[Any]], bool]:
    """Up to `limit` of the team's received emails (without their messages), newest first, after or before one's
    id; and whether more remain."""
    return await newest_first_page(db, "received_emails", _COLUMNS, team_id, limit, after, before)


async def delete_expired(db: Executor) -> int:
    """Delete the received emails older than their team's retention period; how many."""
    return (await db.execute(_DELETE_EXPIRED)).rowcount  # type: ignore[attr-defined, no-any-return]
