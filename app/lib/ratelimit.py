"""Sliding-window rate limits in Redis (one Lua round trip), with an in-process fallback."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.lib.metrics import RATE_LIMIT_FALLBACKS

__all__ = ["Decision", "InProcessWindow", "Reservation", "SlidingWindowLimiter"]

logger = logging.getLogger("postyard.ratelimit")

# KEYS: one sorted set per limited subject. ARGV: now_ms, window_ms, member, add (0/1), limits...
# Returns: allowed, then count and ms-until-reset for each key. Checking and adding happen in one script, so
# concurrent callers cannot all pass the check before any of them is counted.
SLIDING_WINDOW_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local add = ARGV[4] == '1'
local allowed = 1
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= tonumber(ARGV[4 + i]) then allowed = 0 end
end
if allowed == 1 and add then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[3])
    redis.call('PEXPIRE', key, window)
    counts[i] = counts[i] + 1
  end
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  out[#out + 1] = counts[i]
  out[#out + 1] = reset
end
return out
"""


@dataclass(frozen=True)
class Decision:
    """Outcome for the most constrained subject: allowed, limit, remaining, seconds to reset."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        """The IETF draft `RateLimit-*` headers, plus Retry-After when refused."""
        headers = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset),
        }
        if not self.allowed:
            headers["retry-after"] = str(max(self.reset, 1))
        return headers


@dataclass(frozen=True)
class Reservation:
    """A slot taken in every window of `keys` (when `decision.allowed`), to be kept or released."""

    decision: Decision
    keys: tuple[str, ...]
    member: str
    in_process: bool


def _decide(allowed: bool, limits: list[int], counts: list[int], resets_ms: list[float]) -> Decision:
    index = min(range(len(limits)), key=lambda i: limits[i] - counts[i])
    remaining = max(limits[index] - counts[index], 0)
    return Decision(allowed, limits[index], remaining, math.ceil(max(resets_ms[index], 0) / 1000))


class InProcessWindow:
    """The same sliding window kept in this process's memory (used while Redis is unreachable)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hits: dict[str, deque[tuple[float, str]]] = {}
        self._max_keys = max_keys

    def hit(self, keys: list[str], limits: list[int], window: float, add: bool, member: str = "") -> Decision:
        """Count (and when allowed and `add`, record as `member`) one hit on every key.

        Synchronous, so nothing else on the event loop runs between the check and the count."""
        now = time.monotonic()
        if len(self._hits) > self._max_keys:
            self._hits.clear()
        windows = [self._hits.setdefault(k, deque()) for k in keys]
        for hits in windows:
            while hits and hits[0][0] <= now - window:
                hits.popleft()
        allowed = all(len(h) < lim for h, lim in zip(windows, limits, strict=True))
        if allowed and add:
            for hits in windows:
                hits.append((now, member))
        counts = [len(h) for h in windows]
        resets = [((h[0][0] + window - now) if h else window) * 1000 for h in windows]
        return _decide(allowed, limits, counts, resets)

    def remove(self, keys: tuple[str, ...], member: str) -> None:
        """Forget the hit recorded as `member` on every key."""
        for key in keys:
            hits = self._hits.get(key)
            if hits is not None:
                self._hits[key] = deque(h for h in hits if h[1] != member)


class SlidingWindowLimiter:
    """Redis sliding windows; falls back to `InProcessWindow` (and says so) when Redis fails."""

    def __init__(self, redis: Redis, prefix: str = "rl", retry_after: float = 5.0) -> None:
        self._redis = redis
        self._script = redis.register_script(SLIDING_WINDOW_LUA)
        self._prefix = prefix
        self._fallback = InProcessWindow()
        self._retry_after = retry_after
        self._down_until = 0.0

    async def hit(self, keys: list[str], limits: list[int], window: int, add: bool = True) -> Decision:
        """Check the keys against their limits and, when allowed and `add`, count one hit."""
        return (await self.reserve(keys, limits, window, add)).decision

    async def reserve(self, keys: list[str], limits: list[int], window: int, add: bool = True) -> Reservation:
        """As `hit`, atomically; the returned reservation can be given back with `release`."""
        member = f"{int(time.time() * 1000)}-{secrets.token_hex(8)}"
        if self._redis_up():
            try:
                raw = await self._script(
                    keys=[f"{self._prefix}:{k}" for k in keys],
                    args=[int(time.time() * 1000), window * 1000, member, int(add), *limits],
                )
                counts = [int(raw[1 + 2 * i]) for i in range(len(keys))]
                resets = [float(raw[2 + 2 * i]) for i in range(len(keys))]
                return Reservation(_decide(bool(int(raw[0])), limits, counts, resets), tuple(keys), member, False)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        RATE_LIMIT_FALLBACKS.inc()
        return Reservation(self._fallback.hit(keys, limits, float(window), add, member), tuple(keys), member, True)

    async def release(self, reservation: Reservation) -> None:
        """Give back a reservation's slot in every window (nothing when it was refused)."""
        if not reservation.decision.allowed:
            return
        if reservation.in_process:
            self._fallback.remove(reservation.keys, reservation.member)
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in reservation.keys:
                    pipe.zrem(f"{self._prefix}:{key}", reservation.member)
                await pipe.execute()
        except (RedisError, OSError) as exc:  # the slot then simply expires with its window
            self._redis_failed(exc)

    def _redis_up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _redis_failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self._retry_after
        logger.warning("redis unavailable, limiting in process", extra={"error": str(exc)})
