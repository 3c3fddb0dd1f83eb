"""The webhooks pages: endpoints and their events, adding one (its secret shown once), changing its URL and events,
a delivery log with replay, rotating the secret, enabling, disabling and deleting, on the services /webhooks uses."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from litestar import Request, Response, get, post
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.auth import ConsoleUser, CurrentUser, TeamPrincipal
from app.console.forms import form_data, form_list, parse_form
from app.console.render import redirect, render, render_error
from app.domain.webhooks import changes, services
from app.domain.webhooks.schemas import EventName, WebhookCreate, WebhookUpdate
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["DELIVERY_LOG_SIZE", "EVENTS", "WEBHOOK_HANDLERS"]

EVENTS: tuple[str, ...] = get_args(EventName)
DELIVERY_LOG_SIZE = 50  # the newest deliveries a webhook's page lists (the API's default page)
LIST = "/console/webhooks"


def _page_of(webhook_id: uuid.UUID) -> str:
    return f"{LIST}/{webhook_id}"


async def _list(request: Request[Any, Any, Any], user: ConsoleUser, principal: Principal, db: AsyncSession,
                exc: ApiError | None = None, **context: Any) -> Response[Any]:
    """The list with the add form; with `exc`, its message and status (the form keeps what was typed)."""
    context = {"title": "Webhooks", "webhooks": await services.list_all(db, principal.team_id), "events": EVENTS,
               "endpoint": "", "chosen": [], **context}
    if exc is not None:
        return await render_error(request, user, "webhooks.html.j2", exc, **context)
    return await render(request, user, "webhooks.html.j2", **context)


async def _secret(request: Request[Any, Any, Any], user: ConsoleUser, webhook: Any, secret: str,
                  created: bool) -> Response[Any]:
    """The signing secret, shown on this answer only (the transaction commits with the 200)."""
    return await render(request, user, "webhook_secret.html.j2", title="Signing secret", webhook=webhook,
                        secret=secret, created=created, back=_page_of(webhook.id))


@get("/webhooks", name="console:webhooks")
async def webhooks(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                   db_session: DbSession) -> Response[Any]:
    """The team's endpoints with their events and status, and (for owners and admins) the add form."""
    return await _list(request, console_user, principal, db_session)


@post("/webhooks", name="console:webhook-create")
async def create_webhook(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                         db_session: DbSession) -> Response[Any]:
    """Add an endpoint like `POST /webhooks`; its signing secret is shown once."""
    data = await form_data(request)
    chosen = await form_list(request, "events")
    try:
        principal.require_write()
        form = parse_form({**data, "events": chosen}, WebhookCreate)  # type: ignore[dict-item]
        svc = app_services(request)
        webhook_id, secret = await changes.add(db_session, principal, form.endpoint, list(form.events),
                                                  svc.settings, svc.keyring)
        webhook = await services.get(db_session, principal.team_id, webhook_id)
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc, endpoint=data.get("endpoint", ""),
                           chosen=chosen)
    return await _secret(request, console_user, webhook, secret, created=True)


async def _detail(request: Request[Any, Any, Any], user: ConsoleUser, principal: Principal, db: AsyncSession,
                  webhook_id: uuid.UUID, exc: ApiError | None = None, **context: Any) -> Response[Any]:
    """One endpoint's page; with `exc`, its message and status (the edit form keeps what was typed)."""
    webhook = await services.get(db, principal.team_id, webhook_id)
    context = {"title": webhook.endpoint, "webhook": webhook, "log_size": DELIVERY_LOG_SIZE, "events": EVENTS,
               "deliveries": await services.deliveries(db, principal.team_id, webhook_id, DELIVERY_LOG_SIZE),
               "endpoint": webhook.endpoint, "chosen": list(webhook.events), **context}
    if exc is not None:
        return await render_error(request, user, "webhook.html.j2", exc, **context)
    return await render(request, user, "webhook.html.j2", **context)


@get("/webhooks/{webhook_id:str}", name="console:webhook")
async def webhook_page(request: Request[Any, Any, Any], webhook_id: FromPath[str], console_user: CurrentUser,
                       principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """One endpoint, its newest deliveries (event, state, response code, attempts, time) and its actions."""
    return await _detail(request, console_user, principal, db_session, parse_id(webhook_id, "Webhook"))


@post("/webhooks/{webhook_id:str}/edit", name="console:webhook-edit")
async def edit_webhook(request: Request[Any, Any, Any], webhook_id: FromPath[str], console_user: CurrentUser,
                       principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Change the endpoint's URL and events like `PATCH /webhooks/{id}` with `endpoint` and `events`."""
    data = await form_data(request)
    chosen = await form_list(request, "events")
    try:
        principal.require_write()
        wid = parse_id(webhook_id, "Webhook")
        await services.get(db_session, principal.team_id, wid)
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    try:
        fields = {"endpoint": data.get("endpoint", ""), "events": chosen}
        form = parse_form(fields, WebhookUpdate)  # type: ignore[arg-type]
        if form.endpoint is None:
            raise ApiError(422, "validation_error", "endpoint: required")
        await changes.change(db_session, principal, wid, form.endpoint, list(form.events or ()), None,
                             app_services(request).settings)
    except ApiError as exc:
        return await _detail(request, console_user, principal, db_session, wid, exc,
                             endpoint=data.get("endpoint", ""), chosen=chosen)
    return await redirect(request, console_user, db_session, _page_of(wid), flash="The endpoint is saved.")


@post("/webhooks/{webhook_id:str}/status", name="console:webhook-status")
async def set_status(request: Request[Any, Any, Any], webhook_id: FromPath[str], console_user: CurrentUser,
                     principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Enable or disable the endpoint like `PATCH /webhooks/{id}` with `status`."""
    try:
        principal.require_write()
        wid = parse_id(webhook_id, "Webhook")
        status = parse_form({"status": (await form_data(request)).get("status", "")}, WebhookUpdate).status
        if status is None:
            raise ApiError(422, "validation_error", "status: required")
        await changes.change(db_session, principal, wid, None, None, status, app_services(request).settings)
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, _page_of(wid), flash=f"The endpoint is {status}.")


@post("/webhooks/{webhook_id:str}/rotate-secret", name="console:webhook-rotate")
async def rotate_secret(request: Request[Any, Any, Any], webhook_id: FromPath[str], console_user: CurrentUser,
                        principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """A new signing secret like `POST /webhooks/{id}/rotate-secret`, shown once; the old one keeps signing
    beside it for the grace period."""
    try:
        principal.require_write()
        wid = parse_id(webhook_id, "Webhook")
        svc = app_services(request)
        secret = await changes.rotate_secret(db_session, principal, wid, svc.keyring,
                                                svc.settings.webhook_secret_grace_hours)
        webhook = await services.get(db_session, principal.team_id, wid)
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    return await _secret(request, console_user, webhook, secret, created=False)


@post("/webhooks/{webhook_id:str}/delete", name="console:webhook-delete")
async def delete_webhook(request: Request[Any, Any, Any], webhook_id: FromPath[str], console_user: CurrentUser,
                         principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Delete the endpoint and its delivery log like `DELETE /webhooks/{id}`."""
    try:
        principal.require_write()
        wid = parse_id(webhook_id, "Webhook")
        await changes.remove(db_session, principal, wid)
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, LIST, flash="The endpoint is deleted.")


@post("/webhooks/{webhook_id:str}/deliveries/{delivery_id:str}/replay", name="console:webhook-replay")
async def replay(request: Request[Any, Any, Any], webhook_id: FromPath[str], delivery_id: FromPath[str],
                 console_user: CurrentUser, principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Send a delivery's event again like `POST /webhooks/{id}/deliveries/{delivery_id}/replay`."""
    try:
        principal.require_write()
        wid = parse_id(webhook_id, "Webhook")
        await changes.replay(db_session, principal, wid, parse_id(delivery_id, "Delivery"))
    except ApiError as exc:
        return await _list(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, _page_of(wid), flash="The event is queued again.")


WEBHOOK_HANDLERS = [webhooks, create_webhook, webhook_page, edit_webhook, set_status, rotate_secret, delete_webhook,
                    replay]
