"""Recording the bounce and complaint reports that changed nothing, and counting them by reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.executor import Executor
from app.domain.events import repository

__all__ = ["KEEP_DAYS", "IgnoredReport", "ignored_report_metrics", "purge_ignored_reports", "record_ignored"]

KEEP_DAYS = 90
_MAX_ADDRESSES = 50
logger = logging.getLogger("postyard.ingest")


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


async def record_ignored(db: Executor, report: IgnoredReport) -> None:
    """Store the ignored report and count it, in the caller's transaction (on a role RLS does not bind)."""
    await repository.insert_ignored_report(
        db, team_id=report.team_id, email_id=report.email_id, kind=report.kind, reason=report.reason,
        reported_addresses=[_clean(a, 320) or "" for a in report.reported_addresses[:_MAX_ADDRESSES]],
        sent_to=_clean(report.sent_to, 320), returned_message_id=_clean(report.returned_message_id, 998))
    logger.warning("report ignored", extra={"reason": report.reason, "kind": report.kind,
                                            "email_id": str(report.email_id) if report.email_id else None})


async def purge_ignored_reports(engine: AsyncEngine, days: int = KEEP_DAYS) -> int:
    """Delete ignored reports older than `days` (their totals stay)."""
    async with engine.begin() as conn:
        return await repository.delete_ignored_reports_older_than(conn, days)


class _Totals:
    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("postyard_reports_ignored", "Bounce and complaint reports that changed nothing",
                                     labels=["reason"])
        for row in self.rows:
            family.add_metric([row.reason], row.count)
        yield family


async def ignored_report_metrics(db: Executor, timeout: float = 2.0) -> bytes:
    """`postyard_reports_ignored_total{reason}` in Prometheus' text format, counted across every mail host.

    Empty when the database does not answer in time: the process's own metrics still go out.
    """
    try:
        rows = await asyncio.wait_for(repository.ignored_report_totals(db), timeout)
    except (SQLAlchemyError, OSError, TimeoutError):
        logger.warning("ignored report totals unavailable", exc_info=True)
        with contextlib.suppress(SQLAlchemyError, OSError):
            await db.rollback()
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Totals(rows))
    return generate_latest(registry)
