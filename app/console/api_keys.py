"""The console's API keys: the list, creating one (its token shown once, on the answer to the form), revoking."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.console.auth import CurrentUser, TeamPrincipal
from app.console.forms import form_data, parse_form
from app.console.render import redirect, render, render_error
from app.domain.api_keys import changes, services
from app.domain.api_keys.schemas import ApiKeyCreate
from app.domain.domains.services import list_domains
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["API_KEY_HANDLERS", "allowlist_entries"]

LIST = "/console/api-keys"
_SEPARATORS = re.compile(r"[\s,]+")
_MINUTES = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")  # what <input type="datetime-local"> sends


def allowlist_entries(text: str) -> list[str]:
    """The IP addresses and networks of the allowlist field: one per line, or separated by commas or spaces."""
    return [entry for entry in _SEPARATORS.split(text) if entry]


def _key_request(data: dict[str, str]) -> ApiKeyCreate:
    """The form as the API's request body: the allowlist as a list, a minute-precision expiry as UTC."""
    fields: dict[str, Any] = dict(data)
    fields["allowed_ips"] = allowlist_entries(data.get("allowed_ips", "")) or ""
    expires = data.get("expires_at", "")
    fields["expires_at"] = f"{expires}:00Z" if _MINUTES.match(expires) else expires
    return parse_form(fields, ApiKeyCreate)


async def _list(request: Request[Any, Any, Any], console_user: CurrentUser, principal: Principal,
                db_session: DbSession, error: ApiError | None = None, form: dict[str, str] | None = None,
                ) -> Response[Any]:
    """The list page, with `error` (the API's message and status) above the create form when given."""
    domains = await list_domains(db_session, principal.team_id)
    context = {"title": "API keys", "keys": await services.list_keys(db_session, principal.team_id),
               "domains": domains, "domain_names": {d.id: d.name for d in domains}, "form": form or {}}
    if error is not None:
        return await render_error(request, console_user, "api_keys.html.j2", error, **context)
    return await render(request, console_user, "api_keys.html.j2", **context)


@get("/api-keys", name="console:api-keys")
async def list_keys(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                    db_session: DbSession) -> Response[Any]:
    """The team's keys (never their tokens) and a form to create one."""
    return await _list(request, console_user, principal, db_session)


@post("/api-keys", name="console:api-key-create")
async def create_key(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                     db_session: DbSession) -> Response[Any]:
    """Create a key like `POST /api-keys`; this answer is the only page that ever shows its token."""
    data = await form_data(request)
    try:
        async with db_session.begin_nested():  # a refusal undoes only this change
            key, token = await changes.issue_key(db_session, principal, _key_request(data))
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc, data)
    return await render(request, console_user, "api_key_created.html.j2", title="API key created", key=key,
                        token=token)


@post("/api-keys/{key_id:str}/revoke", name="console:api-key-revoke")
async def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[str], console_user: CurrentUser,
                     principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Revoke a key like `DELETE /api-keys/{id}`: it stops authenticating at once."""
    try:
        async with db_session.begin_nested():
            key = await changes.withdraw_key(db_session, principal, parse_id(key_id, "API key"))
            name = key.name
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, LIST, flash=f"API key {name} revoked.")


API_KEY_HANDLERS = [list_keys, create_key, revoke_key]
