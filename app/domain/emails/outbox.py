"""The outbox worker: claims due emails with FOR UPDATE SKIP LOCKED and submits them to Postfix.

Delivery guarantee (what holds when a worker is killed at any instant, e.g. SIGKILL or power loss):

1. Nothing accepted is lost. `POST /emails` commits the rendered message in the same transaction that
   returns its id. A worker claims a message by committing `state = 'sending'` with a lease
   (`POSTYARD_WORKER_LEASE_SECONDS`; before each SMTP transaction the worker renews the leases of the
   batch's remaining messages once half the lease has passed, and skips any it no longer holds).
   Only a 250 reply to
   DATA moves it to `sent`. If the worker dies, the lease expires and the message waits for the log of its
   mail host (2.): once that shows Postfix never took it, it goes back to `queued` and is submitted again.
2. No message is handed to Postfix twice on a guess. The one ambiguous moment is between
   Postfix accepting the message (it commits its queue file, then sends 250) and the worker committing
   `sent`, which it does for its whole batch in one transaction: at the batch's end, and before each lease
   renewal. So the window is a batch wide: a kill there leaves each message of the batch that Postfix
   accepted since the last settle a leased `sending` row whose fate the worker cannot know. The Postfix
   log follower resolves it: `cleanup` logs the message's Message-ID with its queue id, and `qmgr` logs
   `from=<...>` once the queue file is committed; the follower records both on the email. When the
   lease expires, a message whose acceptance was logged becomes `sent` (with that queue id); any other
   waits, as an unknown outcome since the lease's end, until the follower has read the log far enough to
   tell. The worker is not guessing, then, even when it died while the database was down too, or the
   follower lags: no message is submitted twice unless Postfix's journal lost its lines, or the mail host's
   clock is behind the database's by more than the grace. A worker whose lease lapsed under it no longer
   holds the email: its renewal matches only a row still leased under the attempt it claimed.
   A message whose content went out without a final reply (a timeout or a lost connection), or whose lease
   expired without its acceptance logged, has an unknown outcome: it stays `sending`, without a
   lease, and is not submitted again until the log follower of the mail host it went to has shown what
   Postfix did: its acceptance (`sent`), or no acceptance in Postfix's log up to
   `POSTYARD_WORKER_OUTCOME_GRACE_SECONDS` past that moment (`queued` again). Claims skip any email whose
   acceptance was logged. The worker's SMTP timeout outlasts what Postfix can wait on its milters
   (app/host_layout.py), so in normal operation the worker hears Postfix's answer.
3. Several workers can run at once: claims skip rows locked by others, and a claimed row is `sending`
   under its lease, which no other worker takes until it expires.
4. A suspended team's mail is held, not lost: claims skip its emails, so they stay `queued` (scheduled
   ones keep their time) and spend no attempt; they go out once the team is resumed, which notifies
   `postyard_outbox` so that waiting workers wake. A batch claimed before the suspension committed is
   still submitted, and what Postfix already accepted is delivered: it has left the outbox.
5. Live mail is held the same way while its domain entry is not verified for its team (the name
   passed to another team, or a re-verification failed): Postfix would neither sign it with the
   team's key nor apply its TLS mode. It goes out once the entry is verified again, and not before
   `POSTYARD_DKIM_SETTLE_SECONDS` after a first verification, the time its new key takes to reach
   OpenDKIM (the key sync writes it and signals a reload), so that no mail leaves unsigned; and as long
   after a change of its TLS mode, which reaches Postfix through the sync's maps, so that none leaves
   under the old mode.

Transient failures (connection errors before the content was sent, 4xx) are retried with exponential backoff
(30 s doubling, capped at one hour) up to `POSTYARD_WORKER_MAX_ATTEMPTS`; permanent refusals (5xx) mark the email
`failed`.
Emails of `sk_test_` keys are marked sent without any SMTP transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.domain.emails import repository
from app.domain.emails.submission import Outcome, Submitter
from app.domain.events.recorder import Event, record_events, summary_of
from app.host_layout import mail_host_name

__all__ = ["Outbox", "backoff_seconds"]

logger = logging.getLogger("postyard.outbox")

def backoff_seconds(attempt: int) -> int:
    """Delay before retry number `attempt` (1-based): 30 s doubling, at most one hour."""
    return min(30 * 2 ** max(attempt - 1, 0), 3600)


@dataclass
class Outbox:
    """Claims, submits and settles emails; one instance per concurrent drain task."""

    settings: Settings
    engine: AsyncEngine
    mail_host: str = field(default_factory=mail_host_name)

    async def claim(self) -> list[Any]:
        """Lease a batch of due emails (at most `worker_batch_size`) to this mail host."""
        async with self.engine.begin() as conn:
            return await repository.claim_due(conn, self.settings.worker_batch_size,
                                              self.settings.worker_lease_seconds, self.settings.dkim_settle_seconds,
                                              self.mail_host)

    async def _renew(self, claimed: list[Any]) -> set[uuid.UUID]:
        """Extend the leases; returns the ids still held (a lapsed one is left to the log, or claimed again)."""
        async with self.engine.begin() as conn:
            return await repository.renew_leases(conn, claimed, self.settings.worker_lease_seconds)

    async def _settle(self, done: list[tuple[Any, Outcome]]) -> None:
        """Record what became of the submitted emails, in one transaction: the accepted ones `sent` with one
        statement, their events (and their webhook deliveries) with another."""
        if not done:
            return
        events: list[Event] = []
        accepted: list[repository.Accepted] = []
        async with self.engine.begin() as conn:
            for row, outcome in done:
                summary = summary_of(row)
                if outcome.accepted:
                    detail: dict[str, Any] = {"queue_id": outcome.queue_id} if outcome.queue_id else {}
                    if row.mode == "test":
                        detail["test"] = True
                    events.append(Event(summary, "sent", detail=detail))
                    events += [Event(summary, "failed", recipient=r, detail={"reply": reply})
                               for r, reply in (outcome.refused or {}).items()]
                    accepted.append(repository.Accepted(row.id, outcome.queue_id, events[-1].type))
                elif outcome.unknown:
                    await repository.mark_outcome_unknown(conn, row.id, outcome.reply[:1000])
                elif outcome.permanent or row.attempts >= self.settings.worker_max_attempts:
                    await repository.mark_failed(conn, row.id, outcome.reply[:1000])
                    events.append(Event(summary, "failed", detail={"reply": outcome.reply[:1000]}))
                else:
                    await repository.retry_later(conn, row.id, outcome.reply[:1000], backoff_seconds(row.attempts))
            await repository.mark_sent(conn, accepted)
            await record_events(conn, events, set_last_event=False)

    async def drain_once(self, submitter: Submitter) -> int:
        """Claim one batch, submit it, and settle it; returns how many were claimed."""
        leased_at = time.monotonic()
        return await self.deliver(await self.claim(), submitter, leased_at)

    async def deliver(self, rows: list[Any], submitter: Submitter, leased_at: float) -> int:
        """Submit a claimed batch (leased at `leased_at`, monotonic) and settle it; returns its size.

        The batch is settled in one transaction at its end, and before each renewal of its leases, so that
        no email waits unsettled for longer than half a lease plus one SMTP transaction.
        """
        held = {row.id for row in rows}
        done: list[tuple[Any, Outcome]] = []
        for index, row in enumerate(rows):
            if time.monotonic() - leased_at > self.settings.worker_lease_seconds / 2:
                await self._settle(done)
                done = []
                leased_at = time.monotonic()
                held = await self._renew(rows[index:])
            if row.id not in held:
                continue
            if row.mode == "test":
                outcome = Outcome(accepted=True)
            else:
                outcome = await submitter.submit(row.envelope_from, list(row.recipients), bytes(row.mime))
            done.append((row, outcome))
            if not outcome.accepted:
                logger.warning("submission failed", extra={"email_id": str(row.id), "reply": outcome.reply})
        await self._settle(done)
        return len(rows)

    async def recover_expired(self) -> int:
        """Settle emails whose worker vanished (`sent` if Postfix logged their acceptance, else an unknown outcome)
        and those whose unknown outcome Postfix's log has since shown."""
        async with self.engine.begin() as conn:
            expired = await repository.recover_expired(conn)
            resolved = await repository.resolve_unknown_outcomes(conn, self.settings.worker_outcome_grace_seconds)
            # An email whose lease ended long ago may be settled by both statements: its last row is its state.
            settled = {r.id: r for r in [*expired, *resolved]}
            sent = [Event(summary_of(r), "sent", detail={"queue_id": r.queue_id, "recovered": True})
                    for r in settled.values() if r.state == "sent"]
            await record_events(conn, sent)
        return len(settled)
