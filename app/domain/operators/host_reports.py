"""The hosts' stored status reports as the operator's commands on a host see them (as the database owner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.api_error import ApiError

__all__ = ["StoredReport", "forget_host", "list_reports"]


@dataclass(frozen=True)
class StoredReport:
    host_name: str
    address: str
    reported_at: datetime


async def list_reports(db: AsyncSession) -> list[StoredReport]:
    rows = await db.execute(text("SELECT host_name, host(address), reported_at FROM host_reports "
                                 "ORDER BY host_name, address"))
    return [StoredReport(name, address, at) for name, address, at in rows.all()]


async def forget_host(db: AsyncSession, host_name: str) -> int:
    """Delete the reports of a host taken out of the deployment; how many there were (404 when none)."""
    deleted = (await db.execute(text("DELETE FROM host_reports WHERE host_name = :name"), {"name": host_name})).rowcount
    if not deleted:
        raise ApiError(404, "not_found", f"No host named {host_name} has reported")
    return deleted
