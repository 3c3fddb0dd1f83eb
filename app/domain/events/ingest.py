"""Applying Postfix log records and DSN/ARF reports to emails: events, MTA acceptance, suppressions, and how far
the mail host's Postfix log has been applied."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.events import repository
from app.domain.events.ignored import IgnoredReport, record_ignored
from app.domain.events.integrity import (
    UNKNOWN_EMAIL,
    UNPARSEABLE,
    SentEmail,
    check,
    named_email,
    reported_addresses,
)
from app.domain.events.postfix_log import Accepted, Delivery, MessageIdSeen, logged_at, parse_line
from app.domain.events.recorder import EmailSummary, Event, record_events
from app.domain.events.reports import RecipientStatus, Report, parse_report
from app.domain.suppressions import services as suppressions
from app.host_layout import mail_host_name

__all__ = ["IDLE_SECONDS", "POSITION_SAVE_SECONDS", "UNREACHABLE", "ReportOutcome", "apply_report", "follow",
           "ingest_lines"]

UNREACHABLE = (OSError, OperationalError, InterfaceError)
# The log position is written at most this often while lines flow; after IDLE_SECONDS without a line, every
# line logged before then has been applied (the journal hands lines on within milliseconds).
POSITION_SAVE_SECONDS = 1.0
IDLE_SECONDS = 5.0
_T = TypeVar("_T")
_END = object()

logger = logging.getLogger("postyard.ingest")


def _summary(row: Any) -> EmailSummary:
    return EmailSummary(id=row.id, team_id=row.team_id, from_address=row.from_address,
                        to_addresses=list(row.to_addresses), subject=row.subject, created_at=row.created_at,
                        tags=list(row.tags or []))


async def _delivery(conn: AsyncConnection, record: Delivery) -> bool:
    row = await repository.email_by_queue_id(conn, record.queue_id)
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
        return await repository.record_queue_id(conn, record.message_id, record.queue_id)
    if isinstance(record, Accepted):
        return await repository.record_mta_acceptance(conn, record.queue_id, record.sender)
    if isinstance(record, Delivery):
        return await _delivery(conn, record)
    return False


async def _record_position(engine: AsyncEngine, mail_host: str, logged_through: datetime) -> None:
    async with engine.begin() as conn:
        await repository.record_log_position(conn, mail_host, logged_through)


async def ingest_lines(engine: AsyncEngine, lines: Iterable[str], mail_host: str | None = None) -> int:
    """Apply log lines in order, each in its own transaction, then record the last one's time (when the lines
    carry one) as `mail_host`'s log position; returns how many concerned our emails."""
    applied, position = 0, None
    for line in lines:
        position = logged_at(line) or position
        if (record := parse_line(line)) is not None:
            async with engine.begin() as conn:
                applied += await _apply(conn, record)
    if position is not None:
        await _record_position(engine, mail_host or mail_host_name(), position)
    return applied


async def _retrying(work: Callable[[], Awaitable[_T]], retry_delay: float) -> _T:
    while True:
        try:
            return await work()
        except UNREACHABLE:
            logger.warning("database unreachable; retrying the log line")
            await asyncio.sleep(retry_delay)


async def _next_line(lines: AsyncIterator[str]) -> object:
    try:
        return await anext(lines)
    except StopAsyncIteration:
        return _END


async def _lines_or_idle(lines: AsyncIterator[str], idle_seconds: float) -> AsyncIterator[str | None]:
    """The lines, and None each time `idle_seconds` pass without one. The next line is asked for only once the
    consumer is done with the last (the journal reader saves its cursor then)."""
    pending = asyncio.ensure_future(_next_line(lines))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=idle_seconds)
            if not done:
                yield None
                continue
            if (line := pending.result()) is _END:
                return
            yield str(line)
            pending = asyncio.ensure_future(_next_line(lines))
    finally:
        pending.cancel()


async def follow(engine: AsyncEngine, lines: AsyncIterator[str], retry_delay: float = 5.0,
                 mail_host: str | None = None, idle_seconds: float = IDLE_SECONDS) -> int:
    """Apply a stream of log lines (e.g. `journalctl -f -u postfix@-`) until it ends; retries DB errors.

    Also records how far the log has been applied, as `mail_host`'s log position (see
    app/domain/emails/outbox.py): the time of the last line applied (lines that carry their time), and, once
    the stream has been quiet for `idle_seconds`, the start of that quiet time.
    """
    mail_host = mail_host or mail_host_name()
    applied, position, saved_at = 0, None, 0.0
    async for line in _lines_or_idle(lines, idle_seconds):
        if line is None:
            position = datetime.now(UTC) - timedelta(seconds=idle_seconds)
        # Most lines (connections, queue removals) are about no message's fate: no transaction for them.
        elif (record := parse_line(line)) is not None:
            applied += await _retrying(partial(_apply_in_transaction, engine, record), retry_delay)
        if line is not None:
            position = logged_at(line) or position
        if position is not None and (line is None or time.monotonic() - saved_at >= POSITION_SAVE_SECONDS):
            await _retrying(partial(_record_position, engine, mail_host, position), retry_delay)
            saved_at, position = time.monotonic(), None
    return applied


async def _apply_in_transaction(engine: AsyncEngine, record: MessageIdSeen | Accepted | Delivery) -> bool:
    async with engine.begin() as conn:
        return await _apply(conn, record)


@dataclass(frozen=True)
class ReportOutcome:
    """What a report did: the email it was applied to and for which recipients, or why it was ignored."""

    report: Report | None
    email_id: uuid.UUID | None = None
    applied: list[str] = field(default_factory=list)
    ignored: str | None = None


async def _apply_statuses(conn: AsyncConnection, summary: EmailSummary, report: Report,
                          statuses: list[RecipientStatus]) -> None:
    if report.kind == "complaint":
        recipients = [s.address for s in statuses]
        await record_events(conn, [Event(summary, "complained", recipient=r, unique=True,
                                         detail={"feedback_type": report.feedback_type or "abuse"})
                                   for r in recipients])
        await suppressions.add(conn, summary.team_id, recipients, "complaint", summary.id, validate=False)
        return
    events = []
    for status in statuses:
        kind = {"failed": "bounced", "delayed": "delivery_delayed", "delivered": "delivered"}.get(status.action)
        if kind is None:
            continue
        detail = {"status": status.status, "diagnostic": status.diagnostic}
        if kind == "bounced":
            detail["type"] = "hard" if status.hard else "soft"
        events.append(Event(summary, kind, recipient=status.address, detail=detail,
                            unique=kind != "delivery_delayed"))
    await record_events(conn, events)
    hard = [s.address for s in statuses if s.hard]
    if hard:
        await suppressions.add(conn, summary.team_id, hard, "hard_bounce", summary.id, validate=False)


async def _ignore(conn: AsyncConnection, report: Report, reason: str, addresses: list[str],
                  email: Any = None) -> ReportOutcome:
    await record_ignored(conn, IgnoredReport(
        kind=report.kind, reason=reason, team_id=email.team_id if email else None,
        email_id=email.id if email else None, reported_addresses=addresses, sent_to=report.sent_to,
        returned_message_id=report.message_id))
    return ReportOutcome(report, email.id if email else None, ignored=reason)


async def apply_report(engine: AsyncEngine, raw: bytes, envelope_recipient: str | None = None) -> ReportOutcome:
    """Apply a DSN or ARF report to the email it names, for that email's recipients only.

    Bounces, delays and complaints become events; hard bounces and complainers are suppressed. A report
    that does not name the email by its VERP address and (when it quotes it) its Message-ID changes
    nothing, and names of addresses the email was not sent to are skipped: both are recorded as ignored.
    """
    try:
        report = parse_report(raw, envelope_recipient)
    except Exception:  # noqa: BLE001 - any failure to read a message from outside makes it unreadable
        async with engine.begin() as conn:
            await record_ignored(conn, IgnoredReport(kind="unknown", reason=UNPARSEABLE, sent_to=envelope_recipient))
        return ReportOutcome(None, ignored=UNPARSEABLE)
    if report is None:
        return ReportOutcome(None)
    async with engine.begin() as conn:
        named = named_email(report)
        if isinstance(named, str):
            return await _ignore(conn, report, named, reported_addresses(report))
        row = await repository.email_by_id(conn, named)
        if row is None:
            return await _ignore(conn, report, UNKNOWN_EMAIL, reported_addresses(report))
        verdict = check(report, SentEmail(row.id, row.envelope_from, row.message_id, tuple(row.recipients)))
        await _apply_statuses(conn, _summary(row), report, verdict.statuses)
        if verdict.ignored is not None:
            await _ignore(conn, report, verdict.ignored, verdict.ignored_addresses, row)
        return ReportOutcome(report, row.id, [s.address for s in verdict.statuses], verdict.ignored)
