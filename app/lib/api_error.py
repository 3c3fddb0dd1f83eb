"""The error every layer raises for a refusal the caller must see, and how to tell a database outage.

Free of Litestar, so that the mail-host services, which share the domain's rules, do not load the web
framework; app/lib/errors.py turns these into responses.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["ApiError", "database_unavailable"]


class ApiError(Exception):
    """A refusal with an HTTP status, a machine-readable name and a message for the caller."""

    def __init__(self, status_code: int, name: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.name = name
        self.detail = message
        self.headers = headers


# SQLSTATE classes of a database that is unreachable for now: connection exceptions (08), insufficient
# resources (53, e.g. too many connections), operator intervention (57P: shutting down, starting up), a
# statement cancelled by POSTYARD_DATABASE_STATEMENT_TIMEOUT (57014: the database is overloaded), and a write
# refused as read-only (25006): a clustered member that Patroni starts read-only after a crash, before it
# promotes it again, or a primary being demoted, while the router still sends connections to it.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "57014", "25006")


def database_unavailable(exc: Exception) -> bool:
    """Whether `exc` says the database is down or restarting, not that the request or the code is wrong."""
    # Refused, or timed out connecting or waiting for an answer (TimeoutError is an OSError); no pooled
    # connection free within POSTYARD_DATABASE_POOL_TIMEOUT; a pooled connection lost and not replaced.
    if isinstance(exc, OSError | PoolTimeout | DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
