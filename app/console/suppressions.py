"""The suppressions page: suppressed addresses with their reason and origin, searched, filtered and paged; adding
and removing one, on the services /suppressions uses."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.actions import Done, run_change
from app.console.auth import ConsoleUser, CurrentUser, TeamPrincipal
from app.console.forms import form_data, parse_form
from app.console.render import render, render_error
from app.domain.suppressions import services
from app.domain.suppressions.schemas import Reason, SuppressionCreate
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["REASONS", "SUPPRESSION_HANDLERS"]

REASONS: tuple[str, ...] = get_args(Reason)
LIST = "/console/suppressions"
Text = Annotated[str | None, QueryParameter(required=False, max_length=320)]


async def _list(request: Request[Any, Any, Any], user: ConsoleUser, principal: Principal, db: AsyncSession,
                exc: ApiError | None = None, search: str = "", reason: str = "", after: str = "", per_page: int = 20,
                **form: Any) -> Response[Any]:
    """A page of the list (newest first) with the filter and add forms; with `exc`, its message and status."""
    try:
        if reason and reason not in REASONS:
            raise ApiError(422, "validation_error", f"reason: Expected one of {', '.join(REASONS)}")
        cursor = parse_id(after, "Suppression") if after else None
    except ApiError as bad:
        exc, reason, cursor = exc or bad, "", None
    rows, more = await services.page(db, principal.team_id, None, per_page, cursor, reason=reason or None,
                                     search=search or None)
    filters = {k: v for k, v in (("search", search), ("reason", reason)) if v}
    following = f"{LIST}?{urlencode({**filters, 'per_page': per_page, 'after': rows[-1].id})}" if more else None
    context: dict[str, Any] = {"title": "Suppressions", "rows": [services.to_out(r) for r in rows],
                               "reasons": REASONS, "search": search, "reason": reason, "filtered": bool(filters),
                               "following": following, "first": f"{LIST}?{urlencode(filters)}" if after else None,
                               "add_email": "", "add_reason": "manual", **form}
    if exc is not None:
        return await render_error(request, user, "suppressions.html.j2", exc, **context)
    return await render(request, user, "suppressions.html.j2", **context)


@get("/suppressions", name="console:suppressions")
async def suppressions(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                       db_session: DbSession, search: Text = None, reason: Text = None, after: Text = None,
                       per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 20) -> Response[Any]:
    """The team's suppressed addresses, newest first: those containing `search`, of one `reason`, a page at a
    time."""
    return await _list(request, console_user, principal, db_session, search=(search or "").strip(),
                       reason=reason or "", after=after or "", per_page=per_page)


@post("/suppressions", name="console:suppression-add")
async def add(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
              db_session: DbSession) -> Response[Any]:
    """Suppress an address like `POST /suppressions` (an address already listed keeps its first reason)."""
    data = await form_data(request)

    async def suppress() -> Done:
        principal.require_write()
        form = parse_form({k: data.get(k, "") for k in ("email", "reason")}, SuppressionCreate)
        await services.add(db_session, principal.team_id, [form.email], form.reason)
        return Done(LIST, f"{form.email.lower()} is suppressed.")

    return await run_change(request, console_user, db_session, suppress, lambda exc: _list(
        request, console_user, principal, db_session, exc, add_email=data.get("email", ""),
        add_reason=data.get("reason", "manual")))


@post("/suppressions/{suppression_id:str}/remove", name="console:suppression-remove")
async def remove(request: Request[Any, Any, Any], suppression_id: FromPath[str], console_user: CurrentUser,
                 principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Remove a suppression like `DELETE /suppressions/{id}`: mail to the address is sent again."""
    async def unsuppress() -> Done:
        principal.require_write()
        row = await services.find(db_session, principal.team_id, str(parse_id(suppression_id, "Suppression")))
        await services.remove(db_session, principal.team_id, [str(row.id)])
        return Done(LIST, f"{row.email} is no longer suppressed.")

    return await run_change(request, console_user, db_session, unsuppress,
                            lambda exc: _list(request, console_user, principal, db_session, exc))


SUPPRESSION_HANDLERS = [suppressions, add, remove]
