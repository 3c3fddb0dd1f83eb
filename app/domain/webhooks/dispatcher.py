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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.domain.webhooks.signing import associated_data, signed_headers
from app.domain.webhooks.ssrf import UnsafeUrl, vet_url
from app.lib.crypto import Keyring

__all__ = ["Dispatcher"]

logger = logging.getLogger("postyard.webhooks")
_LEASE_SECONDS = 120
_BATCH = 20

_CLAIM = text("""
UPDATE webhook_deliveries d SET state = 'delivering', attempts = d.attempts + 1,
       lease_until = now() + make_interval(secs => :lease)
FROM (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED) due, webhooks w
WHERE d.id = due.id AND w.id = d.webhook_id
RETURNING d.id, d.webhook_id, d.message_id, d.payload, d.attempts, w.endpoint, w.status, w.key_id,
          w.secret_ciphertext, w.previous_key_id, w.previous_secret_ciphertext, w.previous_secret_expires_at
""")
_RELEASE_EXPIRED = text("UPDATE webhook_deliveries SET state = 'pending', lease_until = NULL "
                        "WHERE state = 'delivering' AND lease_until < now()")


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
                await conn.execute(text(
                    "UPDATE webhook_deliveries SET state = 'succeeded', delivered_at = now(), lease_until = NULL, "
                    "last_status_code = :c, last_error = NULL WHERE id = :id"), {"id": row.id, "c": status})
            elif row.attempts <= len(delays) and row.status == "enabled":
                await conn.execute(text(
                    "UPDATE webhook_deliveries SET state = 'pending', lease_until = NULL, last_status_code = :c, "
                    "last_error = :e, next_attempt_at = now() + make_interval(secs => :d) WHERE id = :id"),
                    {"id": row.id, "c": status, "e": error, "d": delays[row.attempts - 1]})
            else:
                await conn.execute(text(
                    "UPDATE webhook_deliveries SET state = 'failed', lease_until = NULL, last_status_code = :c, "
                    "last_error = :e WHERE id = :id"), {"id": row.id, "c": status, "e": error})
                if row.status == "enabled":
                    await conn.execute(text(
                        "UPDATE webhooks SET status = 'disabled', updated_at = now(), "
                        "disabled_reason = 'deliveries kept failing' WHERE id = :w"), {"w": row.webhook_id})
                    logger.warning("webhook disabled", extra={"webhook_id": str(row.webhook_id)})

    async def _deliver(self, row: Any) -> None:
        status, error = await self._post(row)
        await self._settle(row, status, error)

    async def deliver_once(self) -> int:
        """Release expired leases, claim a batch of due deliveries and deliver them concurrently."""
        async with self.engine.begin() as conn:
            await conn.execute(_RELEASE_EXPIRED)
            rows = list((await conn.execute(_CLAIM, {"n": _BATCH, "lease": _LEASE_SECONDS})).all())
        await asyncio.gather(*(self._deliver(r) for r in rows))
        return len(rows)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
