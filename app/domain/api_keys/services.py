"""Creating, listing and revoking API keys of the caller's team."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey, Domain
from app.domain.api_keys.schemas import ApiKeyCreate, ApiKeyItem
from app.lib.api_error import ApiError
from app.lib.api_keys import generate_api_key
from app.lib.hashing import sha256
from app.lib.timefmt import iso

__all__ = ["create_key", "get_key", "list_keys", "revoke_key", "to_item"]


def _normalise_allowlist(entries: list[str] | None) -> list[str] | None:
    if not entries:
        return None
    try:
        return [str(ipaddress.ip_network(e.strip(), strict=False)) for e in entries]
    except ValueError:
        raise ApiError(422, "validation_error", "allowed_ips must be IP addresses or CIDR networks") from None


async def create_key(db: AsyncSession, team_id: uuid.UUID, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """Store a new key's hash; return the row and the plaintext token (shown once)."""
    domain_id = None
    if data.domain_id is not None:
        try:
            domain_id = uuid.UUID(data.domain_id)
        except ValueError:
            raise ApiError(422, "validation_error", "domain_id is not a domain of this team") from None
        found = (await db.execute(select(Domain.id).where(Domain.id == domain_id, Domain.team_id == team_id))).first()
        if found is None:
            raise ApiError(422, "validation_error", "domain_id is not a domain of this team")
    expires_at = data.expires_at
    if expires_at is not None:
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if expires_at <= datetime.now(UTC):
            raise ApiError(422, "validation_error", "expires_at must be in the future")
    token = generate_api_key(data.mode)
    key = ApiKey(
        id=uuid.uuid4(), team_id=team_id, name=data.name, mode=data.mode, token_hash=sha256(token),
        permission=data.permission, domain_id=domain_id, allowed_ips=_normalise_allowlist(data.allowed_ips),
        expires_at=expires_at,
    )
    db.add(key)
    await db.flush()
    return key, token


async def list_keys(db: AsyncSession, team_id: uuid.UUID) -> list[ApiKey]:
    """The team's keys that are not revoked, newest first."""
    query = (select(ApiKey).where(ApiKey.team_id == team_id, ApiKey.revoked_at.is_(None))
             .order_by(ApiKey.created_at.desc(), ApiKey.id.desc()))
    return list((await db.execute(query)).scalars())


async def get_key(db: AsyncSession, team_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """One live key of the team, or 404."""
    key = (await db.execute(select(ApiKey).where(
        ApiKey.id == key_id, ApiKey.team_id == team_id, ApiKey.revoked_at.is_(None)))).scalar_one_or_none()
    if key is None:
        raise ApiError(404, "not_found", "API key not found")
    return key


async def revoke_key(db: AsyncSession, team_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key of the team; it stops authenticating at once."""
    key = await get_key(db, team_id, key_id)
    key.revoked_at = datetime.now(UTC)
    await db.flush()
    return key


def to_item(key: ApiKey) -> ApiKeyItem:
    """The listed form of a key."""
    return ApiKeyItem(
        id=str(key.id), name=key.name, created_at=iso(key.created_at) or "", last_used_at=iso(key.last_used_at),
        permission=key.permission, mode=key.mode, domain_id=str(key.domain_id) if key.domain_id else None,
        allowed_ips=key.allowed_ips, expires_at=iso(key.expires_at),
    )
