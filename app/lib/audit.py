"""Writing audit log entries (the table is append-only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditLog
from app.lib.auth import Principal

__all__ = ["record", "record_by"]


async def record(
    db: AsyncSession,
    *,
    team_id: uuid.UUID,
    actor: tuple[str, str | None],
    action: str,
    resource_type: str,
    resource_id: object = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry: who (actor), what (action), which resource, from where, when."""
    db.add(AuditLog(
        team_id=team_id,
        actor_type=actor[0],
        actor_id=actor[1],
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        ip=ip,
        details=details or {},
        created_at=datetime.now(UTC),
    ))


async def record_by(db: AsyncSession, principal: Principal, action: str, resource_type: str, resource_id: object,
                    details: dict[str, Any] | None = None) -> None:
    """Append the entry for a change `principal` made to its team: its team, actor and address."""
    await record(db, team_id=principal.team_id, actor=principal.actor, action=action, resource_type=resource_type,
                 resource_id=resource_id, ip=principal.ip, details=details)
