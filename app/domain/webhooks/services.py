"""Webhook endpoints of the caller's team: create (secret encrypted), read, update, rotate, delete, replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.webhooks.schemas import DeliveryOut, WebhookOut
from app.domain.webhooks.signing import associated_data, new_secret
from app.domain.webhooks.ssrf import UnsafeUrl, check_url
from app.lib.crypto import Keyring
from app.lib.errors import ApiError
from app.lib.timefmt import iso

__all__ = ["check_endpoint", "create", "delete", "deliveries", "get", "list_all", "replay", "rotate", "secret_of",
           "to_out", "update"]

_COLUMNS = "id, endpoint, events, status, created_at, key_id, secret_ciphertext"


async def check_endpoint(url: str, settings: Settings) -> None:
    """Refuse URLs that resolve to non-public addresses (unless in a network the settings exempt)."""
    try:
        await check_url(url, settings.webhook_exempt_networks, settings.dns_timeout)
    except UnsafeUrl as error:
        raise ApiError(422, "invalid_endpoint", str(error)) from None


def secret_of(row: Any, keyring: Keyring) -> str:
    """The current signing secret of a webhook row."""
    return keyring.decrypt(row.key_id, bytes(row.secret_ciphertext), associated_data(row.id)).decode()


def to_out(row: Any, keyring: Keyring) -> WebhookOut:
    """The Resend shape of a webhook row."""
    return WebhookOut(id=str(row.id), endpoint=row.endpoint, events=list(row.events), status=row.status,
                      created_at=iso(row.created_at) or "", signing_secret=secret_of(row, keyring))


async def create(db: AsyncSession, team_id: uuid.UUID, endpoint: str, events: list[str],
                 keyring: Keyring) -> tuple[uuid.UUID, str]:
    """Store a new endpoint with a fresh secret, AES-256-GCM encrypted; returns (id, secret)."""
    webhook_id, secret = uuid.uuid4(), new_secret()
    key_id, blob = keyring.encrypt(secret.encode(), associated_data(webhook_id))
    await db.execute(text(
        "INSERT INTO webhooks (id, team_id, endpoint, events, key_id, secret_ciphertext) "
        "VALUES (:id, :t, :e, :ev, :k, :s)"),
        {"id": webhook_id, "t": team_id, "e": endpoint, "ev": sorted(set(events)), "k": key_id, "s": blob})
    return webhook_id, secret


async def get(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, lock: bool = False) -> Any:
    """A webhook row of the team, or 404."""
    row = (await db.execute(text(f"SELECT {_COLUMNS} FROM webhooks WHERE team_id = :t AND id = :w"
                                 + (" FOR UPDATE" if lock else "")), {"t": team_id, "w": webhook_id})).first()
    if row is None:
        raise ApiError(404, "not_found", "Webhook not found")
    return row


async def list_all(db: AsyncSession, team_id: uuid.UUID) -> list[Any]:
    """The team's webhooks, newest first."""
    return list((await db.execute(text(
        f"SELECT {_COLUMNS} FROM webhooks WHERE team_id = :t ORDER BY created_at DESC, id DESC"),
        {"t": team_id})).all())


async def update(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, endpoint: str | None,
                 events: list[str] | None, status: str | None) -> None:
    """Change the endpoint, its events or its status (enabling clears the disabled reason)."""
    await get(db, team_id, webhook_id, lock=True)
    await db.execute(text(
        "UPDATE webhooks SET endpoint = coalesce(:e, endpoint), events = coalesce(:ev, events), "
        "status = coalesce(:s, status), disabled_reason = CASE WHEN :s = 'enabled' THEN NULL "
        "ELSE disabled_reason END, updated_at = now() WHERE id = :w"),
        {"w": webhook_id, "e": endpoint, "ev": sorted(set(events)) if events else None, "s": status})


async def rotate(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, keyring: Keyring,
                 grace_hours: int) -> str:
    """A new secret; the old one keeps signing beside it until the grace period ends."""
    await get(db, team_id, webhook_id, lock=True)
    secret = new_secret()
    key_id, blob = keyring.encrypt(secret.encode(), associated_data(webhook_id))
    await db.execute(text(
        "UPDATE webhooks SET previous_key_id = key_id, previous_secret_ciphertext = secret_ciphertext, "
        "previous_secret_expires_at = :until, key_id = :k, secret_ciphertext = :s, updated_at = now() "
        "WHERE id = :w"),
        {"w": webhook_id, "k": key_id, "s": blob, "until": datetime.now(UTC) + timedelta(hours=grace_hours)})
    return secret


async def delete(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """Remove an endpoint and its delivery log."""
    await get(db, team_id, webhook_id)
    await db.execute(text("DELETE FROM webhooks WHERE id = :w"), {"w": webhook_id})


def _delivery(row: Any) -> DeliveryOut:
    return DeliveryOut(
        id=str(row.id), message_id=row.message_id, event_type=row.event_type, state=row.state,
        attempts=row.attempts, created_at=iso(row.created_at) or "",
        next_attempt_at=iso(row.next_attempt_at) if row.state == "pending" else None,
        last_status_code=row.last_status_code, last_error=row.last_error, delivered_at=iso(row.delivered_at))


async def deliveries(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, limit: int) -> list[DeliveryOut]:
    """The endpoint's delivery log, newest first."""
    await get(db, team_id, webhook_id)
    rows = await db.execute(text(
        "SELECT * FROM webhook_deliveries WHERE team_id = :t AND webhook_id = :w "
        "ORDER BY created_at DESC, id DESC LIMIT :n"), {"t": team_id, "w": webhook_id, "n": limit})
    return [_delivery(r) for r in rows]


async def replay(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> DeliveryOut:
    """Queue the delivery's event again (same payload and webhook-id, so receivers can de-duplicate)."""
    await get(db, team_id, webhook_id)
    row = (await db.execute(text(
        "INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload) "
        "SELECT :new, team_id, webhook_id, message_id, event_type, payload FROM webhook_deliveries "
        "WHERE id = :d AND webhook_id = :w AND team_id = :t RETURNING *"),
        {"new": uuid.uuid4(), "d": delivery_id, "w": webhook_id, "t": team_id})).first()
    if row is None:
        raise ApiError(404, "not_found", "Delivery not found")
    return _delivery(row)
