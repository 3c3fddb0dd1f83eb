"""Routes of /api-keys, shaped like Resend's."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.domain.api_keys import changes, services
from app.domain.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyDeleted, ApiKeyList
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
        key, token = await changes.issue_key(db_session, principal, data)
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
        key = await changes.withdraw_key(db_session, principal, parse_id(api_key_id, "API key"))
        return ApiKeyDeleted(id=str(key.id))
