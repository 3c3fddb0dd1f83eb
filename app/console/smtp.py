"""The console's SMTP credentials: the list, creating one (its password shown once, on the answer), revoking."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.console.auth import CurrentUser, TeamPrincipal
from app.console.forms import form_data, parse_form
from app.console.render import redirect, render, render_error
from app.domain.domains.services import list_domains
from app.domain.smtp import changes, services
from app.domain.smtp.schemas import SmtpCredentialCreate
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["SMTP_HANDLERS"]

LIST = "/console/smtp"


async def _list(request: Request[Any, Any, Any], console_user: CurrentUser, principal: Principal,
                db_session: DbSession, error: ApiError | None = None, form: dict[str, str] | None = None,
                ) -> Response[Any]:
    """The list page, with `error` (the API's message and status) above the create form when given."""
    domains = await list_domains(db_session, principal.team_id)
    context = {"title": "SMTP credentials",
               "credentials": await services.list_credentials(db_session, principal.team_id),
               "domains": domains, "domain_names": {d.id: d.name for d in domains}, "form": form or {}}
    if error is not None:
        return await render_error(request, console_user, "smtp.html.j2", error, **context)
    return await render(request, console_user, "smtp.html.j2", **context)


@get("/smtp", name="console:smtp")
async def list_credentials(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                           db_session: DbSession) -> Response[Any]:
    """The team's SMTP logins (never their passwords) and a form to create one."""
    return await _list(request, console_user, principal, db_session)


@post("/smtp", name="console:smtp-create")
async def create_credential(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                            db_session: DbSession) -> Response[Any]:
    """Create a login like `POST /smtp-credentials`; this answer is the only page that shows its password."""
    data = await form_data(request)
    try:
        async with db_session.begin_nested():  # a refusal undoes only this change
            credential, password = await changes.issue_credential(db_session, principal,
                                                                  parse_form(data, SmtpCredentialCreate))
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc, data)
    return await render(request, console_user, "smtp_created.html.j2", title="SMTP credential created",
                        credential=credential, password=password, server=app_services(request).settings.mail_hostname)


@post("/smtp/{credential_id:str}/revoke", name="console:smtp-revoke")
async def revoke_credential(request: Request[Any, Any, Any], credential_id: FromPath[str], console_user: CurrentUser,
                            principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Revoke a login like `DELETE /smtp-credentials/{id}`."""
    try:
        async with db_session.begin_nested():
            credential = await changes.withdraw_credential(db_session, principal,
                                                           parse_id(credential_id, "SMTP credential"))
            name = credential.name
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, LIST, flash=f"SMTP credential {name} revoked.")


SMTP_HANDLERS = [list_credentials, create_credential, revoke_credential]
