"""Delivering queued webhook events: at least once, signed, retried with backoff, endpoints disabled on failure.

A delivery is claimed with FOR UPDATE SKIP LOCKED under a lease, POSTed, and settled: a 2xx answer
ends it; anything else schedules the next attempt after `POSTYARD_WEBHOOK_RETRY_SCHEDULE` (by default
5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27 hours in all). When the schedule is exhausted the
delivery is `failed` and its endpoint is disabled (re-enable it with PATCH, then replay). A dispatcher that
dies mid-delivery leaves the lease to expire and the delivery is attempted again (at least once).
The endpoint's host is resolved and checked before every attempt, and the request goes to the checked
address (TLS still verifies the certificate for the host name), so a second DNS answer cannot redirect it.

No endpoint can hold the dispatcher up: an attempt (resolving, connecting, sending, reading) ends at
`POSTYARD_WEBHOOK_TIMEOUT` whatever the endpoint does, at most `POSTYARD_WEBHOOK_MAX_RESPONSE_BYTES` of the
answer are read (the status code is what counts), and deliveries are claimed only into free slots of their
endpoint and team (app/domain/webhooks/slots.py), so a hostile endpoint only ever waits on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.domain.webhooks import repository
from app.domain.webhooks.signing import associated_data, signed_headers
from app.domain.webhooks.slots import Slots
from app.domain.webhooks.ssrf import UnsafeUrl, vet_url
from app.lib.crypto import Keyring
from app.lib.signals import first_of

__all__ = ["Dispatcher"]

logger = logging.getLogger("postyard.webhooks")
# Longer than the longest deadline the settings allow (60 s) plus the settlement.
_LEASE_SECONDS = 120
# How many due deliveries a claim looks at per free slot, to find some whose endpoint and team have room.
_SCAN_PER_SLOT = 4

_DISABLED_REASON = "deliveries kept failing"


async def _read_at_most(response: httpx.Response, limit: int) -> None:
    """Read and drop at most about `limit` bytes of the body as sent (a compressed body is never expanded)."""
    seen = 0
    async with contextlib.aclosing(response.aiter_raw()) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            seen += len(chunk)
            if seen >= limit:
                return


class Dispatcher:
    """Claims due deliveries into free slots and POSTs them to their endpoints."""

    def __init__(self, settings: Settings, engine: AsyncEngine, keyring: Keyring) -> None:
        self.settings = settings
        self.engine = engine
        self.keyring = keyring
        self.slots = Slots(settings.webhook_concurrency, settings.webhook_team_concurrency,
                           settings.webhook_endpoint_concurrency)
        # No keep-alive: each delivery connects to the address vetted for it, with its own TLS name.
        self.client = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False,
                                        limits=httpx.Limits(max_connections=settings.webhook_concurrency,
                                                            max_keepalive_connections=0))

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
        deadline = self.settings.webhook_timeout
        status: int | None = None
        try:
            async with asyncio.timeout(deadline):
                vetted = await vet_url(row.endpoint, self.settings.webhook_exempt_networks, self.settings.dns_timeout)
                headers = signed_headers(self._secrets(row), row.message_id, datetime.now(UTC), row.payload)
                headers["host"] = vetted.host_header
                async with self.client.stream("POST", vetted.pinned_url, content=row.payload.encode(),
                                              headers=headers, extensions={"sni_hostname": vetted.host}) as response:
                    status = response.status_code
                    await _read_at_most(response, self.settings.webhook_max_response_bytes)
        except UnsafeUrl as error:
            return None, str(error)
        except TimeoutError:
            if status is None:  # once the status line has come, the rest of the answer does not matter
                return None, f"no answer within {deadline:g} s"
        except httpx.HTTPError as error:
            if status is None:
                return None, f"{type(error).__name__}: {error}"[:500]
        if status is not None and 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"

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
        try:
            status, error = await self._post(row)
            await self._settle(row, status, error)
        finally:
            self.slots.give_back(row.team_id, row.webhook_id)

    async def _claim(self) -> list[Row[Any]]:
        """Lease due deliveries into the free slots (taken here; `_deliver` gives each back)."""
        if self.slots.free <= 0:
            return []
        taken: list[Row[Any]] = []
        try:
            async with self.engine.begin() as conn:
                await repository.release_expired_leases(conn)
                due = await repository.lock_due_deliveries(conn, self.slots.free * _SCAN_PER_SLOT,
                                                           self.slots.full_teams(), self.slots.full_endpoints())
                taken = [d for d in due if self.slots.take(d.team_id, d.webhook_id)]
                rows = await repository.claim_deliveries(conn, [d.id for d in taken], _LEASE_SECONDS) if taken else []
        except BaseException:
            for delivery in taken:
                self.slots.give_back(delivery.team_id, delivery.webhook_id)
            raise
        claimed = {row.id for row in rows}
        for delivery in taken:
            if delivery.id not in claimed:  # its endpoint was deleted meanwhile
                self.slots.give_back(delivery.team_id, delivery.webhook_id)
        return rows

    async def deliver_once(self) -> int:
        """Claim due deliveries into the free slots and deliver them, concurrently; how many were claimed."""
        rows = await self._claim()
        await asyncio.gather(*(self._deliver(r) for r in rows))
        return len(rows)

    async def run(self, stop: asyncio.Event, poll_interval: float) -> None:
        """Deliver until `stop` is set: claim whenever a slot frees up, poll every `poll_interval` seconds
        when idle; deliveries in flight at the stop finish (each within its deadline)."""
        running: set[asyncio.Task[None]] = set()
        freed = asyncio.Event()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            freed.set()
            if not task.cancelled() and task.exception() is not None:
                logger.error("webhook delivery failed", exc_info=task.exception())

        try:
            while not stop.is_set():
                try:
                    rows = await self._claim()
                except Exception:  # noqa: BLE001 - a database hiccup must not end the dispatcher
                    logger.exception("claiming webhook deliveries failed")
                    rows = []
                for row in rows:
                    task = asyncio.create_task(self._deliver(row))
                    running.add(task)
                    task.add_done_callback(finished)
                if not rows:
                    await first_of(stop, freed, timeout=poll_interval)
                    freed.clear()
        finally:
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
