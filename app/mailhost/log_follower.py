"""The Postfix log follower (`postyard-api follow-postfix-log`): Postfix's journal (or lines on stdin)
applied to emails."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.db.engines import create_engine
from app.domain.events.ingest import follow

__all__ = ["CURSOR_SAVE_SECONDS", "JOURNAL_COMMAND", "follow_log", "journal_command", "journal_line"]

JOURNAL_COMMAND = ("journalctl", "--output=json", "--unit=postfix@-")
_MAX_ENTRY_BYTES = 1 << 20
CURSOR_SAVE_SECONDS = 1.0
logger = logging.getLogger("postyard.ingest")


def journal_command(cursor_file: Path, follow: bool) -> list[str]:
    """journalctl from just after the last entry applied; the whole Postfix journal when none was yet."""
    cursor = cursor_file.read_text().strip() if cursor_file.exists() else ""
    start = [f"--after-cursor={cursor}"] if cursor else ["--lines=all"] if follow else []
    return [*JOURNAL_COMMAND, *(["--follow"] if follow else []), *start]


def journal_line(entry: dict[str, Any]) -> str:
    """A journal entry as syslog prints it: `postfix/smtp[123]: 4XyZ: to=<...>, ...`, after the time it was
    logged in ISO 8601 when the entry has it (the follower's position in the log, see ingest.follow)."""
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journalctl's JSON gives messages that are not UTF-8 as byte arrays
        message = bytes(message).decode("utf-8", "replace")
    pid = entry.get("SYSLOG_PID") or entry.get("_PID", "")
    line = f"{entry.get('SYSLOG_IDENTIFIER', '')}[{pid}]: {message}"
    if realtime := entry.get("__REALTIME_TIMESTAMP"):
        line = f"{datetime.fromtimestamp(int(realtime) / 1e6, UTC).isoformat()} {line}"
    return line


def _save_cursor(cursor_file: Path, cursor: str) -> None:
    partial = cursor_file.with_suffix(".new")
    partial.write_text(cursor)
    os.replace(partial, cursor_file)


async def _journal_lines(cursor_file: Path) -> AsyncIterator[str]:
    """Postfix's journal lines, resumed after the last one applied.

    A line's cursor is saved only when the next line is asked for, that is once the consumer has applied
    it (`follow` applies each line before taking the next), and at most every CURSOR_SAVE_SECONDS (a
    message is about ten journal lines; one file write each would be the follower's busiest I/O): a
    stop or crash at any moment replays at most that long's lines (applying is idempotent) and skips
    none. journalctl's own `--cursor-file`
    would not do: it records what was printed, including lines still unread in the pipe. And
    `journalctl --follow` reads the current boot only, so the lines logged before a reboot are read
    first, without it.
    """
    saved_at = 0.0
    for following in (False, True):
        proc = await asyncio.create_subprocess_exec(*journal_command(cursor_file, following),
                                                    stdout=asyncio.subprocess.PIPE, limit=_MAX_ENTRY_BYTES)
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            entry = json.loads(raw)
            yield journal_line(entry)
            if time.monotonic() - saved_at >= CURSOR_SAVE_SECONDS:
                _save_cursor(cursor_file, entry["__CURSOR"])
                saved_at = time.monotonic()
        await proc.wait()


async def _stdin_lines() -> AsyncIterator[str]:
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line


def follow_log(settings: Settings, journal: bool) -> None:
    """Follow Postfix's log (journalctl, or lines on stdin) and apply each line; returns at end of stream."""

    async def _run() -> int:
        engine = create_engine(settings.system_database_url, settings, "postyard-log-follower", pool_size=2)
        try:
            cursor_file = Path(settings.postfix_journal_cursor)
            return await follow(engine, _journal_lines(cursor_file) if journal else _stdin_lines())
        finally:
            await engine.dispose()

    applied = asyncio.run(_run())
    logger.info("log stream ended", extra={"applied": applied})
