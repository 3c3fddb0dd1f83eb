"""Submission rate limit per authenticated SMTP user: a Postfix policy service (SMTPD_POLICY_README).

Postfix asks at the DATA command of each message submitted on 465/587 (`smtpd_data_restrictions`);
the service counts the user's messages in a sliding window and answers `DUNNO` (go on) or a 450
with the 4.7.1 enhanced status code, which a client retries later. Counts live in this process, so
each mail host limits on its own; a restart forgets them, which only ever errs towards accepting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

from app.config import Settings

__all__ = ["SlidingWindow", "decide", "parse_request", "serve", "main"]

log = logging.getLogger("postyard.rate_policy")


class SlidingWindow:
    """At most `limit` events per `seconds` for each key."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self.events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = self.clock()
        events = self.events[key]
        while events and events[0] <= now - self.seconds:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True


def parse_request(lines: list[bytes]) -> dict[str, str]:
    request = {}
    for line in lines:
        name, sep, value = line.decode("utf-8", "replace").partition("=")
        if sep:
            request[name.strip()] = value.strip()
    return request


def decide(request: dict[str, str], window: SlidingWindow) -> str:
    """The policy action for one request."""
    user = request.get("sasl_username", "")
    if request.get("request") != "smtpd_access_policy" or not user:
        return "DUNNO"
    if window.allow(user):
        return "DUNNO"
    log.warning("rate limit reached for %s (%d messages per %.0f s)", user, window.limit, window.seconds)
    return (f"450 4.7.1 Rate limit reached for {user}: at most {window.limit} messages per "
            f"{window.seconds:.0f} seconds; try again later")


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, window: SlidingWindow) -> None:
    try:
        lines: list[bytes] = []
        while line := await reader.readline():
            if line.strip():
                lines.append(line.rstrip(b"\r\n"))
                continue
            writer.write(f"action={decide(parse_request(lines), window)}\n\n".encode())
            await writer.drain()
            lines = []
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(socket_path: Path, window: SlidingWindow) -> None:
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(lambda r, w: _handle(r, w, window), path=str(socket_path))
    os.chmod(socket_path, 0o660)
    async with server:
        await server.serve_forever()


def main(settings: Settings) -> None:
    """Serve on `policy_socket`, `submission_messages_per_minute` per login, until stopped."""
    asyncio.run(serve(Path(settings.policy_socket), SlidingWindow(settings.submission_messages_per_minute, 60)))
