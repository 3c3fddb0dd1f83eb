"""Request and response bodies of /suppressions, shaped like Resend's."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.lib.request_body import RequestBody
from app.lib.response_body import ABSENT, Absent

__all__ = ["BatchAdd", "BatchRemove", "Reason", "SuppressionCreate", "SuppressionList", "SuppressionOut",
           "SuppressionRef", "SuppressionRefs", "SuppressionRemoved", "SuppressionsRemoved"]

Reason = Literal["hard_bounce", "complaint", "unsubscribe", "manual"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, extra_json_schema={"format": "email"})]


class SuppressionCreate(RequestBody):
    """An address to stop sending to."""

    email: Email
    reason: Reason = "manual"


class BatchAdd(RequestBody):
    """Up to 100 addresses to suppress."""

    emails: Annotated[list[Email], msgspec.Meta(min_length=1, max_length=100)]
    reason: Reason = "manual"


class BatchRemove(RequestBody):
    """Up to 100 addresses or suppression ids to remove (one of the two)."""

    emails: Annotated[list[Email], msgspec.Meta(min_length=1, max_length=100)] | None = None
    ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)] | None = None


class SuppressionOut(msgspec.Struct):
    """One suppressed address, why (reason and Resend's origin) and since when."""

    id: str
    email: str
    origin: str
    reason: str
    created_at: str
    source_id: str | Absent = ABSENT
    object: str = "suppression"


class SuppressionList(msgspec.Struct):
    """A page of suppressions, newest first."""

    data: list[SuppressionOut]
    has_more: bool = False
    object: str = "list"


class SuppressionRef(msgspec.Struct):
    """The id of an added suppression."""

    id: str
    object: str = "suppression"


class SuppressionRefs(msgspec.Struct):
    """The ids of added suppressions."""

    data: list[SuppressionRef]


class SuppressionRemoved(msgspec.Struct):
    """Acknowledges a removal."""

    id: str
    deleted: bool = True
    object: str = "suppression"


class SuppressionsRemoved(msgspec.Struct):
    """Acknowledges removals."""

    data: list[SuppressionRemoved]
