"""Request and response bodies of /api-keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from app.lib.request_body import RequestBody

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyDeleted", "ApiKeyItem", "ApiKeyList", "ApiKeyRef", "ApiKeyUpdate"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Cidr = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ApiKeyCreate(RequestBody):
    """A new key: name, permission, optional domain, IP allowlist, expiry and mode (live or test)."""

    name: Name
    permission: Literal["full_access", "sending_access"] = "full_access"
    domain_id: str | None = None
    allowed_ips: Annotated[list[Cidr], msgspec.Meta(max_length=50)] | None = None
    expires_at: Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})] | None = None
    mode: Literal["live", "test"] = "live"


class ApiKeyUpdate(RequestBody):
    """A key's new name."""

    name: Name


class ApiKeyRef(msgspec.Struct):
    """Acknowledges an update."""

    id: str
    object: str = "api_key"


class ApiKeyCreated(msgspec.Struct):
    """The only response that ever carries the key's token."""

    id: str
    token: str


class ApiKeyItem(msgspec.Struct):
    """A key as listed: never its token."""

    id: str
    name: str
    created_at: str
    last_used_at: str | None
    permission: str
    mode: str
    domain_id: str | None
    allowed_ips: list[str] | None
    expires_at: str | None


class ApiKeyList(msgspec.Struct):
    """A page of keys."""

    data: list[ApiKeyItem]
    has_more: bool = False
    object: str = "list"


class ApiKeyDeleted(msgspec.Struct):
    """Acknowledges a revoked key."""

    id: str
    deleted: bool = True
    object: str = "api_key"
