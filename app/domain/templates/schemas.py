"""Request and response bodies of /templates, shaped like Resend's."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.lib.request_body import RequestBody
from app.lib.response_body import ABSENT, Absent

__all__ = ["MAX_VARIABLES", "TemplateCreate", "TemplateDeleted", "TemplateList", "TemplateListItem", "TemplateOut",
           "TemplateRef", "TemplateUpdate", "TemplateVariableIn", "TemplateVariableOut", "VariableValue"]

MAX_VARIABLES = 50
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Alias = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
VariableKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
VariableValue = str | int | float
Addresses = str | list[str]


class TemplateVariableIn(RequestBody):
    """A variable the template uses: `{{{KEY}}}` in its subject, HTML or text."""

    key: VariableKey
    type: Literal["string", "number"]
    fallback_value: VariableValue | None = None


class TemplateCreate(RequestBody):
    """A new template; it sends once published."""

    name: Name
    html: str
    alias: Alias | None = None
    from_: str | None = msgspec.field(name="from", default=None)
    subject: str | None = None
    reply_to: Addresses | None = None
    text: str | None = None
    variables: Annotated[list[TemplateVariableIn], msgspec.Meta(max_length=MAX_VARIABLES)] | None = None


class TemplateUpdate(RequestBody):
    """Changes to a template's draft (its published version stays until the next publish): a field left out
    stays as it is, and `null` clears one that may be empty."""

    name: Name | Absent = ABSENT
    html: str | Absent = ABSENT
    alias: Alias | None | Absent = ABSENT
    from_: str | None | Absent = msgspec.field(name="from", default=ABSENT)
    subject: str | None | Absent = ABSENT
    reply_to: Addresses | None | Absent = ABSENT
    text: str | None | Absent = ABSENT
    variables: Annotated[list[TemplateVariableIn], msgspec.Meta(max_length=MAX_VARIABLES)] | Absent = ABSENT


class TemplateVariableOut(msgspec.Struct):
    """A variable as stored."""

    key: str
    type: str
    fallback_value: VariableValue | None = None


class TemplateOut(msgspec.Struct):
    """A template: its draft, and whether the draft differs from what sends."""

    id: str
    name: str
    reply_to: list[str] | None
    html: str
    variables: list[TemplateVariableOut]
    status: str
    current_version_id: str
    created_at: str
    updated_at: str
    published_at: str | None
    has_unpublished_versions: bool
    alias: str | Absent = ABSENT
    subject: str | Absent = ABSENT
    text: str | Absent = ABSENT
    from_: str | Absent = msgspec.field(name="from", default=ABSENT)
    object: str = "template"


class TemplateListItem(msgspec.Struct):
    """A template as listed."""

    id: str
    name: str
    status: str
    published_at: str | None
    created_at: str
    updated_at: str
    alias: str | Absent = ABSENT


class TemplateList(msgspec.Struct):
    """A page of templates, newest first."""

    data: list[TemplateListItem]
    has_more: bool = False
    object: str = "list"


class TemplateRef(msgspec.Struct):
    """Acknowledges a creation, an update, a publish or a duplicate."""

    id: str
    object: str = "template"


class TemplateDeleted(msgspec.Struct):
    """Acknowledges a deletion."""

    id: str
    deleted: bool = True
    object: str = "template"
