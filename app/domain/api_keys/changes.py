"""Changes to a team's API keys on behalf of a principal, shared by `/api-keys` and the console: each needs the
write role and is recorded in the team's audit log."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey
from app.domain.api_keys import services
from app.domain.api_keys.schemas import ApiKeyCreate
from app.lib.audit import record_by
from app.lib.auth import Principal

__all__ = ["issue_key", "rename_key", "withdraw_key"]


async def issue_key(db: AsyncSession, principal: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """Create a key; returns it with its token, which is never available again."""
    principal.require_write()
    key, token = await services.create_key(db, principal.team_id, data)
    await record_by(db, principal, "api_key.created", "api_key", key.id,
                    {"name": key.name, "permission": key.permission, "mode": key.mode})
    return key, token


async def withdraw_key(db: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key; it stops authenticating at once."""
    principal.require_write()
    key = await services.revoke_key(db, principal.team_id, key_id)
    await record_by(db, principal, "api_key.revoked", "api_key", key.id)
    return key


async def rename_key(db: AsyncSession, principal: Principal, key_id: uuid.UUID, name: str) -> ApiKey:
    """Give a key a new name; its token and rights stay as they are."""
    principal.require_write()
    key = await services.get_key(db, principal.team_id, key_id)
    old = key.name
    key.name = name
    await db.flush()
    await record_by(db, principal, "api_key.renamed", "api_key", key.id, {"from": old, "to": name})
    return key
