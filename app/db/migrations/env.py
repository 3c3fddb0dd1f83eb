"""Alembic environment: async engine, refuses to run as anything but the database owner."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.config import Settings
from app.db.engines import create_engine
from app.db.models import UUIDBase

target_metadata = UUIDBase.metadata


def _run(connection: Connection) -> None:
    owner_check = text(
        "SELECT current_user = pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    )
    if not connection.execute(owner_check).scalar():
        raise RuntimeError("migrations must run as the database owner role")
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    # Bounded connects and sockets at their defaults, but no statement timeout: a migration may run long.
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"), Settings(), "postyard-migrate",
                           pool_size=1, statements=False)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


asyncio.run(_main())
