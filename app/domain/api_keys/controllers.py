"""Routes of /api-keys, shaped like Resend's."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from app.domain.api_keys import changes, services
from app.domain.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyDeleted, ApiKeyList, ApiKeyRef, ApiKeyUpdate
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, page_of

__all__ = ["ApiKeyController"]


class ApiKeyController(Controller):
    """Create, list, rename and revoke API keys."""

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
    async def list_keys(self, principal: NamedDependency[Principal], db_session: DbSession, limit: Limit = 20,
                        after: FromQuery[str | None] = None, before: FromQuery[str | None] = None) -> ApiKeyList:
        """List the team's keys, newest first (`after`/`before` a key id), never their tokens."""
        keys, has_more = page_of(await services.list_keys(db_session, principal.team_id), limit, after, before)
        return ApiKeyList(data=[services.to_item(k) for k in keys], has_more=has_more)

    @patch("/{api_key_id:str}", operation_id="api-keys/update")
    async def update(
        self, api_key_id: FromPath[str], data: JSONBody[ApiKeyUpdate], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> ApiKeyRef:
        """Rename a key."""
        key = await changes.rename_key(db_session, principal, parse_id(api_key_id, "API key"), data.name)
        return ApiKeyRef(id=str(key.id))

    @delete("/{api_key_id:str}", status_code=200, operation_id="api-keys/remove")
    async def remove(
        self, api_key_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> ApiKeyDeleted:
        """Revoke a key."""
        key = await changes.withdraw_key(db_session, principal, parse_id(api_key_id, "API key"))
        return ApiKeyDeleted(id=str(key.id))
