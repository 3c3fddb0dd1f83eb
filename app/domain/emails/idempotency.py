"""Idempotency keys: the first response to a (team, key) is replayed for 24 hours to the same body."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.emails import repository
from app.lib.api_error import ApiError

__all__ = ["MAX_KEY_LENGTH", "TTL_HOURS", "claim", "request_hash"]

MAX_KEY_LENGTH = 256
TTL_HOURS = 24


def request_hash(path: str, body: bytes) -> bytes:
    """SHA-256 of the route and the body in canonical JSON (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(path.encode() + b"\0" + canonical).digest()


async def claim(db: AsyncSession, team_id: uuid.UUID, key: str, digest: bytes, response: Any) -> Any | None:
    """Store `response` under the key; or return the stored one (same body), or refuse with 409.

    Runs in the request's transaction: a concurrent request with the same key waits on the primary key
    until this one commits or rolls back, so exactly one of them creates the emails.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(422, "invalid_idempotency_key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    if await repository.claim_idempotency_key(db, team_id, key, digest, response, TTL_HOURS):
        return None
    row = await repository.stored_idempotent_response(db, team_id, key)
    if bytes(row.request_hash) != digest:
        raise ApiError(409, "invalid_idempotent_request",
                       "This Idempotency-Key was already used with a different request body")
    return row.response
