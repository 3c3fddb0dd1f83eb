"""Route of /audit-logs."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter

from app.domain.audit import services
from app.domain.audit.schemas import AuditEntry, AuditPage
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.timefmt import iso

__all__ = ["AuditLogController"]


class AuditLogController(Controller):
    """Read the team's audit log."""

    path = "/audit-logs"
    tags = ["Audit log"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", operation_id="audit-logs/list")
    async def list_entries(
        self, principal: NamedDependency[Principal], db_session: DbSession,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20, after: FromQuery[str | None] = None,
    ) -> AuditPage:
        """Entries newest first, `limit` a page; `after` is the id of the last entry of the previous page."""
        cursor = parse_id(after, "Audit log entry") if after is not None else None
        rows, more = await services.page(db_session, principal.team_id, limit, cursor)
        return AuditPage(has_more=more, data=[
            AuditEntry(id=str(r.id), actor_type=r.actor_type, actor_id=r.actor_id, action=r.action,
                       resource_type=r.resource_type, resource_id=r.resource_id, ip=r.ip, details=r.details,
                       created_at=iso(r.created_at) or "") for r in rows
        ])
