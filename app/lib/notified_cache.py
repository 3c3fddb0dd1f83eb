"""Rows a process reads on nearly every request, kept for seconds and dropped the moment PostgreSQL
announces a change to their table.

The cache is trusted only while its LISTEN connection is up (`app/db/notifications.py`): without it, every
lookup goes to the database, so a revoked key or a suspended team never outlives the notification that
would have dropped it. A row read before a notification and stored after it would come back stale, so
`put` keeps a value only if no notification arrived since the read began (`generation`).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["NotifiedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class NotifiedCache(Generic[K, V]):
    """A dictionary whose entries last `ttl` seconds, emptied on every notification and while not listening."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0
        self.listening = False

    @property
    def generation(self) -> int:
        """Take it before reading the database; hand it to `put` with what was read."""
        return self._generation

    def get(self, key: K) -> V | None:
        """The value stored for `key`, if still fresh and the cache is listening."""
        entry = self._entries.get(key)
        if entry is None or not self.listening:
            return None
        stored_at, value = entry
        if time.monotonic() - stored_at > self._ttl:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V, generation: int) -> None:
        """Keep `value` unless a notification came after `generation` was taken, or nobody listens."""
        if not self.listening or generation != self._generation or self._ttl <= 0:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)

    def drop(self, key: K) -> None:
        """Forget one entry (this process changed its row)."""
        self._entries.pop(key, None)

    def changed(self) -> None:
        """A notification: every entry may be stale."""
        self._generation += 1
        self._entries.clear()

    def set_listening(self, listening: bool) -> None:
        """The LISTEN connection came up or went down; either way what is stored may have missed a change."""
        self.listening = listening
        self.changed()
