"""The worker process (`postyard-api worker`): outbox drains, lease recovery, retention (webhooks have their own).

Drains wake on `NOTIFY postyard_outbox` (a trigger sends it when emails are inserted or rescheduled, and
resuming a suspended team sends it for the mail it held) and otherwise poll every
`POSTYARD_WORKER_POLL_INTERVAL` seconds, which also picks up scheduled and retried emails as they fall due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.config import Settings
from app.db.engines import create_engine
from app.db.notifications import follow_notifications
from app.domain.accounts.session_retention import purge_dead_sessions
from app.domain.audit.retention import purge_old_entries
from app.domain.emails.outbox import Outbox
from app.domain.emails.retention import purge_expired_bodies, purge_old_emails
from app.domain.emails.submission import Submitter
from app.domain.events.ignored import purge_ignored_reports
from app.domain.receiving.retention import purge_expired_received
from app.domain.tracking.retention import forget_readers
from app.lib.signals import first_of, run_until_stopped
from app.mailhost.drains import Drains

__all__ = ["main", "run_worker"]

logger = logging.getLogger("postyard.worker")
_RETENTION_INTERVAL = 3600.0
_RELISTEN_SECONDS = 1.0


async def _loop(stop: asyncio.Event, idle: float, step: Callable[[], Awaitable[int]], name: str) -> None:
    """Run `step` until stopped; when it found nothing, sleep `idle` seconds."""
    while not stop.is_set():
        try:
            busy = await step()
        except Exception:  # noqa: BLE001 - a database or network hiccup must not end the worker
            logger.exception("worker step failed", extra={"step": name})
            busy = 0
        if not busy:
            await first_of(stop, timeout=idle)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (SIGTERM or SIGINT set it when run from the CLI)."""
    stop = stop or asyncio.Event()
    engine = create_engine(settings.system_database_url, settings, "postyard-worker",
                           pool_size=settings.worker_concurrency + 4)
    # Housekeeping's bulk statements may run long: no statement timeout (the other bounds hold).
    housekeeping = create_engine(settings.system_database_url, settings, "postyard-worker-housekeeping",
                                 pool_size=1, statements=False)
    outbox = Outbox(settings, engine)
    submitters = [Submitter(settings) for _ in range(settings.worker_concurrency)]
    poll = settings.worker_poll_interval
    wake = asyncio.Event()

    def listening(now: bool) -> None:
        if now:
            wake.set()  # whatever was inserted while nobody listened

    listener = asyncio.create_task(follow_notifications(engine, {"postyard_outbox": wake.set}, listening, stop,
                                                        _RELISTEN_SECONDS))
    drains = Drains(settings, outbox, wake, stop)
    tasks = [asyncio.create_task(_loop(stop, poll, lambda s=s: drains.drain(s), "drain")) for s in submitters]
    tasks += [
        asyncio.create_task(_loop(stop, poll, outbox.recover_expired, "recover")),
        asyncio.create_task(_loop(stop, _RETENTION_INTERVAL, lambda: _purge(settings, housekeeping), "retention")),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for submitter in submitters:
            await submitter.close()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await engine.dispose()
        await housekeeping.dispose()


async def _purge(settings: Settings, engine: object) -> int:
    """The hourly housekeeping: expired bodies, received mail and readers' details, old emails (when a retention
    period is set), old ignored reports and audit entries, dead sessions."""
    await purge_expired_bodies(engine)  # type: ignore[arg-type]
    await purge_expired_received(engine)  # type: ignore[arg-type]
    await purge_old_emails(engine, settings.email_retention_days)  # type: ignore[arg-type]
    await purge_ignored_reports(engine)  # type: ignore[arg-type]
    await purge_old_entries(engine, settings.audit_retention_days)  # type: ignore[arg-type]
    await purge_dead_sessions(engine)  # type: ignore[arg-type]
    await forget_readers(engine)  # type: ignore[arg-type]
    return 0


def main(settings: Settings) -> None:
    """Run the worker in this process, stopping cleanly on SIGTERM or SIGINT."""
    run_until_stopped(lambda stop: run_worker(settings, stop))
