"""Routes of /api-keys, shaped like Resend's."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.domain.api_keys import services
from app.domain.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyDeleted, ApiKeyList
from app.lib.audit import record
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["ApiKeyController"]


class ApiKeyController(Controller):
    """Create, list and revoke API keys."""

    path = "/api-keys"
    tags = ["API Keys"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=201, operation_id="api-keys/create")
    async def create(
        self, data: JSONBody[ApiKeyCreate], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> ApiKeyCreated:
        """Create a key; its token is in this response only."""
        principal.require_write()
        key, token = await services.create_key(db_session, principal.team_id, data)
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="api_key.created",
                     resource_type="api_key", resource_id=key.id, ip=principal.ip,
                     details={"name": key.name, "permission": key.permission, "mode": key.mode})
        return ApiKeyCreated(id=str(key.id), token=token)

    @get("/", operation_id="api-keys/list")
    async def list_keys(self, principal: NamedDependency[Principal], db_session: DbSession) -> ApiKeyList:
        """List the team's keys (never their tokens)."""
        return ApiKeyList(data=[services.to_item(k) for k in await services.list_keys(db_session, principal.team_id)])

    @delete("/{api_key_id:str}", status_code=200, operation_id="api-keys/remove")
    async def remove(
        self, api_key_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> ApiKeyDeleted:
        """Revoke a key."""
        principal.require_write()
        key = await services.revoke_key(db_session, principal.team_id, parse_id(api_key_id, "API key"))
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="api_key.revoked",
                     resource_type="api_key", resource_id=key.id, ip=principal.ip)
        return ApiKeyDeleted(id=str(key.id))
