"""The console's domains: the list, adding one, its DNS records and checks, DKIM rotation, TLS mode, deletion."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.console.actions import Done, run_change
from app.console.auth import CurrentUser, TeamPrincipal
from app.console.forms import form_data, parse_form
from app.console.render import render, render_error
from app.domain.domains import changes, services
from app.domain.domains.schemas import DomainCreate, DomainUpdate
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["DOMAIN_HANDLERS"]

LIST = "/console/domains"


class DkimChoice(msgspec.Struct, kw_only=True):
    """The key type asked for when rotating (the API's `algorithm` query parameter)."""

    algorithm: Literal["rsa", "ed25519"] | None = None


def _page(domain_id: object) -> str:
    return f"{LIST}/{domain_id}"


async def _list(request: Request[Any, Any, Any], console_user: CurrentUser, principal: Principal,
                db_session: DbSession, error: ApiError | None = None, form: dict[str, str] | None = None,
                ) -> Response[Any]:
    """The list page, with `error` (the API's message and status) above the add form when given."""
    domains = await services.list_domains(db_session, principal.team_id)
    context = {"title": "Domains", "domains": domains, "form": form or {}}
    if error is not None:
        return await render_error(request, console_user, "domains.html.j2", error, **context)
    return await render(request, console_user, "domains.html.j2", **context)


async def _detail(request: Request[Any, Any, Any], console_user: CurrentUser, principal: Principal,
                  db_session: DbSession, domain_id: str, error: ApiError | None = None) -> Response[Any]:
    """One domain with its records and each one's last check, with `error` above them when given."""
    domain, keys = await services.get_domain(db_session, principal.team_id, parse_id(domain_id, "Domain"))
    context = {"title": domain.name, "domain": services.to_out(domain, keys, app_services(request).settings)}
    if error is not None:
        return await render_error(request, console_user, "domain.html.j2", error, **context)
    return await render(request, console_user, "domain.html.j2", **context)


async def _change(request: Request[Any, Any, Any], console_user: CurrentUser, principal: Principal,
                  db_session: DbSession, domain_id: str, change: Callable[[], Awaitable[Done]]) -> Response[Any]:
    """`change` to the domain, then where it says; a refusal shows the domain's page with the API's message."""
    return await run_change(request, console_user, db_session, change,
                            lambda exc: _detail(request, console_user, principal, db_session, domain_id, exc))


@get("/domains", name="console:domains")
async def list_domains(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                       db_session: DbSession) -> Response[Any]:
    """The team's domains and their status, and a form to add one."""
    return await _list(request, console_user, principal, db_session)


@post("/domains", name="console:domain-create")
async def create_domain(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                        db_session: DbSession) -> Response[Any]:
    """Add a domain like `POST /domains`: a DKIM key and an ownership token; then its records to publish."""
    data = await form_data(request)

    async def add() -> Done:
        svc = app_services(request)
        domain, _ = await changes.add_domain(db_session, principal, parse_form(data, DomainCreate), svc.keyring,
                                             svc.settings)
        return Done(_page(domain.id), f"Domain {domain.name} added. Publish its records, then check them.")

    return await run_change(request, console_user, db_session, add,
                            lambda exc: _list(request, console_user, principal, db_session, exc, data))


@get("/domains/{domain_id:str}", name="console:domain")
async def show_domain(request: Request[Any, Any, Any], domain_id: FromPath[str], console_user: CurrentUser,
                      principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """The domain's DNS records (name, type, value, priority) and the last check of each."""
    return await _detail(request, console_user, principal, db_session, domain_id)


@post("/domains/{domain_id:str}/verify", name="console:domain-verify")
async def verify_domain(request: Request[Any, Any, Any], domain_id: FromPath[str], console_user: CurrentUser,
                        principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Check every record in DNS now, like `POST /domains/{id}/verify`; the page then shows each result."""
    async def check() -> Done:
        domain, _ = await changes.check_domain(db_session, principal, parse_id(domain_id, "Domain"),
                                               app_services(request).settings)
        return Done(_page(domain.id), f"Records checked: {domain.status.replace('_', ' ')}.")

    return await _change(request, console_user, principal, db_session, domain_id, check)


@post("/domains/{domain_id:str}/dkim/rotate", name="console:domain-rotate")
async def rotate_dkim(request: Request[Any, Any, Any], domain_id: FromPath[str], console_user: CurrentUser,
                      principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Add a new DKIM key beside the current one, like `POST /domains/{id}/dkim/rotate`."""
    async def rotate() -> Done:
        choice = parse_form(await form_data(request), DkimChoice)
        domain, _ = await changes.rotate_domain_dkim(db_session, principal, parse_id(domain_id, "Domain"),
                                                     app_services(request).keyring, choice.algorithm)
        return Done(_page(domain.id), "A new DKIM key was added. Publish its record; a check makes it the active key.")

    return await _change(request, console_user, principal, db_session, domain_id, rotate)


@post("/domains/{domain_id:str}/tls", name="console:domain-tls")
async def set_tls(request: Request[Any, Any, Any], domain_id: FromPath[str], console_user: CurrentUser,
                  principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Change the TLS mode (opportunistic or enforced), like `PATCH /domains/{id}`."""
    async def tls() -> Done:
        update = parse_form(await form_data(request), DomainUpdate)
        domain = await changes.set_tls_mode(db_session, principal, parse_id(domain_id, "Domain"), update.tls)
        return Done(_page(domain.id), f"TLS is {domain.tls_mode}.")

    return await _change(request, console_user, principal, db_session, domain_id, tls)


@post("/domains/{domain_id:str}/delete", name="console:domain-delete")
async def delete_domain(request: Request[Any, Any, Any], domain_id: FromPath[str], console_user: CurrentUser,
                        principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Delete the domain and its DKIM keys, like `DELETE /domains/{id}`."""
    async def delete() -> Done:
        domain = await changes.remove_domain(db_session, principal, parse_id(domain_id, "Domain"))
        return Done(LIST, f"Domain {domain.name} deleted.")

    return await _change(request, console_user, principal, db_session, domain_id, delete)


DOMAIN_HANDLERS = [list_domains, create_domain, show_domain, verify_domain, rotate_dkim, set_tls, delete_domain]
