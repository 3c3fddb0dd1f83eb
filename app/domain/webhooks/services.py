"""Webhook endpoints of the caller's team: create (secret encrypted), read, update, rotate, delete, replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.webhooks import repository
from app.domain.webhooks.schemas import DeliveryOut, WebhookOut
from app.domain.webhooks.signing import associated_data, new_secret
from app.domain.webhooks.ssrf import UnsafeUrl, check_url
from app.lib.api_error import ApiError
from app.lib.crypto import Keyring
from app.lib.timefmt import iso

__all__ = ["check_endpoint", "create", "delete", "deliveries", "get", "list_all", "replay", "rotate", "secret_of",
           "to_out", "update"]

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
    await repository.insert_webhook(db, webhook_id, team_id, endpoint, sorted(set(events)), key_id, blob)
    return webhook_id, secret


async def get(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, lock: bool = False) -> Any:
    """A webhook row of the team, or 404."""
    row = await repository.find_webhook(db, team_id, webhook_id, lock=lock)
    if row is None:
        raise ApiError(404, "not_found", "Webhook not found")
    return row


async def list_all(db: AsyncSession, team_id: uuid.UUID) -> list[Any]:
    """The team's webhooks, newest first."""
    return await repository.team_webhooks(db, team_id)


async def update(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, endpoint: str | None,
                 events: list[str] | None, status: str | None) -> None:
    """Change the endpoint, its events or its status (enabling clears the disabled reason)."""
    await get(db, team_id, webhook_id, lock=True)
    await repository.update_webhook(db, webhook_id, endpoint, sorted(set(events)) if events else None, status)


async def rotate(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, keyring: Keyring,
                 grace_hours: int) -> str:
    """A new secret; the old one keeps signing beside it until the grace period ends."""
    await get(db, team_id, webhook_id, lock=True)
    secret = new_secret()
    key_id, blob = keyring.encrypt(secret.encode(), associated_data(webhook_id))
    await repository.rotate_secret(db, webhook_id, key_id, blob, datetime.now(UTC) + timedelta(hours=grace_hours))
    return secret


async def delete(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """Remove an endpoint and its delivery log."""
    await get(db, team_id, webhook_id)
    await repository.delete_webhook(db, webhook_id)


def _delivery(row: Any) -> DeliveryOut:
    return DeliveryOut(
        id=str(row.id), message_id=row.message_id, event_type=row.event_type, state=row.state,
        attempts=row.attempts, created_at=iso(row.created_at) or "",
        next_attempt_at=iso(row.next_attempt_at) if row.state == "pending" else None,
        last_status_code=row.last_status_code, last_error=row.last_error, delivered_at=iso(row.delivered_at))


async def deliveries(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, limit: int) -> list[DeliveryOut]:
    """The endpoint's delivery log, newest first."""
    await get(db, team_id, webhook_id)
    return [_delivery(r) for r in await repository.webhook_deliveries(db, team_id, webhook_id, limit)]


async def replay(db: AsyncSession, team_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> DeliveryOut:
    """Queue the delivery's event again (same payload and webhook-id, so receivers can de-duplicate)."""
    await get(db, team_id, webhook_id)
    row = await repository.replay_delivery(db, team_id, webhook_id, delivery_id)
    if row is None:
        raise ApiError(404, "not_found", "Delivery not found")
    return _delivery(row)
