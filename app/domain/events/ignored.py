"""Recording the bounce and complaint reports that changed nothing, and counting them by reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["KEEP_DAYS", "IgnoredReport", "ignored_report_metrics", "purge_ignored_reports", "record_ignored"]

KEEP_DAYS = 90
_MAX_ADDRESSES = 50
logger = logging.getLogger("postyard.ingest")


class _Executor(Protocol):
    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...


class _Session(_Executor, Protocol):
    async def rollback(self) -> None: ...


@dataclass(frozen=True)
class IgnoredReport:
    """A report that changed nothing (or a part of one): why, and what it claimed."""

    kind: str
    reason: str
    team_id: uuid.UUID | None = None
    email_id: uuid.UUID | None = None
    reported_addresses: Sequence[str] = field(default_factory=list)
    sent_to: str | None = None
    returned_message_id: str | None = None


def _clean(value: str | None, limit: int) -> str | None:
    """Text from outside, as PostgreSQL takes it: printable characters only (no NUL), at most `limit`."""
    return None if value is None else "".join(c for c in value if c.isprintable())[:limit]


_RECORD = text("""
WITH recorded AS (
    INSERT INTO ignored_reports (id, team_id, email_id, kind, reason, reported_addresses, sent_to,
                                 returned_message_id)
    VALUES (:id, :team, :email, :kind, :reason, :addresses, :sent_to, :returned)
)
INSERT INTO ignored_report_totals (reason, count) VALUES (:reason, 1)
ON CONFLICT (reason) DO UPDATE SET count = ignored_report_totals.count + 1
""")


async def record_ignored(db: _Executor, report: IgnoredReport) -> None:
    """Store the ignored report and count it, in the caller's transaction (on a role RLS does not bind)."""
    addresses = [_clean(a, 320) or "" for a in report.reported_addresses[:_MAX_ADDRESSES]]
    await db.execute(_RECORD, {
        "id": uuid.uuid4(), "team": report.team_id, "email": report.email_id, "kind": report.kind,
        "reason": report.reason, "addresses": addresses, "sent_to": _clean(report.sent_to, 320),
        "returned": _clean(report.returned_message_id, 998)})
    logger.warning("report ignored", extra={"reason": report.reason, "kind": report.kind,
                                            "email_id": str(report.email_id) if report.email_id else None})


async def purge_ignored_reports(engine: AsyncEngine, days: int = KEEP_DAYS) -> int:
    """Delete ignored reports older than `days` (their totals stay)."""
    async with engine.begin() as conn:
        result = await conn.execute(text(
            "DELETE FROM ignored_reports WHERE received_at < now() - make_interval(days => :d)"), {"d": days})
        return int(result.rowcount or 0)


_TOTALS = text("SELECT reason, count FROM ignored_report_totals ORDER BY reason")


class _Totals:
    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("postyard_reports_ignored", "Bounce and complaint reports that changed nothing",
                                     labels=["reason"])
        for row in self.rows:
            family.add_metric([row.reason], row.count)
        yield family


async def ignored_report_metrics(db: _Session, timeout: float = 2.0) -> bytes:
    """`postyard_reports_ignored_total{reason}` in Prometheus' text format, counted across every mail host.

    Empty when the database does not answer in time: the process's own metrics still go out.
    """
    try:
        rows = (await asyncio.wait_for(db.execute(_TOTALS), timeout)).all()
    except (SQLAlchemyError, OSError, TimeoutError):
        logger.warning("ignored report totals unavailable", exc_info=True)
        with contextlib.suppress(SQLAlchemyError, OSError):
            await db.rollback()
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Totals(rows))
    return generate_latest(registry)
