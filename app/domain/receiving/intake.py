"""Storing mail received on port 25 for the domains that receive: Postfix's receive pipe hands over one message
with its envelope and SMTP client; each team that holds one of its recipient domains gets a copy, with the SPF,
DKIM and DMARC verdicts, and an `email.received` event for its endpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.emails.attachments import attachments_of
from app.domain.receiving import repository
from app.domain.receiving.message_fields import addresses_of
from app.domain.receiving.repository import RECEIVED_EVENT, NewReceivedEmail
from app.domain.receiving.verdicts import Verdicts

__all__ = ["Envelope", "received_payload", "store_received"]


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session said about the message: client, HELO name, envelope sender and recipients."""

    client_address: str
    helo: str
    sender: str
    recipients: Sequence[str]


def received_payload(email_id: uuid.UUID, raw: bytes, created_at: datetime) -> str:
    """The body of the `email.received` webhook, shaped as Resend's `EmailReceivedEvent`."""
    fields = addresses_of(raw)
    attachments = [{"id": str(a.id), "filename": a.filename or "", "content_type": a.content_type,
                    "content_disposition": a.disposition, **({"content_id": a.content_id} if a.content_id else {})}
                   for a in attachments_of(email_id, raw)]
    data = {"email_id": str(email_id), "created_at": created_at.isoformat(), "from": fields.from_address,
            "to": fields.to, "subject": fields.subject, "message_id": fields.message_id, "bcc": fields.bcc,
            "cc": fields.cc, "attachments": attachments}
    return json.dumps({"type": RECEIVED_EVENT, "created_at": created_at.isoformat(), "data": data},
                      separators=(",", ":"))


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


async def store_received(engine: AsyncEngine, raw: bytes, envelope: Envelope, verdicts: Verdicts) -> list[uuid.UUID]:
    """Store the message once per team among its recipients' domains, in one transaction; the ids stored (none
    when no recipient's domain receives, e.g. receiving was turned off while the message was queued)."""
    fields = addresses_of(raw)
    now = datetime.now(UTC)
    stored: list[uuid.UUID] = []
    async with engine.begin() as conn:
        domains = await repository.receiving_domains(conn, sorted({_domain_of(r) for r in envelope.recipients}))
        by_team: dict[uuid.UUID, tuple[uuid.UUID, list[str]]] = {}
        for domain in domains:
            _, recipients = by_team.setdefault(domain.team_id, (domain.id, []))
            recipients += [r for r in envelope.recipients if _domain_of(r) == domain.name]
        for team_id, (domain_id, recipients) in by_team.items():
            email_id = uuid.uuid4()
            await repository.insert_received(conn, NewReceivedEmail(
                id=email_id, team_id=team_id, domain_id=domain_id, envelope_from=envelope.sender,
                envelope_recipients=recipients, client_address=envelope.client_address, helo=envelope.helo,
                from_address=fields.from_address, to_addresses=fields.to, cc_addresses=fields.cc,
                bcc_addresses=fields.bcc, reply_to=fields.reply_to, subject=fields.subject,
                message_id=fields.message_id, spf=verdicts.spf, dkim=verdicts.dkim, dmarc=verdicts.dmarc,
                authentication_results=verdicts.header, mime=raw, created_at=now,
                payload=received_payload(email_id, raw, now)))
            stored.append(email_id)
    return stored
