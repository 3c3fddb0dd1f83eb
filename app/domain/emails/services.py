"""Accepting emails into the outbox (same transaction as the response), reading, rescheduling, canceling."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.emails import admission
from app.domain.emails.mime import message_id_for, render, verp_address
from app.domain.emails.schemas import EmailEventOut, EmailOut, Tag
from app.domain.emails.validation import Draft, parse_schedule
from app.domain.events.recorder import EmailSummary, Event, record_events
from app.lib.auth import Principal
from app.lib.errors import ApiError
from app.lib.timefmt import iso

__all__ = ["INSERT_EMAIL", "accept", "cancel", "get_email", "list_emails", "reschedule", "to_out"]

INSERT_EMAIL = (
    "INSERT INTO emails (id, team_id, api_key_id, mode, domain_id, from_address, to_addresses, cc_addresses, "
    "bcc_addresses, reply_to, subject, html, text_body, tags, message_id, envelope_from, recipients, mime, size, "
    "state, last_event, scheduled_at, next_attempt_at, created_at, updated_at) VALUES (:id, :team, :key, :mode, "
    ":domain, :from, :to, :cc, :bcc, :reply_to, :subject, :html, :text, CAST(:tags AS jsonb), :message_id, "
    ":envelope, :rcpts, :mime, :size, :state, :last_event, :scheduled, :next, :now, :now)"
)
_COLUMNS = ("id, from_address, to_addresses, cc_addresses, bcc_addresses, reply_to, subject, html, text_body, tags, "
            "message_id, last_event, scheduled_at, created_at, state")


async def _domains_and_suppressed(
    db: AsyncSession, principal: Principal, drafts: Sequence[Draft]
) -> tuple[dict[str, Any], set[str]]:
    """The verified sending domains the drafts use, and which of their recipients are suppressed (one query)."""
    names = sorted({d.from_domain for d in drafts})
    addresses = sorted({a.lower() for d in drafts for a in d.recipients})
    rows = (await db.execute(text(
        "SELECT 'domain' AS kind, id, name, return_path FROM domains "
        "WHERE team_id = :t AND status = 'verified' AND name = ANY(:n) "
        "UNION ALL SELECT 'suppressed', NULL, email, NULL FROM suppressions WHERE team_id = :t AND email = ANY(:a)"),
        {"t": principal.team_id, "n": names, "a": addresses})).all()
    found = {r.name: r for r in rows if r.kind == "domain"
             and (principal.domain_id is None or r.id == principal.domain_id)}
    for name in names:
        if name not in found:
            raise ApiError(403, "validation_error",
                           f"The {name} domain is not verified for this team (or not allowed for this API key)")
    return found, {r.name for r in rows if r.kind == "suppressed"}


async def accept(
    db: AsyncSession, principal: Principal, drafts: Sequence[Draft], ids: Sequence[uuid.UUID], settings: Settings
) -> None:
    """Render and store the drafts as emails with their first events, in the caller's transaction."""
    quotas = await admission.check(db, principal.team_id)
    domains, suppressed = await _domains_and_suppressed(db, principal, drafts)
    now = datetime.now(UTC)
    rows, events = [], []
    for email_id, draft in zip(ids, drafts, strict=True):
        domain = domains[draft.from_domain]
        message_id = message_id_for(email_id, domain.name)
        mime = render(draft, message_id, now)
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
        events += [Event(summary, "suppressed", recipient=a, detail={"reason": "on the suppression list"})
                   for a in blocked]
        rows.append({
            "id": email_id, "team": principal.team_id, "key": principal.api_key_id, "mode": principal.mode,
            "domain": domain.id, "from": draft.from_address if not draft.from_name
            else f"{draft.from_name} <{draft.from_address}>", "to": draft.to, "cc": draft.cc, "bcc": draft.bcc,
            "reply_to": draft.reply_to, "subject": draft.subject, "html": draft.html, "text": draft.text,
            "tags": json.dumps(draft.tags), "message_id": message_id,
            "envelope": verp_address(email_id, domain.return_path, domain.name), "rcpts": recipients,
            "mime": mime, "size": len(mime), "state": state, "last_event": first if recipients else "suppressed",
            "scheduled": draft.scheduled_at, "next": draft.scheduled_at or now, "now": now,
        })
    # Last before storing: a quota's counter rows stay locked until the transaction ends.
    await admission.count(db, principal.team_id, quotas, len(rows) if principal.mode == "live" else 0, now)
    if len(rows) == 1:
        await record_events(db, events, set_last_event=False, before=(INSERT_EMAIL, rows[0]))
    else:
        await db.execute(text(INSERT_EMAIL), rows)
        await record_events(db, events, set_last_event=False)


def to_out(row: Any, events: list[EmailEventOut] | None = None) -> EmailOut:
    """The Resend shape of an email row."""
    return EmailOut(
        id=str(row.id), from_=row.from_address, to=list(row.to_addresses), cc=list(row.cc_addresses),
        bcc=list(row.bcc_addresses), reply_to=list(row.reply_to), created_at=iso(row.created_at) or "",
        subject=row.subject, html=row.html, text=row.text_body, last_event=row.last_event,
        message_id=row.message_id, scheduled_at=iso(row.scheduled_at),
        tags=[Tag(name=t["name"], value=t.get("value", "")) for t in row.tags or []], events=events,
    )


async def _row(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID, lock: bool = False) -> Any:
    row = (await db.execute(text(
        f"SELECT {_COLUMNS} FROM emails WHERE team_id = :t AND id = :e" + (" FOR UPDATE" if lock else "")),
        {"t": team_id, "e": email_id})).first()
    if row is None:
        raise ApiError(404, "not_found", "Email not found")
    return row


async def get_email(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> EmailOut:
    """One email of the team with its event history, oldest first."""
    row = await _row(db, team_id, email_id)
    events = (await db.execute(text(
        "SELECT type, created_at, recipient, detail FROM email_events WHERE email_id = :e AND team_id = :t "
        "ORDER BY seq"), {"e": email_id, "t": team_id})).all()
    return to_out(row, [EmailEventOut(type=e.type, created_at=iso(e.created_at) or "", recipient=e.recipient,
                                      detail={k: v for k, v in (e.detail or {}).items()
                                              if isinstance(v, str | int | bool) or v is None})
                        for e in events])


async def list_emails(
    db: AsyncSession, team_id: uuid.UUID, limit: int, after: uuid.UUID | None, before: uuid.UUID | None
) -> tuple[list[EmailOut], bool]:
    """A page of the team's emails, newest first; `after`/`before` are ids of the previous page's ends."""
    params: dict[str, Any] = {"t": team_id, "n": limit + 1}
    where, order = "", "DESC"
    if after is not None:
        where, params["c"] = " AND (created_at, id) < (SELECT created_at, id FROM emails WHERE id = :c)", after
    elif before is not None:
        where, order, params["c"] = (" AND (created_at, id) > (SELECT created_at, id FROM emails WHERE id = :c)",
                                     "ASC", before)
    rows = list((await db.execute(text(
        f"SELECT {_COLUMNS} FROM emails WHERE team_id = :t{where} ORDER BY created_at {order}, id {order} LIMIT :n"),
        params)).all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    return [to_out(r) for r in rows], has_more


def _summary(row: Any, team_id: uuid.UUID) -> EmailSummary:
    return EmailSummary(id=row.id, team_id=team_id, from_address=row.from_address, to_addresses=list(row.to_addresses),
                        subject=row.subject, created_at=row.created_at, tags=list(row.tags or []))


async def _scheduled(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> Any:
    row = await _row(db, team_id, email_id, lock=True)
    if row.state != "queued" or row.scheduled_at is None or row.scheduled_at <= datetime.now(UTC):
        raise ApiError(422, "validation_error", "Only an email scheduled for later can be changed or canceled")
    return row


async def reschedule(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID, scheduled_at: str) -> None:
    """Move a scheduled email to a new time (now, if the time has passed)."""
    row = await _scheduled(db, team_id, email_id)
    when = parse_schedule(scheduled_at) or datetime.now(UTC)
    await db.execute(text("UPDATE emails SET scheduled_at = :w, next_attempt_at = :w, updated_at = now() "
                          "WHERE id = :e"), {"w": when, "e": row.id})
    await record_events(db, [Event(_summary(row, team_id), "scheduled", detail={"scheduled_at": when.isoformat()})])


async def cancel(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> None:
    """Cancel a scheduled email: it will never be sent."""
    row = await _scheduled(db, team_id, email_id)
    await db.execute(text("UPDATE emails SET state = 'canceled', updated_at = now() WHERE id = :e"), {"e": row.id})
    await record_events(db, [Event(_summary(row, team_id), "canceled")])
