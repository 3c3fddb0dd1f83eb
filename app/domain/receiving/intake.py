"""Storing mail received on port 25 for the domains that receive: Postfix's receive pipe hands over one message
with its envelope and SMTP client; each team that holds one of its recipient domains gets a copy, with the SPF,
DKIM and DMARC verdicts, and an `email.received` event for its endpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.emails.message_attachments import attachments_of
from app.domain.receiving import repository
from app.domain.receiving.message_fields import addresses_of
from app.domain.receiving.repository import RECEIVED_EVENT, NewReceivedEmail
from app.domain.receiving.verdicts import Verdicts

__all__ = ["Envelope", "attachment_summaries", "received_payload", "store_received"]


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session said about the message: Postfix's queue id, the client, its HELO name, the envelope
    sender and recipients."""

    queue_id: str
    client_address: str
    helo: str
    sender: str
    recipients: Sequence[str]


def attachment_summaries(email_id: uuid.UUID, raw: bytes) -> list[dict[str, Any]]:
    """Each attachment's id, filename, content type, disposition, content id (when it has one) and size: what the
    lists and the webhook show without reading the message again."""
    return [{"id": str(a.id), "filename": a.filename, "content_type": a.content_type,
             "content_disposition": a.disposition, **({"content_id": a.content_id} if a.content_id else {}),
             "size": len(a.content)} for a in attachments_of(email_id, raw)]


def _webhook_attachment(summary: dict[str, Any]) -> dict[str, Any]:
    """An attachment as Resend's `WebhookEventAttachment`: no size, and a filename that is a string."""
    shown = {k: v for k, v in summary.items() if k != "size"}
    return {**shown, "filename": summary["filename"] or ""}


def received_payload(email_id: uuid.UUID, raw: bytes, created_at: datetime,
                     attachments: list[dict[str, Any]] | None = None) -> str:
    """The body of the `email.received` webhook, shaped as Resend's `EmailReceivedEvent`."""
    fields = addresses_of(raw)
    listed = attachments if attachments is not None else attachment_summaries(email_id, raw)
    data = {"email_id": str(email_id), "created_at": created_at.isoformat(), "from": fields.from_address,
            "to": fields.to, "subject": fields.subject, "message_id": fields.message_id, "bcc": fields.bcc,
            "cc": fields.cc, "attachments": [_webhook_attachment(a) for a in listed]}
    return json.dumps({"type": RECEIVED_EVENT, "created_at": created_at.isoformat(), "data": data},
                      separators=(",", ":"))


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _by_team(domains: Sequence[Any], recipients: Sequence[str]) -> dict[uuid.UUID, tuple[uuid.UUID, list[str]]]:
    """Each team among the receiving domains: its first domain and the recipients at its domains."""
    by_team: dict[uuid.UUID, tuple[uuid.UUID, list[str]]] = {}
    for domain in domains:
        _, at_team = by_team.setdefault(domain.team_id, (domain.id, []))
        at_team += [r for r in recipients if _domain_of(r) == domain.name]
    return by_team


async def store_received(engine: AsyncEngine, raw: bytes, envelope: Envelope,
                         check: Callable[[], Verdicts]) -> list[uuid.UUID]:
    """Store the message once per team among its recipients' domains; the ids stored. None when no recipient's
    domain receives (e.g. receiving was turned off while the message was queued): then `check`, which asks DNS,
    is not even run. A message Postfix delivers again is not stored twice."""
    names = sorted({_domain_of(r) for r in envelope.recipients})
    async with engine.begin() as conn:
        if not await repository.receiving_domains(conn, names):
            return []
    verdicts = check()  # outside any transaction: its lookups may take seconds
    fields = addresses_of(raw)
    now = datetime.now(UTC)
    stored: list[uuid.UUID] = []
    async with engine.begin() as conn:
        for team_id, (domain_id, recipients) in _by_team(await repository.receiving_domains(conn, names),
                                                         envelope.recipients).items():
            email_id = uuid.uuid4()
            attachments = attachment_summaries(email_id, raw)
            await repository.insert_received(conn, NewReceivedEmail(
                id=email_id, team_id=team_id, domain_id=domain_id, queue_id=envelope.queue_id,
                envelope_from=envelope.sender, envelope_recipients=recipients,
                client_address=envelope.client_address, helo=envelope.helo, from_address=fields.from_address,
                to_addresses=fields.to, cc_addresses=fields.cc, bcc_addresses=fields.bcc, reply_to=fields.reply_to,
                subject=fields.subject, message_id=fields.message_id, spf=verdicts.spf, dkim=verdicts.dkim,
                dmarc=verdicts.dmarc, authentication_results=verdicts.header, attachments=json.dumps(attachments),
                mime=raw, created_at=now, payload=received_payload(email_id, raw, now, attachments)))
            stored.append(email_id)
    return stored
