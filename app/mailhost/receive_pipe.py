"""The receive pipe (`postyard-api receive`): Postfix's pipe(8) transport hands it one message for the domains
that receive, with the SMTP client's address and HELO name, the envelope sender and the recipients."""

from __future__ import annotations

import asyncio
import logging
from typing import BinaryIO

from sqlalchemy.exc import DataError

from app.config import Settings
from app.db.engines import create_engine
from app.domain.events.ingest import UNREACHABLE
from app.domain.receiving.intake import Envelope, store_received
from app.domain.receiving.verdicts import Verdicts, authenticate, use_configured_resolver
from app.mailhost.bounce_pipe import EX_OK, EX_TEMPFAIL

__all__ = ["EX_DATAERR", "EX_NOUSER", "receive_pipe"]

EX_DATAERR = 65  # Postfix returns the message: it cannot be stored as it is, and retrying would not change that
EX_NOUSER = 67  # Postfix returns the message: 5.1.1, no such recipient
logger = logging.getLogger("postyard.receive")


def receive_pipe(settings: Settings, stream: BinaryIO, envelope: Envelope) -> int:
    """Check and store one message; exit 75 (Postfix retries later) if storing fails, 67 (returned to its sender)
    when none of its recipients' domains receives any more, 65 (returned) when it cannot be stored as it is."""
    raw = stream.read()
    use_configured_resolver(settings)

    def check() -> Verdicts:
        return authenticate(raw, settings.mail_hostname, envelope.client_address, envelope.helo, envelope.sender)

    async def _run() -> list[object]:
        url = settings.bounce_database_url or settings.system_database_url
        engine = create_engine(url, settings, "postyard-receive", pool_size=1)
        try:
            return list(await store_received(engine, raw, envelope, check))
        finally:
            await engine.dispose()

    try:
        stored = asyncio.run(_run())
    except (DataError, UnicodeError):
        logger.exception("received message cannot be stored; returned to its sender")
        return EX_DATAERR
    except UNREACHABLE:
        logger.exception("received message not stored; Postfix will retry")
        return EX_TEMPFAIL
    except Exception:  # noqa: BLE001 - any other failure also keeps the message queued, never lost
        logger.exception("received message not stored after an unexpected error; Postfix will retry")
        return EX_TEMPFAIL
    if not stored:
        logger.warning("no recipient's domain receives mail", extra={"recipients": list(envelope.recipients)})
        return EX_NOUSER
    logger.info("received message stored", extra={"emails": [str(i) for i in stored], "queue_id": envelope.queue_id})
    return EX_OK
