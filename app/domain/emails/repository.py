"""The emails' SQL: statements kept raw for the send path's and the outbox's speed, with named parameters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor
from app.db.keyset_page import newest_first_page
from app.domain.events.repository import AFTER_SENT

__all__ = [
    "INSERT_EMAIL", "Accepted", "NewEmail", "cancel", "claim_due", "claim_idempotency_key", "count_sends",
    "delete_settled_older_than", "email_events", "email_page", "find_email", "insert_emails", "mark_failed",
    "mark_sent", "message_id_taken", "mark_outcome_unknown", "purge_expired_bodies", "recover_expired", "renew_leases",
    "reschedule",
    "resolve_unknown_outcomes", "retry_later",
    "email_mime", "sending_domains_and_suppressed", "stored_idempotent_response",
]


@dataclass(frozen=True)
class NewEmail:
    """One email as it is stored: its columns, by name."""

    email_id: uuid.UUID
    team_id: uuid.UUID
    api_key_id: uuid.UUID | None
    mode: str
    domain_id: uuid.UUID
    from_address: str
    to_addresses: list[str]
    cc_addresses: list[str]
    bcc_addresses: list[str]
    reply_to: list[str]
    subject: str
    html: str | None
    text_body: str | None
    message_id: str
    envelope_from: str
    envelope_recipients: list[str]
    mime: bytes
    state: str
    last_event: str
    scheduled_at: datetime | None
    next_attempt_at: datetime
    now: datetime
    tags: list[dict[str, str]] = field(default_factory=list)

    def parameters(self) -> dict[str, Any]:
        """The bind parameters of INSERT_EMAIL."""
        return {**vars(self), "tags": json.dumps(self.tags), "size": len(self.mime)}


# A string, not a statement: the event recorder runs it as the first step of its own (see record_events).
INSERT_EMAIL = """
INSERT INTO emails (id, team_id, api_key_id, mode, domain_id, from_address, to_addresses, cc_addresses,
                    bcc_addresses, reply_to, subject, html, text_body, tags, message_id, envelope_from, recipients,
                    mime, size, state, last_event, scheduled_at, next_attempt_at, created_at, updated_at)
VALUES (:email_id, :team_id, :api_key_id, :mode, :domain_id, :from_address, :to_addresses, :cc_addresses,
        :bcc_addresses, :reply_to, :subject, :html, :text_body, CAST(:tags AS jsonb), :message_id, :envelope_from,
        :envelope_recipients, :mime, :size, :state, :last_event, :scheduled_at, :next_attempt_at, :now, :now)
"""
_INSERT_EMAIL = text(INSERT_EMAIL)
_COLUMNS = ("id, from_address, to_addresses, cc_addresses, bcc_addresses, reply_to, subject, html, text_body, tags, "
            "message_id, last_event, scheduled_at, created_at, state")

# The send path's one look-up: the team's verified domains among the names, and its suppressed addresses.
_DOMAINS_AND_SUPPRESSED = text("""
SELECT 'domain' AS kind, id, name, return_path, open_tracking, click_tracking FROM domains
WHERE team_id = :team_id AND status = 'verified' AND name = ANY(:domain_names)
UNION ALL
SELECT 'suppressed', NULL, email, reason, false, false FROM suppressions
WHERE team_id = :team_id AND email = ANY(:addresses)
""")
_EVENTS = text("SELECT type, created_at, recipient, detail FROM email_events "
               "WHERE email_id = :email_id AND team_id = :team_id ORDER BY seq")
_RESCHEDULE = text("UPDATE emails SET scheduled_at = :scheduled_at, next_attempt_at = :scheduled_at, "
                   "updated_at = now() WHERE id = :email_id")
_CANCEL = text("UPDATE emails SET state = 'canceled', updated_at = now() WHERE id = :email_id")
_MIME = text("SELECT mime FROM emails WHERE team_id = :team_id AND id = :email_id")
_MESSAGE_ID_TAKEN = text("SELECT 1 FROM emails WHERE message_id = :message_id")

# Both periods in one statement: a row per period that has a quota; a period whose count would pass its
# quota is neither inserted nor updated, so it is missing from RETURNING.
_COUNT_SENDS = text("""
INSERT INTO team_send_counters AS c (team_id, period, period_start, sent)
SELECT :team_id, v.period, v.start, :emails
FROM (VALUES ('day', CAST(:day_start AS date), CAST(:daily_quota AS integer)),
             ('month', CAST(:month_start AS date), CAST(:monthly_quota AS integer))) AS v(period, start, quota)
WHERE v.quota IS NOT NULL AND :emails <= v.quota
ON CONFLICT (team_id, period, period_start) DO UPDATE SET sent = c.sent + EXCLUDED.sent
WHERE c.sent + EXCLUDED.sent <= CASE c.period WHEN 'day' THEN CAST(:daily_quota AS integer)
                                              ELSE CAST(:monthly_quota AS integer) END
RETURNING c.period
""")

_CLAIM_IDEMPOTENCY_KEY = text("""
INSERT INTO idempotency_keys (team_id, key, request_hash, response)
VALUES (:team_id, :key, :request_hash, CAST(:response AS jsonb))
ON CONFLICT (team_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response,
                                         created_at = now()
WHERE idempotency_keys.created_at < now() - make_interval(hours => :ttl_hours)
RETURNING 1
""")
_IDEMPOTENT_RESPONSE = text(
    "SELECT request_hash, response FROM idempotency_keys WHERE team_id = :team_id AND key = :key")

# A claim names the mail host whose Postfix gets the email and forgets an earlier attempt's queue id; an
# email Postfix was seen to accept (mta_accepted) is never claimed again.
_CLAIM_DUE = text("""
UPDATE emails e SET state = 'sending', attempts = e.attempts + 1, updated_at = now(),
       lease_until = now() + make_interval(secs => :lease_seconds), submitted_on = :mail_host, queue_id = NULL
FROM (SELECT id FROM emails WHERE state = 'queued' AND next_attempt_at <= now() AND NOT mta_accepted
        AND team_id <> ALL(ARRAY(SELECT id FROM teams WHERE suspended_at IS NOT NULL))
        AND (mode = 'test' OR EXISTS (SELECT 1 FROM domains d WHERE d.id = emails.domain_id
                                      AND d.team_id = emails.team_id AND d.status = 'verified'
                                      AND greatest(d.verified_at, d.tls_mode_changed_at, '-infinity')
                                          <= now() - make_interval(secs => :settle_seconds)))
      ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED) due
WHERE e.id = due.id
RETURNING e.id, e.team_id, e.mode, e.envelope_from, e.recipients, e.mime, e.attempts, e.from_address,
          e.to_addresses, e.subject, e.created_at, e.tags
""")
# A claim is held while its row is still leased under the attempt that claimed it: not once the lease lapsed
# and recovery left the row to the log (no lease), nor once another worker claimed it again (a later attempt).
_RENEW_LEASES = text("""
UPDATE emails e SET lease_until = now() + make_interval(secs => :lease_seconds)
FROM unnest(CAST(:email_ids AS uuid[]), CAST(:attempts AS integer[])) AS held(id, attempts)
WHERE e.id = held.id AND e.attempts = held.attempts AND e.state = 'sending' AND e.lease_until IS NOT NULL
RETURNING e.id
""")
# An expired lease is an outcome nobody knows: its worker may have handed the email to Postfix just before it
# died. So it is `sent` if Postfix's acceptance was logged, and otherwise waits, unleased, for the log of its
# mail host to be read past the lease's end (see _RESOLVE_UNKNOWN_OUTCOMES); only a test email, which never
# reaches Postfix, goes straight back to the queue.
_RECOVER_EXPIRED = text("""
UPDATE emails e SET state = CASE WHEN e.mta_accepted THEN 'sent' WHEN e.mode = 'test' THEN 'queued'
                                 ELSE 'sending' END,
       sent_at = CASE WHEN e.mta_accepted THEN now() END,
       outcome_unknown_since = CASE WHEN NOT e.mta_accepted AND e.mode <> 'test' THEN e.lease_until END,
       next_attempt_at = now(), lease_until = NULL, updated_at = now()
FROM (SELECT id FROM emails WHERE state = 'sending' AND lease_until < now() FOR UPDATE SKIP LOCKED) expired
WHERE e.id = expired.id
RETURNING e.id, e.team_id, e.state, e.queue_id, e.from_address, e.to_addresses, e.subject, e.created_at, e.tags
""")
_MARK_OUTCOME_UNKNOWN = text(
    "UPDATE emails SET outcome_unknown_since = now(), lease_until = NULL, last_error = :error, updated_at = now() "
    "WHERE id = :email_id AND state = 'sending'")
# Outcomes the log follower settled: Postfix's acceptance was logged (`sent`; also for an email queued again
# whose acceptance was logged late), or its mail host's log was read past the grace without one (`queued`).
_RESOLVE_UNKNOWN_OUTCOMES = text("""
UPDATE emails e SET state = CASE WHEN e.mta_accepted THEN 'sent' ELSE 'queued' END,
       sent_at = CASE WHEN e.mta_accepted THEN now() END, outcome_unknown_since = NULL, next_attempt_at = now(),
       updated_at = now()
FROM (SELECT x.id FROM emails x
      WHERE (x.state = 'sending' AND x.lease_until IS NULL AND x.outcome_unknown_since IS NOT NULL
             AND (x.mta_accepted OR EXISTS (
                 SELECT 1 FROM postfix_log_positions p WHERE p.mail_host = x.submitted_on
                 AND p.logged_through > x.outcome_unknown_since + make_interval(secs => :grace_seconds))))
         OR (x.state = 'queued' AND x.mta_accepted)
      FOR UPDATE SKIP LOCKED) resolved
WHERE e.id = resolved.id
RETURNING e.id, e.team_id, e.state, e.queue_id, e.from_address, e.to_addresses, e.subject, e.created_at, e.tags
""")
# A mail host lost for good: its emails whose outcome its log can no longer show go back to the queue.
_RELEASE_MAIL_HOST = text("""
UPDATE emails SET state = 'queued', outcome_unknown_since = NULL, lease_until = NULL, next_attempt_at = now(),
       updated_at = now()
WHERE submitted_on = :mail_host AND state = 'sending' AND NOT mta_accepted
  AND (lease_until IS NULL OR lease_until < now())
RETURNING id""")
_LOG_SILENT_SECONDS = text("SELECT extract(epoch FROM now() - updated_at) FROM postfix_log_positions "
                           "WHERE mail_host = :mail_host")
_STILL_LEASED = text("SELECT count(*) FROM emails WHERE submitted_on = :mail_host AND state = 'sending' "
                     "AND NOT mta_accepted AND lease_until >= now()")
# A batch's accepted emails in one statement, each row written once: its state and its last event together.
_MARK_SENT = text(f"""
UPDATE emails e SET state = 'sent', queue_id = coalesce(s.queue_id, e.queue_id), mta_accepted = true, sent_at = now(),
       lease_until = NULL, outcome_unknown_since = NULL, last_error = NULL, updated_at = now(),
       last_event = CASE WHEN s.last_event = 'sent' AND e.last_event IN {AFTER_SENT} THEN e.last_event
                         ELSE s.last_event END
FROM unnest(CAST(:email_ids AS uuid[]), CAST(:queue_ids AS text[]), CAST(:last_events AS text[]))
     AS s(id, queue_id, last_event)
WHERE e.id = s.id
""")
_MARK_FAILED = text("UPDATE emails SET state = 'failed', last_event = 'failed', lease_until = NULL, "
                    "last_error = :error, updated_at = now() WHERE id = :email_id")
_RETRY_LATER = text("UPDATE emails SET state = 'queued', lease_until = NULL, last_error = :error, updated_at = now(), "
                    "next_attempt_at = now() + make_interval(secs => :delay_seconds) WHERE id = :email_id")
_PURGE_EXPIRED_BODIES = text("""
UPDATE emails e SET mime = NULL, html = NULL, text_body = NULL, purged_at = now(), updated_at = now()
FROM teams t
WHERE t.id = e.team_id AND e.purged_at IS NULL AND e.state NOT IN ('queued', 'sending')
  AND e.created_at < now() - make_interval(days => t.retention_days)
""")
# Settled emails nothing happened to for `days` days (created, sent and last event before then), up to `batch`
# of them: their events go with them (ON DELETE CASCADE), ignored reports forget them (SET NULL), suppressions
# stay. The DELETE tests the state again, so an email that changed after it was picked is kept.
_DELETE_SETTLED_OLDER_THAN = text("""
DELETE FROM emails e
USING (SELECT x.id FROM emails x
       WHERE x.state IN ('sent', 'failed', 'canceled', 'suppressed') AND x.outcome_unknown_since IS NULL
         AND x.created_at < now() - make_interval(days => :days)
         AND coalesce(x.sent_at, x.created_at) < now() - make_interval(days => :days)
         AND NOT EXISTS (SELECT 1 FROM email_events v WHERE v.email_id = x.id
                         AND v.created_at >= now() - make_interval(days => :days))
       LIMIT :batch) old
WHERE e.id = old.id AND e.state IN ('sent', 'failed', 'canceled', 'suppressed') AND e.outcome_unknown_since IS NULL
""")


async def sending_domains_and_suppressed(
    db: Executor, team_id: uuid.UUID, domain_names: Sequence[str], addresses: Sequence[str]
) -> tuple[list[Row[Any]], dict[str, str]]:
    """The team's verified domains among `domain_names` (id, name, return_path and whether opens and clicks are
    tracked), and which addresses it suppresses
    (with each entry's reason)."""
    rows = (await db.execute(_DOMAINS_AND_SUPPRESSED, {
        "team_id": team_id, "domain_names": list(domain_names), "addresses": list(addresses)})).all()
    return [r for r in rows if r.kind == "domain"], {r.name: r.return_path for r in rows if r.kind == "suppressed"}


async def insert_emails(db: Executor, emails: Sequence[NewEmail]) -> None:
    """Store the emails (one statement, executed for each)."""
    await db.execute(_INSERT_EMAIL, [e.parameters() for e in emails])


async def find_email(db: Executor, team_id: uuid.UUID, email_id: uuid.UUID, *, lock: bool = False) -> Row[Any] | None:
    """One email of the team (the columns of its API shape and its state), locked for update if asked."""
    statement = f"SELECT {_COLUMNS} FROM emails WHERE team_id = :team_id AND id = :email_id"
    return (await db.execute(text(statement + (" FOR UPDATE" if lock else "")),
                             {"team_id": team_id, "email_id": email_id})).first()


async def email_mime(db: Executor, team_id: uuid.UUID, email_id: uuid.UUID) -> tuple[bool, bytes | None]:
    """Whether the team has the email, and its stored message (None once the body is purged)."""
    row = (await db.execute(_MIME, {"team_id": team_id, "email_id": email_id})).first()
    return (row is not None, bytes(row.mime) if row is not None and row.mime is not None else None)


async def email_events(db: Executor, team_id: uuid.UUID, email_id: uuid.UUID) -> list[Row[Any]]:
    """The email's events, oldest first."""
    return list((await db.execute(_EVENTS, {"team_id": team_id, "email_id": email_id})).all())


async def email_page(db: Executor, team_id: uuid.UUID, limit: int, after: uuid.UUID | None,
                     before: uuid.UUID | None) -> tuple[list[Row[Any]], bool]:
    """Up to `limit` of the team's emails, newest first, after or before an email's id; and whether more remain."""
    return await newest_first_page(db, "emails", _COLUMNS, team_id, limit, after, before)


async def reschedule(db: Executor, email_id: uuid.UUID, scheduled_at: datetime) -> None:
    """Move a queued email's scheduled time (and its next attempt with it)."""
    await db.execute(_RESCHEDULE, {"email_id": email_id, "scheduled_at": scheduled_at})


async def cancel(db: Executor, email_id: uuid.UUID) -> None:
    """Mark an email canceled."""
    await db.execute(_CANCEL, {"email_id": email_id})


async def message_id_taken(db: Executor, message_id: str) -> bool:
    """Whether any email already has this Message-ID."""
    return (await db.execute(_MESSAGE_ID_TAKEN, {"message_id": message_id})).first() is not None


async def count_sends(db: Executor, team_id: uuid.UUID, emails: int, day_start: date, month_start: date,
                      daily_quota: int | None, monthly_quota: int | None) -> set[str]:
    """Add `emails` to the team's day and month counters; returns the periods (`day`, `month`) still in quota."""
    return set((await db.execute(_COUNT_SENDS, {
        "team_id": team_id, "emails": emails, "day_start": day_start, "month_start": month_start,
        "daily_quota": daily_quota, "monthly_quota": monthly_quota})).scalars())


async def claim_idempotency_key(db: Executor, team_id: uuid.UUID, key: str, request_hash: bytes, response: Any,
                                ttl_hours: int) -> bool:
    """Store the response under the key unless a younger one holds it; whether it was stored."""
    return (await db.execute(_CLAIM_IDEMPOTENCY_KEY, {
        "team_id": team_id, "key": key, "request_hash": request_hash, "response": json.dumps(response),
        "ttl_hours": ttl_hours})).first() is not None


async def stored_idempotent_response(db: Executor, team_id: uuid.UUID, key: str) -> Row[Any]:
    """The request hash and response stored under the key."""
    return (await db.execute(_IDEMPOTENT_RESPONSE, {"team_id": team_id, "key": key})).one()


async def claim_due(conn: Executor, limit: int, lease_seconds: float, settle_seconds: float,
                    mail_host: str) -> list[Row[Any]]:
    """Lease up to `limit` due emails of teams that may send (see app/domain/emails/outbox.py) as `sending`, to
    be handed to `mail_host`'s Postfix."""
    return list((await conn.execute(_CLAIM_DUE, {
        "limit": limit, "lease_seconds": lease_seconds, "settle_seconds": settle_seconds,
        "mail_host": mail_host})).all())


async def renew_leases(conn: Executor, claimed: Sequence[Any], lease_seconds: float) -> set[uuid.UUID]:
    """Extend the leases of the claimed rows (their `id` and `attempts` as claimed) still held; their ids."""
    return set((await conn.execute(_RENEW_LEASES, {"email_ids": [r.id for r in claimed],
                                                   "attempts": [r.attempts for r in claimed],
                                                   "lease_seconds": lease_seconds})).scalars())


async def recover_expired(conn: Executor) -> list[Row[Any]]:
    """Settle emails whose lease expired: `sent` if Postfix's acceptance was logged, else outcome unknown since
    the lease's end (a test email: `queued` again)."""
    return list((await conn.execute(_RECOVER_EXPIRED)).all())


async def mark_outcome_unknown(conn: Executor, email_id: uuid.UUID, error: str) -> None:
    """DATA went out and no final reply came: the email waits, unleased, for Postfix's log to tell."""
    await conn.execute(_MARK_OUTCOME_UNKNOWN, {"email_id": email_id, "error": error})


async def resolve_unknown_outcomes(conn: Executor, grace_seconds: float) -> list[Row[Any]]:
    """Settle the emails whose outcome the log follower has shown: `sent` if accepted, else `queued`."""
    return list((await conn.execute(_RESOLVE_UNKNOWN_OUTCOMES, {"grace_seconds": grace_seconds})).all())


async def log_silent_seconds(conn: Executor, mail_host: str) -> float | None:
    """How long ago the mail host's log follower last recorded its position (None: it never did)."""
    found = (await conn.execute(_LOG_SILENT_SECONDS, {"mail_host": mail_host})).scalar_one_or_none()
    return None if found is None else float(found)


async def release_mail_host(conn: Executor, mail_host: str) -> tuple[int, int]:
    """Queue again the emails a lost mail host was submitting whose outcome is unknown (its log will never
    show it): how many were released, and how many that host still holds a lease on."""
    released = len((await conn.execute(_RELEASE_MAIL_HOST, {"mail_host": mail_host})).all())
    return released, int((await conn.execute(_STILL_LEASED, {"mail_host": mail_host})).scalar_one())


@dataclass(frozen=True)
class Accepted:
    """An email Postfix accepted (under `queue_id`, when its reply named one), and its last event now."""

    email_id: uuid.UUID
    queue_id: str | None
    last_event: str


async def mark_sent(conn: Executor, accepted: Sequence[Accepted]) -> None:
    """Postfix accepted the emails: `sent`, with their queue ids and last events (a `sent` does not replace an
    event the log follower recorded first)."""
    if accepted:
        await conn.execute(_MARK_SENT, {"email_ids": [a.email_id for a in accepted],
                                        "queue_ids": [a.queue_id for a in accepted],
                                        "last_events": [a.last_event for a in accepted]})


async def mark_failed(conn: Executor, email_id: uuid.UUID, error: str) -> None:
    """The email will not be sent (its last event is `failed`, whose event the caller records)."""
    await conn.execute(_MARK_FAILED, {"email_id": email_id, "error": error})


async def retry_later(conn: Executor, email_id: uuid.UUID, error: str, delay_seconds: float) -> None:
    """Queue the email again for an attempt `delay_seconds` from now."""
    await conn.execute(_RETRY_LATER, {"email_id": email_id, "error": error, "delay_seconds": delay_seconds})


async def purge_expired_bodies(conn: Executor) -> int:
    """Drop the bodies of settled emails older than their team's retention period; how many."""
    return int((await conn.execute(_PURGE_EXPIRED_BODIES)).rowcount or 0)


async def delete_settled_older_than(conn: Executor, days: int, batch: int) -> int:
    """Delete up to `batch` settled emails, with their events, that nothing happened to for `days` days; how many."""
    return int((await conn.execute(_DELETE_SETTLED_OLDER_THAN, {"days": days, "batch": batch})).rowcount or 0)
