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
    "AFTER_SENT", "INSERT_EVENTS_PARAMETERS", "delete_ignored_reports_older_than", "email_by_id", "emails_by_queue_id",
    "events_recorded", "ignored_report_totals", "insert_events", "insert_ignored_report", "record_log_position",
    "record_mta_acceptances", "record_queue_ids",
]

_EMAIL_COLUMNS = ("id, team_id, from_address, to_addresses, subject, created_at, tags, envelope_from, message_id, "
                  "recipients")
_EMAIL = f"SELECT {_EMAIL_COLUMNS} FROM emails "
# The newest email Postfix queued under each id.
# A queue id is Postfix's on one mail host only: an email is matched on the host that submitted it.
_EMAILS_BY_QUEUE_ID = text(f"SELECT DISTINCT ON (queue_id) queue_id, {_EMAIL_COLUMNS} FROM emails "
                           "WHERE submitted_on = :mail_host AND queue_id = ANY(:queue_ids) "
                           "ORDER BY queue_id, created_at DESC")
_EMAIL_BY_ID = text(_EMAIL + "WHERE id = :email_id")
# Postfix's cleanup logs the Message-ID with the queue id it gave the message.
_RECORD_QUEUE_IDS = text("""
UPDATE emails e SET queue_id = s.queue_id
FROM unnest(CAST(:message_ids AS text[]), CAST(:queue_ids AS text[])) AS s(message_id, queue_id)
WHERE e.message_id = s.message_id AND e.submitted_on = :mail_host AND e.state IN ('sending', 'queued', 'sent')
  AND (e.queue_id IS NULL OR e.state = 'sending')
""")
# qmgr logs the sender once the queue file is committed: Postfix has the message. The worker usually recorded
# that with `sent` already: then the row is not written again.
_RECORD_MTA_ACCEPTANCES = text("""
UPDATE emails e SET mta_accepted = true
FROM unnest(CAST(:queue_ids AS text[]), CAST(:senders AS text[])) AS s(queue_id, sender)
WHERE e.submitted_on = :mail_host AND e.queue_id = s.queue_id AND lower(e.envelope_from) = lower(s.sender)
  AND NOT e.mta_accepted
""")
# How far the log follower of a mail host has applied its Postfix log (see app/domain/emails/outbox.py).
_RECORD_LOG_POSITION = text("""
INSERT INTO postfix_log_positions AS p (mail_host, logged_through) VALUES (:mail_host, :logged_through)
ON CONFLICT (mail_host) DO UPDATE SET logged_through = greatest(p.logged_through, EXCLUDED.logged_through),
                                      updated_at = now()
""")
_EVENTS_RECORDED = text("""
SELECT ev.email_id, ev.type, ev.recipient FROM email_events ev
JOIN unnest(CAST(:email_ids AS uuid[]), CAST(:types AS text[]), CAST(:recipients AS text[]))
     AS k(email_id, type, recipient)
  ON ev.email_id = k.email_id AND ev.type = k.type AND ev.recipient IS NOT DISTINCT FROM k.recipient
""")

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


async def emails_by_queue_id(conn: Executor, mail_host: str, queue_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """The newest email `mail_host`'s Postfix queued under each of these ids, by queue id (ids of no email are
    left out)."""
    rows = (await conn.execute(_EMAILS_BY_QUEUE_ID, {"mail_host": mail_host, "queue_ids": list(queue_ids)})
            ).all() if queue_ids else []
    return {row.queue_id: row for row in rows}


async def email_by_id(conn: Executor, email_id: uuid.UUID) -> Row[Any] | None:
    """An email, whatever its team."""
    return (await conn.execute(_EMAIL_BY_ID, {"email_id": email_id})).first()


async def record_queue_ids(conn: Executor, mail_host: str, queue_ids: dict[str, str]) -> int:
    """Give each email `mail_host` submitted with one of these Message-IDs its Postfix queue id there; how many
    were ours (and unsettled)."""
    if not queue_ids:
        return 0
    return int((await conn.execute(_RECORD_QUEUE_IDS, {"mail_host": mail_host, "message_ids": list(queue_ids),
                                                       "queue_ids": list(queue_ids.values())})).rowcount or 0)


async def record_mta_acceptances(conn: Executor, mail_host: str, accepted: set[tuple[str, str]]) -> int:
    """Mark the emails queued under these (queue id, sender) pairs on `mail_host` as accepted by its Postfix; how
    many were not yet marked."""
    if not accepted:
        return 0
    return int((await conn.execute(_RECORD_MTA_ACCEPTANCES, {"mail_host": mail_host,
                                                             "queue_ids": [q for q, _ in accepted],
                                                             "senders": [s for _, s in accepted]})).rowcount or 0)


async def record_log_position(conn: Executor, mail_host: str, logged_through: datetime) -> None:
    """Every line `mail_host`'s Postfix logged up to `logged_through` has been applied."""
    await conn.execute(_RECORD_LOG_POSITION, {"mail_host": mail_host, "logged_through": logged_through})


async def events_recorded(db: Executor, keys: Sequence[tuple[uuid.UUID, str, str | None]]
                          ) -> set[tuple[uuid.UUID, str, str | None]]:
    """Which of these (email id, type, recipient) events are already recorded."""
    if not keys:
        return set()
    rows = await db.execute(_EVENTS_RECORDED, {"email_ids": [k[0] for k in keys], "types": [k[1] for k in keys],
                                               "recipients": [k[2] for k in keys]})
    return {(row.email_id, row.type, row.recipient) for row in rows}


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
