"""The audit log's SQL, with named parameters."""

from __future__ import annotations

from sqlalchemy import text

from app.db.executor import Executor

__all__ = ["purge_older_than"]

# The log is append-only (a trigger refuses DELETE); this owner-defined function is its one way out.
_PURGE = text("SELECT postyard_purge_audit_logs(:days)")


async def purge_older_than(db: Executor, days: int) -> int:
    """Delete the entries older than `days` days (at least one); how many."""
    return int((await db.execute(_PURGE, {"days": days})).scalar_one())
