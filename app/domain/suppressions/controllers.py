"""Routes of /suppressions, shaped like Resend's."""

from __future__ import annotations

import uuid
from typing import Literal

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from app.domain.suppressions import services
from app.domain.suppressions.schemas import (
    BatchAdd,
    BatchRemove,
    SuppressionCreate,
    SuppressionList,
    SuppressionOut,
    SuppressionRef,
    SuppressionRefs,
    SuppressionRemoved,
    SuppressionsRemoved,
)
from app.lib.api_error import ApiError
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.pagination import Limit

__all__ = ["SuppressionController"]


class SuppressionController(Controller):
    """Add, list, read and remove suppressed addresses, one at a time or up to 100 at once."""

    path = "/suppressions"
    tags = ["Suppressions"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=201, operation_id="suppressions/add")
    async def add(
        self, data: JSONBody[SuppressionCreate], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> SuppressionRef:
        """Suppress one address."""
        principal.require_write()
        ids = await services.add(db_session, principal.team_id, [data.email], data.reason)
        return SuppressionRef(id=str(ids[0]))

    @get("/", operation_id="suppressions/list")
    async def list_suppressions(
        self, principal: NamedDependency[Principal], db_session: DbSession,
        origin: FromQuery[Literal["bounce", "complaint", "manual"] | None] = None,
        limit: Limit = 20, after: FromQuery[str | None] = None,
    ) -> SuppressionList:
        """The team's suppressions, newest first."""
        try:
            cursor = uuid.UUID(after) if after is not None else None
        except ValueError:
            raise ApiError(422, "validation_error", "after must be a suppression id") from None
        rows, has_more = await services.page(db_session, principal.team_id, origin, limit, cursor)
        return SuppressionList(data=[services.to_out(r) for r in rows], has_more=has_more)

    @post("/batch/add", status_code=201, operation_id="suppressions/batch-add")
    async def batch_add(
        self, data: JSONBody[BatchAdd], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> SuppressionRefs:
        """Suppress up to 100 addresses (all valid, or none added)."""
        principal.require_write()
        ids = await services.add(db_session, principal.team_id, list(data.emails), data.reason)
        return SuppressionRefs(data=[SuppressionRef(id=str(i)) for i in ids])

    @post("/batch/remove", status_code=200, operation_id="suppressions/batch-remove")
    async def batch_remove(self, data: JSONBody[BatchRemove], principal: NamedDependency[Principal],
                           db_session: DbSession) -> SuppressionsRemoved:
        """Remove up to 100 suppressions by address or by id."""
        principal.require_write()
        if (data.emails is None) == (data.ids is None):
            raise ApiError(422, "validation_error", "give either emails or ids")
        removed = await services.remove(db_session, principal.team_id, list(data.emails or data.ids or []))
        return SuppressionsRemoved(data=[SuppressionRemoved(id=str(i)) for i in removed])

    @get("/{suppression:str}", operation_id="suppressions/get")
    async def get_one(
        self, suppression: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> SuppressionOut:
        """One suppression, by id or address."""
        return services.to_out(await services.find(db_session, principal.team_id, suppression))

    @delete("/{suppression:str}", status_code=200, operation_id="suppressions/remove")
    async def remove(
        self, suppression: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> SuppressionRemoved:
        """Remove one suppression, by id or address: mail to it is sent again."""
        principal.require_write()
        row = await services.find(db_session, principal.team_id, suppression)
        await services.remove(db_session, principal.team_id, [str(row.id)])
        return SuppressionRemoved(id=str(row.id))
