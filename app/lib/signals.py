"""Running a long-lived service until SIGTERM (systemd's stop) or SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

__all__ = ["run_until_stopped"]


def run_until_stopped(service: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `service(stop)` in a new event loop; SIGTERM and SIGINT set `stop`."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service(stop)

    asyncio.run(_run())
