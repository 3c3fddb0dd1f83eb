"""The Postfix log follower (`postyard-api follow-postfix-log`): Postfix's journal (or lines on stdin)
applied to emails."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from app.config import Settings
from app.db.engines import create_engine
from app.domain.events.ingest import JournalEntry, follow
from app.domain.events.postfix_log import DELIVERY_AGENTS

__all__ = ["JOURNAL_COMMAND", "JOURNAL_FIELDS", "POSTFIX_IDENTIFIERS", "follow_log", "journal_command",
           "journal_line"]

# The Postfix processes whose lines parse_line reads, as the journal names them (`syslog_name/program`): cleanup
# and qmgr, and each delivery agent, also under the names of master.cf's services that log as their own
# (tests/unit/test_journal_follower.py checks the list against templates/postfix/master.cf.j2).
POSTFIX_IDENTIFIERS = ("postfix/cleanup", "postfix/qmgr", *(f"postfix/{agent}" for agent in DELIVERY_AGENTS),
                       "postfix/relay/smtp", "postfix/enforced/smtp")
# What journal_line reads of an entry (journalctl adds the cursor and the time to every JSON entry).
JOURNAL_FIELDS = ("MESSAGE", "SYSLOG_IDENTIFIER", "SYSLOG_PID", "_PID")
JOURNAL_COMMAND = ("journalctl", "--output=json", f"--output-fields={','.join(JOURNAL_FIELDS)}", "--unit=postfix@-",
                   *(f"--identifier={name}" for name in POSTFIX_IDENTIFIERS))
_MAX_ENTRY_BYTES = 1 << 20
logger = logging.getLogger("postyard.ingest")


def journal_command(cursor_file: Path, follow: bool, after: str | None = None) -> list[str]:
    """journalctl from just after the last entry applied (`after`, else the one saved in `cursor_file`); the
    whole Postfix journal when none was yet."""
    cursor = after or (cursor_file.read_text().strip() if cursor_file.exists() else "")
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
    staged = cursor_file.with_suffix(".new")
    staged.write_text(cursor)
    os.replace(staged, cursor_file)


async def _journal_entries(cursor_file: Path) -> AsyncIterator[JournalEntry]:
    """Postfix's journal lines with their cursors, resumed after the last one applied.

    The follower saves a cursor once the transaction that applied its line has committed (see
    ingest.follow), so a stop or crash at any moment replays at most the batch in flight (applying is
    idempotent) and skips none. journalctl's own `--cursor-file` would not do: it records what was printed,
    including lines still unread in the pipe. And `journalctl --follow` reads the current boot only, so the
    lines logged before a reboot are read first, without it.
    """
    last: str | None = None
    for following in (False, True):
        proc = await asyncio.create_subprocess_exec(*journal_command(cursor_file, following, last),
                                                    stdout=asyncio.subprocess.PIPE, limit=_MAX_ENTRY_BYTES)
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            entry = json.loads(raw)
            last = entry["__CURSOR"]
            yield JournalEntry(journal_line(entry), last)
        await proc.wait()


async def _stdin_lines() -> AsyncIterator[str]:
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line


def follow_log(settings: Settings, journal: bool) -> None:
    """Follow Postfix's log (journalctl, or lines on stdin) and apply its lines in batches; returns at end of stream."""

    async def _run() -> int:
        engine = create_engine(settings.system_database_url, settings, "postyard-log-follower", pool_size=2)
        try:
            cursor_file = Path(settings.postfix_journal_cursor)
            if journal:
                return await follow(engine, _journal_entries(cursor_file),
                                    committed=partial(_save_cursor, cursor_file))
            return await follow(engine, _stdin_lines())
        finally:
            await engine.dispose()

    applied = asyncio.run(_run())
    logger.info("log stream ended", extra={"applied": applied})
