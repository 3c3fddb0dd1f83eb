"""The webhook process (`postyard-api webhooks`): delivers webhook events, in a process apart from mail submission.

Its own process and unit (with its own memory limit) keep a hostile endpoint's hangs and floods away from the
worker; within it, the dispatcher's deadlines, response cap and slots keep them away from other teams.
Idle, it polls for due deliveries every `POSTYARD_WORKER_POLL_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from app.config import Settings
from app.db.engines import create_engine
from app.domain.webhooks.dispatcher import Dispatcher
from app.lib.crypto import Keyring
from app.lib.signals import run_until_stopped

__all__ = ["main", "run_webhooks"]

_THREADS_PER_SLOT = 4


async def run_webhooks(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Deliver until `stop` is set (SIGTERM or SIGINT set it when run from the CLI)."""
    stop = stop or asyncio.Event()
    # Names are resolved with getaddrinfo in the default executor. A resolution the deadline gave up on keeps
    # its thread until the system resolver's own timeout, so slow names must not use up the threads others need.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=_THREADS_PER_SLOT * settings.webhook_concurrency, thread_name_prefix="resolve"))
    engine = create_engine(settings.system_database_url, settings, "postyard-webhooks")
    dispatcher = Dispatcher(settings, engine, Keyring(settings.data_keys, settings.active_data_key_id))
    try:
        await dispatcher.run(stop, settings.worker_poll_interval)
    finally:
        await dispatcher.close()
        await engine.dispose()


def main(settings: Settings) -> None:
    """Run the dispatcher in this process, stopping cleanly on SIGTERM or SIGINT."""
    run_until_stopped(lambda stop: run_webhooks(settings, stop))
