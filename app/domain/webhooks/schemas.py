"""Request and response bodies of /webhooks, shaped like Resend's."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.lib.request_body import RequestBody

__all__ = ["DeliveryList", "DeliveryOut", "WebhookCreate", "WebhookCreated", "WebhookDeleted", "WebhookList",
           "WebhookListItem", "WebhookOut", "WebhookRef", "WebhookUpdate"]

EventName = Literal["email.queued", "email.sent", "email.delivered", "email.delivery_delayed", "email.bounced",
                    "email.complained", "email.failed", "email.suppressed", "email.scheduled", "email.canceled",
                    "email.received", "email.opened", "email.clicked"]
Events = Annotated[list[EventName], msgspec.Meta(min_length=1, max_length=13)]
# An http(s) URL without credentials whose host resolves to public addresses only (checked when stored).
Endpoint = Annotated[str, msgspec.Meta(min_length=8, max_length=2048,
                                       extra_json_schema={"format": "uri", "pattern": "^https?://[^@/?#]+([/?#].*)?$"})]


class WebhookCreate(RequestBody):
    """A new endpoint and the events it receives."""

    endpoint: Endpoint
    events: Events


class WebhookUpdate(RequestBody):
    """Changes to an endpoint."""

    endpoint: Endpoint | None = None
    events: Events | None = None
    status: Literal["enabled", "disabled"] | None = None
    webhook_id: str | None = None  # the path's id, as the Python SDK repeats it


class WebhookCreated(msgspec.Struct):
    """The new endpoint's id and its signing secret."""

    id: str
    signing_secret: str
    object: str = "webhook"


class WebhookOut(msgspec.Struct):
    """One endpoint, with its current signing secret."""

    id: str
    endpoint: str
    events: list[str]
    status: str
    created_at: str
    signing_secret: str
    object: str = "webhook"


class WebhookListItem(msgspec.Struct):
    """An endpoint as listed."""

    id: str
    endpoint: str
    events: list[str]
    status: str
    created_at: str


class WebhookList(msgspec.Struct):
    """The team's endpoints."""

    data: list[WebhookListItem]
    has_more: bool = False
    object: str = "list"


class WebhookRef(msgspec.Struct):
    """Acknowledges an update."""

    id: str
    object: str = "webhook"


class WebhookDeleted(msgspec.Struct):
    """Acknowledges a deletion."""

    id: str
    deleted: bool = True
    object: str = "webhook"


class DeliveryOut(msgspec.Struct):
    """One delivery attempt series of one event to one endpoint."""

    id: str
    message_id: str
    event_type: str
    state: str
    attempts: int
    created_at: str
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    object: str = "webhook_delivery"


class DeliveryList(msgspec.Struct):
    """An endpoint's delivery log, newest first."""

    data: list[DeliveryOut]
    has_more: bool = False
    object: str = "list"
