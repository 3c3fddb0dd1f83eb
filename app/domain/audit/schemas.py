"""Response bodies of /audit-logs."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["AuditEntry", "AuditPage"]


class AuditEntry(msgspec.Struct):
    """Who did what to which resource, from where, when."""

    id: str
    actor_type: str
    actor_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    ip: str | None
    details: dict[str, Any]
    created_at: str


class AuditPage(msgspec.Struct):
    """A page of entries, newest first; pass the last id as `after` for the next page."""

    data: list[AuditEntry]
    has_more: bool
    object: str = "list"
