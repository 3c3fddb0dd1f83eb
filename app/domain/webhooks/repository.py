"""The webhooks' SQL, with named parameters: endpoints of a team, and the dispatcher's claim and settlement of
deliveries (locked FOR UPDATE SKIP LOCKED, then leased). The tables have no ORM model."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor

__all__ = [
    "claim_deliveries", "delete_settled_deliveries_older_than", "delete_webhook", "disable_webhook", "find_webhook",
    "insert_webhook", "lock_due_deliveries", "mark_delivered", "mark_delivery_failed", "release_expired_leases",
    "replay_delivery", "retry_delivery_later",
    "rotate_secret", "team_webhooks", "update_webhook", "webhook_deliveries",
]

_COLUMNS = "id, endpoint, events, status, created_at, key_id, secret_ciphertext"
_INSERT = text("INSERT INTO webhooks (id, team_id, endpoint, events, key_id, secret_ciphertext) "
               "VALUES (:webhook_id, :team_id, :endpoint, :events, :key_id, :secret_ciphertext)")
_TEAM_WEBHOOKS = text(f"SELECT {_COLUMNS} FROM webhooks WHERE team_id = :team_id ORDER BY created_at DESC, id DESC")
# A None leaves its column as it is; enabling clears the reason the endpoint was disabled for.
_UPDATE = text("""
UPDATE webhooks SET endpoint = coalesce(:endpoint, endpoint), events = coalesce(:events, events),
       status = coalesce(:status, status),
       disabled_reason = CASE WHEN :status = 'enabled' THEN NULL ELSE disabled_reason END, updated_at = now()
WHERE id = :webhook_id
""")
_ROTATE_SECRET = text("""
UPDATE webhooks SET previous_key_id = key_id, previous_secret_ciphertext = secret_ciphertext,
       previous_secret_expires_at = :previous_expires_at, key_id = :key_id, secret_ciphertext = :secret_ciphertext,
       updated_at = now()
WHERE id = :webhook_id
""")
_DELETE = text("DELETE FROM webhooks WHERE id = :webhook_id")
_DISABLE = text("UPDATE webhooks SET status = 'disabled', updated_at = now(), disabled_reason = :reason "
                "WHERE id = :webhook_id")

_DELIVERIES = text("SELECT * FROM webhook_deliveries WHERE team_id = :team_id AND webhook_id = :webhook_id "
                   "ORDER BY created_at DESC, id DESC LIMIT :limit")
_REPLAY = text("""
INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload)
SELECT :new_delivery_id, team_id, webhook_id, message_id, event_type, payload FROM webhook_deliveries
WHERE id = :delivery_id AND webhook_id = :webhook_id AND team_id = :team_id
RETURNING *
""")
# The oldest due deliveries, skipping those of endpoints and teams with no free slot; the dispatcher
# picks among them within its limits and leases those it picked in the same transaction.
_LOCK_DUE = text("""
SELECT id, team_id, webhook_id FROM webhook_deliveries
WHERE state = 'pending' AND next_attempt_at <= now()
  AND team_id <> ALL(:full_teams) AND webhook_id <> ALL(:full_webhooks)
ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED
""")
_CLAIM = text("""
UPDATE webhook_deliveries d SET state = 'delivering', attempts = d.attempts + 1,
       lease_until = now() + make_interval(secs => :lease_seconds)
FROM webhooks w
WHERE d.id = ANY(:delivery_ids) AND w.id = d.webhook_id
RETURNING d.id, d.team_id, d.webhook_id, d.message_id, d.payload, d.attempts, w.endpoint, w.status, w.key_id,
          w.secret_ciphertext, w.previous_key_id, w.previous_secret_ciphertext, w.previous_secret_expires_at
""")
_RELEASE_EXPIRED = text("UPDATE webhook_deliveries SET state = 'pending', lease_until = NULL "
                        "WHERE state = 'delivering' AND lease_until < now()")
_MARK_DELIVERED = text("UPDATE webhook_deliveries SET state = 'succeeded', delivered_at = now(), lease_until = NULL, "
                       "last_status_code = :status_code, last_error = NULL WHERE id = :delivery_id")
_RETRY_LATER = text("UPDATE webhook_deliveries SET state = 'pending', lease_until = NULL, "
                    "last_status_code = :status_code, last_error = :error, "
                    "next_attempt_at = now() + make_interval(secs => :delay_seconds) WHERE id = :delivery_id")
_MARK_FAILED = text("UPDATE webhook_deliveries SET state = 'failed', lease_until = NULL, "
                    "last_status_code = :status_code, last_error = :error WHERE id = :delivery_id")
# Retention (app/domain/emails/retention.py): up to `batch` settled deliveries made before `days` days ago.
_DELETE_SETTLED_OLDER_THAN = text("""
DELETE FROM webhook_deliveries d
USING (SELECT id FROM webhook_deliveries WHERE state IN ('succeeded', 'failed')
       AND created_at < now() - make_interval(days => :days) LIMIT :batch) old
WHERE d.id = old.id AND d.state IN ('succeeded', 'failed')
""")


async def insert_webhook(db: Executor, webhook_id: uuid.UUID, team_id: uuid.UUID, endpoint: str,
                         events: Sequence[str], key_id: str, secret_ciphertext: bytes) -> None:
    """Store a new endpoint with its encrypted signing secret."""
    await db.execute(_INSERT, {"webhook_id": webhook_id, "team_id": team_id, "endpoint": endpoint,
                               "events": list(events), "key_id": key_id, "secret_ciphertext": secret_ciphertext})


async def find_webhook(db: Executor, team_id: uuid.UUID, webhook_id: uuid.UUID, *,
                       lock: bool = False) -> Row[Any] | None:
    """One endpoint of the team, locked for update if asked."""
    statement = f"SELECT {_COLUMNS} FROM webhooks WHERE team_id = :team_id AND id = :webhook_id"
    return (await db.execute(text(statement + (" FOR UPDATE" if lock else "")),
                             {"team_id": team_id, "webhook_id": webhook_id})).first()


async def team_webhooks(db: Executor, team_id: uuid.UUID) -> list[Row[Any]]:
    """The team's endpoints, newest first."""
    return list((await db.execute(_TEAM_WEBHOOKS, {"team_id": team_id})).all())


async def update_webhook(db: Executor, webhook_id: uuid.UUID, endpoint: str | None, events: Sequence[str] | None,
                         status: str | None) -> None:
    """Change what is given of the endpoint's URL, events and status."""
    await db.execute(_UPDATE, {"webhook_id": webhook_id, "endpoint": endpoint,
                               "events": list(events) if events is not None else None, "status": status})


async def rotate_secret(db: Executor, webhook_id: uuid.UUID, key_id: str, secret_ciphertext: bytes,
                        previous_expires_at: datetime) -> None:
    """Make the given secret current; the current one signs beside it until `previous_expires_at`."""
    await db.execute(_ROTATE_SECRET, {"webhook_id": webhook_id, "key_id": key_id,
                                      "secret_ciphertext": secret_ciphertext,
                                      "previous_expires_at": previous_expires_at})


async def delete_webhook(db: Executor, webhook_id: uuid.UUID) -> None:
    """Remove an endpoint (its deliveries go with it)."""
    await db.execute(_DELETE, {"webhook_id": webhook_id})


async def disable_webhook(db: Executor, webhook_id: uuid.UUID, reason: str) -> None:
    """Stop sending to an endpoint, saying why."""
    await db.execute(_DISABLE, {"webhook_id": webhook_id, "reason": reason})


async def webhook_deliveries(db: Executor, team_id: uuid.UUID, webhook_id: uuid.UUID, limit: int) -> list[Row[Any]]:
    """The endpoint's latest `limit` deliveries, newest first."""
    return list((await db.execute(_DELIVERIES, {"team_id": team_id, "webhook_id": webhook_id, "limit": limit})).all())


async def replay_delivery(db: Executor, team_id: uuid.UUID, webhook_id: uuid.UUID,
                          delivery_id: uuid.UUID) -> Row[Any] | None:
    """A new pending delivery with the given one's payload and message id; None if there is no such delivery."""
    return (await db.execute(_REPLAY, {"new_delivery_id": uuid.uuid4(), "delivery_id": delivery_id,
                                       "webhook_id": webhook_id, "team_id": team_id})).first()


async def release_expired_leases(conn: Executor) -> None:
    """Put deliveries whose dispatcher vanished back to `pending`."""
    await conn.execute(_RELEASE_EXPIRED)


async def lock_due_deliveries(conn: Executor, limit: int, full_teams: Sequence[uuid.UUID],
                              full_webhooks: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """Lock up to `limit` due deliveries (id, team_id, webhook_id), oldest first, none of the teams and
    endpoints named; the locks last until the transaction ends."""
    return list((await conn.execute(_LOCK_DUE, {"limit": limit, "full_teams": list(full_teams),
                                                "full_webhooks": list(full_webhooks)})).all())


async def claim_deliveries(conn: Executor, delivery_ids: Sequence[uuid.UUID], lease_seconds: float) -> list[Row[Any]]:
    """Lease the given (locked) deliveries, with their endpoint's URL, status and secrets."""
    return list((await conn.execute(_CLAIM, {"delivery_ids": list(delivery_ids),
                                             "lease_seconds": lease_seconds})).all())


async def mark_delivered(conn: Executor, delivery_id: uuid.UUID, status_code: int | None) -> None:
    """The endpoint answered 2xx."""
    await conn.execute(_MARK_DELIVERED, {"delivery_id": delivery_id, "status_code": status_code})


async def retry_delivery_later(conn: Executor, delivery_id: uuid.UUID, status_code: int | None, error: str,
                               delay_seconds: float) -> None:
    """Attempt the delivery again `delay_seconds` from now."""
    await conn.execute(_RETRY_LATER, {"delivery_id": delivery_id, "status_code": status_code, "error": error,
                                      "delay_seconds": delay_seconds})


async def mark_delivery_failed(conn: Executor, delivery_id: uuid.UUID, status_code: int | None, error: str) -> None:
    """The delivery will not be attempted again (unless replayed)."""
    await conn.execute(_MARK_FAILED, {"delivery_id": delivery_id, "status_code": status_code, "error": error})


async def delete_settled_deliveries_older_than(db: Executor, days: int, batch: int) -> int:
    """Delete up to `batch` delivered or given-up deliveries made more than `days` days ago; how many."""
    return int((await db.execute(_DELETE_SETTLED_OLDER_THAN, {"days": days, "batch": batch})).rowcount or 0)
