"""The bounce pipe (`postyard-api bounce`): Postfix's pipe(8) transport hands it one DSN or ARF message on stdin."""

from __future__ import annotations

import asyncio
import logging
from typing import BinaryIO

from app.config import Settings
from app.db.engines import create_engine
from app.domain.events.ingest import UNREACHABLE, apply_report

__all__ = ["EX_OK", "EX_TEMPFAIL", "bounce_pipe"]

EX_OK, EX_TEMPFAIL = 0, 75
logger = logging.getLogger("postyard.ingest")


def bounce_pipe(settings: Settings, stream: BinaryIO, recipient: str | None) -> int:
    """Read one DSN/ARF message and apply it; exit 75 (Postfix retries later) if that fails for any reason."""
    raw = stream.read()

    async def _run() -> None:
        url = settings.bounce_database_url or settings.system_database_url
        engine = create_engine(url, settings, "postyard-bounce", pool_size=1)
        try:
            await apply_report(engine, raw, recipient)
        finally:
            await engine.dispose()

    try:
        asyncio.run(_run())
    except UNREACHABLE:
        logger.exception("bounce not recorded; Postfix will retry")
        return EX_TEMPFAIL
    except Exception:  # noqa: BLE001 - any other failure also keeps the report queued, never bounced away
        logger.exception("bounce not recorded after an unexpected error; Postfix will retry")
        return EX_TEMPFAIL
    return EX_OK
