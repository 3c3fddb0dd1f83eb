"""Routes of /domains, shaped like Resend's."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from app.domain.domains import changes, services
from app.domain.domains.schemas import (
    DomainCreate,
    DomainDeleted,
    DomainList,
    DomainListItem,
    DomainOut,
    DomainRef,
    DomainUpdate,
)
from app.lib.auth import Principal, provide_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, page_of
from app.lib.request_body import check_echoed_id
from app.lib.timefmt import iso

__all__ = ["DomainController"]


class DomainController(Controller):
    """Create, list, read, update, verify, rotate and delete sending domains."""

    path = "/domains"
    tags = ["Domains"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=201, operation_id="domains/create")
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[DomainCreate], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> DomainOut:
        """Create a domain entry with a DKIM key and an ownership token; returns the DNS records to publish.

        Other teams may have entries of the same name; 409 when this team already has one.
        """
        svc = app_services(request)
        domain, keys = await changes.add_domain(db_session, principal, data, svc.keyring, svc.settings)
        return services.to_out(domain, keys, svc.settings)

    @get("/", operation_id="domains/list")
    async def list_domains(self, principal: NamedDependency[Principal], db_session: DbSession, limit: Limit = 20,
                           after: FromQuery[str | None] = None, before: FromQuery[str | None] = None) -> DomainList:
        """List the team's domains, newest first (`after`/`before` a domain id)."""
        domains, has_more = page_of(await services.list_domains(db_session, principal.team_id), limit, after, before)
        return DomainList(data=[
            DomainListItem(id=str(d.id), name=d.name, status=d.status, created_at=iso(d.created_at) or "",
                           region=d.region, capabilities=services.capabilities_of(d), open_tracking=d.open_tracking,
                           click_tracking=d.click_tracking) for d in domains
        ], has_more=has_more)

    @get("/{domain_id:str}", operation_id="domains/get")
    async def get_one(
        self, request: Request[Any, Any, Any], domain_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> DomainOut:
        """One domain with its records and their last verification status."""
        domain, keys = await services.get_domain(db_session, principal.team_id, parse_id(domain_id, "Domain"))
        return services.to_out(domain, keys, app_services(request).settings)

    @patch("/{domain_id:str}", operation_id="domains/update")
    async def update(
        self, request: Request[Any, Any, Any], domain_id: FromPath[str], data: JSONBody[DomainUpdate],
        principal: NamedDependency[Principal], db_session: DbSession,
    ) -> DomainRef:
        """Change the domain's TLS mode (opportunistic or enforced), turn receiving on or off, or open and click
        tracking (off unless turned on)."""
        check_echoed_id(data.id, domain_id, "id")
        domain = await changes.set_tls_mode(db_session, principal, parse_id(domain_id, "Domain"), data.tls)
        if data.capabilities is not None and data.capabilities.receiving is not None:
            await changes.set_receiving(db_session, principal, domain.id, data.capabilities.receiving == "enabled")
        if data.open_tracking is not None or data.click_tracking is not None:
            await changes.set_tracking(db_session, principal, domain.id, data.open_tracking, data.click_tracking,
                                       app_services(request).settings)
        return DomainRef(id=str(domain.id))

    @delete("/{domain_id:str}", status_code=200, operation_id="domains/remove")
    async def remove(
        self, domain_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> DomainDeleted:
        """Delete a domain and its DKIM keys."""
        domain = await changes.remove_domain(db_session, principal, parse_id(domain_id, "Domain"))
        return DomainDeleted(id=str(domain.id))

    @post("/{domain_id:str}/verify", status_code=200, operation_id="domains/verify")
    async def verify(
        self, request: Request[Any, Any, Any], domain_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> DomainOut:
        """Check every record in DNS and report a status per record.

        At most one team holds a domain name verified: 409 when another team holds it and its ownership
        record is still published, or when another team verified it at the same moment.
        """
        settings = app_services(request).settings
        domain, keys = await changes.check_domain(db_session, principal, parse_id(domain_id, "Domain"), settings)
        return services.to_out(domain, keys, settings)

    @post("/{domain_id:str}/dkim/rotate", status_code=200, operation_id="domains/rotate-dkim")
    async def rotate(
        self, request: Request[Any, Any, Any], domain_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession, algorithm: FromQuery[Literal["rsa", "ed25519"] | None] = None,
    ) -> DomainOut:
        """Add a new DKIM key beside the current one; verify promotes it once published."""
        svc = app_services(request)
        domain, keys = await changes.rotate_domain_dkim(db_session, principal, parse_id(domain_id, "Domain"),
                                                        svc.keyring, algorithm)
        return services.to_out(domain, keys, svc.settings)
