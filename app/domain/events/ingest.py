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
from app.domain.events.recorder import EmailSummary, Event, record_events, summary_of
from app.domain.events.reports import RecipientStatus, Report, parse_report
from app.domain.suppressions import repository as suppression_list
from app.domain.suppressions import services as suppressions
from app.host_layout import mail_host_name

__all__ = ["BATCH_LINES", "BATCH_SECONDS", "IDLE_SECONDS", "UNREACHABLE", "JournalEntry", "ReportOutcome",
           "apply_report", "follow", "ingest_lines"]

UNREACHABLE = (OSError, OperationalError, InterfaceError)
# The lines read within BATCH_SECONDS (at most BATCH_LINES) are applied in one transaction; after IDLE_SECONDS
# without a line, every line logged before then has been applied (the journal hands lines on within milliseconds).
BATCH_SECONDS = 0.5
BATCH_LINES = 2000
IDLE_SECONDS = 5.0
_T = TypeVar("_T")
_END = object()

logger = logging.getLogger("postyard.ingest")


def _delivery_event(row: Any, record: Delivery) -> Event:
    detail = {"dsn": record.dsn, "relay": record.relay, "reply": record.reply, "status": record.dsn}
    if record.event == "bounced":
        detail |= {"type": "hard" if record.hard_bounce else "soft", "diagnostic": record.reply}
    return Event(summary_of(row), record.event, recipient=record.recipient, detail=detail,
                 unique=record.event != "delivery_delayed")


async def _deliveries(conn: AsyncConnection, mail_host: str, records: list[Delivery]) -> int:
    """Record the delivery results of our emails as events (hard bounces also suppress); how many were ours."""
    emails = await repository.emails_by_queue_id(conn, mail_host, sorted({r.queue_id for r in records}))
    ours = [(emails[r.queue_id], r) for r in records if r.queue_id in emails]
    await record_events(conn, [_delivery_event(row, record) for row, record in ours])
    await suppression_list.insert_suppressions(conn, [
        suppression_list.NewSuppression(row.team_id, record.recipient.lower(), "hard_bounce", row.id)
        for row, record in ours if record.hard_bounce])
    return len(ours)


async def _apply(conn: AsyncConnection, mail_host: str, records: list[MessageIdSeen | Accepted | Delivery]) -> int:
    """Apply `mail_host`'s parsed Postfix log lines with one statement per kind, in the order Postfix logs a
    message's lines: cleanup's queue ids, then qmgr's acceptances, then the delivery results. Returns how many
    concerned our emails."""
    queue_ids = {r.message_id: r.queue_id for r in records if isinstance(r, MessageIdSeen)}  # a Message-ID's last
    accepted = {(r.queue_id, r.sender) for r in records if isinstance(r, Accepted)}
    applied = await repository.record_queue_ids(conn, mail_host, queue_ids)
    applied += await repository.record_mta_acceptances(conn, mail_host, accepted)
    return applied + await _deliveries(conn, mail_host, [r for r in records if isinstance(r, Delivery)])


@dataclass(frozen=True)
class JournalEntry:
    """A log line read from the journal, with the journal's cursor of it (where a restart resumes after)."""

    line: str
    cursor: str


@dataclass
class _Batch:
    """The lines read within one window: their records, the last time they carry, the last cursor."""

    records: list[MessageIdSeen | Accepted | Delivery] = field(default_factory=list)
    position: datetime | None = None
    cursor: str | None = None
    lines: int = 0

    def add(self, line: str, cursor: str | None = None) -> None:
        if (record := parse_line(line)) is not None:
            self.records.append(record)
        self.position = logged_at(line) or self.position
        self.cursor = cursor or self.cursor
        self.lines += 1


async def _apply_batch(engine: AsyncEngine, batch: _Batch, mail_host: str) -> int:
    """Apply the batch's records and record its log position, in one transaction; how many records concerned our
    emails. Most lines (connections, queue removals) carry no record and cost nothing here."""
    if not batch.records and batch.position is None:
        return 0
    async with engine.begin() as conn:
        applied = await _apply(conn, mail_host, batch.records)
        if batch.position is not None:
            await repository.record_log_position(conn, mail_host, batch.position)
    return applied


async def ingest_lines(engine: AsyncEngine, lines: Iterable[str], mail_host: str | None = None) -> int:
    """Apply log lines in order, in one transaction that also records the last one's time (when the lines carry
    one) as `mail_host`'s log position; returns how many concerned our emails."""
    batch = _Batch()
    for line in lines:
        batch.add(line)
    return await _apply_batch(engine, batch, mail_host or mail_host_name())


async def _retrying(work: Callable[[], Awaitable[_T]], retry_delay: float) -> _T:
    while True:
        try:
            return await work()
        except UNREACHABLE:
            logger.warning("database unreachable; retrying the log lines")
            await asyncio.sleep(retry_delay)


async def _next_line(lines: AsyncIterator[str | JournalEntry]) -> object:
    try:
        return await anext(lines)
    except StopAsyncIteration:
        return _END


async def follow(engine: AsyncEngine, lines: AsyncIterator[str | JournalEntry], retry_delay: float = 5.0,
                 mail_host: str | None = None, idle_seconds: float = IDLE_SECONDS,
                 batch_seconds: float = BATCH_SECONDS, committed: Callable[[str], None] | None = None) -> int:
    """Apply a stream of log lines (e.g. `journalctl -f -u postfix@-`) until it ends; retries DB errors.

    The lines read within `batch_seconds` of a batch's first (at most BATCH_LINES of them) are applied in one
    transaction, which also records how far the log has been applied, as `mail_host`'s log position (see
    app/domain/emails/outbox.py): the time of the batch's last line that carries one. Once that transaction
    has committed, `committed` gets the batch's last journal cursor, so that a stop or crash at any moment
    replays at most the batch in flight (applying is idempotent) and skips nothing. Once the stream has been
    quiet for `idle_seconds`, the position is the start of that quiet time.
    """
    mail_host = mail_host or mail_host_name()
    applied, batch, opened = 0, _Batch(), 0.0

    async def flush() -> None:
        nonlocal applied, batch
        applied += await _retrying(partial(_apply_batch, engine, batch, mail_host), retry_delay)
        if committed is not None and batch.cursor is not None:
            committed(batch.cursor)
        batch = _Batch()

    pending = asyncio.ensure_future(_next_line(lines))
    try:
        while True:
            wait = batch_seconds - (time.monotonic() - opened) if batch.lines else idle_seconds
            done, _ = await asyncio.wait({pending}, timeout=max(wait, 0.0))
            if not done:
                if not batch.lines:  # quiet: every line logged before then has been applied
                    batch.position = datetime.now(UTC) - timedelta(seconds=idle_seconds)
                await flush()
                continue
            if (item := pending.result()) is _END:
                await flush()
                return applied
            if not batch.lines:
                opened = time.monotonic()
            if isinstance(item, JournalEntry):
                batch.add(item.line, item.cursor)
            else:
                batch.add(str(item))
            pending = asyncio.ensure_future(_next_line(lines))
            if batch.lines >= BATCH_LINES or time.monotonic() - opened >= batch_seconds:
                await flush()
    finally:
        pending.cancel()


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
        await _apply_statuses(conn, summary_of(row), report, verdict.statuses)
        if verdict.ignored is not None:
            await _ignore(conn, report, verdict.ignored, verdict.ignored_addresses, row)
        return ReportOutcome(report, row.id, [s.address for s in verdict.statuses], verdict.ignored)
