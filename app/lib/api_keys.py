"""API key format: `sk_live_` or `sk_test_` followed by 32+ random bytes, checked before any lookup."""

from __future__ import annotations

import re
import secrets

__all__ = ["KEY_PATTERN", "generate_api_key", "is_well_formed"]

KEY_PATTERN = re.compile(r"^sk_(live|test)_[A-Za-z0-9_-]{43,128}$")


def generate_api_key(mode: str = "live") -> str:
    """A new key: the mode prefix and 32 random bytes, base64url."""
    if mode not in ("live", "test"):
        raise ValueError("mode must be live or test")
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


def is_well_formed(token: str) -> bool:
    """Whether the token has a valid prefix and length (no database needed)."""
    return bool(KEY_PATTERN.match(token))
