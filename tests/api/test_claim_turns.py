"""The worker's drain tasks take turns to claim: emails sent one per request are claimed several at a time
(one transaction to claim and one to settle for several emails), and a notification wakes one task."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from test_emails import message

from app.domain.emails.outbox import Outbox
from app.domain.emails.submission import Submitter
from app.mailhost.drains import Drains

EMAILS = 12
DRAIN_TASKS = 4


class CountingOutbox(Outbox):
    """The real outbox, noting how many emails each claim found."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.claims: list[int] = []

    async def claim(self) -> list[Any]:
        rows = await super().claim()
        self.claims.append(len(rows))
        return rows


async def _send_one_by_one(client, team, sender, settings, owner_engine, smtp_sink, gather: float) -> list[int]:
    settings = msgspec.structs.replace(settings, worker_gather_seconds=gather, worker_poll_interval=60.0)
    stop, wake = asyncio.Event(), asyncio.Event()
    outbox = CountingOutbox(settings, owner_engine)
    drains = Drains(settings, outbox, wake, stop)
    submitters = [Submitter(settings) for _ in range(DRAIN_TASKS)]

    async def drain_until_stopped(submitter: Submitter) -> None:
        while not stop.is_set():
            await drains.drain(submitter)

    tasks = [asyncio.create_task(drain_until_stopped(s)) for s in submitters]
    ids = []
    try:
        for _ in range(EMAILS):
            ids.append((await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"])
            wake.set()  # as the outbox's NOTIFY does
            await asyncio.sleep(0.02)
        async with asyncio.timeout(30):
            while sum(outbox.claims) < EMAILS or not all(smtp_sink.for_message_id(f"<{i}@{sender}>") for i in ids):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for submitter in submitters:
            await submitter.close()
    for email_id in ids:
        assert len(smtp_sink.for_message_id(f"<{email_id}@{sender}>")) == 1
    return outbox.claims


async def test_emails_sent_one_by_one_are_claimed_several_at_a_time(client, team, sender, settings, owner_engine,
                                                                    smtp_sink):
    claims = await _send_one_by_one(client, team, sender, settings, owner_engine, smtp_sink, gather=0.25)
    found = [c for c in claims if c]
    assert sum(found) == EMAILS
    assert len(found) <= EMAILS // 3, claims
    # Only the task whose turn it is claims: the others do not wake to find nothing.
    assert claims.count(0) <= 2, claims


async def test_without_gathering_each_claim_finds_what_one_request_sent(client, team, sender, settings,
                                                                       owner_engine, smtp_sink):
    """The control for the test above: the same sends, claimed at once, take a claim each or nearly."""
    claims = await _send_one_by_one(client, team, sender, settings, owner_engine, smtp_sink, gather=0.0)
    assert len([c for c in claims if c]) > EMAILS // 3, claims


async def test_a_stopping_worker_claims_nothing_more(client, team, sender, settings, owner_engine, smtp_sink):
    """Stopped while waiting for its turn's mail, a task claims no new batch: it would be submitted during
    the stop, and left to its lease if the stop ended first."""
    settings = msgspec.structs.replace(settings, worker_gather_seconds=0.2, worker_poll_interval=60.0)
    stop, wake = asyncio.Event(), asyncio.Event()
    outbox = CountingOutbox(settings, owner_engine)
    drains = Drains(settings, outbox, wake, stop)
    submitter = Submitter(settings)
    try:
        email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        wake.set()
        turn = asyncio.create_task(drains.drain(submitter))
        await asyncio.sleep(0.05)  # the task is gathering
        stop.set()
        assert await turn == 0
        assert outbox.claims == []
        assert not smtp_sink.for_message_id(f"<{email_id}@{sender}>")
        # still queued, not lost: the next worker sends it
        assert await Outbox(settings, owner_engine).drain_once(submitter) >= 1
    finally:
        await submitter.close()
    assert len(smtp_sink.for_message_id(f"<{email_id}@{sender}>")) == 1
