"""Applying Postfix log records and DSN/ARF reports to emails: events, MTA acceptance, suppressions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.events.postfix_log import Accepted, Delivery, MessageIdSeen, parse_line
from app.domain.events.recorder import EmailSummary, Event, record_events
from app.domain.events.reports import Report, parse_report
from app.domain.suppressions import services as suppressions

__all__ = ["UNREACHABLE", "apply_report", "follow", "ingest_lines"]

UNREACHABLE = (OSError, OperationalError, InterfaceError)

logger = logging.getLogger("postyard.ingest")
_EMAIL = ("SELECT id, team_id, from_address, to_addresses, subject, created_at, tags FROM emails ")


def _summary(row: Any) -> EmailSummary:
    return EmailSummary(id=row.id, team_id=row.team_id, from_address=row.from_address,
                        to_addresses=list(row.to_addresses), subject=row.subject, created_at=row.created_at,
                        tags=list(row.tags or []))


async def _delivery(conn: AsyncConnection, record: Delivery) -> bool:
    row = (await conn.execute(text(_EMAIL + "WHERE queue_id = :q ORDER BY created_at DESC LIMIT 1"),
                              {"q": record.queue_id})).first()
    if row is None:
        return False
    detail = {"dsn": record.dsn, "relay": record.relay, "reply": record.reply, "status": record.dsn}
    if record.event == "bounced":
        detail |= {"type": "hard" if record.hard_bounce else "soft", "diagnostic": record.reply}
    await record_events(conn, [Event(_summary(row), record.event, recipient=record.recipient, detail=detail,
                                     unique=record.event != "delivery_delayed")])
    if record.hard_bounce:
        await suppressions.add(conn, row.team_id, [record.recipient], "hard_bounce", row.id, validate=False)
    return True


async def _apply(conn: AsyncConnection, record: MessageIdSeen | Accepted | Delivery) -> bool:
    """Apply one parsed Postfix log line; returns whether it concerned one of our emails."""
    if isinstance(record, MessageIdSeen):
        result = await conn.execute(text(
            "UPDATE emails SET queue_id = :q WHERE message_id = :m AND state IN ('sending', 'queued', 'sent') "
            "AND (queue_id IS NULL OR state = 'sending')"), {"q": record.queue_id, "m": record.message_id})
        return bool(result.rowcount)
    if isinstance(record, Accepted):
        result = await conn.execute(text(
            "UPDATE emails SET mta_accepted = true WHERE queue_id = :q AND lower(envelope_from) = lower(:s)"),
            {"q": record.queue_id, "s": record.sender})
        return bool(result.rowcount)
    if isinstance(record, Delivery):
        return await _delivery(conn, record)
    return False


async def ingest_lines(engine: AsyncEngine, lines: Iterable[str]) -> int:
    """Apply log lines in order, each in its own transaction; returns how many concerned our emails."""
    applied = 0
    for record in filter(None, map(parse_line, lines)):
        async with engine.begin() as conn:
            applied += await _apply(conn, record)
    return applied


async def follow(engine: AsyncEngine, lines: AsyncIterator[str], retry_delay: float = 5.0) -> int:
    """Apply a stream of log lines (e.g. `journalctl -f -u postfix@-`) until it ends; retries DB errors."""
    applied = 0
    async for line in lines:
        # Most lines (connections, queue removals) are about no message's fate: no transaction for them.
        if (record := parse_line(line)) is None:
            continue
        while True:
            try:
                async with engine.begin() as conn:
                    applied += await _apply(conn, record)
                break
            except UNREACHABLE:
                logger.warning("database unreachable; retrying the log line")
                await asyncio.sleep(retry_delay)
    return applied


async def apply_report(engine: AsyncEngine, raw: bytes, envelope_recipient: str | None = None) -> Report | None:
    """Record a DSN's bounces/delays or an ARF complaint on its email; suppress hard bounces and complainers."""
    report = parse_report(raw, envelope_recipient)
    if report is None:
        return None
    async with engine.begin() as conn:
        row = None
        if report.email_id is not None:
            row = (await conn.execute(text(_EMAIL + "WHERE id = :e"), {"e": report.email_id})).first()
        if row is None and report.message_id:
            row = (await conn.execute(text(_EMAIL + "WHERE message_id = :m"), {"m": report.message_id})).first()
        if row is None:
            return None
        summary = _summary(row)
        if report.kind == "complaint":
            recipients = [r.address for r in report.recipients] or list(row.to_addresses)[:1]
            await record_events(conn, [Event(summary, "complained", recipient=r, unique=True,
                                             detail={"feedback_type": report.feedback_type or "abuse"})
                                       for r in recipients])
            await suppressions.add(conn, row.team_id, recipients, "complaint", row.id, validate=False)
            return report
        events = []
        for status in report.recipients:
            kind = {"failed": "bounced", "delayed": "delivery_delayed", "delivered": "delivered"}.get(status.action)
            if kind is None:
                continue
            detail = {"status": status.status, "diagnostic": status.diagnostic}
            if kind == "bounced":
                detail["type"] = "hard" if status.hard else "soft"
            events.append(Event(summary, kind, recipient=status.address, detail=detail,
                                unique=kind != "delivery_delayed"))
        await record_events(conn, events)
        hard = [s.address for s in report.recipients if s.hard]
        if hard:
            await suppressions.add(conn, row.team_id, hard, "hard_bounce", row.id, validate=False)
    return report
