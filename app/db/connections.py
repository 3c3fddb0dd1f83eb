"""Connecting to PostgreSQL with bounds (see app/db/engines.py for what each bound is for): the asyncpg
arguments and socket options every connection gets, and a plain asyncpg connection for the LISTEN-driven
mail-host sync, which needs no SQLAlchemy."""

from __future__ import annotations

import socket
from typing import Any

import asyncpg

from app.config import Settings

__all__ = ["KEEPALIVE_PROBES", "bound_socket", "connect", "connect_arguments", "server_settings"]

# A dead idle connection is noticed after keepalive_idle + KEEPALIVE_PROBES * (keepalive_idle / 3) seconds.
KEEPALIVE_PROBES = 3


def _keepalive_interval(settings: Settings) -> int:
    return max(1, settings.database_keepalive_idle // KEEPALIVE_PROBES)


def _milliseconds(seconds: float) -> str:
    return str(int(seconds * 1000))


def server_settings(settings: Settings, application: str, statements: bool = True,
                    pooled: bool = True) -> dict[str, str]:
    """The session settings PostgreSQL applies to each connection (0 disables a timeout). A pooled one is
    closed by the server after `database_idle_session_timeout` unused; a LISTENing one never is."""
    return {
        "application_name": application,
        "statement_timeout": _milliseconds(settings.database_statement_timeout if statements else 0),
        "idle_in_transaction_session_timeout": _milliseconds(settings.database_idle_in_transaction_timeout),
        "idle_session_timeout": _milliseconds(settings.database_idle_session_timeout if pooled else 0),
        "tcp_keepalives_idle": str(settings.database_keepalive_idle),
        "tcp_keepalives_interval": str(_keepalive_interval(settings)),
        "tcp_keepalives_count": str(KEEPALIVE_PROBES),
        "tcp_user_timeout": _milliseconds(settings.database_tcp_user_timeout),
    }


def connect_arguments(settings: Settings, application: str, statements: bool = True,
                      pooled: bool = True) -> dict[str, Any]:
    """asyncpg.connect's keyword arguments: connect timeout, client-side command timeout, session settings."""
    command_timeout = settings.database_statement_timeout + settings.database_connect_timeout
    return {
        "timeout": settings.database_connect_timeout,
        "command_timeout": command_timeout if statements and settings.database_statement_timeout else None,
        "server_settings": server_settings(settings, application, statements, pooled),
    }


def bound_socket(connection: asyncpg.Connection, settings: Settings) -> None:
    """Keepalives and TCP_USER_TIMEOUT on the connection's TCP socket (a unix socket needs neither)."""
    transport = getattr(connection, "_transport", None)  # asyncpg exposes no public accessor for its socket
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", settings.database_keepalive_idle),
                          ("TCP_KEEPINTVL", _keepalive_interval(settings)),
                          ("TCP_KEEPCNT", KEEPALIVE_PROBES),
                          ("TCP_USER_TIMEOUT", int(settings.database_tcp_user_timeout * 1000))):
        if hasattr(socket, option):  # Linux has them all; elsewhere keepalives keep the system's timing
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


async def connect(dsn: str, settings: Settings, application: str) -> asyncpg.Connection:
    """A plain asyncpg connection (for LISTEN-driven services) with the same bounds as the engines'."""
    connection = await asyncpg.connect(dsn, **connect_arguments(settings, application, pooled=False))
    bound_socket(connection, settings)
    return connection
