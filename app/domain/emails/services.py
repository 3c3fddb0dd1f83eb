"""Accepting emails into the outbox (same transaction as the response), reading, rescheduling, canceling."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.emails import admission, repository
from app.domain.emails.mime import message_id_for, render, verp_address
from app.domain.emails.repository import NewEmail
from app.domain.emails.schemas import EmailEventOut, EmailOut, Tag
from app.domain.emails.validation import Draft, parse_schedule
from app.domain.events.recorder import EmailSummary, Event, record_events, summary_of
from app.domain.tracking.links import Tracker
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.response_body import unless_none
from app.lib.timefmt import iso

__all__ = ["accept", "cancel", "get_email", "list_emails", "reschedule", "to_out"]


async def _domains_and_suppressed(
    db: AsyncSession, principal: Principal, drafts: Sequence[Draft]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The verified sending domains the drafts use, and which of their recipients are suppressed (one query)."""
    names = sorted({d.from_domain for d in drafts})
    domains, suppressed = await repository.sending_domains_and_suppressed(
        db, principal.team_id, names, sorted({a.lower() for d in drafts for a in d.recipients}))
    found = {r.name: r for r in domains if principal.domain_id is None or r.id == principal.domain_id}
    for name in names:
        if name not in found:
            raise ApiError(403, "validation_error",
                           f"The {name} domain is not verified for this team (or not allowed for this API key)")
    return found, suppressed


def _tracked(draft: Draft, tracker: Tracker | None, domain: Any, team_id: uuid.UUID, email_id: uuid.UUID) -> Draft:
    """The draft as sent: its HTML with the domain's open pixel and click redirects (the email keeps the HTML
    its sender wrote)."""
    if tracker is None or draft.html is None or not (domain.open_tracking or domain.click_tracking):
        return draft
    return replace(draft, html=tracker.html(draft.html, team_id, email_id, domain.open_tracking,
                                            domain.click_tracking))


async def accept(
    db: AsyncSession, principal: Principal, drafts: Sequence[Draft], ids: Sequence[uuid.UUID], settings: Settings
) -> None:
    """Render and store the drafts as emails with their first events, in the caller's transaction."""
    quotas = await admission.check(db, principal.team_id, principal.policy)
    domains, suppressed = await _domains_and_suppressed(db, principal, drafts)
    tracking = any(d.open_tracking or d.click_tracking for d in domains.values())
    tracker = Tracker.for_settings(settings) if tracking else None
    now = datetime.now(UTC)
    rows, events = [], []
    for email_id, draft in zip(ids, drafts, strict=True):
        domain = domains[draft.from_domain]
        message_id = message_id_for(email_id, domain.name)
        mime = render(_tracked(draft, tracker, domain, principal.team_id, email_id), message_id, now)
        if len(mime) > settings.max_message_bytes:
            raise ApiError(413, "payload_too_large",
                           f"The message is {len(mime)} bytes; the limit is {settings.max_message_bytes}")
        blocked = [a for a in draft.recipients if a.lower() in suppressed]
        recipients = [a for a in draft.recipients if a.lower() not in suppressed]
        state = "queued" if recipients else "suppressed"
        summary = EmailSummary(id=email_id, team_id=principal.team_id, from_address=draft.from_address,
                               to_addresses=draft.to, subject=draft.subject, created_at=now, tags=draft.tags)
        first = "scheduled" if draft.scheduled_at and recipients else "queued"
        events.append(Event(summary, first, detail={"test": True} if principal.mode == "test" else {}))
        events += [Event(summary, "suppressed", recipient=a, detail={"reason": suppressed[a.lower()]})
                   for a in blocked]
        rows.append(NewEmail(
            email_id=email_id, team_id=principal.team_id, api_key_id=principal.api_key_id, mode=principal.mode,
            domain_id=domain.id, from_address=draft.from_address if not draft.from_name
            else f"{draft.from_name} <{draft.from_address}>", to_addresses=draft.to, cc_addresses=draft.cc,
            bcc_addresses=draft.bcc, reply_to=draft.reply_to, subject=draft.subject, html=draft.html,
            text_body=draft.text, tags=draft.tags, message_id=message_id,
            envelope_from=verp_address(email_id, domain.return_path, domain.name), envelope_recipients=recipients,
            mime=mime, state=state, last_event=first if recipients else "suppressed",
            scheduled_at=draft.scheduled_at, next_attempt_at=draft.scheduled_at or now, now=now,
        ))
    # Last before storing: a quota's counter rows stay locked until the transaction ends.
    await admission.count(db, principal.team_id, quotas, len(rows) if principal.mode == "live" else 0, now)
    if len(rows) == 1:
        await record_events(db, events, set_last_event=False, before=(repository.INSERT_EMAIL, rows[0].parameters()))
    else:
        await repository.insert_emails(db, rows)
        await record_events(db, events, set_last_event=False)


def to_out(row: Any, events: list[EmailEventOut] | None = None) -> EmailOut:
    """The Resend shape of an email row."""
    return EmailOut(
        id=str(row.id), from_=row.from_address, to=list(row.to_addresses), cc=list(row.cc_addresses),
        bcc=list(row.bcc_addresses), reply_to=list(row.reply_to), created_at=iso(row.created_at) or "",
        subject=row.subject, html=unless_none(row.html), text=unless_none(row.text_body), last_event=row.last_event,
        message_id=row.message_id, scheduled_at=iso(row.scheduled_at),
        tags=[Tag(name=t["name"], value=t.get("value", "")) for t in row.tags or []], events=events,
    )


async def _row(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID, lock: bool = False) -> Any:
    row = await repository.find_email(db, team_id, email_id, lock=lock)
    if row is None:
        raise ApiError(404, "not_found", "Email not found")
    return row


async def get_email(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> EmailOut:
    """One email of the team with its event history, oldest first."""
    row = await _row(db, team_id, email_id)
    events = await repository.email_events(db, team_id, email_id)
    return to_out(row, [EmailEventOut(type=e.type, created_at=iso(e.created_at) or "", recipient=e.recipient,
                                      detail={k: v for k, v in (e.detail or {}).items()
                                              if isinstance(v, str | int | bool) or v is None})
                        for e in events])


async def list_emails(
    db: AsyncSession, team_id: uuid.UUID, limit: int, after: uuid.UUID | None, before: uuid.UUID | None
) -> tuple[list[EmailOut], bool]:
    """A page of the team's emails, newest first; `after`/`before` are ids of the previous page's ends."""
    rows, has_more = await repository.email_page(db, team_id, limit, after, before)
    return [to_out(r) for r in rows], has_more


async def _scheduled(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> Any:
    row = await _row(db, team_id, email_id, lock=True)
    if row.state != "queued" or row.scheduled_at is None or row.scheduled_at <= datetime.now(UTC):
        raise ApiError(422, "validation_error", "Only an email scheduled for later can be changed or canceled")
    return row


async def reschedule(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID, scheduled_at: str) -> None:
    """Move a scheduled email to a new time (now, if the time has passed)."""
    row = await _scheduled(db, team_id, email_id)
    when = parse_schedule(scheduled_at) or datetime.now(UTC)
    await repository.reschedule(db, row.id, when)
    await record_events(db, [Event(summary_of(row, team_id), "scheduled", detail={"scheduled_at": when.isoformat()})])


async def cancel(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> None:
    """Cancel a scheduled email: it will never be sent."""
    row = await _scheduled(db, team_id, email_id)
    await repository.cancel(db, row.id)
    await record_events(db, [Event(summary_of(row, team_id), "canceled")])
