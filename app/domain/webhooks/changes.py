"""Changing a team's webhook endpoints as a principal: the role check, the endpoint check and the audit entry
that /webhooks and the console share."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.webhooks import services
from app.domain.webhooks.schemas import DeliveryOut
from app.lib.audit import record
from app.lib.auth import Principal
from app.lib.crypto import Keyring

__all__ = ["add", "change", "remove", "replay", "rotate_secret"]


async def add(db: AsyncSession, principal: Principal, endpoint: str, events: list[str], settings: Settings,
              keyring: Keyring) -> tuple[uuid.UUID, str]:
    """A new endpoint of the team (its URL checked); (its id, its signing secret)."""
    principal.require_write()
    await services.check_endpoint(endpoint, settings)
    webhook_id, secret = await services.create(db, principal.team_id, endpoint, events, keyring)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="webhook.created",
                 resource_type="webhook", resource_id=webhook_id, ip=principal.ip, details={"endpoint": endpoint})
    return webhook_id, secret


async def change(db: AsyncSession, principal: Principal, webhook_id: uuid.UUID, endpoint: str | None,
                 events: list[str] | None, status: str | None, settings: Settings) -> None:
    """Change what is given of the endpoint's URL (checked), events and status."""
    principal.require_write()
    if endpoint is not None:
        await services.check_endpoint(endpoint, settings)
    await services.update(db, principal.team_id, webhook_id, endpoint, events, status)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="webhook.updated",
                 resource_type="webhook", resource_id=webhook_id, ip=principal.ip)


async def remove(db: AsyncSession, principal: Principal, webhook_id: uuid.UUID) -> None:
    """Delete the endpoint and its delivery log."""
    principal.require_write()
    await services.delete(db, principal.team_id, webhook_id)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="webhook.deleted",
                 resource_type="webhook", resource_id=webhook_id, ip=principal.ip)


async def rotate_secret(db: AsyncSession, principal: Principal, webhook_id: uuid.UUID, keyring: Keyring,
                        grace_hours: int) -> str:
    """A new signing secret; the old one keeps signing beside it for `grace_hours`."""
    principal.require_write()
    secret = await services.rotate(db, principal.team_id, webhook_id, keyring, grace_hours)
    await record(db, team_id=principal.team_id, actor=principal.actor, action="webhook.secret_rotated",
                 resource_type="webhook", resource_id=webhook_id, ip=principal.ip)
    return secret


async def replay(db: AsyncSession, principal: Principal, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> DeliveryOut:
    """Queue a delivery's event again."""
    principal.require_write()
    return await services.replay(db, principal.team_id, webhook_id, delivery_id)
