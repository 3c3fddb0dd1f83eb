"""SMTP credentials of the caller's team: bcrypt `$2y$` for Dovecot's BLF-CRYPT."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Domain, SmtpCredential
from app.lib.api_error import ApiError
from app.lib.hashing import bcrypt_2y

__all__ = ["create_credential", "list_credentials", "revoke_credential"]


async def create_credential(
    db: AsyncSession, team_id: uuid.UUID, name: str, domain_id: str | None
) -> tuple[SmtpCredential, str]:
    """A new username and password (returned once); only the bcrypt hash is stored."""
    scoped = None
    if domain_id is not None:
        try:
            scoped = uuid.UUID(domain_id)
        except ValueError:
            raise ApiError(422, "validation_error", "domain_id is not a domain of this team") from None
        if (await db.execute(select(Domain.id).where(Domain.id == scoped, Domain.team_id == team_id))).first() is None:
            raise ApiError(422, "validation_error", "domain_id is not a domain of this team")
    password = secrets.token_urlsafe(24)
    password_hash = await anyio.to_thread.run_sync(bcrypt_2y, password)
    credential = SmtpCredential(
        id=uuid.uuid4(), team_id=team_id, name=name, username=f"pyd_{secrets.token_hex(8)}",
        password_hash=password_hash, domain_id=scoped,
    )
    db.add(credential)
    await db.flush()
    return credential, password


async def list_credentials(db: AsyncSession, team_id: uuid.UUID) -> list[SmtpCredential]:
    """The team's active credentials, newest first."""
    query = (select(SmtpCredential).where(SmtpCredential.team_id == team_id, SmtpCredential.revoked_at.is_(None))
             .order_by(SmtpCredential.created_at.desc()))
    return list((await db.execute(query)).scalars())


async def revoke_credential(db: AsyncSession, team_id: uuid.UUID, credential_id: uuid.UUID) -> SmtpCredential:
    """Revoke a credential; it leaves the mail views at once."""
    credential = (await db.execute(select(SmtpCredential).where(
        SmtpCredential.id == credential_id, SmtpCredential.team_id == team_id,
        SmtpCredential.revoked_at.is_(None)))).scalar_one_or_none()
    if credential is None:
        raise ApiError(404, "not_found", "SMTP credential not found")
    credential.revoked_at = datetime.now(UTC)
    await db.flush()
    return credential
