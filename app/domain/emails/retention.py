"""Retention: message bodies go after the team's period; settled emails, their events and webhook deliveries
after POSTYARD_EMAIL_RETENTION_DAYS (0, the default: kept forever). The worker does both hourly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.emails import repository
from app.domain.webhooks import repository as webhooks_repository

__all__ = ["BATCH", "Purged", "purge_expired_bodies", "purge_old_emails"]

# Rows per transaction: each batch commits on its own, so a large backlog never holds long locks.
BATCH = 1000


class Purged(NamedTuple):
    """What one retention pass deleted."""

    emails: int
    webhook_deliveries: int


async def purge_expired_bodies(engine: AsyncEngine) -> int:
    """Drop the bodies (MIME, html, text) of settled emails older than their team's retention period."""
    async with engine.begin() as conn:
        return await repository.purge_expired_bodies(conn)


async def purge_old_emails(engine: AsyncEngine, days: int, batch: int = BATCH) -> Purged:
    """Delete settled emails (with their events) nothing happened to for `days` days, and webhook deliveries
    delivered or given up that old, `batch` rows per transaction. Queued and sending emails, and those whose
    outcome is unknown, stay whatever their age; suppressions stay. `days` 0 deletes nothing."""
    if days <= 0:
        return Purged(0, 0)
    return Purged(await _in_batches(engine, repository.delete_settled_older_than, days, batch),
                  await _in_batches(engine, webhooks_repository.delete_settled_deliveries_older_than, days, batch))


async def _in_batches(engine: AsyncEngine, delete: Callable[[AsyncConnection, int, int], Awaitable[int]],
                      days: int, batch: int) -> int:
    """Run `delete` in transactions of its own until a batch comes back short; how many rows it deleted."""
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = await delete(conn, days, batch)
        total += deleted
        if deleted < batch:
            return total
