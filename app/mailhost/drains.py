"""The worker's drain tasks take turns to claim, so that a claim gathers what arrived meanwhile.

Each task claims a batch, then submits and settles it while the next task waits for its turn to claim.
When the last claim found a full batch, the next claims at once. When it found fewer, the next first waits
`POSTYARD_WORKER_GATHER_SECONDS`, so that emails sent one per request are claimed and settled several at a
time rather than one or two per transaction; when it found none, it waits for `NOTIFY postyard_outbox` or
the poll interval, then gathers. One notification thus wakes one task, not all of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.config import Settings
from app.domain.emails.outbox import Outbox
from app.domain.emails.submission import Submitter
from app.lib.signals import first_of

__all__ = ["Drains"]


class Drains:
    """The claim turns of one worker's drain tasks."""

    def __init__(self, settings: Settings, outbox: Outbox, wake: asyncio.Event, stop: asyncio.Event) -> None:
        self._settings = settings
        self._outbox = outbox
        self._wake = wake
        self._stop = stop
        self._turn = asyncio.Lock()
        self._found = 0  # what the last claim found

    async def _next_batch(self) -> tuple[list[Any], float]:
        """Wait for this task's turn and for mail, then claim; an empty list only once stopped."""
        s = self._settings
        async with self._turn:
            while not self._stop.is_set():
                if self._found == 0:
                    await first_of(self._stop, self._wake, timeout=s.worker_poll_interval)
                    self._wake.clear()
                if self._found < s.worker_batch_size:
                    await first_of(self._stop, timeout=s.worker_gather_seconds)
                if self._stop.is_set():
                    break  # no new claim once stopping: it would be submitted during the stop
                self._found = 0  # a failed claim counts as finding nothing
                leased_at = time.monotonic()
                rows = await self._outbox.claim()
                self._found = len(rows)
                if rows:
                    return rows, leased_at
        return [], 0.0

    async def drain(self, submitter: Submitter) -> int:
        """One turn: claim a batch when there is one, submit and settle it; returns how many were claimed."""
        rows, leased_at = await self._next_batch()
        if not rows:
            return 0
        return await self._outbox.deliver(rows, submitter, leased_at)
