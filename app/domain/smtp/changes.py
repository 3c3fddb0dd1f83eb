"""Changes to a team's SMTP credentials on behalf of a principal, shared by `/smtp-credentials` and the console:
each needs the write role and is recorded in the team's audit log."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SmtpCredential
from app.domain.smtp import services
from app.domain.smtp.schemas import SmtpCredentialCreate
from app.lib.audit import record_by
from app.lib.auth import Principal

__all__ = ["issue_credential", "withdraw_credential"]


async def issue_credential(db: AsyncSession, principal: Principal,
                           data: SmtpCredentialCreate) -> tuple[SmtpCredential, str]:
    """Create a login; returns it with its password, which is never available again."""
    principal.require_write()
    credential, password = await services.create_credential(db, principal.team_id, data.name, data.domain_id)
    await record_by(db, principal, "smtp_credential.created", "smtp_credential", credential.id,
                    {"username": credential.username})
    return credential, password


async def withdraw_credential(db: AsyncSession, principal: Principal, credential_id: uuid.UUID) -> SmtpCredential:
    """Revoke a login; it leaves the mail views at once."""
    principal.require_write()
    credential = await services.revoke_credential(db, principal.team_id, credential_id)
    await record_by(db, principal, "smtp_credential.revoked", "smtp_credential", credential.id)
    return credential
