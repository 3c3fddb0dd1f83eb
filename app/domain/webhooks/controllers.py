"""Routes of /webhooks, shaped like Resend's, plus secret rotation, the delivery log and replay."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from app.domain.webhooks import changes, services
from app.domain.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookList,
    WebhookListItem,
    WebhookOut,
    WebhookRef,
    WebhookUpdate,
)
from app.lib.auth import Principal, provide_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, page_of
from app.lib.request_body import check_echoed_id
from app.lib.timefmt import iso

__all__ = ["WebhookController"]


class WebhookController(Controller):
    """Create, list, read, update, rotate and delete webhook endpoints; read and replay deliveries."""

    path = "/webhooks"
    tags = ["Webhooks"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=201, operation_id="webhooks/create")
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[WebhookCreate], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> WebhookCreated:
        """Add an endpoint; its signing secret (`whsec_...`) is returned."""
        svc = app_services(request)
        webhook_id, secret = await changes.add(db_session, principal, data.endpoint, list(data.events),
                                                  svc.settings, svc.keyring)
        return WebhookCreated(id=str(webhook_id), signing_secret=secret)

    @get("/", operation_id="webhooks/list")
    async def list_webhooks(self, principal: NamedDependency[Principal], db_session: DbSession, limit: Limit = 20,
                            after: FromQuery[str | None] = None, before: FromQuery[str | None] = None) -> WebhookList:
        """The team's endpoints, newest first (`after`/`before` an endpoint id)."""
        rows, has_more = page_of(await services.list_all(db_session, principal.team_id), limit, after, before)
        return WebhookList(data=[WebhookListItem(id=str(r.id), endpoint=r.endpoint, events=list(r.events),
                                                 status=r.status, created_at=iso(r.created_at) or "") for r in rows],
                           has_more=has_more)

    @get("/{webhook_id:str}", operation_id="webhooks/get")
    async def get_one(
        self, request: Request[Any, Any, Any], webhook_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> WebhookOut:
        """One endpoint with its current signing secret."""
        row = await services.get(db_session, principal.team_id, parse_id(webhook_id, "Webhook"))
        return services.to_out(row, app_services(request).keyring)

    @patch("/{webhook_id:str}", operation_id="webhooks/update")
    async def update(self, request: Request[Any, Any, Any], webhook_id: FromPath[str], data: JSONBody[WebhookUpdate],
                     principal: NamedDependency[Principal], db_session: DbSession) -> WebhookRef:
        """Change the URL, the events, or enable/disable the endpoint."""
        check_echoed_id(data.webhook_id, webhook_id, "webhook_id")
        wid = parse_id(webhook_id, "Webhook")
        await changes.change(db_session, principal, wid, data.endpoint, list(data.events) if data.events else None,
                                data.status, app_services(request).settings)
        return WebhookRef(id=str(wid))

    @delete("/{webhook_id:str}", status_code=200, operation_id="webhooks/remove")
    async def remove(
        self, webhook_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> WebhookDeleted:
        """Delete an endpoint and its delivery log."""
        wid = parse_id(webhook_id, "Webhook")
        await changes.remove(db_session, principal, wid)
        return WebhookDeleted(id=str(wid))

    @post("/{webhook_id:str}/rotate-secret", status_code=200, operation_id="webhooks/rotate-secret")
    async def rotate(
        self, request: Request[Any, Any, Any], webhook_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> WebhookCreated:
        """A new secret; deliveries carry signatures by both secrets until the grace period ends."""
        svc = app_services(request)
        wid = parse_id(webhook_id, "Webhook")
        secret = await changes.rotate_secret(db_session, principal, wid, svc.keyring,
                                                svc.settings.webhook_secret_grace_hours)
        return WebhookCreated(id=str(wid), signing_secret=secret)

    @get("/{webhook_id:str}/deliveries", operation_id="webhooks/deliveries")
    async def deliveries(self, webhook_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
                         limit: Limit = 50) -> DeliveryList:
        """The endpoint's delivery log, newest first."""
        return DeliveryList(data=await services.deliveries(db_session, principal.team_id,
                                                           parse_id(webhook_id, "Webhook"), limit))

    @post("/{webhook_id:str}/deliveries/{delivery_id:str}/replay", status_code=200,
          operation_id="webhooks/replay")
    async def replay(self, webhook_id: FromPath[str], delivery_id: FromPath[str], principal: NamedDependency[Principal],
                     db_session: DbSession) -> DeliveryOut:
        """Send a delivery's event again."""
        return await changes.replay(db_session, principal, parse_id(webhook_id, "Webhook"),
                                       parse_id(delivery_id, "Delivery"))
