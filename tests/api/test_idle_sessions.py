"""Pooled connections left unused are closed by PostgreSQL (their backends' memory freed once load has
passed) and replaced quietly on the next checkout; a LISTENing connection is never closed for being idle."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest
from api_support import Postgres
from sqlalchemy import text

from app.config import Settings
from app.db.engines import create_engine
from app.db.notifications import follow_notifications

IDLE = 1.0


async def backends(engine_of_owner: object, application: str) -> int:
    async with engine_of_owner.connect() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"), {"name": application}))
            .scalar_one())


async def wait_for_backends(owner_engine: object, application: str, count: int, timeout: float = 5.0) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await backends(owner_engine, application)) != count:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    return found


async def test_idle_pooled_connections_are_closed_and_replaced_quietly(
    settings: Settings, owner_engine: object, caplog: pytest.LogCaptureFixture,
) -> None:
    quick = msgspec.structs.replace(settings, database_idle_session_timeout=IDLE)
    engine = create_engine(settings.database_url, quick, "postyard-idle-test", pool_size=3)
    try:
        async def hold() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(0.2)"))

        await asyncio.gather(*(hold() for _ in range(3)))
        assert await backends(owner_engine, "postyard-idle-test") == 3
        assert await wait_for_backends(owner_engine, "postyard-idle-test", 0) == 0

        with caplog.at_level(logging.WARNING, logger="postyard.db"):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert not [r for r in caplog.records if r.name == "postyard.db"]
        assert await backends(owner_engine, "postyard-idle-test") == 1
    finally:
        await engine.dispose()


async def test_a_connection_ended_by_an_operator_is_replaced_with_a_warning(
    settings: Settings, postgres: Postgres, caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_engine(settings.database_url, settings, "postyard-ended-test", pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'postyard-ended-test'")
        await asyncio.sleep(0.2)
        with caplog.at_level(logging.WARNING, logger="postyard.db"):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert any("closed by the server" in r.getMessage() for r in caplog.records if r.name == "postyard.db")
    finally:
        await engine.dispose()


async def test_a_listening_connection_outlives_the_idle_timeout(settings: Settings, owner_engine: object) -> None:
    quick = msgspec.structs.replace(settings, database_idle_session_timeout=IDLE)
    engine = create_engine(settings.database_url, quick, "postyard-listen-test", pool_size=1)
    states: list[bool] = []
    stop = asyncio.Event()
    follower = asyncio.create_task(follow_notifications(engine, {"idle_test": lambda: None}, states.append, stop))
    try:
        await asyncio.sleep(IDLE * 3)
        assert states == [True]  # listening since it started, never lost
        assert await backends(owner_engine, "postyard-listen-test") == 1
    finally:
        stop.set()
        await follower
        await engine.dispose()
