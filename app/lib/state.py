"""Process-wide services the handlers reach through `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.config import Settings
from app.lib.crypto import Keyring
from app.lib.lookups import Lookups
from app.lib.ratelimit import SlidingWindowLimiter

__all__ = ["Services"]


@dataclass
class Services:
    """Settings, data keys, Redis, the rate limiters and the cached lookups of one running app."""

    settings: Settings
    keyring: Keyring
    redis: Redis
    limiter: SlidingWindowLimiter
    credential_limiter: SlidingWindowLimiter
    lookups: Lookups
