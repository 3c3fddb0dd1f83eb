"""Routes of /templates, shaped like Resend's (a template is named by its id or its alias)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from app.domain.templates import services
from app.domain.templates.schemas import (
    TemplateCreate,
    TemplateDeleted,
    TemplateList,
    TemplateOut,
    TemplateRef,
    TemplateUpdate,
)
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.pagination import Limit, page_of

__all__ = ["TemplateController"]


class TemplateController(Controller):
    """Create, read, list, update, publish, duplicate and delete templates."""

    path = "/templates"
    tags = ["Templates"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=201, operation_id="templates/create")
    async def create(self, data: JSONBody[TemplateCreate], principal: NamedDependency[Principal],
                     db_session: DbSession) -> TemplateRef:
        """Store a draft template; publish it to send with it."""
        return TemplateRef(id=str(await services.create(db_session, principal, data)))

    @get("/", operation_id="templates/list")
    async def list_templates(self, principal: NamedDependency[Principal], db_session: DbSession, limit: Limit = 20,
                             after: FromQuery[str | None] = None,
                             before: FromQuery[str | None] = None) -> TemplateList:
        """The team's templates, newest first (`after`/`before` a template id)."""
        items, has_more = page_of(await services.list_items(db_session, principal.team_id), limit, after, before)
        return TemplateList(data=items, has_more=has_more)

    @get("/{template_id:str}", operation_id="templates/get")
    async def get_one(self, template_id: FromPath[str], principal: NamedDependency[Principal],
                      db_session: DbSession) -> TemplateOut:
        """One template (by id or alias), with its draft."""
        return services.to_out(await services.get(db_session, principal.team_id, template_id))

    @patch("/{template_id:str}", operation_id="templates/update")
    async def update(self, template_id: FromPath[str], data: JSONBody[TemplateUpdate],
                     principal: NamedDependency[Principal], db_session: DbSession) -> TemplateRef:
        """Change the draft; emails keep using the published version until the next publish."""
        return TemplateRef(id=str(await services.update(db_session, principal, template_id, data)))

    @delete("/{template_id:str}", status_code=200, operation_id="templates/remove")
    async def remove(self, template_id: FromPath[str], principal: NamedDependency[Principal],
                     db_session: DbSession) -> TemplateDeleted:
        """Delete a template."""
        return TemplateDeleted(id=str(await services.delete(db_session, principal, template_id)))

    @post("/{template_id:str}/publish", status_code=200, operation_id="templates/publish")
    async def publish(self, template_id: FromPath[str], principal: NamedDependency[Principal],
                      db_session: DbSession) -> TemplateRef:
        """Make the draft the version that sends."""
        return TemplateRef(id=str(await services.publish(db_session, principal, template_id)))

    @post("/{template_id:str}/duplicate", status_code=200, operation_id="templates/duplicate")
    async def duplicate(self, template_id: FromPath[str], principal: NamedDependency[Principal],
                        db_session: DbSession) -> TemplateRef:
        """Copy the template's draft into a new draft template."""
        return TemplateRef(id=str(await services.duplicate(db_session, principal, template_id)))
