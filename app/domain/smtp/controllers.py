"""Routes of /smtp-credentials."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.domain.smtp import changes, services
from app.domain.smtp.schemas import (
    SmtpCredentialCreate,
    SmtpCredentialCreated,
    SmtpCredentialDeleted,
    SmtpCredentialItem,
    SmtpCredentialList,
)
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.timefmt import iso

__all__ = ["SmtpCredentialController"]


class SmtpCredentialController(Controller):
    """Create, list and revoke SMTP submission logins."""

    path = "/smtp-credentials"
    tags = ["SMTP credentials"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=201, operation_id="smtp-credentials/create")
    async def create(
        self, data: JSONBody[SmtpCredentialCreate], principal: NamedDependency[Principal], db_session: DbSession
    ) -> SmtpCredentialCreated:
        """Create a login; the password is in this response only."""
        cred, password = await changes.issue_credential(db_session, principal, data)
        return SmtpCredentialCreated(
            id=str(cred.id), name=cred.name, username=cred.username, password=password,
            domain_id=str(cred.domain_id) if cred.domain_id else None, created_at=iso(cred.created_at) or "",
        )

    @get("/", operation_id="smtp-credentials/list")
    async def list_credentials(
        self, principal: NamedDependency[Principal], db_session: DbSession,
    ) -> SmtpCredentialList:
        """List the team's active logins."""
        creds = await services.list_credentials(db_session, principal.team_id)
        return SmtpCredentialList(data=[
            SmtpCredentialItem(id=str(c.id), name=c.name, username=c.username,
                               domain_id=str(c.domain_id) if c.domain_id else None,
                               created_at=iso(c.created_at) or "") for c in creds
        ])

    @delete("/{credential_id:str}", status_code=200, operation_id="smtp-credentials/remove")
    async def remove(
        self, credential_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> SmtpCredentialDeleted:
        """Revoke a login."""
        cred = await changes.withdraw_credential(db_session, principal, parse_id(credential_id, "SMTP credential"))
        return SmtpCredentialDeleted(id=str(cred.id))
