"""The one way every process connects to PostgreSQL: bounded connects, statements, idle transactions and sockets.

A database that refuses connections fails fast anyway; one that silently drops packets or stops answering
would otherwise hold a request, a claim or an SMTP session for the kernel's ~15 minutes of retransmissions.
Each connection gets, from Settings:

- a connect timeout (TCP, TLS and the startup exchange together);
- a statement timeout, twice: PostgreSQL's `statement_timeout` cancels a slow statement and reports it, and
  asyncpg's `command_timeout` (a connect timeout later) gives up on a server that no longer answers at all.
  Housekeeping and migrations connect with `statements=False`: their statements may legitimately run long;
  the socket bounds below still notice a dead network under them;
- `idle_in_transaction_session_timeout`, so a client that hangs mid-transaction does not hold its locks;
- TCP keepalives and `TCP_USER_TIMEOUT` on both ends: the client's socket options notice a vanished server
  (an idle LISTEN connection included) and PostgreSQL's `tcp_*` settings a vanished client. Unacknowledged
  data for `database_tcp_user_timeout` seconds drops the connection whatever the statement's timeout;
- `idle_session_timeout` on pooled connections, so PostgreSQL closes one left unused (and frees its backend)
  once load has passed; the checkout below replaces a closed one, quietly when it was left unused that long;
- a ping of every pooled connection on checkout, bounded by the connect timeout, so a connection the
  network lost is replaced (or the caller told the database is unavailable) within seconds;
- a connection that timed out dropped at once, never reused (asyncpg leaves it waiting for its cancel);
- a bounded wait for a free pooled connection;
- the process's name as `application_name`, so pg_stat_activity shows who holds what.
"""

from __future__ import annotations

import contextlib
import logging
import time

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_

from app.config import Settings
from app.db.connections import bound_socket, connect_arguments
from app.db.json_columns import decode_json, encode_json

__all__ = ["create_engine"]

logger = logging.getLogger("postyard.db")


def _drop(dbapi_connection: DBAPIConnection | PoolProxiedConnection) -> None:
    """Close a connection at once: SQLAlchemy would first wait 2 s for a server that no longer answers."""
    dbapi_connection.driver_connection.terminate()  # type: ignore[union-attr]


def create_engine(url: str, settings: Settings, application: str, *, pool_size: int = 5, max_overflow: int = 10,
                  statements: bool = True) -> AsyncEngine:
    """An engine on `url` whose connections are bounded as the module docstring says.

    `application` names the process in pg_stat_activity. `statements=False` lifts the statement timeouts
    (housekeeping, migrations); every other bound stays.
    """
    # JSON columns are read and written as the API's advanced-alchemy engine always did (msgspec).
    # LIFO: a steady trickle reuses the same few connections, so the rest stay unused and the server closes them.
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_use_lifo=True,
                                 pool_timeout=settings.database_pool_timeout,
                                 json_serializer=encode_json, json_deserializer=decode_json,
                                 connect_args=connect_arguments(settings, application, statements))
    ping_timeout = settings.database_connect_timeout

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        bound_socket(dbapi_connection.driver_connection, settings)  # type: ignore[attr-defined]
        record.info["fresh"] = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        # SQLAlchemy's pool_pre_ping would wait the whole command timeout on a server that stopped answering.
        if record.info.pop("fresh", False):
            return
        if dbapi_connection.driver_connection.is_closed():  # type: ignore[attr-defined]
            idle = time.monotonic() - record.info.get("checked_in", time.monotonic())
            if not settings.database_idle_session_timeout or idle < settings.database_idle_session_timeout:
                # Not the idle timeout: a restart, or an operator ending sessions. Worth a line in the log.
                logger.warning("pooled database connection closed by the server after %.0f s idle; replacing it",
                               idle)
            raise DisconnectionError("closed by the server while idle")
        try:
            await_(dbapi_connection.driver_connection.fetchval("SELECT 1", timeout=ping_timeout))  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - a connection that cannot answer SELECT 1 is of no use
            logger.warning("pooled database connection lost (%s); replacing it", type(error).__name__)
            _drop(dbapi_connection)
            raise DisconnectionError(f"ping failed: {error!r}") from error

    @event.listens_for(engine.sync_engine, "handle_error")
    def _drop_on_timeout(context: ExceptionContext) -> None:
        if isinstance(context.original_exception, OSError):
            context.is_disconnect = True
            with contextlib.suppress(Exception):  # nothing to drop when SQLAlchemy already let it go
                _drop(context.connection.connection)  # type: ignore[union-attr]

    return engine
