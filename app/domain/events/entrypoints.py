"""Process entry points on the mail host: the Postfix log follower and the bounce pipe (one message on stdin)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from typing import BinaryIO

from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.domain.events.ingest import UNREACHABLE, apply_report, follow

__all__ = ["EX_OK", "EX_TEMPFAIL", "JOURNAL_COMMAND", "bounce_pipe", "follow_log"]

EX_OK, EX_TEMPFAIL = 0, 75
JOURNAL_COMMAND = ("journalctl", "-f", "-o", "short-iso", "-u", "postfix@-", "--cursor-file")
logger = logging.getLogger("postyard.ingest")


async def _stdin_lines() -> AsyncIterator[str]:
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line


async def _command_lines(command: tuple[str, ...]) -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        yield line.decode("utf-8", "replace")
    await proc.wait()


def follow_log(settings: Settings, journal: bool) -> int:
    """Follow Postfix's log (journalctl, or lines on stdin) and apply each line; returns at end of stream."""

    async def _run() -> int:
        engine = create_async_engine(settings.system_database_url, pool_size=2)
        try:
            command = (*JOURNAL_COMMAND, settings.postfix_journal_cursor)
            return await follow(engine, _command_lines(command) if journal else _stdin_lines())
        finally:
            await engine.dispose()

    applied = asyncio.run(_run())
    logger.info("log stream ended", extra={"applied": applied})
    return EX_OK


def bounce_pipe(settings: Settings, stream: BinaryIO, recipient: str | None) -> int:
    """Postfix pipe(8) transport: read one DSN/ARF message; exit 75 (retry later) if the database fails."""
    raw = stream.read()

    async def _run() -> None:
        engine = create_async_engine(settings.system_database_url, pool_size=1)
        try:
            await apply_report(engine, raw, recipient)
        finally:
            await engine.dispose()

    try:
        asyncio.run(_run())
    except UNREACHABLE:
        logger.exception("bounce not recorded; Postfix will retry")
        return EX_TEMPFAIL
    return EX_OK
