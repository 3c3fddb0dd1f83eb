"""Request and response bodies of /emails, shaped like Resend's."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.lib.request_body import RequestBody
from app.lib.response_body import ABSENT, Absent

__all__ = ["Attachment", "AttachmentList", "AttachmentOut", "BatchSent", "EmailEventOut", "EmailList", "EmailOut",
           "EmailRef", "EmailSent", "EmailShare", "EmailShared", "EmailUpdate", "MetricsOut", "NATURAL_TIME",
           "NodeBuffer", "SendEmail", "Tag", "TemplateInput"]

# What the OpenAPI document states of these fields (checked in validation.py and rules.py, which word the
# refusals): an ISO 8601 date and time, a time in English ("in 1 min"), or blank for none; an address, or a
# name and an address ("Acme <billing@acme.example>"); text without control characters (TAB aside) or line and
# paragraph separators.
# The English times read (app/domain/emails/validation.py): "in <n> <unit>", and "tomorrow" with an optional time.
NATURAL_TIME = (r"^(in [0-9]{1,4} (seconds?|minutes?|mins?|hours?|days?|weeks?)"
                r"|tomorrow( at ((1[0-2]|[1-9])(:[0-5][0-9])? ?(am|pm)|([01]?[0-9]|2[0-3]):[0-5][0-9]))?)$")
When = Annotated[str, msgspec.Meta(max_length=100, extra_json_schema={
    "anyOf": [{"format": "date-time"}, {"pattern": r"^\s*$"}, {"pattern": NATURAL_TIME}]})]
Address = Annotated[str, msgspec.Meta(extra_json_schema={"format": "email"})]
Addresses = Address | list[Address]
# To names at least one address (validation.py words the refusal of an empty list).
Recipients = Address | Annotated[list[Address], msgspec.Meta(min_length=1)]
NO_CONTROLS = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"
HeaderName = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": r"^[!-9;-~]{1,76}$"})]
HeaderValue = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": NO_CONTROLS, "maxLength": 998})]
BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


Byte = Annotated[int, msgspec.Meta(extra_json_schema={"minimum": 0, "maximum": 255})]


class NodeBuffer(RequestBody):
    """A Node.js Buffer as JSON.stringify writes it, which is how Resend's Node SDK sends a Buffer's content."""

    type: Literal["Buffer"]
    data: list[Byte]


class Attachment(RequestBody):
    """A file: base64 content (or its bytes, as the Python and Node SDKs may send them), a name, a type."""

    filename: Annotated[str, msgspec.Meta(max_length=255, extra_json_schema={"pattern": NO_CONTROLS})] | None = None
    content: Annotated[str, msgspec.Meta(extra_json_schema={"pattern": BASE64})] | list[Byte] | NodeBuffer | \
        None = None
    path: str | None = None
    content_type: Annotated[str, msgspec.Meta(max_length=255, extra_json_schema={
        "pattern": r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$"})] | None = None
    content_id: Annotated[str, msgspec.Meta(max_length=255, extra_json_schema={
        "pattern": r"^[^<> \x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"})] | None = None


class Tag(RequestBody):
    """A name/value pair kept with the email and passed to webhooks."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,256}$")]
    value: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{0,256}$")] = ""


class TemplateInput(RequestBody):
    """A published template to render the message from, and its variables' values."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    variables: dict[Annotated[str, msgspec.Meta(max_length=100)], str | int | float] | None = None


class SendEmail(RequestBody):
    """One message to send (Resend's SendEmailRequest); `from` and `subject` may come from a template."""

    to: Recipients
    from_: Address | None = msgspec.field(name="from", default=None)
    subject: Annotated[str, msgspec.Meta(max_length=998, extra_json_schema={"pattern": NO_CONTROLS})] | None = None
    cc: Addresses | None = None
    bcc: Addresses | None = None
    reply_to: Addresses | None = None
    html: str | None = None
    text: str | None = None
    headers: dict[HeaderName, HeaderValue] | None = None
    attachments: list[Attachment] | None = None
    tags: list[Tag] | None = None
    scheduled_at: When | None = None
    template: TemplateInput | None = None


class EmailSent(msgspec.Struct):
    """The id of an accepted email."""

    id: str


class BatchSent(msgspec.Struct):
    """The ids of a batch, in request order."""

    data: list[EmailSent]


class EmailUpdate(RequestBody):
    """A new send time for a scheduled email."""

    scheduled_at: When
    id: str | None = None  # the path's id, as the Python SDK repeats it


class EmailShare(RequestBody):
    """How long a shared link lives: a duration such as `10m`, `2 hours` or `1 day` (48 hours at most)."""

    expires_in: Annotated[str, msgspec.Meta(max_length=20)] | None = None


class EmailShared(msgspec.Struct):
    """A shared link to an email, valid until `expires_at`."""

    id: str
    url: str
    expires_at: str
    object: str = "email"


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
    html: str | Absent = ABSENT
    text: str | Absent = ABSENT
    scheduled_at: str | None = None
    tags: list[Tag] = msgspec.field(default_factory=list)
    events: list[EmailEventOut] | None = None
    from_: str = msgspec.field(name="from", default="")
    object: str = "email"


class AttachmentOut(msgspec.Struct):
    """One attachment of a sent email, with a signed link that downloads it until `expires_at`."""

    id: str
    filename: str | None
    content_type: str
    content_disposition: str
    download_url: str
    expires_at: str
    size: int
    content_id: str | Absent = ABSENT
    object: str = "attachment"


class AttachmentList(msgspec.Struct):
    """A page of an email's attachments, in the message's order."""

    data: list[AttachmentOut]
    has_more: bool = False
    object: str = "list"


class MetricsOut(msgspec.Struct):
    """Counts of the team's email events over a date range, in total and per combination of the dimensions."""

    start_date: str
    end_date: str
    metrics: list[str]
    dimensions: list[str]
    granularity: str
    totals: dict[str, float]
    data: list[dict[str, str | float]] | Absent = ABSENT
    object: str = "metrics"


class EmailList(msgspec.Struct):
    """A page of emails, newest first."""

    data: list[EmailOut]
    has_more: bool = False
    object: str = "list"
