"""Request and response bodies of /emails, shaped like Resend's."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Attachment", "BatchSent", "EmailEventOut", "EmailList", "EmailOut", "EmailRef", "EmailSent",
           "EmailUpdate", "SendEmail", "Tag"]

# What the OpenAPI document states of these fields (checked in validation.py and rules.py, which word the
# refusals): an ISO 8601 date and time, or blank for none; an address, or a name and an address ("Acme
# <billing@acme.example>"); text without control characters (TAB aside) or line and paragraph separators.
When = Annotated[str, msgspec.Meta(extra_json_schema={"anyOf": [{"format": "date-time"}, {"pattern": r"^\s*$"}]})]
Address = Annotated[str, msgspec.Meta(extra_json_schema={"format": "email"})]
Addresses = Address | list[Address]
# To names at least one address (validation.py words the refusal of an empty list).
Recipients = Address | Annotated[list[Address], msgspec.Meta(min_length=1)]
NO_CONTROLS = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"
HeaderName = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": r"^[!-9;-~]{1,76}$"})]
HeaderValue = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": NO_CONTROLS, "maxLength": 998})]
BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Attachment(msgspec.Struct, kw_only=True):
    """A file: base64 content (or a list of byte values, as the SDK may send), a name, a type."""

    filename: Annotated[str, msgspec.Meta(max_length=255, extra_json_schema={"pattern": NO_CONTROLS})] | None = None
    content: Annotated[str, msgspec.Meta(extra_json_schema={"pattern": BASE64})] | list[
        Annotated[int, msgspec.Meta(extra_json_schema={"minimum": 0, "maximum": 255})]] | None = None
    path: str | None = None
    content_type: Annotated[str, msgspec.Meta(max_length=255, extra_json_schema={
        "pattern": r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$"})] | None = None
    content_id: Annotated[str, msgspec.Meta(max_length=255, extra_json_schema={
        "pattern": r"^[^<> \x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"})] | None = None


class Tag(msgspec.Struct, kw_only=True):
    """A name/value pair kept with the email and passed to webhooks."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,256}$")]
    value: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{0,256}$")] = ""


class SendEmail(msgspec.Struct, kw_only=True):
    """One message to send (Resend's SendEmailRequest)."""

    from_: Address = msgspec.field(name="from")
    to: Recipients
    subject: Annotated[str, msgspec.Meta(max_length=998, extra_json_schema={"pattern": NO_CONTROLS})]
    cc: Addresses | None = None
    bcc: Addresses | None = None
    reply_to: Addresses | None = None
    html: str | None = None
    text: str | None = None
    headers: dict[HeaderName, HeaderValue] | None = None
    attachments: list[Attachment] | None = None
    tags: list[Tag] | None = None
    scheduled_at: When | None = None


class EmailSent(msgspec.Struct):
    """The id of an accepted email."""

    id: str


class BatchSent(msgspec.Struct):
    """The ids of a batch, in request order."""

    data: list[EmailSent]


class EmailUpdate(msgspec.Struct, kw_only=True):
    """A new send time for a scheduled email."""

    scheduled_at: When


class EmailRef(msgspec.Struct):
    """Acknowledges an update or a cancellation."""

    id: str
    object: str = "email"


class EmailEventOut(msgspec.Struct):
    """One event in an email's history."""

    type: str
    created_at: str
    recipient: str | None = None
    detail: dict[str, str | int | bool | None] = msgspec.field(default_factory=dict)


class EmailOut(msgspec.Struct):
    """An email with its last event and (when read alone) its event history."""

    id: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    created_at: str
    subject: str
    last_event: str
    message_id: str
    html: str | None = None
    text: str | None = None
    scheduled_at: str | None = None
    tags: list[Tag] = msgspec.field(default_factory=list)
    events: list[EmailEventOut] | None = None
    from_: str = msgspec.field(name="from", default="")
    object: str = "email"


class EmailList(msgspec.Struct):
    """A page of emails, newest first."""

    data: list[EmailOut]
    has_more: bool = False
    object: str = "list"
