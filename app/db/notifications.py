"""Following PostgreSQL notifications on a connection of its own, listening again after it is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from app.lib.signals import first_of

__all__ = ["follow_notifications"]

logger = logging.getLogger("postyard.notifications")


async def follow_notifications(engine: AsyncEngine, channels: Mapping[str, Callable[[], None]],
                               on_state: Callable[[bool], None], stop: asyncio.Event, retry: float = 1.0) -> None:
    """LISTEN on each channel and call its callback per notification, until `stop` is set. `on_state(True)`
    runs once listening (what was sent while nobody listened is lost: the caller catches up then), and
    `on_state(False)` when the connection is lost; a new one is tried every `retry` seconds."""
    lost = asyncio.Event()
    while not stop.is_set():
        lost.clear()
        try:
            async with engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                await raw.execute("SET idle_session_timeout = 0")  # idle is what a LISTENing connection is
                raw.add_termination_listener(lambda *_: lost.set())
                for channel, callback in channels.items():
                    await raw.add_listener(channel, lambda *_, c=callback: c())
                on_state(True)
                try:
                    await first_of(stop, lost)
                finally:
                    on_state(False)
                    await conn.invalidate()  # a LISTENing connection never goes back to the pool
        except Exception:  # noqa: BLE001 - without notifications the callers poll or read every time
            logger.warning("LISTEN %s failed; trying again", ", ".join(channels), exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=retry)
