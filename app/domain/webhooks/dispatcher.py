"""Delivering queued webhook events: at least once, signed, retried with backoff, endpoints disabled on failure.

A delivery is claimed with FOR UPDATE SKIP LOCKED under a lease, POSTed, and settled: a 2xx answer
ends it; anything else schedules the next attempt after `POSTYARD_WEBHOOK_RETRY_SCHEDULE` (by default
5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27 hours in all). When the schedule is exhausted the
delivery is `failed` and its endpoint is disabled (re-enable it with PATCH, then replay). A worker that
dies mid-delivery leaves the lease to expire and the delivery is attempted again (at least once).
The endpoint's host is resolved and checked before every attempt, and the request goes to the checked
address (TLS still verifies the certificate for the host name), so a second DNS answer cannot redirect it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.domain.webhooks import repository
from app.domain.webhooks.signing import associated_data, signed_headers
from app.domain.webhooks.ssrf import UnsafeUrl, vet_url
from app.lib.crypto import Keyring

__all__ = ["Dispatcher"]

logger = logging.getLogger("postyard.webhooks")
_LEASE_SECONDS = 120
_BATCH = 20

_DISABLED_REASON = "deliveries kept failing"


class Dispatcher:
    """Claims due deliveries and POSTs them to their endpoints."""

    def __init__(self, settings: Settings, engine: AsyncEngine, keyring: Keyring) -> None:
        self.settings = settings
        self.engine = engine
        self.keyring = keyring
        # No keep-alive: each delivery connects to the address vetted for it, with its own TLS name.
        self.client = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False,
                                        limits=httpx.Limits(max_keepalive_connections=0))

    def _secrets(self, row: Any) -> list[str]:
        ad = associated_data(row.webhook_id)
        secrets = [self.keyring.decrypt(row.key_id, bytes(row.secret_ciphertext), ad).decode()]
        if row.previous_secret_ciphertext is not None and row.previous_secret_expires_at and \
                row.previous_secret_expires_at > datetime.now(UTC):
            secrets.append(self.keyring.decrypt(row.previous_key_id, bytes(row.previous_secret_ciphertext),
                                                ad).decode())
        return secrets

    async def _post(self, row: Any) -> tuple[int | None, str | None]:
        if row.status != "enabled":
            return None, "endpoint disabled"
        try:
            vetted = await vet_url(row.endpoint, self.settings.webhook_exempt_networks, self.settings.dns_timeout)
            headers = signed_headers(self._secrets(row), row.message_id, datetime.now(UTC), row.payload)
            headers["host"] = vetted.host_header
            response = await self.client.post(vetted.pinned_url, content=row.payload.encode(), headers=headers,
                                              extensions={"sni_hostname": vetted.host})
        except UnsafeUrl as error:
            return None, str(error)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    async def _settle(self, row: Any, status: int | None, error: str | None) -> None:
        delays = self.settings.webhook_retry_delays
        async with self.engine.begin() as conn:
            if error is None:
                await repository.mark_delivered(conn, row.id, status)
            elif row.attempts <= len(delays) and row.status == "enabled":
                await repository.retry_delivery_later(conn, row.id, status, error, delays[row.attempts - 1])
            else:
                await repository.mark_delivery_failed(conn, row.id, status, error)
                if row.status == "enabled":
                    await repository.disable_webhook(conn, row.webhook_id, _DISABLED_REASON)
                    logger.warning("webhook disabled", extra={"webhook_id": str(row.webhook_id)})

    async def _deliver(self, row: Any) -> None:
        status, error = await self._post(row)
        await self._settle(row, status, error)

    async def deliver_once(self) -> int:
        """Release expired leases, claim a batch of due deliveries and deliver them concurrently."""
        async with self.engine.begin() as conn:
            await repository.release_expired_leases(conn)
            rows = await repository.claim_due_deliveries(conn, _BATCH, _LEASE_SECONDS)
        await asyncio.gather(*(self._deliver(r) for r in rows))
        return len(rows)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
