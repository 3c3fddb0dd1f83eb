"""The events' SQL: recording events with their webhook deliveries in one statement, applying Postfix's log,
and the ignored reports; raw for the send path's and the log follower's speed, with named parameters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor

__all__ = [
    "AFTER_SENT", "INSERT_EVENTS_PARAMETERS", "delete_ignored_reports_older_than", "email_by_id", "email_by_queue_id",
    "event_recorded", "ignored_report_totals", "insert_events", "insert_ignored_report", "record_log_position",
    "record_mta_acceptance", "record_queue_id",
]

_EMAIL = ("SELECT id, team_id, from_address, to_addresses, subject, created_at, tags, envelope_from, message_id, "
          "recipients FROM emails ")
_EMAIL_BY_QUEUE_ID = text(_EMAIL + "WHERE queue_id = :queue_id ORDER BY created_at DESC LIMIT 1")
_EMAIL_BY_ID = text(_EMAIL + "WHERE id = :email_id")
# Postfix's cleanup logs the Message-ID with the queue id it gave the message.
_RECORD_QUEUE_ID = text("UPDATE emails SET queue_id = :queue_id WHERE message_id = :message_id "
                        "AND state IN ('sending', 'queued', 'sent') AND (queue_id IS NULL OR state = 'sending')")
# qmgr logs the sender once the queue file is committed: Postfix has the message. The worker usually recorded
# that with `sent` already: then the row is not written again.
_RECORD_MTA_ACCEPTANCE = text("UPDATE emails SET mta_accepted = true "
                              "WHERE queue_id = :queue_id AND lower(envelope_from) = lower(:sender) "
                              "AND NOT mta_accepted")
# How far the log follower of a mail host has applied its Postfix log (see app/domain/emails/outbox.py).
_RECORD_LOG_POSITION = text("""
INSERT INTO postfix_log_positions AS p (mail_host, logged_through) VALUES (:mail_host, :logged_through)
ON CONFLICT (mail_host) DO UPDATE SET logged_through = greatest(p.logged_through, EXCLUDED.logged_through),
                                      updated_at = now()
""")
_EVENT_RECORDED = text("SELECT 1 FROM email_events WHERE email_id = :email_id AND type = :type "
                       "AND recipient IS NOT DISTINCT FROM :recipient LIMIT 1")

# The events Postfix's log or a report can record before the worker records `sent`: `sent` does not replace them
# as an email's last event.
AFTER_SENT = "('delivered', 'delivery_delayed', 'bounced', 'complained')"
_INSERT_EVENTS = """
WITH {first_step}recorded AS (
    INSERT INTO email_events (id, team_id, email_id, type, recipient, detail)
    SELECT gen_random_uuid(), e.team, e.email, e.type, e.recipient, CAST(e.detail AS jsonb)
    FROM unnest(CAST(:team_ids AS uuid[]), CAST(:email_ids AS uuid[]), CAST(:types AS text[]),
                CAST(:recipients AS text[]), CAST(:details AS text[])) WITH ORDINALITY
         AS e(team, email, type, recipient, detail, n)
    ORDER BY e.n
), moved AS (
    UPDATE emails SET last_event = l.type, updated_at = now()
    FROM unnest(CAST(:last_event_email_ids AS uuid[]), CAST(:last_event_types AS text[])) AS l(email, type)
    WHERE emails.id = l.email
      -- Postfix can deliver (and the log follower record it) before the worker records `sent`.
      AND NOT (l.type = 'sent' AND emails.last_event IN {AFTER_SENT})
)
INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload)
SELECT gen_random_uuid(), w.team_id, w.id, 'msg_' || replace(CAST(gen_random_uuid() AS text), '-', ''),
       'email.' || e.type, e.payload
FROM unnest(CAST(:team_ids AS uuid[]), CAST(:types AS text[]), CAST(:payloads AS text[])) AS e(team, type, payload)
JOIN webhooks w ON w.team_id = e.team AND w.status = 'enabled' AND ('email.' || e.type) = ANY(w.events)
"""
_INSERT_EVENTS_ONLY = text(_INSERT_EVENTS.format(first_step="", AFTER_SENT=AFTER_SENT))
INSERT_EVENTS_PARAMETERS = frozenset({"team_ids", "email_ids", "types", "recipients", "details", "payloads",
                                      "last_event_email_ids", "last_event_types"})

_INSERT_IGNORED_REPORT = text("""
WITH recorded AS (
    INSERT INTO ignored_reports (id, team_id, email_id, kind, reason, reported_addresses, sent_to,
                                 returned_message_id)
    VALUES (:report_id, :team_id, :email_id, :kind, :reason, :reported_addresses, :sent_to, :returned_message_id)
)
INSERT INTO ignored_report_totals (reason, count) VALUES (:reason, 1)
ON CONFLICT (reason) DO UPDATE SET count = ignored_report_totals.count + 1
""")
_DELETE_IGNORED_REPORTS = text("DELETE FROM ignored_reports WHERE received_at < now() - make_interval(days => :days)")
_IGNORED_REPORT_TOTALS = text("SELECT reason, count FROM ignored_report_totals ORDER BY reason")


async def email_by_queue_id(conn: Executor, queue_id: str) -> Row[Any] | None:
    """The newest email Postfix queued under this id."""
    return (await conn.execute(_EMAIL_BY_QUEUE_ID, {"queue_id": queue_id})).first()


async def email_by_id(conn: Executor, email_id: uuid.UUID) -> Row[Any] | None:
    """An email, whatever its team."""
    return (await conn.execute(_EMAIL_BY_ID, {"email_id": email_id})).first()


async def record_queue_id(conn: Executor, message_id: str, queue_id: str) -> bool:
    """Give the email with this Message-ID Postfix's queue id; whether one was ours (and unsettled)."""
    return bool((await conn.execute(_RECORD_QUEUE_ID, {"queue_id": queue_id, "message_id": message_id})).rowcount)


async def record_mta_acceptance(conn: Executor, queue_id: str, sender: str) -> bool:
    """Mark the email queued under this id and sender as accepted by Postfix; whether one was not yet marked."""
    return bool((await conn.execute(_RECORD_MTA_ACCEPTANCE, {"queue_id": queue_id, "sender": sender})).rowcount)


async def record_log_position(conn: Executor, mail_host: str, logged_through: datetime) -> None:
    """Every line `mail_host`'s Postfix logged up to `logged_through` has been applied."""
    await conn.execute(_RECORD_LOG_POSITION, {"mail_host": mail_host, "logged_through": logged_through})


async def event_recorded(db: Executor, email_id: uuid.UUID, type_: str, recipient: str | None) -> bool:
    """Whether the email already has an event of this type for this recipient."""
    return (await db.execute(_EVENT_RECORDED, {"email_id": email_id, "type": type_, "recipient": recipient})
            ).first() is not None


async def insert_events(db: Executor, *, team_ids: Sequence[uuid.UUID], email_ids: Sequence[uuid.UUID],
                        types: Sequence[str], recipients: Sequence[str | None], details: Sequence[str],
                        payloads: Sequence[str], last_event_email_ids: Sequence[uuid.UUID],
                        last_event_types: Sequence[str], first_step: tuple[str, dict[str, Any]] | None = None) -> None:
    """Insert events (details and payloads as JSON text), move emails' `last_event`, queue webhook deliveries.

    One statement; `first_step` is an INSERT and its parameters run as its first step, whose parameter
    names must not be among INSERT_EVENTS_PARAMETERS.
    """
    if first_step is not None and INSERT_EVENTS_PARAMETERS & first_step[1].keys():
        raise ValueError("parameter names taken by insert_events: "
                         f"{sorted(INSERT_EVENTS_PARAMETERS & first_step[1].keys())}")
    statement = _INSERT_EVENTS_ONLY if first_step is None else text(
        _INSERT_EVENTS.format(first_step=f"inserted AS ({first_step[0]}), ", AFTER_SENT=AFTER_SENT))
    await db.execute(statement, {
        **(first_step[1] if first_step else {}), "team_ids": list(team_ids), "email_ids": list(email_ids),
        "types": list(types), "recipients": list(recipients), "details": list(details), "payloads": list(payloads),
        "last_event_email_ids": list(last_event_email_ids), "last_event_types": list(last_event_types),
    })


async def insert_ignored_report(db: Executor, *, team_id: uuid.UUID | None, email_id: uuid.UUID | None, kind: str,
                                reason: str, reported_addresses: Sequence[str], sent_to: str | None,
                                returned_message_id: str | None) -> None:
    """Store a report that changed nothing and count it under its reason."""
    await db.execute(_INSERT_IGNORED_REPORT, {
        "report_id": uuid.uuid4(), "team_id": team_id, "email_id": email_id, "kind": kind, "reason": reason,
        "reported_addresses": list(reported_addresses), "sent_to": sent_to,
        "returned_message_id": returned_message_id})


async def delete_ignored_reports_older_than(conn: Executor, days: int) -> int:
    """Delete ignored reports received more than `days` ago (their totals stay); how many."""
    return int((await conn.execute(_DELETE_IGNORED_REPORTS, {"days": days})).rowcount or 0)


async def ignored_report_totals(db: Executor) -> list[Row[Any]]:
    """How many reports were ignored, by reason."""
    return list((await db.execute(_IGNORED_REPORT_TOTALS)).all())
